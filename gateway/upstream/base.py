"""What both upstream paths return and raise, so the rest of the gateway sees one behaviour."""

from __future__ import annotations

import base64
import functools
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.policy.compiled import ModelTarget

# busy: no connection to the upstream came free (the model's queue was full, or too slow).
FailureKind = Literal["status", "timeout", "connect", "protocol", "busy"]

_KEY_LIKE = re.compile(r"\b(sk|key|api|pk|rk)[-_][A-Za-z0-9_\-*.]{6,}", re.IGNORECASE)
# A Python traceback's frames ('  File "/x/y.py", line 3, in f' and the source line after).
_FRAME = re.compile(r'^\s*File "[^"]*", line \d+.*(?:\n(?!\s*File ")[ \t]+\S.*)?$', re.MULTILINE)
_TRACEBACK_HEAD = re.compile(r"^\s*Traceback \(most recent call last\):\s*$", re.MULTILINE)
# An absolute file path (POSIX with two or more parts, or a Windows drive), not a URL's path.
_PATH = re.compile(r"(?<![\w:/.\-])(?:/[\w.@+\-]+){2,}/?|\b[A-Za-z]:\\[^\s'\"]+")
# A URL's user:password@ (a proxy's, echoed in an error), whatever the scheme.
_USERINFO = re.compile(r"(?<=://)[^\s/@]+@")
# The fields of an upstream's error worth relaying: frameworks act on them
# (context_length_exceeded: trim the history and try again).
_RELAYED = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,80}$")


# A run of this many characters of the key (or of its base64) is the key, partly echoed.
KEY_FRAGMENT = 8


def redact(text: str, secret: str | None = None) -> str:
    """An upstream message made fit for a client or a log: nothing key-shaped, no piece of
    the key (plain or base64, as an echoed Basic or Bearer header carries it), no traceback,
    no file path of the upstream's machine."""
    if secret:
        for fragment in _fragments(secret):
            text = text.replace(fragment, "[redacted]")
    text = _USERINFO.sub("[redacted]@", _FRAME.sub("", _TRACEBACK_HEAD.sub("", text)))
    text = _PATH.sub("[path]", _KEY_LIKE.sub("[redacted]", text))
    return " ".join(text.split())[:500]


@functools.lru_cache(maxsize=64)
def _fragments(secret: str) -> tuple[str, ...]:
    """Every KEY_FRAGMENT-long run of the key and of its base64 forms, longest forms first.
    Base64 is taken at the three alignments a prefix (`user:`) can give it, without the edges
    that prefix and padding change."""
    forms = [secret]
    raw = secret.encode()
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(b"\0" * shift + raw).decode()
            forms.append(core[(shift * 4 + 2) // 3 + 1 : -4])
    runs = {f[i : i + KEY_FRAGMENT] for f in forms for i in range(len(f) - KEY_FRAGMENT + 1)}
    return (*sorted((f for f in forms if len(f) >= KEY_FRAGMENT), key=len, reverse=True),
            *sorted(runs))  # fmt: skip


def relayed(error: object) -> dict[str, str | None]:
    """`code`, `param` and `type` of an upstream's OpenAI-shaped error, when they are short
    identifiers (anything else is dropped, never echoed)."""
    out: dict[str, str | None] = {"code": None, "param": None, "type": None}
    if isinstance(error, dict):
        for name in out:
            value = error.get(name)
            if isinstance(value, str) and _RELAYED.match(value):
                out[name] = value
    return out


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
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.code = code  # the upstream's own error code, param and type, when it sent them
        self.param = param
        self.type = type

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


class QueueWatch(Protocol):
    """What the direct path says about requests waiting for an upstream connection, by model."""

    def upstream_waiting(self, model: str, delta: int) -> None: ...

    def upstream_queue_refused(self, model: str, reason: str) -> None: ...


class Transport(Protocol):
    """One way of reaching a model; both paths raise only UpstreamError."""

    async def complete(self, target: ModelTarget, body: dict[str, Any]) -> Reply: ...

    async def embed(self, target: ModelTarget, body: dict[str, Any]) -> Reply: ...

    async def respond(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        """A Responses API call, for models that serve it (wire.responses)."""
        ...

    def stream(
        self, target: ModelTarget, body: dict[str, Any], responses: bool = False
    ) -> AsyncIterator[bytes]:
        """Yield the upstream's SSE bytes as they arrive, ending with `data: [DONE]`; with
        `responses`, the events of a streamed Responses API call (wire.responses)."""
        ...

    async def close(self) -> None: ...


MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds; an HTTP date is ignored), within
    [0, MAX_RETRY_AFTER_S]; `inf`, `nan` and garbage count as absent."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)
