"""The LiteLLM proxy as a comparison point: its own virtual environment, config and command line.

It is installed apart from the project's environment (the proxy extra pulls in a server stack
Floorgate does not use) and reused across runs once the install has completed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

# 1.107.x is excluded because a compromised 1.107.0 was published; so were 1.82.7 and 1.82.8,
# which this range leaves out too.
SPEC = "litellm[proxy]>=1.106,<1.110,!=1.107.*"
VENV = Path.home() / ".cache" / "floorgate" / "litellm-proxy-venv"
INSTALL_TIMEOUT_S = 1200.0
# Written only after a complete install, so a half-finished one is retried rather than reused.
MARKER = ".floorgate-installed"


def ensure_venv(venv: Path = VENV) -> Path:
    """Create (or reuse) the proxy's virtual environment; returns its `litellm` executable."""
    executable = venv / "bin" / "litellm"
    marker = venv / MARKER
    if executable.exists() and marker.exists() and marker.read_text().strip() == SPEC:
        return executable
    print(f"installing {SPEC} into {venv} (a few minutes, once)", file=sys.stderr, flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, SPEC], check=True, timeout=INSTALL_TIMEOUT_S)
    marker.write_text(SPEC + "\n")
    return executable


def write_config(path: Path, mock_base: str, **more: str) -> Path:
    """The model `mock` (and each of `more`: name=api_base) at the mock upstream; no database."""
    models = "".join(
        f"  - model_name: {name}\n"
        "    litellm_params:\n"
        "      model: openai/mock\n"
        f"      api_base: {base}\n"
        "      api_key: bench\n"
        for name, base in {"mock": mock_base, **more}.items()
    )
    path.write_text(
        "model_list:\n" + models + "litellm_settings:\n  drop_params: true\n  telemetry: false\n"
    )
    return path


def command(executable: Path, config: Path, port: int) -> list[str]:
    return [
        str(executable),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


def master_key() -> str:
    """The proxy refuses to start without one (and checking it is part of its request path)."""
    return "sk-bench-" + secrets.token_hex(32)


def environment(key: str) -> dict[str, str]:
    """The proxy's environment: no database, no network look-ups, quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LITELLM_"))}
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
        DISABLE_SCHEMA_UPDATE="True",
        LITELLM_MASTER_KEY=key,
        PYTHONUNBUFFERED="1",
    )
    return env


READY_PATH = "/health/liveliness"

if __name__ == "__main__":
    print(ensure_venv())
