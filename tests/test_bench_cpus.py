"""Where the held ladder puts its processes (bench/cpus.py), and the held table's split of the
machine's CPUs between them. Real processes; only placements and sums are asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench import cpus, held_report
from tests.test_bench_peers import HELD_SHAPE, held_step

TWO_CPUS = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")

# A child that starts a thread, says so, and waits on stdin.
THREADED = (
    "import sys, threading\n"
    "threading.Thread(target=sys.stdin.read, daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


def allowed(pid: int) -> dict[int, set[int]]:
    """Each thread of `pid`: the CPUs it may run on."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return {int(t.name): os.sched_getaffinity(int(t.name)) for t in tasks}


@TWO_CPUS
def test_the_gateway_gets_a_cpu_the_tools_do_not_use() -> None:
    placement = cpus.Placement.split()
    assert placement is not None
    assert len(placement.gateway) == 1 and not placement.gateway & placement.tools
    assert placement.gateway | placement.tools == os.sched_getaffinity(0)
    assert "the gateway on CPU" in placement.describe()


@TWO_CPUS
def test_what_starts_meanwhile_runs_on_the_tools_cpus_and_the_gateway_is_moved_whole() -> None:
    placement = cpus.Placement.split()
    assert placement is not None
    before = os.sched_getaffinity(0)
    with cpus.tools_on(placement):
        child = subprocess.Popen(
            [sys.executable, "-c", THREADED], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
    with child:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        threads = allowed(child.pid)
        assert len(threads) == 2
        assert all(cpu_set == placement.tools for cpu_set in threads.values())
        cpus.pin(child.pid, placement.gateway)
        assert all(cpu_set == placement.gateway for cpu_set in allowed(child.pid).values())
        child.kill()
    assert os.sched_getaffinity(0) == before


def test_no_placement_changes_nothing() -> None:
    before = os.sched_getaffinity(0)
    with cpus.tools_on(None):
        assert os.sched_getaffinity(0) == before


def test_the_machine_counts_softirq_within_its_busy_time() -> None:
    busy, softirq = cpus.machine_seconds()
    assert 0 <= softirq <= busy
    later_busy, later_softirq = cpus.machine_seconds()
    assert later_busy >= busy and later_softirq >= softirq


def test_the_held_table_splits_the_machine_between_gateway_mock_generator_and_the_rest() -> None:
    # 60 s of generator wall at 10 % of a core; 50 s of machine time over 50 s of wall.
    loaded = replace(
        held_step("floorgate", 2000, server_cpu_s=15.0, mock_cpu_s=5.0),
        generator_cpu_pct=10.0, machine_cpu_s=50.0, softirq_cpu_s=4.0, cpu_wall_s=50.0,
    )  # fmt: skip
    assert held_report.cores(loaded) == "0.30 / 0.10 / 0.12 / 0.48 (0.08)"
    row = held_report.level_rows([held_step("direct", 2000), loaded], HELD_SHAPE)[0]
    assert row[held_report.CORES] == "0.30 / 0.10 / 0.12 / 0.48 (0.08)"
    assert held_report.cores(held_step("floorgate", 2000)) == "—"  # a step saved before
