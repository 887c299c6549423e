"""`make bench-vs-peers`: Floorgate, the LiteLLM proxy and Portkey's gateway under LLM-shaped load.

    .venv/bin/python -m bench.peers [--duration 8] [--stream-rates 10,25,...] [--whole-rates ...]
                                    [--held-levels 500,1000,...] [--skip-held | --variants ...]

One mock upstream that answers like a model (bench/llm_mock.py: streams of 100 chunks, 300 ms to
the first and 20 ms apart; whole answers after 1.5 s), every peer in its own process against it,
and open-loop load (bench/openloop.py) at rising rates. At each rate the mock is driven directly
first, then each target still going, so every overhead is against the mock in the same rung;
a target stops at the first rate it does not sustain (99.9 % ok, p99 within 1 s of the mock's).
A rung lasts `--duration` seconds, or as long as it takes to send 200 requests where that is
longer (`peer_figures.rung_seconds`: the p99 of fewer is their max), which is why the ladders
start at 5 streams/s and 25 whole answers/s rather than 2.
Then held streams (bench/held.py): the same streams 200 ms a chunk apart, at levels of streams
in flight, the mock and a fresh Floorgate alone. Tables to stdout, one JSON line last; progress
to stderr. See docs/bench.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench import cpus, held, held_report, llm_mock, openloop, peer_report
from bench.peer_figures import DIRECT, Step, generated, percentile, rung_seconds, steady_mean
from bench.peer_targets import (
    AGAINST,
    FLOORGATE,
    Target,
    start_floorgate,
    start_held_mock,
    start_targets,
)
from bench.procs import Children, StartupError, cpu_seconds, rss_mib
from bench.services import CheckError
from bench.watch import Watch, lag_buckets, lag_p99_ms

STREAM_RATES = "5,10,25,50,100,200,400,600,880"
# 25/s is the lowest whole rate whose 8 s give a p99 (200 requests); below it each rung would
# have to run for 20 to 100 s per target, for rates (3 to 15 in flight) no gateway fails at.
WHOLE_RATES = "25,50,100,200,400,800,1300,2000,2600"
HELD_LEVELS = "500,1000,2000,3000"  # streams in flight
HELD_CHUNK_MS = 200
VARIANTS = ("stream", "whole", held_report.HELD)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument(
        "--duration",
        type=float,
        default=8.0,
        help="seconds of arrivals a rate (at least 200 requests' worth)",
    )
    parser.add_argument("--stream-rates", default=STREAM_RATES, help="streams/s, rising")
    parser.add_argument("--whole-rates", default=WHOLE_RATES, help="requests/s, rising")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--ttft-ms", type=int, default=300)
    parser.add_argument("--chunk-ms", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--whole-ms", type=int, default=1500)
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-portkey", action="store_true")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which ladders to run")
    parser.add_argument("--skip-held", action="store_true", help="no held streams (a quick look)")
    parser.add_argument("--held-levels", default=HELD_LEVELS, help="held streams in flight, rising")
    parser.add_argument("--held-chunk-ms", type=int, default=HELD_CHUNK_MS)
    parser.add_argument(
        "--held-duration", type=float, default=0.0, help="seconds of arrivals a level (2 streams)"
    )
    parser.add_argument(
        "--held-unpinned",
        action="store_true",
        help="held streams: leave the gateway on the CPUs the mock and load generator use",
    )
    parser.add_argument(
        "--held-nginx",
        action="store_true",
        help="held streams from nginx's mock, whose timers clump streams (docs/bench.md)",
    )
    parser.add_argument(
        "--against", type=Path, help="also a gateway from this checkout's gateway/ (every ladder)"
    )
    parser.add_argument(
        "--from-json", type=Path, help="print the tables of an earlier run's output"
    )
    args = parser.parse_args(argv)
    args.stream_rates = [float(r) for r in args.stream_rates.split(",") if r]
    args.whole_rates = [float(r) for r in args.whole_rates.split(",") if r]
    args.held_levels = [int(n) for n in args.held_levels.split(",") if n]
    args.variants = [v for v in args.variants.split(",") if v]
    if args.skip_held and held_report.HELD in args.variants:
        args.variants.remove(held_report.HELD)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"--variants: no such ladder {', '.join(sorted(unknown))}; {VARIANTS}")
    stream_s = held_shape(args).stream_s
    args.held_duration = args.held_duration or round(2 * stream_s)
    if args.held_duration < stream_s + held.SETTLE_S + 2:
        parser.error(f"--held-duration must exceed a held stream's {stream_s:g} s by 3 s")
    return args


def shape_of(args: argparse.Namespace) -> llm_mock.Shape:
    return llm_mock.Shape(args.ttft_ms, args.chunk_ms, args.chunks, args.whole_ms)


def held_shape(args: argparse.Namespace) -> llm_mock.Shape:
    return llm_mock.Shape(args.ttft_ms, args.held_chunk_ms, args.chunks, args.whole_ms)


def step(
    target: Target, variant: str, rate: float, args: argparse.Namespace, mock_pid: int
) -> Step:
    plan = target.plan(variant, rate, rung_seconds(rate, args.duration))
    idle = rss_mib(target.pid)
    lag = lag_buckets(target.metrics) if target.metrics else {}
    before, mock_before = cpu_seconds(target.pid), cpu_seconds(mock_pid)
    with Watch(target.probe, target.pid) as watch:
        out = openloop.run(plan, args.workers)
    server_cpu_s, mock_cpu_s = cpu_seconds(target.pid) - before, cpu_seconds(mock_pid) - mock_before
    return Step(
        **generated(out),
        target=target.name,
        rate=rate,
        latency_p50_ms=percentile(out.latency_ms, 50),
        latency_p99_ms=percentile(out.latency_ms, 99),
        in_flight=steady_mean(out.in_flight),
        server_cpu_s=server_cpu_s,
        rss_idle_mib=idle,
        rss_peak_mib=watch.rss_peak_mib,
        probe_p99_ms=percentile(watch.probe_ms, 99),
        mock_cpu_s=mock_cpu_s,
        loop_lag_p99_ms=lag_p99_ms(lag, lag_buckets(target.metrics)) if target.metrics else None,
    )


WARM_UP = (5.0, 2.0)  # rate/s, seconds: before the ladder, unrecorded


def warm_up(targets: list[Target], args: argparse.Namespace, variants: tuple[str, ...]) -> None:
    """A few requests of each variant to every target before anything is recorded: a server
    just started is still settling (Floorgate reads its 3 MB price table beside serving, Node
    compiles its hot paths), which put the first rung's figures at the mercy of the start."""
    rate, seconds = WARM_UP
    print(f"  warming up: {rate:g}/s for {seconds:g} s of each variant", file=sys.stderr)
    for target in targets:
        for variant in variants:
            openloop.run(target.plan(variant, rate, seconds), args.workers)


def ladder(targets: list[Target], variant: str, args: argparse.Namespace) -> list[Step]:
    """Each rate: the mock directly, then every target that has not failed yet."""
    rates = args.stream_rates if variant == "stream" else args.whole_rates
    steps: list[Step] = []
    alive = [t for t in targets if t.name != DIRECT]
    direct = targets[0]
    for rate in rates:
        base = step(direct, variant, rate, args, direct.pid)
        steps.append(base)
        progress(base, None)
        if not base.sustained(None):
            print(f"  the mock itself failed at {rate:g}/s: the ladder stops", file=sys.stderr)
            break
        for target in list(alive):
            result = step(target, variant, rate, args, direct.pid)
            steps.append(result)
            progress(result, base)
            if not result.sustained(base):
                alive.remove(target)
        if not alive:
            break
    return steps + (top_rung(targets, variant, rates[-1], steps, args) if rates else [])


def top_rung(
    targets: list[Target], variant: str, top: float, steps: list[Step], args: argparse.Namespace
) -> list[Step]:
    """The mock and Floorgate at the top rate (streams: ~2,000 in flight) even after Floorgate
    fell off the ladder: goodput there against the mock's is a target of its own."""
    if variant != "stream" or any(s.rate == top and s.target == FLOORGATE for s in steps):
        return []
    print(f"  the top rate, {top:g}/s, for the mock and Floorgate:", file=sys.stderr)
    direct, gateway = targets[0], next(t for t in targets if t.name == FLOORGATE)
    base = step(direct, variant, top, args, direct.pid)
    progress(base, None)
    ours = step(gateway, variant, top, args, direct.pid)
    progress(ours, base)
    return [base, ours]


def progress(result: Step, base: Step | None) -> None:
    overhead = result.overhead_p99_ms(base)
    told = base is not None and result.beyond_upstream_p99_ms is not None
    own = result.own_overhead_p99_ms(base) if told else None  # the strict rule's figure
    print(
        f"  {result.rate:>6g}/s {result.target:<14} ok {result.ok}/{result.sent}"
        f"  p99 {result.latency_p99_ms or 0:.0f} ms"
        + (f" (+{overhead:.1f})" if overhead is not None else "")
        + (f" per stream {own:+.1f}" if own is not None else "")
        + f"  in flight {result.in_flight:.0f}  cpu {result.server_cpu_s:.1f} s"
        f"  load gen {result.generator_cpu_pct:.0f}%  mock cpu {result.mock_cpu_s:.1f} s"
        + (f"  loop lag p99 {result.loop_lag_p99_ms:.1f} ms" if result.loop_lag_p99_ms else "")
        + f"  {result.failures or ''}",
        file=sys.stderr,
        flush=True,
    )


def held_placement(args: argparse.Namespace) -> cpus.Placement | None:
    return None if args.held_unpinned else cpus.Placement.split()


def placement_note(placement: cpus.Placement | None) -> str:
    if placement is None:
        return "not pinned: the gateway shares the CPUs with the mock and the load generator"
    return f"{placement.describe()} (bench/cpus.py; --held-unpinned: not)"


def held_mock_note(args: argparse.Namespace) -> str:
    if args.held_nginx:
        return "nginx's mock (--held-nginx: its timers clump streams)"
    return "the paced mock (bench/paced_mock.py)"


def held_ladder(args: argparse.Namespace, workdir: Path) -> list[Step]:
    """Held streams, each level in its rung: the mock directly, then each gateway (with
    `--against`, the two alternating first), all started fresh for this ladder; each gateway
    on a CPU of its own unless `--held-unpinned`."""
    shape, logdir, placement = held_shape(args), workdir / "held", held_placement(args)
    logdir.mkdir()
    print(f"held streams, {shape.chunk_ms} ms apart ({shape.stream_s:g} s a stream),"
          f" {args.held_duration:g} s of arrivals a level, {held_mock_note(args)};"
          f" {placement_note(placement)}:",
          file=sys.stderr)  # fmt: skip
    with cpus.tools_on(placement), Children(logdir) as children:
        mock = start_held_mock(children, logdir, shape, args.held_nginx)
        direct = Target(DIRECT, mock.base, mock.child.pid, mock.base + "/healthz")
        gateways = [start_floorgate(children, logdir, mock)]
        if args.against:
            gateways.append(start_floorgate(children, logdir, mock, AGAINST, args.against))
        if placement is not None:
            for gateway in gateways:
                cpus.pin(gateway.pid, placement.gateway)
        warm_up(gateways, args, ("stream",))
        baselines = {t.name: rss_mib(t.pid) for t in (direct, *gateways)}
        window = held.Window.of(shape.stream_s, args.held_duration)
        steps: list[Step] = []
        for index, level in enumerate(args.held_levels):
            rate = held.rate_of(level, shape.stream_s)
            print(f"  {level:,} held streams in flight ({rate:.1f}/s):", file=sys.stderr)
            base = None
            for target in (direct, *(gateways if index % 2 == 0 else gateways[::-1])):
                plan = target.plan("stream", rate, args.held_duration)
                plan = replace(plan, timeout_s=max(plan.timeout_s, shape.stream_s + 10))
                loaded = held.Held(target.name, plan, target.pid, target.probe, target.metrics)
                result = held.step(loaded, window, baselines[target.name], mock.child.pid,
                                   args.workers)  # fmt: skip
                steps.append(result)
                progress(result, base)
                base = base or result
    return steps


def ledger_bytes_per_record() -> float | None:
    """bench.ledger_memory in its own process, so its allocations are its own."""
    argv = [sys.executable, "-m", "bench.ledger_memory", "--records", "100000"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    lines = done.stdout.strip().splitlines()
    return float(json.loads(lines[-1])["bytes_per_record"]) if lines else None


def reprint(path: Path, shape: llm_mock.Shape, held_at: llm_mock.Shape) -> int:
    """The tables again from the JSON line an earlier run printed last."""
    summary = json.loads(path.read_text().strip().splitlines()[-1])
    steps = {v: [Step(**raw) for raw in ladder] for v, ladder in summary["steps"].items()}
    ledger = summary["targets"].get("in-memory ledger, a record", {}).get("value")
    if "held_shape" in summary:
        held_at = llm_mock.Shape(**summary["held_shape"])
    peer_report.print_all(steps, shape, summary.get("rss_after_mib", 0.0), ledger, held_at)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        return reprint(args.from_json, shape_of(args), held_shape(args))
    workdir = Path(tempfile.mkdtemp(prefix="floorgate-peers-"))
    steps: dict[str, list[Step]] = {}
    rss_after = 0.0
    peered = tuple(v for v in args.variants if v != held_report.HELD)
    try:
        if peered:
            with Children(workdir) as children:
                targets = start_targets(
                    children, workdir, shape_of(args), not args.skip_litellm,
                    not args.skip_portkey, args.against,
                )  # fmt: skip
                warm_up(targets, args, peered)
                steps = {v: ladder(targets, v, args) for v in peered}
                gateway = next(t for t in targets if t.name == FLOORGATE)
                rss_after = rss_mib(gateway.pid)
        if held_report.HELD in args.variants:
            steps[held_report.HELD] = held_ladder(args, workdir)
    except (StartupError, CheckError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"bench failed: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    held_ran = held_report.HELD in steps
    print(
        f"LLM-shaped load, open loop, {args.duration:g} s of arrivals a rate, {args.workers}"
        f" load processes; mock: {args.chunks} chunks, {args.ttft_ms} ms to the first,"
        f" {args.chunk_ms} ms apart (held streams {args.held_chunk_ms} ms apart,"
        f" {args.held_duration:g} s of arrivals a level); whole answers after {args.whole_ms} ms;"
        f" {os.cpu_count()} CPUs, loopback; load average {os.getloadavg()[0]:.1f}"
        + (f"; held streams: {placement_note(held_placement(args))}" if held_ran else "")
    )
    peer_report.print_all(
        steps, shape_of(args), rss_after, ledger_bytes_per_record(), held_shape(args)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
