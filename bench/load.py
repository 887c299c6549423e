"""Closed-loop load with wrk: one POST body, fixed connections, bounded in time."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("post.lua")
REQUEST_TIMEOUT_S = 15  # the LiteLLM proxy queues for seconds at c=64


class LoadError(RuntimeError):
    """wrk failed or printed no summary."""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int  # socket errors, timeouts and non-2xx/3xx answers

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def threads_for(connections: int) -> int:
    # Two cores: one wrk thread for c=1, two otherwise (wrk needs connections >= threads).
    return 1 if connections < 2 else 2


def run_wrk(
    url: str, body: bytes, connections: int, duration_s: int, api_key: str = ""
) -> LoadResult:
    argv = [
        "wrk",
        f"-t{threads_for(connections)}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        body.decode(),
        api_key,
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"wrk against {url} did not finish in time") from exc
    return parse(done.stdout, done.stderr, url)


def parse(stdout: str, stderr: str, url: str) -> LoadResult:
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            raw = json.loads(line.removeprefix("BENCH "))
            us = 1000.0
            errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
            return LoadResult(
                requests=raw["requests"],
                duration_s=raw["duration_us"] / 1e6,
                p50_ms=raw["p50_us"] / us,
                p90_ms=raw["p90_us"] / us,
                p99_ms=raw["p99_us"] / us,
                errors=errors,
            )
    raise LoadError(f"wrk against {url} printed no summary:\n{stdout}\n{stderr}")
