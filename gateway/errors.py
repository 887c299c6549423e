"""The gateway's error tree and its one OpenAI-shaped renderer.

GatewayError
 ├── BadRequest            400 invalid_request_error
 ├── Unauthorized          401 authentication_error
 ├── PermissionDenied      403 permission_error
 ├── NotFound              404 invalid_request_error
 │    └── ModelNotFound    404 model_not_found
 ├── MethodNotAllowed      405 invalid_request_error (with Allow)
 ├── RequestTimeout        408 invalid_request_error (a client too slow to send its body)
 ├── PayloadTooLarge       413 invalid_request_error
 ├── HeadersTooLarge       431 invalid_request_error
 ├── Unprocessable         422 invalid_request_error (well-formed JSON, invalid values)
 │    └── PolicyRejected   422 policy_rejected (a reload found the policy unsound)
 ├── RateLimited           429 rate_limit_error (rate_limit_exceeded)
 │    └── QuotaExceeded    429 insufficient_quota (a spent budget)
 ├── UpstreamFailed        502 upstream_error
 ├── Unavailable           503 service_unavailable
 └── UpstreamTimeout       504 timeout

Messages name the field and say what to do; they never carry a secret.
"""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class HeadersTooLarge(GatewayError):
    status = 431
    type = "invalid_request_error"
    code = "headers_too_large"


class Unprocessable(GatewayError):
    status = 422
    type = "invalid_request_error"


class PolicyRejected(Unprocessable):
    code = "policy_rejected"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class QuotaExceeded(RateLimited):
    type = "insufficient_quota"
    code = "insufficient_quota"


class UpstreamFailed(GatewayError):
    status = 502
    type = "upstream_error"


class Unavailable(GatewayError):
    status = 503
    type = "service_unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout"


def error_object(err: GatewayError) -> dict[str, str | None]:
    """`err` as the OpenAI error object every client SDK understands."""
    return {"message": err.message, "type": err.type, "param": err.param, "code": err.code}


def error_body(err: GatewayError) -> bytes:
    """The body of an error response: {"error": <error object>}."""
    return orjson.dumps({"error": error_object(err)})


def stream_error_event(err: GatewayError) -> bytes:
    """The in-band SSE event that ends a stream which already started; the SDKs raise on it."""
    return b"\n\ndata: " + error_body(err) + b"\n\n"
