"""An error an upstream reports inside its 200 stream (`data: {"error": ...}`, or a Responses
stream's `error` and `response.failed` events) is a failure, never an answer: the relay ends
the stream with an in-band error of the gateway's own (gateway/streaming.py). Its message,
which may echo the key, is redacted like any upstream error's."""

from __future__ import annotations

from gateway.policy.compiled import ModelTarget
from gateway.sse import Event
from gateway.upstream.base import UpstreamError, redact


def raise_in_band_error(event: Event, target: ModelTarget) -> None:
    if event.data is None or b'"error"' not in event.data:
        return
    data = event.json()
    if not isinstance(data, dict) or "choices" in data:
        return
    error = data.get("error")
    if data.get("type") == "response.failed":  # a Responses stream's failure, or its error event
        error = (data.get("response") or {}).get("error") or "the response failed"
    elif data.get("type") == "error":
        error = error or data
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        raise UpstreamError(
            "protocol", "upstream reported an error: " + redact(str(message), target.api_key)
        )
