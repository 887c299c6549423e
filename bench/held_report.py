"""The held-streams tables (bench/held.py): each level's figures beside the mock's in the same
rung, and the targets judged at 2,000 streams in flight, each naming the shape it judges."""

from __future__ import annotations

from collections.abc import Sequence

from bench.held import level_of
from bench.llm_mock import Shape
from bench.peer_figures import DIRECT, Step, ratio
from bench.report import Goal

HELD = "held"
TARGET_LEVEL = 2000  # streams in flight the targets are judged at
FLOORGATE = "floorgate"
Rung = tuple[Step, list[Step]]  # the mock's step, then each gateway's at the same level


def rungs(steps: Sequence[Step]) -> list[Rung]:
    """The steps by rung, in the order run: each rung opens with the mock's."""
    out: list[Rung] = []
    for step in steps:
        if step.target == DIRECT:
            out.append((step, []))
        elif out:
            out[-1][1].append(step)
    return out


def bases(steps: Sequence[Step]) -> list[Step | None]:
    """For each step, the mock's in its rung (the mock's own: None)."""
    out: list[Step | None] = []
    base = None
    for step in steps:
        base = step if step.target == DIRECT else base
        out.append(None if step.target == DIRECT else base)
    return out


def title(shape: Shape) -> str:
    return f"held streams ({shape.chunk_ms} ms apart)"


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def level_rows(steps: Sequence[Step], shape: Shape) -> list[dict[str, object]]:
    """Every gateway step's figures, against the mock's in its rung."""
    rows = []
    for base, loaded in rungs(steps):
        for step in loaded:
            rows.append({
                "level": level_of(step.rate, shape.stream_s),
                "target": step.target,
                "success %": 100 * step.success,
                "in flight": step.in_flight,
                "mock in flight": base.in_flight,
                "overhead p99 ms": step.overhead_p99_ms(base),
                "goodput / direct": ratio(step.goodput, base.goodput),
                "CPU per relayed chunk µs": step.cpu_us_per_chunk(shape.chunks),
                "RSS per request in flight KiB": step.rss_kib_per_in_flight(),
                "event-loop lag p99 ms": step.loop_lag_ms(),
                "lag p99 less CPU wait ms": step.loop_lag_own_p99_ms,
                "probe p99 ms": step.probe_p99_ms,
                CORES: cores(step),
            })  # fmt: skip
    return rows


CORES = "cores: gateway / mock / load gen / rest (softirq)"


def cores(step: Step) -> str:
    """Who held the CPUs over the step, in cores: the gateway, the mock, the load generator,
    and the rest of the machine (the kernel's softirq, the bench, anything else running)."""
    wall = step.cpu_wall_s
    if not wall:
        return "—"
    generator = step.generator_cpu_pct / 100 * step.duration_s
    rest = step.machine_cpu_s - step.server_cpu_s - step.mock_cpu_s - generator
    shares = (step.server_cpu_s, step.mock_cpu_s, generator, rest)
    return " / ".join(f"{s / wall:.2f}" for s in shares) + f" ({step.softirq_cpu_s / wall:.2f})"


NOTE = (
    "A level is a count of streams in flight, each {stream_s:g} s long; latency, in flight"
    " and the loop's lag are read over the steady part of each step (from the first stream's"
    " end to the last arrival), RSS against the process's before the first level. The lag"
    " less CPU wait takes from each lag the time the loop's thread waited for a CPU that other"
    " processes held (the kernel's count): on a loaded machine, what the gateway itself made."
    " The cores are each process's CPU over the step's wall time; the rest is the machine's"
    " busy time less theirs.\n"
)


def cell(value: object) -> str:
    if isinstance(value, float):
        return fmt(value, 3 if abs(value) < 10 else 1)
    return f"{value:,}" if isinstance(value, int) else str(value)


def at_target(steps: Sequence[Step], shape: Shape, name: str = FLOORGATE) -> Rung | None:
    """The first rung at TARGET_LEVEL or the lowest level above it, with `name`'s step alone."""
    found = [
        (base, [s for s in loaded if s.target == name])
        for base, loaded in rungs(steps)
        if level_of(base.rate, shape.stream_s) >= TARGET_LEVEL
    ]
    found = [rung for rung in found if rung[1]]
    return min(found, key=lambda r: r[0].rate) if found else None


def targets(steps: Sequence[Step], shape: Shape) -> list[Goal]:
    rung = at_target(steps, shape)
    label = f"{title(shape)}, {TARGET_LEVEL:,} in flight:"
    figures: list[float | None] = [None] * 5
    if rung is not None:
        base, ours = rung[0], rung[1][0]
        figures = [
            100 * ours.success,
            ours.overhead_p99_ms(base),
            ratio(ours.goodput, base.goodput),
            ours.rss_kib_per_in_flight(),
            ours.loop_lag_ms(),
        ]
    success, overhead, goodput, rss, lag = figures
    return [
        Goal(f"{label} success", success, 100, True, " %"),
        Goal(f"{label} overhead p99 vs the mock's", overhead, 5, False, " ms"),
        Goal(f"{label} goodput / direct", goodput, 0.9, True, "x"),
        Goal(f"{label} RSS per request in flight", rss, 50, False, " KiB"),
        Goal(f"{label} event-loop lag p99", lag, 5, False, " ms"),
    ]
