"""Which CPUs the held ladder's processes run on, and what the machine's CPUs did over a step.

On a real deployment the upstream and the clients are other machines; here the mock (nginx) and
the load generator share the gateway's two cores, and each of their writes on loopback wakes the
gateway with a hint that the writer will sleep soon, so the kernel often queues the gateway
behind the writer on the writer's CPU. In held runs with the machine 70 % idle the gateway's
loop thread still waited for a CPU 0.13 s a second, and its lag p99 was 6.8 ms against 1.3 ms
less that wait (docs/bench.md). So the held ladder gives the gateway under test a CPU of its
own (`Placement.split`): the gateway on the first CPU, the mock, the load generator and the
bench itself on the others, for the direct run too. Nothing is subtracted from any figure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.procs import CLOCK_TICKS, process_tree

PROC_STAT = Path("/proc/stat")
# The fields of /proc/stat's cpu line that are work: user nice system idle iowait irq softirq
# steal; steal is a busy CPU that this VM did not get.
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
SOFTIRQ_FIELD = 6


@dataclass(frozen=True)
class Placement:
    gateway: frozenset[int]  # the gateway under test
    tools: frozenset[int]  # the mock, the load generator, the bench

    @classmethod
    def split(cls) -> Placement | None:
        """The first CPU this process may use for the gateway, the others for the rest; None
        with a single CPU."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        return cls(frozenset(cpus[:1]), frozenset(cpus[1:]))

    def describe(self) -> str:
        return (
            f"the gateway on CPU {_names(self.gateway)},"
            f" the mock and the load generator on {_names(self.tools)}"
        )


def _names(cpus: frozenset[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


@contextmanager
def tools_on(placement: Placement | None) -> Iterator[None]:
    """Run this thread, and what it starts meanwhile (the mock, the gateways, the load
    workers, the probe's threads), on the tools' CPUs; as before afterwards."""
    if placement is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, placement.tools)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Every thread of `pid` and of its descendants onto `cpus` (threads they start later
    inherit it)."""
    for member in process_tree(pid):
        for task in Path(f"/proc/{member}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), cpus)
            except (ProcessLookupError, ValueError):
                continue  # a thread that ended meanwhile


def machine_seconds() -> tuple[float, float]:
    """CPU-seconds the machine's CPUs have been busy since boot, and of them softirq (on
    loopback most of the receiving side of TCP)."""
    fields = [int(v) for v in PROC_STAT.read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[i] for i in BUSY_FIELDS if i < len(fields))
    return busy / CLOCK_TICKS, fields[SOFTIRQ_FIELD] / CLOCK_TICKS
