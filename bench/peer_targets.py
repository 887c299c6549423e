"""Who `make bench-vs-peers` loads: the LLM-shaped mock, Floorgate and its peers, each started in
its own process, and what a request to each looks like."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import litellm_proxy, llm_mock, openloop, portkey
from bench.peer_figures import DIRECT
from bench.procs import Children, free_port, wait_listening
from bench.run import DIRECT_MODEL, STREAM_MODEL, request_body
from bench.services import (
    LITELLM_READY_TIMEOUT_S,
    READY_TIMEOUT_S,
    ROOT,
    Service,
    floorgate_launch,
    litellm_launch,
    start_timed,
    write_policy,
)

FLOORGATE, LITELLM, PORTKEY = "floorgate", "litellm-proxy", "portkey"
AGAINST = "floorgate-against"  # --against DIR: another checkout's gateway beside this one
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


def start_mock(children: Children, workdir: Path, shape: llm_mock.Shape) -> Service:
    prefix = workdir / "llm-nginx"
    prefix.mkdir()
    port = free_port()
    config = llm_mock.render_config(prefix, port, shape)
    argv = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)]
    child = children.start("llm-mock", argv)
    wait_listening(child, port, READY_TIMEOUT_S)
    return Service("llm-mock", child, f"http://127.0.0.1:{port}")


def start_paced_mock(children: Children, shape: llm_mock.Shape) -> Service:
    """The held streams' mock (bench/paced_mock.py): each chunk on its own stream's clock, not
    nginx's, whose timers clump streams together."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.paced_mock", "--port", str(port)]
    argv += ["--ttft-ms", str(shape.ttft_ms), "--chunk-ms", str(shape.chunk_ms)]
    argv += ["--chunks", str(shape.chunks), "--whole-ms", str(shape.whole_ms)]
    child = children.start("paced-mock", argv, cwd=ROOT)
    wait_listening(child, port, READY_TIMEOUT_S)
    return Service("paced-mock", child, f"http://127.0.0.1:{port}")


def start_held_mock(
    children: Children, workdir: Path, shape: llm_mock.Shape, nginx: bool = False
) -> Service:
    """The held streams' mock: the paced one, or nginx's (whose timers clump streams) to
    compare with."""
    return start_mock(children, workdir, shape) if nginx else start_paced_mock(children, shape)


def start_floorgate(
    children: Children, workdir: Path, mock: Service, name: str = FLOORGATE, root: Path = ROOT
) -> Target:
    """`floorgate serve` on the bench policy at `mock`, its code from `root`'s gateway/."""
    policy = write_policy(workdir, mock.base, direct_only=True, paths=("/slow/v1", "/llm/v1"))
    launch = floorgate_launch(policy, PYTHONPATH=str(root))
    gateway = start_timed(children, name, launch, "/readyz", 1, 30.0)
    return Target(
        name,
        gateway.base + "/v1/chat/completions",
        gateway.child.pid,
        gateway.base + "/healthz",
        models=(STREAM_MODEL, DIRECT_MODEL),
        metrics=gateway.base + "/metrics",
    )


def start_targets(
    children: Children,
    workdir: Path,
    shape: llm_mock.Shape,
    litellm: bool,
    portkey: bool,
    against: Path | None = None,
) -> list[Target]:
    """The mock of `shape`, Floorgate (and `against`'s, right after it in every rung) and each
    peer asked for, started."""
    mock = start_mock(children, workdir, shape)
    whole, stream = mock.base + "/slow/v1", mock.base + "/llm/v1"
    targets = [Target(DIRECT, mock.base, mock.child.pid, mock.base + "/healthz")]
    targets.append(start_floorgate(children, workdir, mock))
    if against is not None:
        targets.append(start_floorgate(children, workdir, mock, AGAINST, against))
    if litellm:
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
    if portkey:
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
