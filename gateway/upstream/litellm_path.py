"""The litellm path: providers that need translation (Anthropic, Bedrock, Vertex, ...).

The only module that imports litellm. It is imported only when a policy declares a model
that needs it, so an OpenAI-wire-only gateway starts without paying for litellm's import.
"""

from __future__ import annotations

import os

# litellm fetches its price table over the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import litellm
import orjson

from gateway.policy.compiled import ModelTarget
from gateway.upstream import litellm_wire
from gateway.upstream.base import Reply, UpstreamError, parse_retry_after, redact, relayed
from gateway.upstream.proxy import Proxies

litellm.suppress_debug_info = True
litellm.drop_params = False
# Its aiohttp transport reads the proxy variables as urllib does (NO_PROXY without ports, a
# loopback host bypassed, never `*` in a list); httpx reads them as the direct path does.
litellm.disable_aiohttp_transport = True

_PRIVATE_FIELDS = ("metadata", "model")


def _kwargs(target: ModelTarget, body: dict[str, Any], **options: Any) -> dict[str, Any]:
    spec = target.spec
    kwargs = {k: v for k, v in body.items() if k not in _PRIVATE_FIELDS}
    kwargs.update(
        model=f"{spec.provider}/{spec.model}",
        # The same budgets as the direct path: the whole call, and connecting.
        timeout=httpx.Timeout(spec.timeout_s, connect=spec.connect_timeout_s),
        num_retries=0,  # retries and fallbacks are the gateway's, with one policy for both paths
        **options,
        **target.params,
    )
    if target.api_base:
        kwargs["api_base"] = target.api_base
    if target.api_key:
        kwargs["api_key"] = target.api_key
    return kwargs


class LitellmTransport:
    def __init__(
        self,
        max_header_bytes: int = 64 * 1024,
        max_body_bytes: int = 64 * 1024 * 1024,
        proxies: Proxies | None = None,
    ) -> None:
        # The OpenAI-SDK providers' client: the direct path's proxies and response caps,
        # this gateway's for each call made `using` them.
        self._limits = litellm_wire.WireLimits(
            max_header_bytes, max_body_bytes, proxies or Proxies.none()
        )
        litellm.aclient_session = litellm_wire.client()

    async def complete(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        try:
            with litellm_wire.using(self._limits):
                response = await litellm.acompletion(**_kwargs(target, body, stream=False))
        except Exception as exc:  # litellm raises many types; all are translated here
            raise _translate(exc, target) from exc
        data: dict[str, Any] = response.model_dump(exclude_none=True)
        return Reply(orjson.dumps(data), data)

    async def embed(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        try:
            with litellm_wire.using(self._limits):
                response = await litellm.aembedding(**_kwargs(target, body))
        except Exception as exc:  # litellm raises many types; all are translated here
            raise _translate(exc, target) from exc
        data: dict[str, Any] = response.model_dump(exclude_none=True)
        return Reply(orjson.dumps(data), data)

    async def respond(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        raise UpstreamError("protocol", "Responses are passed through on the direct path only")

    async def stream(
        self, target: ModelTarget, body: dict[str, Any], responses: bool = False
    ) -> AsyncIterator[bytes]:
        if responses:
            raise UpstreamError("protocol", "Responses are passed through on the direct path only")
        # As on the direct path, first_token_timeout_s bounds the wait for the stream to
        # start and then for each chunk.
        wait = target.spec.first_token_timeout_s
        try:
            async with asyncio.timeout(wait):
                with litellm_wire.using(self._limits):
                    response = await litellm.acompletion(**_kwargs(target, body, stream=True))
            chunks = aiter(response)
            while True:
                async with asyncio.timeout(wait):
                    chunk = await anext(chunks, None)
                if chunk is None:
                    break
                yield b"data: " + orjson.dumps(chunk.model_dump(exclude_none=True)) + b"\n\n"
        except TimeoutError:
            raise UpstreamError("timeout", "upstream did not answer in time") from None
        except Exception as exc:  # litellm raises many types; all are translated here
            raise _translate(exc, target) from exc
        yield b"data: [DONE]\n\n"

    async def close(self) -> None:
        return None


def _error_fields(exc: Exception) -> dict[str, object]:
    """The upstream's code and param, as litellm keeps them (it names a context overflow by
    its class, and drops the upstream's own fields)."""
    fields = {name: getattr(exc, name, None) for name in ("code", "param", "type")}
    if isinstance(exc, litellm.exceptions.ContextWindowExceededError):
        fields["code"] = fields["code"] or "context_length_exceeded"
        fields["param"] = fields["param"] or "messages"
    return fields


def _cause(exc: BaseException, kind: type[Exception]) -> Exception | None:
    """The first `kind` among the errors that led to `exc` (litellm and the SDK wrap them)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _translate(exc: Exception, target: ModelTarget) -> UpstreamError:
    if isinstance(exc, UpstreamError):
        return exc
    too_large = _cause(exc, litellm_wire.ResponseTooLarge)
    if too_large is not None:
        return UpstreamError("protocol", str(too_large))
    message = redact(str(getattr(exc, "message", exc)), target.api_key)
    if isinstance(exc, litellm.exceptions.Timeout):
        return UpstreamError("timeout", "upstream did not answer in time")
    if isinstance(exc, litellm.exceptions.APIConnectionError):
        return UpstreamError("connect", f"could not reach the upstream: {message}")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        retry_after = getattr(exc, "retry_after", None)
        return UpstreamError(
            "status",
            message,
            status=status,
            retry_after=parse_retry_after(str(retry_after)) if retry_after is not None else None,
            **relayed(_error_fields(exc)),
        )
    return UpstreamError("protocol", f"upstream answer could not be read: {message}")
