"""The census bench/held_objects.py reads from a gateway: bench/census/sitecustomize.py in a real
child process, and what the bench makes of two of its censuses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.held_objects import CENSUS_DIR, Census

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
