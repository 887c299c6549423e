"""What both upstream paths return and raise, so the rest of the gateway sees one behaviour."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.policy.compiled import ModelTarget

FailureKind = Literal["status", "timeout", "connect", "protocol"]

_KEY_LIKE = re.compile(r"\b(sk|key|api|pk|rk)[-_][A-Za-z0-9_\-*.]{6,}", re.IGNORECASE)


def redact(text: str, secret: str | None = None) -> str:
    """Strip anything key-shaped from an upstream message before it reaches a client or log."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)[:500]


@dataclass(slots=True)
class Reply:
    """A complete, parsed non-streamed upstream answer, with its original bytes."""

    body: bytes
    data: dict[str, Any]


class UpstreamError(Exception):
    """A failed upstream call, classified so retries and fallbacks can decide what to do."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def client_fault(self) -> bool:
        """The request itself was refused (400, 404, 413, 422): no other model would do better."""
        return self.kind == "status" and self.status in (400, 404, 413, 422)

    @property
    def retryable(self) -> bool:
        """Worth another try on the same model: overload, timeouts, connection trouble."""
        if self.kind == "status":
            return self.status in (408, 409, 429) or (self.status or 0) >= 500
        return self.kind in ("timeout", "connect")


class Transport(Protocol):
    """One way of reaching a model; both paths raise only UpstreamError."""

    async def complete(self, target: ModelTarget, body: dict[str, Any]) -> Reply: ...

    async def embed(self, target: ModelTarget, body: dict[str, Any]) -> Reply: ...

    def stream(self, target: ModelTarget, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """Yield the upstream's SSE bytes as they arrive, ending with `data: [DONE]`."""
        ...

    async def close(self) -> None: ...


def parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
