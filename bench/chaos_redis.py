"""Chaos scenario for the state store: a private redis-server (never the shared one) killed
and restarted under load (bench/chaos.py lists every scenario)."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import openai

from bench.chaos_rig import Rig
from gateway.app import Floorgate
from tests.redis_server import RedisServer, keys, unique_prefix
from tests.state_gateway import Caller, gates_policy, sample, served, state_settings, wait_until

Figures = dict[str, str]
WORKERS = 4


class Load:
    """Threads sending chat completions until stopped; answers (id, when) and errors kept."""

    def __init__(self, url: str) -> None:
        self.answered: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(url,)) for _ in range(WORKERS)]

    def _run(self, url: str) -> None:
        with Caller(url) as caller:
            while not self._stop.is_set():
                try:
                    self.answered.append((caller.chat()[0], time.perf_counter()))
                except openai.OpenAIError as exc:
                    self.errors.append(repr(exc)[:120])

    def grows_by(self, n: int) -> None:
        target = len(self.answered) + n
        wait_until(lambda: len(self.answered) >= target, 20, f"{n} more answers")

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def metric(app: Floorgate, name: str) -> float:
    return sample(app, name) or 0.0


def redis_killed_and_restarted(rig: Rig) -> Figures:
    """No request fails while Redis is down; what was answered meanwhile is buffered, then
    written once it is back (a memory-only Redis loses what it held when killed)."""
    prefix = unique_prefix()
    with tempfile.TemporaryDirectory() as directory, RedisServer() as server:
        policy = gates_policy(Path(directory), rig.upstream)
        settings = state_settings(policy, server.url, redis_key_prefix=prefix)
        with served(settings) as (url, app), Load(url) as load:
            load.grows_by(40)
            server.kill()
            time.sleep(0.3)  # a reply already on its way has arrived: no write succeeds now
            settled = time.perf_counter()
            load.grows_by(40)
            failures = metric(app, "floorgate_ledger_write_failures_total")
            server.start()
            restarted = time.perf_counter()
            wait_until(lambda: metric(app, "floorgate_ledger_buffered") == 0, 20, "replayed")
            recover_s = time.perf_counter() - restarted
            load.grows_by(20)
        total, dropped = len(load.answered), metric(app, "floorgate_ledger_dropped_total")
        wait_until(lambda: metric(app, "floorgate_ledger_written_total") >= total, 20, "written")
        ids = {k.removeprefix(f"{prefix}req:") for k in keys(server.url, prefix)}
    during = {rid for rid, at in load.answered if settled < at < restarted}
    lost = len(during - ids)
    if load.errors:
        raise AssertionError(f"{len(load.errors)} requests failed: {load.errors[0]}")
    if not (failures > 0 and during and lost == 0 and dropped == 0):
        raise AssertionError(
            f"failures {failures}, {lost} of {len(during)} lost, {dropped} dropped"
        )
    return {"requests": str(total), "errors": "0", "answered_while_down": str(len(during)),
            "records_lost": "0", "time_to_recover_s": f"{recover_s:.2f}"}  # fmt: skip
