"""An error an upstream reports inside its 200 stream (`data: {"error": ...}`, or a Responses
stream's `error` and `response.failed` events) is a failure, never an answer. In the stream's
opening, before the client has a byte, it falls back to the next model like a stream cut
there (gateway/upstream/failover.py); after it, the relay ends the stream with an in-band
error of the gateway's own (gateway/streaming.py). Its message, which may echo the key, is
redacted like any upstream error's."""

from __future__ import annotations

from gateway.policy.compiled import ModelTarget
from gateway.sse import Event, Framer, check_json
from gateway.upstream.base import UpstreamError, redact


def check_opening(chunk: bytes, target: ModelTarget, framer: Framer | None = None) -> list[Event]:
    """Each whole event of a stream's first bytes: FramingError for data that is not JSON,
    UpstreamError for an error reported in band; either can still fall back. Returns the
    events, their data parsed (Event.value), and leaves `framer` past them: the relay sends
    them on without framing or parsing them again."""
    events = (framer or Framer()).feed(chunk)
    for event in events:
        check_json(event)
        # raise_in_band_error's first test, in line: a call an event fewer before the first byte
        if event.data is not None and IN_BAND in event.data:
            raise_in_band_error(event, target)
    return events


IN_BAND = b'"error"'  # in the data of every event that reports an error in band


def raise_in_band_error(event: Event, target: ModelTarget) -> None:
    if event.data is None or IN_BAND not in event.data:
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
