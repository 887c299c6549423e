"""Limits while Redis is away: a private redis-server is killed under load and restarted, or
frozen (SIGSTOP) and thawed. Each limit follows its declared mode (fail_open: served, counted
locally; fail_closed: a 503 that says why), and no request hangs."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.limits_gateway import chat, gateway, sdk
from tests.redis_server import RedisServer, unique_prefix
from tests.state_gateway import sample, wait_until

WORKFLOWS = ("open", "closed")


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
        try:
            chat(client)
            return "200"
        except openai.APIStatusError as err:
            self.retry_after.add(err.response.headers.get("retry-after", ""))
            return f"{err.status_code} {err.body['code'] if isinstance(err.body, dict) else ''}"
        except openai.APIConnectionError as err:  # APITimeoutError among them
            return type(err).__name__

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
