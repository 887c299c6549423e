"""An error inside a 200 stream, on its own (gateway/upstream/in_band.py) and through the
failover on the in-memory transport: before the stream's first data event (keep-alive comments
before it included) it falls back, redacted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.errors import UpstreamFailed, UpstreamTimeout
from gateway.policy.compiled import ModelTarget
from gateway.policy.model import ModelSpec
from gateway.sse import Event, Framer, FramingError
from gateway.upstream.base import UpstreamError
from gateway.upstream.failover import Failover
from gateway.upstream.in_band import check_opening, raise_in_band_error
from gateway.upstream.memory import MemoryTransport

KEY = "sk-test-0123456789abcdef"
ERROR = b'data: {"error": {"message": "Incorrect API key provided: ' + KEY.encode() + b'"}}\n\n'
ANSWER = b'data: {"choices": [{"index": 0, "delta": {"content": "ok"}}]}\n\n'


KEEP_ALIVE = b": OPENROUTER PROCESSING\n\n"


def target(name: str, first_token_timeout_s: float = 120) -> ModelTarget:
    spec = ModelSpec(
        provider="openai_compatible",
        model=name,
        retries=0,
        first_token_timeout_s=first_token_timeout_s,
    )
    return ModelTarget(name, spec, KEY, {})


def event(wire: bytes) -> Event:
    (only,) = Framer().feed(wire)
    return only


@pytest.mark.parametrize(
    "wire",
    [ERROR, b'data: {"type": "error", "message": "overloaded"}\n\n',
     b'data: {"type": "response.failed", "response": {"error": {"message": "crashed"}}}\n\n'],
)  # fmt: skip
def test_an_error_event_raises_redacted(wire: bytes) -> None:
    with pytest.raises(UpstreamError, match="upstream reported an error") as info:
        raise_in_band_error(event(wire), target("a"))
    assert info.value.kind == "protocol"
    assert KEY not in info.value.message and KEY[3:15] not in info.value.message


@pytest.mark.parametrize(
    "wire",
    [ANSWER, b'data: {"choices": [{"delta": {"content": "the \\"error\\" was mine"}}]}\n\n',
     b'data: {"error": null, "choices": []}\n\n', b"data: [DONE]\n\n", b": a comment\n\n"],
)  # fmt: skip
def test_an_answer_is_not_an_error(wire: bytes) -> None:
    raise_in_band_error(event(wire), target("a"))


def test_an_opening_is_checked_event_by_event() -> None:
    check_opening(b'data: {"a": 1}\n\ndata: [DONE]\n\n: a comment\n\ndata: {"b"', target("a"))
    with pytest.raises(FramingError, match="not JSON"):
        check_opening(b'data: {"a": 1}\n\ndata: {"choices": [\n\n', target("a"))
    with pytest.raises(UpstreamError, match="reported an error"):
        check_opening(ANSWER + ERROR, target("a"))


def test_an_opening_s_events_come_back_parsed_with_the_framer_past_them() -> None:
    framer = Framer()
    events = check_opening(ANSWER + b'data: {"b": 2}\n\ndata: {"c"', target("a"), framer)
    assert [e.value for e in events] == [
        {"choices": [{"index": 0, "delta": {"content": "ok"}}]},
        {"b": 2},
    ]
    (rest,) = framer.feed(b": 3}\n\n")  # the event the opening began, ended by the next bytes
    assert rest.data == b'{"c": 3}'


def open_stream(answers: dict[str, list[bytes]]) -> tuple[str, bytes, list[str]]:
    transport = MemoryTransport(lambda t, body: answers[t.name])
    failover = Failover(lambda t: transport, lambda t, err, route: None)
    pool = [target(name) for name in answers]
    served, opening = asyncio.run(failover.open_stream("r", pool, {}))
    return served.name, opening.first, transport.calls


def test_an_error_as_the_first_event_falls_back_to_the_next_model() -> None:
    served, first, calls = open_stream({"a": [ERROR, b"data: [DONE]\n\n"], "b": [ANSWER]})
    assert (served, first, calls) == ("b", ANSWER, ["a", "b"])


def test_an_error_as_the_first_event_of_the_last_model_is_a_502_redacted() -> None:
    with pytest.raises(UpstreamFailed, match="reported an error") as info:
        open_stream({"a": [ERROR]})
    assert KEY not in info.value.message


def test_an_error_after_the_first_bytes_is_the_relay_s_to_end() -> None:
    served, first, _ = open_stream({"a": [ANSWER, ERROR], "b": [ANSWER]})
    assert (served, first) == ("a", ANSWER)


def test_an_error_after_keep_alive_comments_falls_back_to_the_next_model() -> None:
    served, first, calls = open_stream({"a": [KEEP_ALIVE, b": ping\n\n", ERROR], "b": [ANSWER]})
    assert (served, first, calls) == ("b", ANSWER, ["a", "b"])


def test_a_stream_that_ends_after_comments_only_falls_back() -> None:
    served, _, calls = open_stream({"a": [KEEP_ALIVE, KEEP_ALIVE], "b": [ANSWER]})
    assert (served, calls) == ("b", ["a", "b"])
    with pytest.raises(UpstreamFailed, match="ended the stream before any data"):
        open_stream({"a": [KEEP_ALIVE]})


def test_comments_before_the_first_data_event_are_not_relayed() -> None:
    """The opening the relay sends on starts at the first data event, whatever came before
    it: comments, a data-less event, the first part of the data event itself."""
    transport = MemoryTransport(
        lambda t, body: [KEEP_ALIVE, b"event: ping\n\n: x\n\n" + ANSWER[:9], ANSWER[9:]]
    )
    failover = Failover(lambda t: transport, lambda t, err, route: None)
    _served, opening = asyncio.run(failover.open_stream("r", [target("a")], {}))
    assert [e.wire() for e in opening.events] == [ANSWER]
    assert opening.first == ANSWER[9:]


class KeepAliveForever:
    """A transport whose streams send a comment every 10 ms and never any data."""

    closed = 0

    async def stream(
        self, target: ModelTarget, body: dict[str, Any], responses: bool = False
    ) -> AsyncIterator[bytes]:
        try:
            while True:
                await asyncio.sleep(0.01)
                yield b": keep-alive\n\n"
        finally:
            self.closed += 1


def test_keep_alive_comments_do_not_stretch_the_first_token_budget() -> None:
    forever = KeepAliveForever()
    outcomes: list[str | None] = []
    failover = Failover(
        lambda t: forever,  # type: ignore[arg-type,return-value]
        lambda t, err, route: outcomes.append(err and err.kind),
    )
    with pytest.raises(UpstreamTimeout):
        asyncio.run(failover.open_stream("r", [target("a", first_token_timeout_s=0.2)], {}))
    assert (outcomes, forever.closed) == (["timeout"], 1)  # counted a failure, stream closed
