"""`make bench`: Floorgate under wrk against a mock upstream, beside the floor and LiteLLM.

    .venv/bin/python -m bench.run [--duration 5] [--runs 3] [--vs-litellm] [--skip-gateway]
                                  [--redis redis://127.0.0.1:6379/0] [--against DIR]

Every target is loaded in the same rounds, in turn, so that each figure can be set against the
mock called directly in the same round. The tables go to stdout, one JSON summary line last;
progress goes to stderr. See docs/bench.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import litellm_proxy, report, ttfb
from bench.load import LoadError, run_wrk
from bench.procs import Children, StartupError, cpu_seconds, rss_mib
from bench.results import (
    FLOOR,
    FLOORGATE,
    FLOORGATE_AGAINST,
    FLOORGATE_LIMITS,
    FLOORGATE_LITELLM,
    FLOORGATE_REDIS,
    FLOORGATE_REDIS_LIMITS,
    LITELLM_PROXY,
    MOCK,
    Results,
    Sample,
    percentile,
)
from bench.services import (
    LITELLM_READY_TIMEOUT_S,
    READY_TIMEOUT_S,
    CheckError,
    Service,
    check_completion,
    floor_launch,
    floorgate_launch,
    litellm_launch,
    start_mock,
    start_timed,
    write_policy,
)

CONNECTIONS = (1, 16, 64)
WARMUP_S = 2
COMPLETIONS = "/v1/chat/completions"
STREAM = "/stream/v1/chat/completions"
DIRECT_MODEL = "workflow/bulk-summarization"
LIMITED_MODEL = "workflow/bulk-limited"  # the same path, with every kind of limit on
LITELLM_PATH_MODEL = "workflow/deploy-pipeline"
STREAM_MODEL = "workflow/bulk-stream"
PROMPT = (
    "Summarize for the weekly report: revenue grew twelve percent over three quarters, "
    "costs stayed flat, and the support backlog halved after the new triage rota."
)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    body: bytes
    pid: int  # the process whose CPU time is charged to this target
    api_key: str = ""


def request_body(model: str, stream: bool = False) -> bytes:
    payload: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You write short, factual summaries."},
            {"role": "user", "content": PROMPT},
        ],
        "max_tokens": 64,
    }
    if stream:
        payload["stream"] = True
    return json.dumps(payload, separators=(",", ":")).encode()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; figures are medians (3)")
    parser.add_argument(
        "--ttfb-requests", type=int, default=300, help="streams per target per round"
    )
    parser.add_argument("--vs-litellm", action="store_true", help="also run the LiteLLM proxy")
    parser.add_argument(
        "--redis", metavar="URL", help="also run Floorgate with its state (and limits) in Redis"
    )
    parser.add_argument(
        "--skip-gateway", action="store_true", help="measure without Floorgate (mock, floor only)"
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="DIR",
        help="also run the gateway/ of another checkout (a git worktree of main, say) as "
        "floorgate-against, in the same rounds, alternating with this one",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration < 1 or args.ttfb_requests < 1:
        parser.error("--runs, --duration and --ttfb-requests must be at least 1")
    if args.against is not None and (args.skip_gateway or not (args.against / "gateway").is_dir()):
        parser.error("--against needs a checkout with a gateway/ folder, and the gateway run")
    return args


def start_services(
    args: argparse.Namespace, workdir: Path, children: Children
) -> dict[str, Service]:
    services = {MOCK: start_mock(children, workdir)}
    base = services[MOCK].base
    launch = floor_launch(base)
    services[FLOOR] = start_timed(children, FLOOR, launch, "/readyz", args.runs, READY_TIMEOUT_S)
    if not args.skip_gateway:
        # The headline figures come from a policy that needs no litellm, as in most
        # deployments; the litellm path runs in its own process so neither taints the other.
        launch = floorgate_launch(write_policy(workdir, base, direct_only=True))
        services[FLOORGATE] = start_timed(
            children, FLOORGATE, launch, "/readyz", args.runs, READY_TIMEOUT_S
        )
        if args.against is not None:
            launch = floorgate_launch(
                write_policy(workdir, base, direct_only=True), PYTHONPATH=str(args.against)
            )
            services[FLOORGATE_AGAINST] = start_timed(
                children, FLOORGATE_AGAINST, launch, "/readyz", args.runs, READY_TIMEOUT_S
            )
        if args.redis:
            launch = floorgate_launch(
                write_policy(workdir, base, direct_only=True),
                FLOORGATE_REDIS_URL=args.redis,
                FLOORGATE_REDIS_KEY_PREFIX=f"floorgate:bench-{os.getpid()}:",
            )
            services[FLOORGATE_REDIS] = start_timed(
                children, FLOORGATE_REDIS, launch, "/readyz", 1, READY_TIMEOUT_S
            )
        launch = floorgate_launch(write_policy(workdir, base))
        services[FLOORGATE_LITELLM] = start_timed(
            children, FLOORGATE_LITELLM, launch, "/readyz", 1, READY_TIMEOUT_S
        )
    if args.vs_litellm:
        key = litellm_proxy.master_key()
        launch = litellm_launch(workdir, base, key)
        services[LITELLM_PROXY] = start_timed(
            children,
            LITELLM_PROXY,
            launch,
            litellm_proxy.READY_PATH,
            args.runs,
            LITELLM_READY_TIMEOUT_S,
            api_key=key,
        )
    return services


def load_targets(services: dict[str, Service]) -> list[Target]:
    """What wrk drives; Floorgate twice, once per upstream path."""
    models = {
        MOCK: (MOCK, "mock"),
        FLOOR: (FLOOR, "mock"),
        FLOORGATE: (FLOORGATE, DIRECT_MODEL),
        FLOORGATE_AGAINST: (FLOORGATE_AGAINST, DIRECT_MODEL),
        FLOORGATE_LIMITS: (FLOORGATE, LIMITED_MODEL),
        FLOORGATE_REDIS: (FLOORGATE_REDIS, DIRECT_MODEL),
        FLOORGATE_REDIS_LIMITS: (FLOORGATE_REDIS, LIMITED_MODEL),
        FLOORGATE_LITELLM: (FLOORGATE_LITELLM, LITELLM_PATH_MODEL),
        LITELLM_PROXY: (LITELLM_PROXY, "mock"),
    }
    return [
        Target(
            name,
            services[service].base + COMPLETIONS,
            request_body(model),
            services[service].child.pid,
            services[service].api_key,
        )
        for name, (service, model) in models.items()
        if service in services
    ]


def stream_targets(services: dict[str, Service]) -> list[ttfb.StreamTarget]:
    targets = [
        ttfb.StreamTarget(MOCK, services[MOCK].base + STREAM, request_body("mock", True)),
        ttfb.StreamTarget(FLOOR, services[FLOOR].base + STREAM, request_body("mock", True)),
    ]
    body = request_body(STREAM_MODEL, True)
    for name in (FLOORGATE, FLOORGATE_AGAINST):
        if name in services:
            url = services[name].base + COMPLETIONS
            targets.append(ttfb.StreamTarget(name, url, body))
    return targets


def warm_up(targets: list[Target]) -> None:
    """Check each target answers correctly, then fill its connection pools and caches."""
    for target in targets:
        check_completion(target.name, target.url, target.body, target.api_key)
        warm = run_wrk(target.url, target.body, 16, WARMUP_S, target.api_key)
        if warm.errors or not warm.requests:
            raise CheckError(
                f"{target.name}: {warm.errors} errors in {warm.requests} warm-up requests"
            )


def measure(target: Target, connections: int, duration_s: int) -> Sample:
    before = cpu_seconds(target.pid)
    load = run_wrk(target.url, target.body, connections, duration_s, target.api_key)
    cpu_ms = (cpu_seconds(target.pid) - before) * 1000
    return Sample(load, cpu_ms / load.requests if load.requests else None)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def alternated(targets: list[Target], index: int) -> list[Target]:
    """Odd rounds load floorgate-against before floorgate, so that neither always goes first."""
    names = [t.name for t in targets]
    if index % 2 == 0 or FLOORGATE_AGAINST not in names:
        return targets
    ours, theirs = names.index(FLOORGATE), names.index(FLOORGATE_AGAINST)
    swapped = list(targets)
    swapped[ours], swapped[theirs] = targets[theirs], targets[ours]
    return swapped


def one_round(
    results: Results,
    targets: list[Target],
    services: dict[str, Service],
    args: argparse.Namespace,
    index: int = 0,
) -> None:
    for connections in CONNECTIONS:
        for target in alternated(targets, index):
            sample = measure(target, connections, args.duration)
            results.add_load(target.name, connections, sample)
            load = sample.load
            progress(
                f"  c={connections:<3}{target.name:<18}{load.rps:>9.0f} req/s"
                f"  p50 {load.p50_ms:.3f}  p99 {load.p99_ms:.3f} ms  errors {load.errors}"
            )
    for name, values in ttfb.measure(stream_targets(services), args.ttfb_requests).items():
        results.ttfb_p50_ms.setdefault(name, []).append(percentile(values, 50))
    for name in (FLOOR, FLOORGATE, FLOORGATE_AGAINST, FLOORGATE_LITELLM, LITELLM_PROXY):
        if name in services:
            results.rss_mib.setdefault(name, []).append(rss_mib(services[name].child.pid))


def benchmark(args: argparse.Namespace, workdir: Path, children: Children) -> Results:
    services = start_services(args, workdir, children)
    results = Results()
    for name, service in services.items():
        if service.ready_s:
            results.ready_s[name] = service.ready_s
    targets = load_targets(services)
    warm_up(targets)
    for index in range(args.runs):
        progress(f"round {index + 1}/{args.runs}")
        one_round(results, targets, services, args, index)
    return results


def print_header(args: argparse.Namespace, load_before: float) -> None:
    print(
        f"Floorgate benchmark: {args.runs} rounds, {args.duration} s per wrk run,"
        f" connections {', '.join(map(str, CONNECTIONS))}; {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}, client and servers on one machine (loopback);"
        f" load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    workdir = Path(tempfile.mkdtemp(prefix="floorgate-bench-"))
    try:
        with Children(workdir) as children:
            results = benchmark(args, workdir, children)
    except (
        StartupError,
        LoadError,
        CheckError,
        ttfb.StreamError,
        subprocess.SubprocessError,
    ) as exc:
        # SubprocessError: the LiteLLM proxy's install failed or timed out.
        print(f"bench failed: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    print_header(args, load_before)
    report.print_all(results, args.against)
    return check_errors(results)


def check_errors(results: Results) -> int:
    """Failed requests make the figures meaningless (an error is cheap): say so, exit 2."""
    failed = {name: results.errors(name) for name in results.targets() if results.errors(name)}
    if failed:
        print(f"bench: requests failed during the load: {failed}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
