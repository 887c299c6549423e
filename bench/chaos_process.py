"""Chaos scenarios that need a process of their own: `floorgate serve` stopped with SIGTERM
while streams are open (bench/chaos.py lists every scenario)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import openai

from bench.chaos_rig import Rig
from tests.conftest import KEYS, UPSTREAM_KEY, write_policy
from tests.servers import free_port

Figures = dict[str, str]
ROOT = Path(__file__).resolve().parent.parent
STREAMS = 4


def sigterm_with_open_streams(rig: Rig) -> Figures:
    """SIGTERM while streams are mid-way: each is finished whole, then the process exits 0."""
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        env = {"PATH": os.environ["PATH"], "FLOORGATE_PORT": str(port),
               "FLOORGATE_POLICIES": str(write_policy(Path(directory), rig.upstream)),
               "FLOORGATE_API_KEYS": KEYS, "FAKE_UPSTREAM_KEY": UPSTREAM_KEY,
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # fmt: skip
        server = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            return _drained(server, f"http://127.0.0.1:{port}")
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(10)


def _drained(server: subprocess.Popen[bytes], url: str) -> Figures:
    _wait_ready(url)
    started = threading.Barrier(STREAMS + 1, timeout=30)
    said: list[str] = []
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="key-any", max_retries=0)

    def one() -> None:
        stream = client.chat.completions.create(
            model="route/slow-stream", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
        text = ""
        for i, chunk in enumerate(stream):
            if i == 0:
                started.wait()  # every stream has its first chunk: SIGTERM comes now
            text += "".join(c.delta.content or "" for c in chunk.choices)
        said.append(text)

    callers = [threading.Thread(target=one) for _ in range(STREAMS)]
    for caller in callers:
        caller.start()
    started.wait()
    signalled = time.perf_counter()
    server.send_signal(signal.SIGTERM)
    code = server.wait(30)
    exit_s = time.perf_counter() - signalled
    for caller in callers:
        caller.join(10)
    if said != ["fake answer"] * STREAMS:
        raise AssertionError(f"streams after SIGTERM: {said}")
    if code != 0:
        raise AssertionError(f"exit code {code}")
    return {"streams": str(STREAMS), "finished_whole": str(len(said)), "exit": "0",
            "exit_after_s": f"{exit_s:.2f}"}  # fmt: skip


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("floorgate serve did not become ready in 60 s")
