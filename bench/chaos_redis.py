"""Chaos scenarios for the state store: a private redis-server (never the shared one) killed
and restarted, or frozen (SIGSTOP) and thawed, under load (bench/chaos.py lists every
scenario)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.chaos_rig import Rig, p99
from gateway.app import Floorgate
from tests.limits_gateway import limits_policy_file
from tests.redis_server import RedisServer, keys, unique_prefix
from tests.state_gateway import Load, gates_policy, sample, served, state_settings, wait_until

Figures = dict[str, str]
FREEZE_S = 3.0


def metric(app: Floorgate, name: str) -> float:
    return sample(app, name) or 0.0


def redis_killed_and_restarted(rig: Rig) -> Figures:
    """No request fails while Redis is down; what was answered meanwhile is buffered, then
    written once it is back (a memory-only Redis loses what it held when killed)."""
    prefix = unique_prefix()
    with tempfile.TemporaryDirectory() as directory, RedisServer() as server:
        policy = gates_policy(Path(directory), rig.upstream)
        settings = state_settings(policy, server.url, redis_key_prefix=prefix)
        with served(settings) as (url, app), Load(url, workers=4) as load:
            load.grows_by(40)
            server.kill()
            time.sleep(0.3)  # a reply already on its way has arrived: no write succeeds now
            settled = time.monotonic()
            load.grows_by(40)
            failures = metric(app, "floorgate_ledger_write_failures_total")
            server.start()
            restarted = time.monotonic()
            wait_until(lambda: metric(app, "floorgate_ledger_buffered") == 0, 20, "replayed")
            recover_s = time.monotonic() - restarted
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


def redis_frozen_and_thawed(rig: Rig) -> Figures:
    """Redis stopped (SIGSTOP: connections open, nothing answers) for FREEZE_S while clients
    send requests of a workflow with a fail_open limit: every request is answered (its limit
    counted locally), slower by the store's timeouts at most; once thawed, the buffered records
    are written and the limits are counted in Redis again; no record is lost."""
    prefix = unique_prefix()
    with tempfile.TemporaryDirectory() as directory, RedisServer() as server:
        policy = limits_policy_file(Path(directory), rig.upstream)
        settings = state_settings(policy, server.url, redis_key_prefix=prefix)
        with served(settings) as (url, app), Load(url, workers=4, model="workflow/open") as load:
            load.grows_by(20)  # warm: the first requests pay for connections
            warm = len(load.latencies)
            load.grows_by(60)
            baseline = [s for _, s in load.latencies[warm:]]
            server.freeze()
            frozen = time.monotonic()
            time.sleep(FREEZE_S)
            server.thaw()
            thawed = time.monotonic()
            wait_until(lambda: _recovered(app), 20, "ledger replayed, limits shared again")
            recover_s = time.monotonic() - thawed
            load.grows_by(20)
        total, dropped = len(load.answered), metric(app, "floorgate_ledger_dropped_total")
        wait_until(lambda: metric(app, "floorgate_ledger_written_total") >= total, 20, "written")
        ids = {k.removeprefix(f"{prefix}req:") for k in keys(server.url, prefix)}
    during = [s for at, s in load.latencies if frozen < at < thawed + 0.5]
    lost = len({rid for rid, _ in load.answered} - ids)
    errors = len(load.errors) / (total + len(load.errors))
    if errors or not during or lost or dropped:
        why = load.errors[0] if load.errors else f"{len(during)} answered while frozen"
        raise AssertionError(f"error rate {errors:.1%}, {lost} records lost, {dropped} dropped, "
                             f"{why}")  # fmt: skip
    return {"requests": str(total), "frozen_s": f"{FREEZE_S:.0f}", "error_rate": "0%",
            "answered_while_frozen": str(len(during)),
            "p99_baseline_ms": f"{p99(baseline) * 1000:.0f}",
            "p99_frozen_ratio": f"{p99(during) / p99(baseline):.1f}",
            "time_to_recover_s": f"{recover_s:.2f}", "records_lost": "0"}  # fmt: skip


def _recovered(app: Floorgate) -> bool:
    return (
        metric(app, "floorgate_ledger_buffered") == 0 and metric(app, "floorgate_limits_local") == 0
    )
