"""Objects a held stream leaves for the garbage collector, and the young collections' pauses.

    .venv/bin/python -m bench.held_objects [--streams 300] [--hold 8] [--chunks 100]
                                           [--chunk-ms 200] [--rounds 2] [--against DIR]
                                           [--nginx]

At 2,000 held streams the event loop's lag is the young collections' pauses, each proportional
to the tracked objects the streams started since the last one still hold (docs/bench.md). This
holds `--streams` streams in flight (the held ladder's shape and mock, bench/paced_mock.py, or
nginx's with `--nginx`: 100 chunks, 300 ms to the first, 200 ms apart; arrivals at the rate
that keeps that many in flight, for a stream's length and `--hold` s more) through a gateway
that runs bench/census/sitecustomize.py, and asks it for a census once after a warm-up (idle)
and once with the streams held. It prints the
tracked objects a held stream adds (the two censuses' difference over the streams in flight at
the second), the types that make them up, and the collections seen during the arrivals.
`--against DIR` runs another checkout's gateway/ (a worktree of the base commit) beside this
one, against the same mock, one after the other, first in turn (`--rounds`); both figures are
printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import cpus, llm_mock, openloop
from bench.late_ticks import Pause, Streams, Tick, streams_report, ticks_report
from bench.peer_targets import start_held_mock
from bench.procs import Child, Children
from bench.run import STREAM_MODEL, request_body
from bench.services import ROOT, floorgate_launch, start_timed, write_policy

CENSUS_DIR = Path(__file__).with_name("census")
CENSUS_TIMEOUT_S = 10.0
WARM_STREAMS = 10
TOP_TYPES = 10
GENERATIONS = ("young", "middle", "full")
# The backlog a census's pause leaves is the census's too: the ticks right after it are late.
CATCH_UP_MS = 300.0
SETTLE_S = 0.5  # the held ladder's window opens this long past the first stream's end


@dataclass(frozen=True)
class Collection:
    at: float  # wall-clock start
    generation: int
    ms: float
    found: int  # unreachable
    walked: int  # the tracked objects of the generations it collected


@dataclass(frozen=True)
class Census:
    """What bench/census/sitecustomize.py wrote."""

    at: float
    tracked: int
    types: dict[str, int]
    collections: list[Collection]
    ticks: list[Tick]  # the loop-lag timer's
    censuses: list[tuple[float, float]]  # the earlier censuses' pauses: start, end

    @classmethod
    def parse(cls, text: str) -> Census:
        raw = json.loads(text)
        return cls(
            raw["time"],
            raw["tracked"],
            raw["types"],
            [Collection(at, int(g), ms, int(f), int(w)) for at, g, ms, f, w in raw["collections"]],
            [Tick(*tick) for tick in raw.get("ticks", ())],
            [(start, end) for start, end in raw.get("censuses", ())],
        )

    def pauses(self) -> list[Pause]:
        """Its collections and earlier censuses, as what stopped the loop."""
        named = [
            Pause(c.at, c.ms, f"{GENERATIONS[c.generation]} collection") for c in self.collections
        ]
        return named + [
            Pause(start, (end - start) * 1e3 + CATCH_UP_MS, "census")
            for start, end in self.censuses
        ]

    def per_stream(self, idle: Census, streams: float) -> tuple[float, dict[str, float]]:
        """Tracked objects a stream adds, in all and by type (the most first)."""
        types = {
            name: (self.types.get(name, 0) - idle.types.get(name, 0)) / streams
            for name in self.types.keys() | idle.types.keys()
        }
        ranked = dict(sorted(types.items(), key=lambda item: -item[1]))
        return (self.tracked - idle.tracked) / streams, ranked

    def during(self, start: float, end: float, generation: int) -> list[Collection]:
        """The collections of `generation` that started within [start, end]."""
        return [c for c in self.collections if c.generation == generation and start <= c.at <= end]


class Gateway:
    def __init__(self, name: str, child: Child, url: str, census: Path) -> None:
        self.name, self.child, self.url, self.census_path = name, child, url, census
        self.pid = child.pid

    def census(self) -> Census:
        """Ask the gateway for a census (SIGUSR1) and read it."""
        self.census_path.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + CENSUS_TIMEOUT_S
        while not self.census_path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} wrote no census to {self.census_path}")
            time.sleep(0.05)
        return Census.parse(self.census_path.read_text())


def start(children: Children, workdir: Path, policy: Path, name: str, root: Path) -> Gateway:
    census = workdir / f"census-{name}.json"
    launch = floorgate_launch(
        policy, PYTHONPATH=f"{root}{os.pathsep}{CENSUS_DIR}", BENCH_CENSUS=str(census)
    )
    service = start_timed(children, f"floorgate-{name}", launch, "/readyz", 1, 30.0)
    return Gateway(name, service.child, service.base + "/v1/chat/completions", census)


def plan(gateway: Gateway, rate: float, duration_s: float) -> openloop.Plan:
    body = request_body(STREAM_MODEL, True).decode()
    return openloop.Plan(gateway.url, body, rate, duration_s, stream=True, timeout_s=60.0)


def warm_up(gateways: list[Gateway], workers: int) -> None:
    """A few streams through each gateway at once, so what their first use creates (imports,
    caches) is in the idle census, not counted against the held streams."""
    failed: list[str] = []

    def one(gateway: Gateway) -> None:
        out = openloop.run(plan(gateway, WARM_STREAMS, 1.0), workers)
        if out.ok != out.sent:
            failed.append(f"{gateway.name}: {out.ok}/{out.sent} ({out.failures})")

    threads = [threading.Thread(target=one, args=(g,)) for g in gateways]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise RuntimeError(f"warm-up streams failed: {failed}")


@dataclass(frozen=True)
class Step:
    ok: str
    held: Census
    in_flight: float  # at the held census
    collections: dict[str, list[Collection]]  # those during the arrivals, by generation
    held_from: float  # when the first stream ended: from then on as many end as start
    late: list[str]  # what made the window's late ticks and slowest streams late


def hold(gateway: Gateway, args: argparse.Namespace, stream_s: float) -> Step:
    """One step: the streams held, a census in the middle of the hold; its figures."""
    rate = args.streams / stream_s
    duration = stream_s + args.hold
    start_at = time.time() + 1.0
    census_at = start_at + stream_s + args.hold / 2
    held: list[Census] = []

    def take() -> None:
        time.sleep(max(0.0, census_at - time.time()))
        held.append(gateway.census())

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    out = openloop.run(plan(gateway, rate, duration), args.workers, start_at)
    taker.join()
    after = gateway.census()  # every collection of the step
    at = int((census_at - start_at) / openloop.SAMPLE_S)
    around = out.in_flight[max(0, at - 2) : at + 3]
    in_flight = statistics.mean(around)
    end = start_at + duration
    seen = {kind: after.during(start_at, end, gen) for gen, kind in enumerate(GENERATIONS)}
    window = (start_at + stream_s + SETTLE_S, end)
    late = ticks_report([t for t in after.ticks if window[0] <= t.at <= window[1]], after.pauses())
    ended = [
        i for i, s in enumerate(out.ended_s) if window[0] <= start_at + s <= window[1]
    ]  # the held ladder's window: the streams that ended in it
    streams = Streams(
        [start_at + out.ended_s[i] - out.latency_ms[i] / 1e3 for i in ended],
        [out.latency_ms[i] for i in ended],
        [out.ttfb_ms[i] for i in ended],
    )
    late += streams_report(streams, after.pauses())
    return Step(f"{out.ok}/{out.sent}", held[0], in_flight, seen, start_at + stream_s, late)


def summary(seen: list[Collection]) -> str:
    """How many, their pauses and the objects they walked (median and max)."""
    if not seen:
        return "none"
    ms, walked = [c.ms for c in seen], [c.walked for c in seen]
    return (
        f"{len(seen)}, pause median {statistics.median(ms):.2f} ms, max {max(ms):.2f} ms;"
        f" objects walked median {statistics.median(walked):,.0f}, max {max(walked):,}"
    )


def describe(name: str, steps: list[tuple[Census, Step]]) -> list[str]:
    """A tree's figures: each step's objects a held stream (against its gateway's idle
    census), the last one's by type, and the collections of every step together."""
    lines = [f"{name}:"]
    for idle, step in steps:
        total, types = step.held.per_stream(idle, step.in_flight)
        lines.append(
            f"  {step.ok} streams ok; tracked objects {step.held.tracked:,} held"
            f" ({step.in_flight:.0f} in flight) against {idle.tracked:,} idle:"
            f" **{total:.1f} a held stream**"
        )
        lines += step.late
    top = ", ".join(f"{t} {n:.1f}" for t, n in list(types.items())[:TOP_TYPES])
    lines.append(f"  a held stream, by type: {top}")
    young = [(c, s.held_from) for _, s in steps for c in s.collections[GENERATIONS[0]]]
    ramp, held = [c for c, t in young if c.at < t], [c for c, t in young if c.at >= t]
    lines.append(f"  young collections during the ramp: {summary(ramp)}")
    lines.append(f"  young collections while held (as many streams end as start): {summary(held)}")
    for kind in GENERATIONS[1:]:
        seen = [c for _, step in steps for c in step.collections[kind]]
        lines.append(f"  {kind} collections during the arrivals: {summary(seen)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.held_objects", description=__doc__)
    parser.add_argument("--streams", type=int, default=300, help="streams held in flight")
    parser.add_argument("--hold", type=float, default=8.0, help="s of arrivals past a stream's")
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--chunk-ms", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="steps a tree, the order alternating")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--against", type=Path, help="another checkout whose gateway/ to run too")
    parser.add_argument("--nginx", action="store_true", help="nginx's mock, not the paced one")
    args = parser.parse_args(argv)
    shape = llm_mock.Shape(chunks=args.chunks, chunk_ms=args.chunk_ms)
    trees = {"this": ROOT, **({"against": args.against.resolve()} if args.against else {})}
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="floorgate-held-objects-"))
    steps: dict[str, list[tuple[Census, Step]]] = {name: [] for name in trees}
    placement = cpus.Placement.split()  # as the held ladder: the gateway on a CPU of its own
    with cpus.tools_on(placement), Children(workdir) as children:
        mock = start_held_mock(children, workdir, shape, args.nginx)
        policy = write_policy(workdir, mock.base, direct_only=True, paths=("/slow/v1", "/llm/v1"))
        for index in range(args.rounds):
            # Fresh gateways each round: the connections a step leaves in the pool would be
            # counted as the next step's streams' own.
            gateways = [start(children, workdir, policy, n, root) for n, root in trees.items()]
            if placement is not None:
                for gateway in gateways:
                    cpus.pin(gateway.pid, placement.gateway)
            warm_up(gateways, args.workers)
            time.sleep(1.0)
            idle = {g.name: g.census() for g in gateways}
            for gateway in gateways if index % 2 == 0 else gateways[::-1]:
                step = hold(gateway, args, shape.stream_s)
                steps[gateway.name].append((idle[gateway.name], step))
            for gateway in gateways:
                children.stop(gateway.child)
    print(f"{args.streams} held streams ({args.chunks} chunks {args.chunk_ms} ms apart from"
          f" {mock.name}, {shape.stream_s:g} s each), {args.hold:g} s held past the ramp,"
          f" {args.rounds} rounds; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after;"
          f" logs in {workdir}")  # fmt: skip
    for name, root in trees.items():
        print("\n".join(describe(f"{name} ({root})", steps[name])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
