"""Limits while Redis is away: a private redis-server is killed under load and restarted, or
frozen (SIGSTOP) and thawed. Each limit follows its declared mode (fail_open: served, counted
locally; fail_closed: a 503 that says why), and no request hangs."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest

from gateway.app import Floorgate
from gateway.limits import RETRY_SHARED_S
from gateway.state.counters import MINUTE
from tests.limits_gateway import chat, gateway, sdk, take_turns, wait_for_room_in
from tests.redis_server import RedisServer, unique_prefix
from tests.state_gateway import sample, wait_until

WORKFLOWS = ("open", "closed")


def outcome(client: openai.OpenAI, retry_after: set[str]) -> str:
    """One completion's outcome: 200, the refusal's status and code, or the client's error
    (each refusal's Retry-After is added to `retry_after`)."""
    try:
        chat(client)
        return "200"
    except openai.APIStatusError as err:
        retry_after.add(err.response.headers.get("retry-after", ""))
        return f"{err.status_code} {err.body['code'] if isinstance(err.body, dict) else ''}"
    except openai.APIConnectionError as err:  # APITimeoutError among them
        return type(err).__name__


class Load:
    """Threads sending completions for each workflow; each outcome kept under the phase it
    was sent in."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.phase = "before"
        self.outcomes: Counter[tuple[str, str, str]] = Counter()  # (phase, workflow, outcome)
        self.retry_after: set[str] = set()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(w,)) for w in WORKFLOWS for _ in range(2)
        ]

    def _run(self, workflow: str) -> None:
        # A hung request would end as a client timeout, which this test counts as a failure.
        with sdk(self.url, workflow, timeout=5) as client:
            while not self._stop.is_set():
                phase = self.phase
                self.outcomes[(phase, workflow, self._one(client))] += 1

    def _one(self, client: openai.OpenAI) -> str:
        return outcome(client, self.retry_after)

    def count(self, phase: str, workflow: str, outcome: str = "200") -> int:
        return self.outcomes[(phase, workflow, outcome)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


# How Redis goes away and comes back: killed (connections refused) and restarted, or frozen
# (SIGSTOP: connections accepted, nothing answers) and thawed.
OUTAGES: dict[str, tuple[Callable[[RedisServer], None], Callable[[RedisServer], None]]] = {
    "killed": (RedisServer.kill, RedisServer.start),
    "frozen": (RedisServer.freeze, RedisServer.thaw),
}


@pytest.mark.parametrize("outage", OUTAGES)
def test_redis_away_under_load_follows_each_limits_declared_mode(
    limits_policy: Path, outage: str
) -> None:
    away, back = OUTAGES[outage]
    with (
        RedisServer() as server,
        gateway(limits_policy, server.url, redis_key_prefix=unique_prefix()) as (url, app),
        Load(url) as load,
    ):
        wait_until(lambda: load.count("before", "closed") >= 5, 10, "answers before the outage")
        away(server)
        load.phase = "down"
        wait_until(lambda: load.count("down", "closed", "503 limits_unavailable") >= 5, 10)
        wait_until(lambda: load.count("down", "open") >= 5, 10, "fail_open keeps serving")
        assert sample(app, "floorgate_limits_local") == 1
        back(server)
        load.phase = "after"
        wait_until(lambda: load.count("after", "closed") >= 5, 10, "fail_closed serves again")
        assert sample(app, "floorgate_limits_local") == 0
    outcomes = {(workflow, outcome) for _, workflow, outcome in load.outcomes}
    assert outcomes == {("open", "200"), ("closed", "200"), ("closed", "503 limits_unavailable")}
    assert load.retry_after == {"1"}
    assert (sample(app, "floorgate_limit_store_errors_total") or 0) >= 1


# Long enough to tell a request that waited on the frozen store from one that did not; the
# Redis client's own timeout is longer still, so the limiter's is the one that ends a wait.
PROBE_TIMEOUT_S = 1.5


def burst(url: str, workflow: str, size: int = 8) -> list[tuple[str, float]]:
    """`size` completions sent together: each one's outcome and how long it took."""

    def one(_: int) -> tuple[str, float]:
        with sdk(url, workflow, timeout=10) as client:
            started = time.monotonic()
            return outcome(client, set()), time.monotonic() - started

    with ThreadPoolExecutor(size) as pool:
        return list(pool.map(one, range(size)))


def store_errors(app: Floorgate) -> float:
    return sample(app, "floorgate_limit_store_errors_total") or 0.0


def probed_burst(url: str, app: Floorgate, workflow: str) -> tuple[list[tuple[str, float]], float]:
    """A burst, and how many tries of the store failed meanwhile (waiting for the probe's)."""
    before = store_errors(app)
    results = burst(url, workflow)
    wait_until(lambda: store_errors(app) > before, PROBE_TIMEOUT_S + 5, "a probe failed")
    return results, store_errors(app) - before


def test_while_redis_is_frozen_no_request_waits_on_it_and_one_probe_tries_it(
    limits_policy: Path,
) -> None:
    with RedisServer() as server, ExitStack() as stack:
        prefix = unique_prefix()
        limits = {"redis_key_prefix": prefix, "limits_timeout_s": PROBE_TIMEOUT_S,
                  "redis_timeout_s": 5.0}  # fmt: skip
        url, app = stack.enter_context(gateway(limits_policy, server.url, **limits))
        other_url, other = stack.enter_context(gateway(limits_policy, server.url, **limits))
        for workflow in WORKFLOWS:
            assert {o for o, _ in burst(url, workflow, 2)} == {"200"}  # connections made
        server.freeze()
        assert burst(url, "open", 1)[0][0] == "200"  # waits the timeout, then counts locally
        assert sample(app, "floorgate_limits_local") == 1
        for workflow, outcome in (("open", "200"), ("closed", "503 limits_unavailable")):
            time.sleep(RETRY_SHARED_S + 0.1)  # the next request may start a probe of the store
            results, probes = probed_burst(url, app, workflow)
            assert {o for o, _ in results} == {outcome}, results
            # None waited on the frozen store: each was answered from the local count, or
            # refused, at once, while one probe tried the store off the request path.
            assert not [s for _, s in results if s >= PROBE_TIMEOUT_S], results
            assert probes == 1
        server.thaw()
        with sdk(url, "open") as client:  # a probe succeeds: back to the shared store

            def shared_again() -> bool:
                chat(client)
                return sample(app, "floorgate_limits_local") == 0

            wait_until(shared_again, 10, "limits counted in Redis again")
        clients = [stack.enter_context(sdk(u, "shared")) for u in (url, other_url)]
        wait_for_room_in(MINUTE)  # the 30 turns count one minute's window: inside one minute
        shared = [take_turns(clients, turn) for turn in range(30)]
        assert sample(other, "floorgate_limits_local") == 0
    admitted = [replica for replica, status in shared if status == 200]
    # Both gateways counted in Redis: 10 a minute in all, not 10 each (one more may pass).
    assert 10 <= len(admitted) <= 11, shared
    assert set(admitted) == {0, 1}
