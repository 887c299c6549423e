"""CPU per relayed chunk, apart from each request's own cost, and where the rest of the cores went.

    .venv/bin/python -m bench.chunk_cost [--rate 100] [--duration 8] [--chunks 100,10]
                                         [--chunk-ms 20] [--rounds 2] [--against DIR]

`make bench-vs-peers` divides all of a step's CPU by its chunks, so its figure carries each
request's fixed cost (parsing, routing, the classification at the end) too. Here the same stream
rate runs with two chunk counts (the LLM mock of bench/llm_mock.py, 300 ms to the first chunk,
20 ms apart); the difference in CPU per request over the difference in chunks is the cost of one
relayed chunk, and what is left is the cost of a request. Each step also shows the CPU per chunk
of the mock and of the load generator (bench/openloop.py), which share the machine's cores.

`--against DIR` starts a second gateway from another checkout's code (say a `git worktree` of
main) beside this one; the two alternate within each round, so a change is measured against its
base in the same run, on the same machine, under the same load. Figures are CPU time (user and
system, /proc), which other work on the machine disturbs far less than it does latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import llm_mock, openloop
from bench.peer_targets import start_mock
from bench.procs import Children, stat_fields
from bench.run import STREAM_MODEL, request_body
from bench.services import ROOT, floorgate_launch, start_timed, write_policy

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    tree: str  # "this" or "against"
    chunks: int
    ok: int
    sent: int
    user_s: float
    system_s: float
    mock_s: float
    generator_s: float

    @property
    def ms_per_request(self) -> float:
        return (self.user_s + self.system_s) * 1e3 / self.ok if self.ok else 0.0

    def per_chunk_us(self, seconds: float) -> float:
        return seconds * 1e6 / (self.ok * self.chunks) if self.ok else 0.0

    def row(self) -> dict[str, object]:
        return {
            "tree": self.tree,
            "chunks": self.chunks,
            "ok": f"{self.ok}/{self.sent}",
            "gateway ms/request": round(self.ms_per_request, 2),
            "gateway us/chunk (user+sys)": round(self.per_chunk_us(self.user_s + self.system_s), 1),
            "of which sys": round(self.per_chunk_us(self.system_s), 1),
            "mock us/chunk": round(self.per_chunk_us(self.mock_s), 1),
            "load gen us/chunk": round(self.per_chunk_us(self.generator_s), 1),
        }


def cpu(pid: int) -> tuple[float, float]:
    fields = stat_fields(pid)
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def measure(args: argparse.Namespace, chunks: int) -> list[Sample]:
    """One mock with `chunks` a stream, a gateway per code tree, `rounds` steps of each."""
    workdir = Path(tempfile.mkdtemp(prefix="floorgate-chunk-cost-"))
    trees = {"this": str(ROOT), **({"against": str(args.against)} if args.against else {})}
    samples = []
    with Children(workdir) as children:
        shape = llm_mock.Shape(chunks=chunks, chunk_ms=args.chunk_ms)
        mock = start_mock(children, workdir, shape)
        policy = write_policy(workdir, mock.base, direct_only=True, paths=("/slow/v1", "/llm/v1"))
        gateways = {}
        for name, root in trees.items():
            launch = floorgate_launch(policy, PYTHONPATH=root)
            gateways[name] = start_timed(children, f"floorgate-{name}", launch, "/readyz", 1, 30)
        body = request_body(STREAM_MODEL, True).decode()
        for index in range(args.rounds):
            order = list(gateways.items())
            for name, gateway in order if index % 2 == 0 else order[::-1]:
                url = gateway.base + "/v1/chat/completions"
                plan = openloop.Plan(url, body, args.rate, args.duration, stream=True)
                (user, system), mock_before = cpu(gateway.child.pid), sum(cpu(mock.child.pid))
                out = openloop.run(plan, args.workers)
                after = cpu(gateway.child.pid)
                sample = Sample(
                    name, chunks, out.ok, out.sent, after[0] - user, after[1] - system,
                    sum(cpu(mock.child.pid)) - mock_before, out.cpu_s,
                )  # fmt: skip
                print(json.dumps(sample.row()), file=sys.stderr, flush=True)
                samples.append(sample)
    return samples


def summary(samples: list[Sample], many: int, few: int) -> dict[str, dict[str, float]]:
    """Per tree: the marginal CPU of a chunk and the fixed CPU of a request, from the means."""
    out = {}
    for tree in dict.fromkeys(s.tree for s in samples):

        def mean(chunks: int, tree: str = tree) -> float:
            return statistics.mean(
                s.ms_per_request for s in samples if s.tree == tree and s.chunks == chunks
            )

        per_chunk_us = (mean(many) - mean(few)) * 1e3 / (many - few)
        out[tree] = {
            "us per relayed chunk": round(per_chunk_us, 1),
            "ms per request besides": round(mean(few) - few * per_chunk_us / 1e3, 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chunk_cost", description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="streams/s")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of arrivals a step")
    parser.add_argument("--chunks", default="100,10", help="two chunk counts, more first")
    parser.add_argument(
        "--chunk-ms", type=int, default=20, help="between chunks (200: held streams' lone chunks)"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--against", type=Path, help="another checkout whose gateway/ to run too")
    args = parser.parse_args(argv)
    many, few = (int(c) for c in args.chunks.split(","))
    load = os.getloadavg()
    samples = measure(args, many) + measure(args, few)
    print(f"{args.rate:g} streams/s, chunks {many} and {few} {args.chunk_ms} ms apart,"
          f" {args.rounds} rounds,"
          f" load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after")  # fmt: skip
    for tree, figures in summary(samples, many, few).items():
        print(f"{tree}: {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
