"""The served gateway's listening socket queues as many connections as the kernel allows: at
880 streams/s uvicorn's backlog of 2,048 overflowed, and the kernel reset the connections it
dropped, each with a request sent that the gateway never read (docs/bench.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from gateway.cli import LISTEN_BACKLOG
from tests.policy_gateway import wait_for
from tests.servers import free_port

ROOT = Path(__file__).parent.parent
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def _healthy(url: str) -> bool | None:
    try:
        return httpx.get(url, timeout=1).status_code == 200 or None
    except httpx.TransportError:
        return None


def listen_queue_size(port: int) -> int:
    """The backlog of the socket listening on `port`: `ss`'s Send-Q for a listener."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[2])


def test_the_listen_backlog_is_the_kernels_cap_not_uvicorns_2048() -> None:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "FLOORGATE_PORT": str(port),
        "FLOORGATE_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), timeout_s=120)
        assert listen_queue_size(port) == min(LISTEN_BACKLOG, int(SOMAXCONN.read_text()))
    finally:
        server.terminate()
        server.wait(10)
