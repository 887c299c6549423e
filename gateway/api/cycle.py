"""uvicorn's request-response cycle with a response's head written in fewer steps.

uvicorn (0.54) checks every response header against two regular expressions and lower-cases
its name as it writes the head: some 0.6 µs a header, and a Floorgate response carries ten or
more (its x-floorgate-* headers). Here a head whose header names are all among the gateway's
own (lower-case, checked valid once, below) has its values checked with one search over them
all, and is written the same way; any other head, and everything else, is uvicorn's.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)

# Header names the gateway itself sends (and uvicorn's date), with no meaning to uvicorn but
# content-length's; transfer-encoding and connection, which change how it frames the
# response, are left to it.
KNOWN_NAMES = frozenset(
    (
        b"date", b"content-type", b"content-length", b"cache-control", b"x-accel-buffering",
        b"retry-after", b"x-floorgate-request-id", b"x-floorgate-workflow",
        b"x-floorgate-route", b"x-floorgate-model", b"x-floorgate-policy-version",
        b"x-floorgate-abstained", b"x-floorgate-self-flagged", b"x-floorgate-verdict-source",
        b"x-ratelimit-limit-requests", b"x-ratelimit-remaining-requests",
        b"x-ratelimit-reset-requests", b"x-ratelimit-limit-tokens",
        b"x-ratelimit-remaining-tokens", b"x-ratelimit-reset-tokens",
    )
)  # fmt: skip
assert all(name.islower() and not HEADER_RE.search(name) for name in KNOWN_NAMES)
NO_BODY_STATUSES = (204, 304)  # answered with no body, so never chunked


class QuickHeadCycle(RequestResponseCycle):
    async def send(self, message: Any) -> None:
        if (
            self.response_started
            or message["type"] != "http.response.start"
            or self.access_log
            or self.flow.write_paused
            or self.disconnected
        ):
            await super().send(message)
            return
        headers = self.default_headers + list(message.get("headers", []))
        names, values = zip(*headers, strict=True) if headers else ((), ())
        # The value pattern is one byte: a match in the values joined is a match in one of them.
        if (
            not names
            or not KNOWN_NAMES.issuperset(names)
            or HEADER_VALUE_RE.search(b"".join(values))
        ):
            await super().send(message)  # uvicorn's own checks, and its errors
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        status = message["status"]
        head = [STATUS_LINE[status], b"\r\n".join(map(b": ".join, headers)), b"\r\n"]
        if b"content-length" in names and self.chunked_encoding is None:
            self.expected_content_length = int(values[names.index(b"content-length")].decode())
            self.chunked_encoding = False
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status not in NO_BODY_STATUSES
        ):
            self.chunked_encoding = True
            head.append(b"transfer-encoding: chunked\r\n")
        head.append(b"\r\n")
        self.transport.write(b"".join(head))
