"""`make bench-vs-peers`: Floorgate, the LiteLLM proxy and Portkey's gateway under LLM-shaped load.

    .venv/bin/python -m bench.peers [--duration 8] [--stream-rates 10,25,...] [--whole-rates ...]

One mock upstream that answers like a model (bench/llm_mock.py: streams of 100 chunks, 300 ms to
the first and 20 ms apart; whole answers after 1.5 s), every peer in its own process against it,
and open-loop load (bench/openloop.py) at rising rates. At each rate the mock is driven directly
first, then each target still going, so every overhead is against the mock in the same rung;
a target stops at the first rate it does not sustain (99.9 % ok, p99 within 1 s of the mock's).
Tables to stdout, one JSON line last; progress to stderr. See docs/bench.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import litellm_proxy, llm_mock, openloop, peer_report, portkey
from bench.peer_figures import DIRECT, Step, percentile, steady_mean
from bench.procs import Children, StartupError, cpu_seconds, free_port, rss_mib, wait_listening
from bench.run import DIRECT_MODEL, STREAM_MODEL, request_body
from bench.services import (
    LITELLM_READY_TIMEOUT_S,
    READY_TIMEOUT_S,
    CheckError,
    Service,
    floorgate_launch,
    litellm_launch,
    start_timed,
    write_policy,
)
from bench.watch import Watch, lag_buckets, lag_p99_ms

FLOORGATE, LITELLM, PORTKEY = "floorgate", "litellm-proxy", "portkey"
STREAM_RATES = "2,5,10,25,50,100,200,400,600,880"
WHOLE_RATES = "2,5,10,25,50,100,200,400,800,1300"
PATHS = {"stream": llm_mock.STREAM_PATH, "whole": llm_mock.WHOLE_PATH}
Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    pid: int
    probe: str
    headers: dict[str, Headers] = field(default_factory=dict)  # per variant
    models: tuple[str, str] = ("mock-stream", "mock")  # (streamed, whole)
    metrics: str = ""  # where its event-loop lag histogram is scraped (Floorgate's /metrics)

    def plan(self, variant: str, rate: float, duration_s: float) -> openloop.Plan:
        stream = variant == "stream"
        body = request_body(self.models[0] if stream else self.models[1], stream).decode()
        url = self.url + PATHS[variant] if self.name == DIRECT else self.url
        headers = self.headers.get(variant, ())
        return openloop.Plan(url, body, rate, duration_s, stream, headers)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of arrivals a rate")
    parser.add_argument("--stream-rates", default=STREAM_RATES, help="streams/s, rising")
    parser.add_argument("--whole-rates", default=WHOLE_RATES, help="requests/s, rising")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--ttft-ms", type=int, default=300)
    parser.add_argument("--chunk-ms", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--whole-ms", type=int, default=1500)
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-portkey", action="store_true")
    parser.add_argument(
        "--from-json", type=Path, help="print the tables of an earlier run's output"
    )
    args = parser.parse_args(argv)
    args.stream_rates = [float(r) for r in args.stream_rates.split(",") if r]
    args.whole_rates = [float(r) for r in args.whole_rates.split(",") if r]
    return args


def start_mock(children: Children, workdir: Path, shape: llm_mock.Shape) -> Service:
    prefix = workdir / "llm-nginx"
    prefix.mkdir()
    port = free_port()
    config = llm_mock.render_config(prefix, port, shape)
    argv = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)]
    child = children.start("llm-mock", argv)
    wait_listening(child, port, READY_TIMEOUT_S)
    return Service("llm-mock", child, f"http://127.0.0.1:{port}")


def start_targets(args: argparse.Namespace, workdir: Path, children: Children) -> list[Target]:
    mock = start_mock(children, workdir, shape_of(args))
    whole, stream = mock.base + "/slow/v1", mock.base + "/llm/v1"
    targets = [Target(DIRECT, mock.base, mock.child.pid, mock.base + "/healthz")]
    policy = write_policy(workdir, mock.base, direct_only=True, paths=("/slow/v1", "/llm/v1"))
    gateway = start_timed(children, FLOORGATE, floorgate_launch(policy), "/readyz", 1, 30.0)
    targets.append(
        Target(
            FLOORGATE,
            gateway.base + "/v1/chat/completions",
            gateway.child.pid,
            gateway.base + "/healthz",
            models=(STREAM_MODEL, DIRECT_MODEL),
            metrics=gateway.base + "/metrics",
        )
    )
    if not args.skip_litellm:
        key = litellm_proxy.master_key()
        launch = litellm_launch(workdir, whole, key, **{"mock-stream": stream})
        proxy = start_timed(
            children, LITELLM, launch, litellm_proxy.READY_PATH, 1, LITELLM_READY_TIMEOUT_S
        )
        auth = (("authorization", f"Bearer {key}"),)
        targets.append(
            Target(
                LITELLM,
                proxy.base + "/v1/chat/completions",
                proxy.child.pid,
                proxy.base + litellm_proxy.READY_PATH,
                {"stream": auth, "whole": auth},
            )
        )
    if not args.skip_portkey:
        targets.append(start_portkey(children, workdir, whole, stream))
    return targets


def start_portkey(children: Children, workdir: Path, whole: str, stream: str) -> Target:
    script = portkey.ensure_installed()

    def launch(port: int) -> tuple[list[str], dict[str, str]]:
        return portkey.command(script, port), portkey.environment()

    service = start_timed(children, PORTKEY, launch, portkey.READY_PATH, 1, READY_TIMEOUT_S)
    return Target(
        PORTKEY,
        service.base + "/v1/chat/completions",
        service.child.pid,
        service.base + portkey.READY_PATH,
        {"stream": portkey.headers(stream), "whole": portkey.headers(whole)},
    )


def shape_of(args: argparse.Namespace) -> llm_mock.Shape:
    return llm_mock.Shape(args.ttft_ms, args.chunk_ms, args.chunks, args.whole_ms)


def step(
    target: Target, variant: str, rate: float, args: argparse.Namespace, mock_pid: int
) -> Step:
    plan = target.plan(variant, rate, args.duration)
    idle = rss_mib(target.pid)
    lag = lag_buckets(target.metrics) if target.metrics else {}
    before, mock_before = cpu_seconds(target.pid), cpu_seconds(mock_pid)
    with Watch(target.probe, target.pid) as watch:
        out = openloop.run(plan, args.workers)
    server_cpu_s, mock_cpu_s = cpu_seconds(target.pid) - before, cpu_seconds(mock_pid) - mock_before
    return Step(
        target=target.name,
        rate=rate,
        sent=out.sent,
        ok=out.ok,
        latency_p50_ms=percentile(out.latency_ms, 50),
        latency_p99_ms=percentile(out.latency_ms, 99),
        ttfb_p99_ms=percentile(out.ttfb_ms, 99),
        in_flight=steady_mean(out.in_flight),
        server_cpu_s=server_cpu_s,
        rss_idle_mib=idle,
        rss_peak_mib=watch.rss_peak_mib,
        probe_p99_ms=percentile(watch.probe_ms, 99),
        generator_cpu_pct=100 * out.cpu_s / out.wall_s if out.wall_s else 0.0,
        generator_late_p99_ms=percentile(out.late_ms, 99),
        failures=out.failures,
        duration_s=out.wall_s,
        mock_cpu_s=mock_cpu_s,
        loop_lag_p99_ms=lag_p99_ms(lag, lag_buckets(target.metrics)) if target.metrics else None,
    )


WARM_UP = (5.0, 2.0)  # rate/s, seconds: before the ladder, unrecorded


def warm_up(targets: list[Target], args: argparse.Namespace) -> None:
    """A few requests of each variant to every target before anything is recorded: a server
    just started is still settling (Floorgate reads its 3 MB price table beside serving, Node
    compiles its hot paths), which put the first rung's figures at the mercy of the start."""
    rate, seconds = WARM_UP
    print(f"  warming up: {rate:g}/s for {seconds:g} s of each variant", file=sys.stderr)
    for target in targets:
        for variant in ("stream", "whole"):
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
    print(
        f"  {result.rate:>6g}/s {result.target:<14} ok {result.ok}/{result.sent}"
        f"  p99 {result.latency_p99_ms or 0:.0f} ms"
        + (f" (+{overhead:.1f})" if overhead is not None else "")
        + f"  in flight {result.in_flight:.0f}  cpu {result.server_cpu_s:.1f} s"
        f"  load gen {result.generator_cpu_pct:.0f}%  mock cpu {result.mock_cpu_s:.1f} s"
        + (f"  loop lag p99 {result.loop_lag_p99_ms:.1f} ms" if result.loop_lag_p99_ms else "")
        + f"  {result.failures or ''}",
        file=sys.stderr,
        flush=True,
    )


def ledger_bytes_per_record() -> float | None:
    """bench.ledger_memory in its own process, so its allocations are its own."""
    argv = [sys.executable, "-m", "bench.ledger_memory", "--records", "100000"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    lines = done.stdout.strip().splitlines()
    return float(json.loads(lines[-1])["bytes_per_record"]) if lines else None


def reprint(path: Path, shape: llm_mock.Shape) -> int:
    """The tables again from the JSON line an earlier run printed last."""
    summary = json.loads(path.read_text().strip().splitlines()[-1])
    steps = {v: [Step(**raw) for raw in ladder] for v, ladder in summary["steps"].items()}
    ledger = summary["targets"].get("in-memory ledger, a record", {}).get("value")
    peer_report.print_all(steps, shape, summary.get("rss_after_mib", 0.0), ledger)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        return reprint(args.from_json, shape_of(args))
    workdir = Path(tempfile.mkdtemp(prefix="floorgate-peers-"))
    try:
        with Children(workdir) as children:
            targets = start_targets(args, workdir, children)
            warm_up(targets, args)
            steps = {v: ladder(targets, v, args) for v in ("stream", "whole")}
            gateway = next(t for t in targets if t.name == FLOORGATE)
            rss_after = rss_mib(gateway.pid)
    except (StartupError, CheckError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"bench failed: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"LLM-shaped load, open loop, {args.duration:g} s of arrivals a rate, {args.workers}"
        f" load processes; mock: {args.chunks} chunks, {args.ttft_ms} ms to the first,"
        f" {args.chunk_ms} ms apart; whole answers after {args.whole_ms} ms;"
        f" {os.cpu_count()} CPUs, loopback"
    )
    peer_report.print_all(steps, shape_of(args), rss_after, ledger_bytes_per_record())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
