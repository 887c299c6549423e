"""Starting what the benchmark measures: the mock, the floor, Floorgate and the LiteLLM proxy.

Each Python service is started several times to time start-to-ready; the last start keeps
running for the load. Every service gets a fresh loopback port.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench import litellm_proxy, mock
from bench.procs import Child, Children, free_port, wait_listening, wait_ready

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
READY_TIMEOUT_S = 30.0
LITELLM_READY_TIMEOUT_S = 180.0

# A launch builds the command line and environment for a given port.
Launch = Callable[[int], tuple[list[str], dict[str, str]]]


class CheckError(RuntimeError):
    """A service answered a sample request wrongly before the load started."""


@dataclass
class Service:
    name: str
    child: Child
    base: str  # http://127.0.0.1:<port>
    ready_s: list[float] = field(default_factory=list)
    api_key: str = ""  # sent as a bearer token when set


def start_mock(children: Children, workdir: Path) -> Service:
    prefix = workdir / "nginx"
    prefix.mkdir()
    port = free_port()
    child = children.start("mock", mock.command(prefix, mock.render_config(prefix, port)))
    wait_listening(child, port, READY_TIMEOUT_S)
    return Service("mock", child, f"http://127.0.0.1:{port}")


def start_timed(
    children: Children,
    name: str,
    launch: Launch,
    ready_path: str,
    starts: int,
    timeout_s: float,
    api_key: str = "",
) -> Service:
    """Start `starts` times, each timed from Popen to a 200 on `ready_path`; keep the last."""
    ready: list[float] = []
    for attempt in range(starts):
        port = free_port()
        argv, env = launch(port)
        child = children.start(name, argv, env=env, cwd=children.logdir)
        ready.append(wait_ready(child, f"http://127.0.0.1:{port}{ready_path}", timeout_s))
        if attempt < starts - 1:
            children.stop(child)
    return Service(name, child, f"http://127.0.0.1:{port}", ready, api_key)


def floor_launch(upstream: str) -> Launch:
    def launch(port: int) -> tuple[list[str], dict[str, str]]:
        floor = str(BENCH / "floor.py")
        return [sys.executable, floor, "--port", str(port), "--upstream", upstream], dict(
            os.environ
        )

    return launch


def floorgate_command() -> list[str]:
    script = Path(sys.executable).parent / "floorgate"
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "gateway", "serve"]


def write_policy(
    workdir: Path,
    mock_base: str,
    direct_only: bool = False,
    paths: tuple[str, str] = ("/v1", "/stream/v1"),
) -> Path:
    """The bench policy for this mock, its whole and streamed answers at `paths`;
    `direct_only` drops the litellm-path model."""
    text = (BENCH / "policy.yaml.tmpl").read_text()
    text = text.replace("{mock_base}", mock_base + paths[0])
    text = text.replace("{mock_stream_base}", mock_base + paths[1])
    if direct_only:
        text = without_litellm_model(text)
    name = "policy-direct-only" if direct_only else "policy"
    path = workdir / (f"{name}.yaml" if paths[0] == "/v1" else f"{name}-llm.yaml")
    path.write_text(text)
    return path


def without_litellm_model(text: str) -> str:
    """The same policy with no model that needs litellm, so Floorgate never imports it."""
    document = yaml.safe_load(text)
    spec = document["spec"]
    del spec["models"]["mock-litellm"]
    spec["routes"]["calibration-first"]["pool"] = ["mock-direct"]
    return str(yaml.safe_dump(document, sort_keys=False))


def floorgate_launch(policy: Path, **settings: str) -> Launch:
    """`settings`: FLOORGATE_* variables to set, e.g. FLOORGATE_REDIS_URL."""

    def launch(port: int) -> tuple[list[str], dict[str, str]]:
        # Inherited FLOORGATE_* settings (a Redis URL, keys) would change what is measured.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOORGATE_")}
        env.update(
            FLOORGATE_HOST="127.0.0.1",
            FLOORGATE_PORT=str(port),
            FLOORGATE_POLICIES=str(policy),
            FLOORGATE_LOG_LEVEL="warning",
            BENCH_MOCK_KEY="bench",
            PYTHONPATH=str(ROOT),
        )
        env.update(settings)
        return floorgate_command(), env

    return launch


def litellm_launch(workdir: Path, mock_base: str, key: str, **more: str) -> Launch:
    """`mock_base` is the mock's root, or with `more` (model name=api_base) the model's base."""
    executable = litellm_proxy.ensure_venv()
    base = f"{mock_base}/v1" if not more else mock_base
    config = litellm_proxy.write_config(workdir / "litellm.yaml", base, **more)

    def launch(port: int) -> tuple[list[str], dict[str, str]]:
        return litellm_proxy.command(executable, config, port), litellm_proxy.environment(key)

    return launch


def check_completion(name: str, url: str, body: bytes, api_key: str = "") -> None:
    """One request before the load: it must answer 200 with a chat completion."""
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise CheckError(f"{name}: {url} answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, ValueError) as exc:
        raise CheckError(f"{name}: {url} gave no chat completion: {exc}") from exc
    if not answer.get("choices"):
        raise CheckError(f"{name}: {url} answered without choices: {answer}")
