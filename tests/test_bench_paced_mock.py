"""The held streams' mock (bench/paced_mock.py): nginx's bytes over real HTTP on loopback, and
each chunk due on its stream's own clock (no timing is asserted: the schedule it asks for is)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import llm_mock, paced_mock
from bench.procs import Children, free_port, wait_listening
from bench.services import ROOT

SHAPE = llm_mock.Shape(ttft_ms=5, chunk_ms=2, chunks=4, whole_ms=5)


@pytest.fixture
def mock_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.paced_mock", "--port", str(port), "--ttft-ms", "5"]
    argv += ["--chunk-ms", "2", "--chunks", "4", "--whole-ms", "5"]
    with Children(tmp_path) as children:
        wait_listening(children.start("paced-mock", argv, cwd=ROOT), port, 10.0)
        yield f"http://127.0.0.1:{port}"


def events(body: str) -> list[str]:
    return [line.removeprefix("data: ") for line in body.split("\n\n") if line]


def test_it_streams_what_nginx_would_on_a_kept_alive_connection(mock_url: str) -> None:
    with httpx.Client(base_url=mock_url) as client:
        bodies = [client.post(llm_mock.STREAM_PATH, json={"stream": True}) for _ in range(2)]
    for response in bodies:
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["transfer-encoding"] == "chunked"
        got = events(response.text)
        assert got[-1] == "[DONE]" and len(got) == SHAPE.chunks + 3  # role, words, finish
        assert [json.loads(e)["choices"][0]["delta"] for e in got[1:3]] == [
            {"content": "word0 "},
            {"content": "word1 "},
        ]
    script = llm_mock.stream_directives(SHAPE)
    assert all(f"word{i} " in script for i in range(SHAPE.chunks))  # the same words as nginx's


def test_it_answers_whole_health_and_unknown_paths(mock_url: str) -> None:
    with httpx.Client(base_url=mock_url) as client:
        whole = client.post(llm_mock.WHOLE_PATH, json={})
        assert whole.json()["object"] == "chat.completion"
        assert client.get("/healthz").text == "ok"
        assert client.post("/nowhere", json={}).status_code == 404


class Clock:
    """A loop stand-in that records when each chunk is asked for, and runs late on purpose."""

    def __init__(self) -> None:
        self.now, self.asked = 100.0, list[float]()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: object) -> None:
        self.asked.append(when)
        self.now = when + 0.05  # every chunk runs 50 ms late


async def a_request() -> paced_mock.Exchange:
    return paced_mock.Exchange(paced_mock.Answers(llm_mock.Shape(chunk_ms=200, chunks=3)))


def test_a_late_chunk_does_not_push_the_next_one_back() -> None:
    exchange, clock = asyncio.run(a_request()), Clock()
    exchange._loop = clock  # type: ignore[assignment]
    exchange._url = llm_mock.STREAM_PATH.encode()
    exchange.on_message_complete()
    for _ in range(2):
        exchange._chunk()
    assert clock.asked == pytest.approx([100.3, 100.5, 100.7])
