"""A real `floorgate serve` for the overload tests (tests/test_overload.py,
tests/test_overload_queue.py), with the means to freeze it (SIGSTOP) while clients call it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import KEYS, UPSTREAM_KEY, write_policy
from tests.fake_upstream import FakeUpstream
from tests.policy_gateway import wait_for
from tests.servers import free_port

ROOT = Path(__file__).parent.parent
USER = [{"role": "user", "content": "hi"}]


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]

    def client(self, key: str = "key-any") -> openai.OpenAI:
        """A client of its own: a new connection, read only once the loop is running again."""
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def sample(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        raise AssertionError(f"{name}{labels} is not exported")

    def frozen(
        self, seconds: float, *calls: Callable[[], object], apart_s: float = 0.0
    ) -> list[object]:
        """Each of `calls` sent, on a connection of its own, while the process is stopped
        (the i-th `apart_s` * i after the stop): their results once it runs again."""
        results: dict[int, object] = {}
        self.process.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            callers = [
                threading.Thread(target=_into, args=(results, i, call, stopped + i * apart_s))
                for i, call in enumerate(calls)
            ]
            for caller in callers:
                caller.start()
            time.sleep(max(0.0, stopped + seconds - time.monotonic()))
        finally:
            self.process.send_signal(signal.SIGCONT)
        for caller in callers:
            caller.join(30)
        return [results[i] for i in range(len(calls))]


def _into(results: dict[int, object], index: int, call: Callable[[], object], at: float) -> None:
    time.sleep(max(0.0, at - time.monotonic()))
    try:
        results[index] = call()
    except openai.APIStatusError as exc:
        results[index] = exc


@contextmanager
def serve(upstream: FakeUpstream, workdir: Path, **settings: str) -> Iterator[Served]:
    """`floorgate serve` at its default overload settings but for `settings` (FLOORGATE_*)."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "FLOORGATE_PORT": str(port),
           "FLOORGATE_POLICIES": str(write_policy(workdir, upstream)),
           "FLOORGATE_API_KEYS": KEYS, "FAKE_UPSTREAM_KEY": UPSTREAM_KEY,
           "FLOORGATE_LOG_LEVEL": "warning", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           **settings}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _live(url), timeout_s=120)  # 42 s seen at load 10: litellm's import
        yield Served(url, process)
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(10)


def _live(url: str) -> bool | None:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200 or None
    except httpx.TransportError:
        return None


def chat(served: Served, route: str = "capability-first", key: str = "key-any") -> str:
    with served.client(key) as client:
        reply = client.chat.completions.create(model=f"route/{route}", messages=USER)  # type: ignore[arg-type]
    return reply.choices[0].message.content or ""


def embed(served: Served) -> int:
    with served.client() as client:
        return len(client.embeddings.create(model="embed", input="hi").data)


def slow_stream(client: openai.OpenAI) -> tuple[Iterator[Any], str]:
    """A stream in flight: its chunks still to come, and what its first one said."""
    stream = client.chat.completions.create(
        model="route/slow-stream",
        stream=True,
        messages=USER,  # type: ignore[arg-type]
    )
    chunks = iter(stream)
    return chunks, "".join(c.delta.content or "" for c in next(chunks).choices)


def said(chunks: Iterator[Any]) -> str:
    return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)


def served_again(served: Served) -> str:
    """Polls until a request is served: the gateway has been on time for the period again."""

    def attempt() -> str | None:
        try:
            return chat(served)
        except openai.APIStatusError as exc:
            assert exc.status_code == 503, exc
            time.sleep(0.1)
            return None

    return wait_for(attempt, timeout_s=20)


def refusal_of(outcome: object) -> dict[str, str]:
    """The error of a 503 `overloaded` with Retry-After, as every refusal must be."""
    assert isinstance(outcome, openai.InternalServerError), outcome
    assert outcome.status_code == 503
    assert outcome.response.headers["retry-after"] == "1"
    assert outcome.response.headers["x-floorgate-request-id"].startswith("fg-")
    error: dict[str, str] = outcome.response.json()["error"]
    assert (error["type"], error["code"]) == ("service_unavailable", "overloaded")
    assert "Retry after 1 s" in error["message"]
    return error
