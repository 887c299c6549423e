"""Chaos scenarios that need a process of their own: `floorgate serve` stopped with SIGTERM
while streams are open, and frozen (SIGSTOP) while a crowd of new requests arrives
(bench/chaos.py lists every scenario)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

from bench.chaos_rig import Rig
from tests.conftest import KEYS, UPSTREAM_KEY, write_policy
from tests.servers import free_port

Figures = dict[str, str]
ROOT = Path(__file__).resolve().parent.parent
STREAMS = 4
USER = [{"role": "user", "content": "hi"}]


@contextmanager
def own_gateway(rig: Rig) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`floorgate serve` on the rig's fake upstream, in a process of its own, live."""
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        env = {"PATH": os.environ["PATH"], "FLOORGATE_PORT": str(port),
               "FLOORGATE_POLICIES": str(write_policy(Path(directory), rig.upstream)),
               "FLOORGATE_API_KEYS": KEYS, "FAKE_UPSTREAM_KEY": UPSTREAM_KEY,
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # fmt: skip
        server = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url)
            yield server, url
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGCONT)
                server.kill()
                server.wait(10)


def sigterm_with_open_streams(rig: Rig) -> Figures:
    """SIGTERM while streams are mid-way: each is finished whole, then the process exits 0."""
    with own_gateway(rig) as (server, url):
        return _drained(server, url)


def _drained(server: subprocess.Popen[bytes], url: str) -> Figures:
    started = threading.Barrier(STREAMS + 1, timeout=30)
    said: list[str] = []
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="key-any", max_retries=0)

    def one() -> None:
        stream = client.chat.completions.create(
            model="route/slow-stream",
            stream=True,
            messages=USER,  # type: ignore[arg-type]
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


CROWD = 16
FREEZE_S = 1.6  # past FLOORGATE_OVERLOAD_FOR_S (1 s): on resume, a loop behind that long


def frozen_with_a_crowd(rig: Rig) -> Figures:
    """The gateway frozen (SIGSTOP) past its overload period while streams are mid-way and a
    crowd of new requests arrives: on resume the crowd is refused at once (503 overloaded,
    Retry-After), nothing of it reaches the upstream, the streams finish whole, and new
    requests are served again once the loop has been on time for the period."""
    with (
        own_gateway(rig) as (server, url),
        openai.OpenAI(base_url=f"{url}/v1", api_key="key-any", max_retries=0) as client,
    ):
        streams = [
            client.chat.completions.create(model="route/slow-stream", stream=True, messages=USER)  # type: ignore[arg-type]
            for _ in range(STREAMS)
        ]
        said = ["".join(c.delta.content or "" for c in next(iter(s)).choices) for s in streams]
        seen = rig.upstream.seen
        statuses: list[int] = []
        crowd = [threading.Thread(target=_one_new, args=(url, statuses)) for _ in range(CROWD)]
        server.send_signal(signal.SIGSTOP)
        for caller in crowd:
            caller.start()
        time.sleep(FREEZE_S)
        server.send_signal(signal.SIGCONT)
        resumed = time.perf_counter()
        for caller in crowd:
            caller.join(30)
        refused_s = time.perf_counter() - resumed
        said = [t + "".join(c.delta.content or "" for k in s for c in k.choices)
                for t, s in zip(said, streams, strict=True)]  # fmt: skip
        if statuses != [503] * CROWD or rig.upstream.seen != seen:
            raise AssertionError(f"crowd {statuses}, upstream calls {rig.upstream.seen - seen}")
        if said != ["fake answer"] * STREAMS:
            raise AssertionError(f"streams in flight: {said}")
        while _new_status(url) != 200:
            time.sleep(0.05)
        return {"crowd": str(CROWD), "refused": str(len(statuses)), "upstream_calls": "0",
                "crowd_answered_s": f"{refused_s:.2f}", "streams_whole": str(STREAMS),
                "served_again_after_s": f"{time.perf_counter() - resumed:.2f}"}  # fmt: skip


def _new_status(url: str) -> int:
    """A chat request on a connection of its own (read only after the loop's timers ran)."""
    body = {"model": "route/capability-first", "messages": USER}
    with httpx.Client(timeout=30) as fresh:
        response = fresh.post(f"{url}/v1/chat/completions", json=body,
                              headers={"Authorization": "Bearer key-any"})  # fmt: skip
    if response.status_code == 503:
        error = response.json()["error"]
        if error["code"] != "overloaded" or response.headers.get("retry-after") != "1":
            raise AssertionError(f"a 503 that is not an overload refusal: {response.text}")
    return response.status_code


def _one_new(url: str, statuses: list[int]) -> None:
    statuses.append(_new_status(url))
