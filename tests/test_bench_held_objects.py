"""The census bench/held_objects.py reads from a gateway: bench/census/sitecustomize.py in a real
child process, and what the bench makes of two of its censuses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.held_objects import CENSUS_DIR, Census
from bench.late_ticks import Pause, tick_cause

# Two censuses (an idle one, renamed aside, then one holding 1,000 lists), a young collection
# timed between them; no automatic collection, which would move the lists out of the young
# generation before the timed one.
CHILD = """
import gc, os, signal, sys, time
path = os.environ["BENCH_CENSUS"]
def census(aside=None):
    os.kill(os.getpid(), signal.SIGUSR1)
    while not os.path.exists(path):
        time.sleep(0.01)
    if aside:
        os.replace(path, aside)
gc.disable()
census(path + ".idle")
held = [[] for _ in range(1000)]
gc.collect(0)
census()
"""


def test_the_census_counts_what_a_held_thing_adds_and_times_the_collections(
    tmp_path: Path,
) -> None:
    path = tmp_path / "census.json"
    env = {**os.environ, "PYTHONPATH": str(CENSUS_DIR), "BENCH_CENSUS": str(path)}
    started = time.time()
    subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, timeout=30)
    idle = Census.parse(Path(f"{path}.idle").read_text())
    held = Census.parse(path.read_text())
    total, types = held.per_stream(idle, 1000)
    assert 1.0 <= types["list"] < 1.01  # each list, and the one holding them
    assert 0.95 < total < 1.05  # give or take what the process did besides
    assert next(iter(types)) == "list"  # the most first
    (young,) = held.during(started, time.time(), 0)
    assert young.walked >= 1001 and young.ms >= 0
    assert held.during(started, time.time(), 1) == []
    assert held.during(time.time() + 1, time.time() + 2, 0) == []


# The gateway's lag timer, wrapped as it is imported: a few of its ticks, one stalled.
TICKING = """
import asyncio, os, signal, time
from prometheus_client import CollectorRegistry, Histogram
from gateway import loop_lag
path = os.environ["BENCH_CENSUS"]
async def main():
    lag = Histogram("lag", "lag", registry=CollectorRegistry())
    watcher = asyncio.create_task(loop_lag.watch(lag, 0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.05)
    await asyncio.sleep(0.05)
    watcher.cancel()
asyncio.run(main())
os.kill(os.getpid(), signal.SIGUSR1)
while not os.path.exists(path):
    time.sleep(0.01)
"""


def test_the_census_keeps_each_tick_of_the_lag_timer_and_names_what_made_it_late(
    tmp_path: Path,
) -> None:
    path = tmp_path / "census.json"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{CENSUS_DIR}", "BENCH_CENSUS": str(path)}
    subprocess.run([sys.executable, "-c", TICKING], env=env, check=True, timeout=30)
    census = Census.parse(path.read_text())
    assert len(census.ticks) >= 5
    stalled = max(census.ticks, key=lambda t: t.late_ms)
    assert stalled.late_ms >= 20 and stalled.cpu_ms >= 0
    # Nothing else stopped the loop then, and its thread slept rather than wait for a CPU.
    assert tick_cause(stalled, census.pauses()) in ("loop busy", "CPU wait")
    collection = Pause(stalled.at - 0.03, 40.0, "young collection")
    assert tick_cause(stalled, [collection]) == "young collection"
    short = Pause(stalled.at - 0.03, 1.0, "young collection")  # too short to have made it late
    assert tick_cause(stalled, [short]) != "young collection"
