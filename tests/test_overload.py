"""A real `floorgate serve` refusing new model requests while overloaded (gateway/overload.py):
its process frozen (SIGSTOP) longer than FLOORGATE_OVERLOAD_FOR_S is, on resume, a loop that
has been behind that long, as a saturated one is. Each test is ordered so that it cannot pass
vacuously: served before, refused while overloaded, served again after; a single stall as long
as the slowest one-off callbacks (240 ms) refuses nothing. The rule's arithmetic is
tests/test_overload_rule.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import KEYS, UPSTREAM_KEY, client_for, count, write_policy
from tests.fake_upstream import FakeUpstream
from tests.policy_gateway import wait_for
from tests.servers import free_port, serve_in_thread

ROOT = Path(__file__).parent.parent
USER = [{"role": "user", "content": "hi"}]
FREEZE_S = 1.6  # longer than the default FLOORGATE_OVERLOAD_FOR_S (1 s)
STALL_S = 0.24  # litellm's import, the longest one-off callback measured (docs/bench.md)


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]

    def client(self) -> openai.OpenAI:
        """A client of its own: a new connection, read only once the loop is running again."""
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="key-any", max_retries=0)

    def sample(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        raise AssertionError(f"{name}{labels} is not exported")

    def frozen(self, seconds: float, *calls: Callable[[], object]) -> list[object]:
        """Each of `calls` sent, on a connection of its own, while the process is stopped:
        their results once it runs again. A new connection is read only after the loop-lag
        watch has run (libuv runs timers, then the ready callbacks, then reads), so each sees
        the verdict on the freeze."""
        results: dict[int, object] = {}
        self.process.send_signal(signal.SIGSTOP)
        try:
            callers = [threading.Thread(target=_into, args=(results, i, call))
                       for i, call in enumerate(calls)]  # fmt: skip
            for caller in callers:
                caller.start()
            time.sleep(seconds)
        finally:
            self.process.send_signal(signal.SIGCONT)
        for caller in callers:
            caller.join(30)
        return [results[i] for i in range(len(calls))]


def _into(results: dict[int, object], index: int, call: Callable[[], object]) -> None:
    try:
        results[index] = call()
    except openai.APIStatusError as exc:
        results[index] = exc


@pytest.fixture(scope="module")
def served(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    env = {"PATH": os.environ["PATH"], "FLOORGATE_PORT": str(port),
           "FLOORGATE_POLICIES": str(write_policy(tmp_path_factory.mktemp("overload"), upstream)),
           "FLOORGATE_API_KEYS": KEYS, "FAKE_UPSTREAM_KEY": UPSTREAM_KEY,
           "FLOORGATE_LOG_LEVEL": "warning", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # fmt: skip
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


def chat(served: Served, route: str = "capability-first") -> str:
    with served.client() as client:
        reply = client.chat.completions.create(model=f"route/{route}", messages=USER)  # type: ignore[arg-type]
    return reply.choices[0].message.content or ""


def embed(served: Served) -> int:
    with served.client() as client:
        return len(client.embeddings.create(model="embed", input="hi").data)


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


def test_frozen_past_the_period_it_refuses_new_requests_then_serves_again(
    served: Served, upstream: FakeUpstream
) -> None:
    assert served_again(served) == "fake answer"
    assert embed(served) == 1
    refused_before = served.sample("floorgate_overload_refusals_total", reason="loop_lag")
    with served.client() as streamer:
        stream = streamer.chat.completions.create(
            model="route/slow-stream",
            stream=True,
            messages=USER,  # type: ignore[arg-type]
        )
        chunks = iter(stream)
        said = "".join(c.delta.content or "" for c in next(chunks).choices)
        seen = upstream.seen

        outcomes = served.frozen(
            FREEZE_S,
            lambda: chat(served),
            lambda: embed(served),
            lambda: served.sample("floorgate_overloaded"),
            lambda: httpx.get(f"{served.url}/healthz", timeout=30).status_code,
        )
        said += "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)

    refusal, embedding, overloaded, health = outcomes
    for outcome in (refusal, embedding):
        assert isinstance(outcome, openai.InternalServerError), outcome
        assert outcome.status_code == 503
        error = outcome.response.json()["error"]
        assert (error["type"], error["code"]) == ("service_unavailable", "overloaded")
        assert "Retry after 1 s" in error["message"]
        assert outcome.response.headers["retry-after"] == "1"
        assert outcome.response.headers["x-floorgate-request-id"].startswith("fg-")
    assert (overloaded, health) == (1, 200), "ops endpoints answer, and say it"
    assert said == "fake answer", "the stream in flight was served to its end"
    assert upstream.seen == seen, "nothing refused reached the upstream"
    refused = served.sample("floorgate_overload_refusals_total", reason="loop_lag")
    assert refused - refused_before >= 2

    assert served_again(served) == "fake answer"
    assert upstream.seen > seen
    assert served.sample("floorgate_overloaded") == 0


def test_one_stall_as_long_as_the_slowest_callback_refuses_nothing(served: Served) -> None:
    assert served_again(served) == "fake answer"
    refused = served.sample("floorgate_overload_refusals_total", reason="loop_lag")
    assert served.frozen(STALL_S, lambda: chat(served)) == ["fake answer"]
    assert chat(served) == "fake answer"
    assert served.sample("floorgate_overload_refusals_total", reason="loop_lag") == refused
    assert served.sample("floorgate_overloaded") == 0


def test_beyond_max_in_flight_a_new_request_is_refused_until_one_ends(policy_path: Path) -> None:
    os.environ["FAKE_UPSTREAM_KEY"] = UPSTREAM_KEY
    settings = Settings(policies=policy_path, api_keys=KEYS, max_in_flight=1, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, CollectorRegistry())
    registry = app.runtime.metrics.registry
    with serve_in_thread(app) as url, client_for(url) as client:
        stream = client.chat.completions.create(
            model="route/slow-stream",
            stream=True,
            messages=USER,  # type: ignore[arg-type]
        )
        chunks = iter(stream)
        next(chunks)  # one request in flight: the cap
        with pytest.raises(openai.InternalServerError) as refused:
            client.embeddings.create(model="embed", input="hi")
        assert refused.value.status_code == 503
        assert refused.value.response.json()["error"]["code"] == "overloaded"
        assert "FLOORGATE_MAX_IN_FLIGHT=1" in refused.value.response.json()["error"]["message"]
        with client_for(url, key="wrong") as stranger, pytest.raises(openai.AuthenticationError):
            stranger.embeddings.create(model="embed", input="hi")  # its key first: a 401
        assert count(registry, "floorgate_overload_refusals_total", reason="in_flight") == 1
        assert count(registry, "floorgate_overloaded") == 0, "the loop is on time"
        list(chunks)
        stream.close()
        wait_for(lambda: app.runtime.overload.in_flight == 0 or None)
        assert len(client.embeddings.create(model="embed", input="hi").data) == 1
