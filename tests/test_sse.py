"""The SSE framer on its own: line endings, the data field's optional space, [DONE] only as a
whole event, events split anywhere across chunks, and the bound on one event."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import orjson
import pytest

from gateway.sse import KEEP_HEAD, Framer, FramingError, StreamCopy

CHUNK = b'{"choices": [{"index": 0, "delta": {"content": "hi"}}]}'


def frame(*chunks: bytes) -> list[tuple[bytes | None, bool]]:
    framer = Framer()
    return [(e.data, e.done) for c in chunks for e in framer.feed(c)]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_every_line_ending_frames_the_same_events(eol: bytes) -> None:
    stream = b"data: " + CHUNK + eol + eol + b"data: [DONE]" + eol + eol
    assert frame(stream) == [(CHUNK, False), (b"[DONE]", True)]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_events_split_at_every_byte_frame_the_same(eol: bytes) -> None:
    stream = b"data: " + CHUNK + eol + eol + b"data: [DONE]" + eol + eol
    assert frame(*(stream[i : i + 1] for i in range(len(stream)))) == frame(stream)


def test_data_without_the_space_is_data() -> None:
    assert frame(b"data:" + CHUNK + b"\n\ndata:[DONE]\n\n") == [(CHUNK, False), (b"[DONE]", True)]


def test_done_inside_text_is_not_the_end() -> None:
    text = orjson.dumps({"choices": [{"delta": {"content": "say\ndata: [DONE]\n\n"}}]})
    events = frame(b"data: " + text + b"\n\n")
    assert events == [(text, False)]


def test_comments_and_other_fields_are_kept_but_are_not_data() -> None:
    framer = Framer()
    [keepalive, named] = framer.feed(b": ping\n\nevent: error\nid: 7\ndata: {}\n\n")
    assert keepalive.data is None and keepalive.wire() == b": ping\n\n"
    assert named.data == b"{}"
    assert named.wire() == b"event: error\nid: 7\ndata: {}\n\n"
    assert not framer.feed(b"datum: x\n\n")[0].data  # only a field named exactly "data"


def test_multi_line_data_is_joined_by_lf() -> None:
    assert frame(b"data: a\r\ndata: b\r\n\r\n") == [(b"a\nb", False)]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: a\n\ndata: b\n\n", b"data: [DONE]\n\n"],  # whole data events: split in C
        [b"data: a\n\n\n\ndata: b\n\n"],  # blank lines between events
        [b"data: a\n", b"\ndata: b\n\n"],  # an event ended by the next chunk
        [b"data: a\n\nda", b"ta: b\n\n"],  # a line cut across chunks
        [b"data: a\r", b"\ndata: b\n\n"],  # a CRLF cut between its CR and its LF
        [b"data:a\n\n", b"event: x\ndata: b\n\n", b": ping\n\ndata: [DONE]\n\n"],
        [b"data: a\ndata: b\n\n", b"data\n\n"],  # more than one data line, a bare field
    ],
)
def test_whole_chunks_frame_as_byte_by_byte(chunks: list[bytes]) -> None:
    """What the framer reads in C (chunks of whole single-line data events) and what it reads
    line by line give the same events and wire bytes as the same stream fed a byte at a time."""
    stream = b"".join(chunks)
    framer, by_byte = Framer(), Framer()
    whole = [(e.data, e.wire()) for c in chunks for e in framer.feed(c)]
    one_by_one = [
        (e.data, e.wire()) for i in range(len(stream)) for e in by_byte.feed(stream[i : i + 1])
    ]
    assert whole == one_by_one


def test_the_copy_merges_parsed_and_unparsed_data_alike() -> None:
    events = [{"choices": [{"index": 0, "delta": {"content": w}}]} for w in ("a", "b", "c")]
    as_bytes, parsed = StreamCopy(), StreamCopy()
    for data in events:
        as_bytes.feed(orjson.dumps(data))
        parsed.feed(orjson.dumps(data), data)
    assert parsed.completion() == as_bytes.completion()
    assert parsed.completion()["choices"][0]["message"]["content"] == "abc"


def test_one_event_beyond_the_limit_is_refused() -> None:
    framer = Framer(limit=100)
    framer.feed(b"data: " + b"x" * 50 + b"\n\n")  # many small events are fine
    framer.feed(b"data: " + b"x" * 50 + b"\n\n")
    with pytest.raises(FramingError, match="exceeded 100 bytes"):
        framer.feed(b"data: " + b"x" * 101)


def test_the_copy_rebuilds_the_completion_from_head_and_tail() -> None:
    copy = StreamCopy()
    for word in ("Hello", " world"):
        copy.feed(orjson.dumps({"choices": [{"index": 0, "delta": {"content": word}}]}))
    copy.feed(orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    copy.feed(orjson.dumps({"choices": [], "usage": {"completion_tokens": 2}}))
    completion = copy.completion()
    assert completion["choices"][0]["message"]["content"] == "Hello world"
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == {"completion_tokens": 2}


def test_the_copy_keeps_a_bounded_head_and_tail() -> None:
    copy = StreamCopy()
    piece = orjson.dumps({"choices": [{"index": 0, "delta": {"content": "x" * 1000}}]})
    for _ in range(10_000):  # 10 MB of events
        copy.feed(piece)
    copy.feed(orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    completion = copy.completion()
    assert len(completion["choices"][0]["message"]["content"]) < 140_000
    assert completion["choices"][0]["finish_reason"] == "stop"


def tracked(holder: object) -> list[str]:
    """The types of what `holder` refers to that the garbage collector tracks (its class aside)."""
    referents = gc.get_referents(holder)
    return [type(o).__name__ for o in referents if gc.is_tracked(o) and o is not type(holder)]


def test_a_framer_between_events_and_a_copy_without_a_tail_hold_nothing_tracked() -> None:
    """What a held stream keeps between chunks is walked by every young collection, each
    pause proportional to it (docs/bench.md, issue 18): an empty buffer is no list."""
    framer, copy = Framer(), StreamCopy()
    event = b"data: " + CHUNK + b"\n\n"
    framer.feed(event[:10])  # an event begun: its line is buffered
    events = framer.feed(event[10:] + b": a comment\r\n\r\n")  # the CR: line by line
    assert [e.data for e in events] == [CHUNK, None]
    assert tracked(framer) == []
    copy.feed(CHUNK)
    assert tracked(copy) == ["list"]  # the head
    for _ in range(KEEP_HEAD // len(CHUNK) + 1):
        copy.feed(CHUNK)
    assert tracked(copy) == ["list", "deque"]  # and, past it, the tail


async def no_more() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


def test_only_a_stream_whole_in_its_first_bytes_keeps_their_json_parsed() -> None:
    """The relay's copy for the classifier keeps the opening's parsed JSON only when the
    stream ended there; a stream that goes on keeps bytes while it is held (less memory, and
    nothing for the collector to walk), and both rebuild the same completion."""
    from gateway.policy.compiled import ModelTarget
    from gateway.policy.model import ModelSpec
    from gateway.streaming import _Events, _Step
    from gateway.upstream.in_band import check_opening
    from gateway.upstream.opening import Opening

    target = ModelTarget("m", ModelSpec(provider="openai_compatible", model="m"), None, {})
    data = b'{"choices": [{"index": 0, "delta": {"content": "hi"}}]}'
    for first, whole in ((b"data: " + data + b"\n\ndata: [DONE]\n\n", True),
                         (b"data: " + data + b"\n\n", False)):  # fmt: skip
        framer, copy = Framer(), StreamCopy()
        opening = Opening(first, check_opening(first, target, framer), framer, no_more())
        _Step(target, _Events(copy, None, None, None), opening).feed(first)
        assert [type(item) for item in copy._head] == [dict if whole else bytes]
        assert copy.completion()["choices"][0]["message"]["content"] == "hi"
