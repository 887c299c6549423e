"""Portkey's open-source gateway as a comparison point: installed from npm, pinned, run offline.

It proxies to any OpenAI-wire upstream named per request by headers (`x-portkey-provider:
openai`, `x-portkey-custom-host`), so it needs no config file. Installed once under the cache
directory and reused; its start-up banner and request errors go to its log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "@portkey-ai/gateway"
VERSION = "1.15.2"
HOME = Path.home() / ".cache" / "floorgate" / "portkey-gateway"
INSTALL_TIMEOUT_S = 600.0
MARKER = ".floorgate-installed"
READY_PATH = "/"  # answers "AI Gateway says hey!"


def ensure_installed(home: Path = HOME) -> Path:
    """npm-install the pinned version into `home` (once); returns its server script."""
    script = home / "node_modules" / PACKAGE / "build" / "start-server.js"
    marker = home / MARKER
    if script.exists() and marker.exists() and marker.read_text().strip() == VERSION:
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise subprocess.SubprocessError("Portkey needs node and npm on the PATH")
    print(f"installing {PACKAGE}@{VERSION} into {home} (once)", file=sys.stderr, flush=True)
    home.mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(home), f"{PACKAGE}@{VERSION}"]
    argv += ["--no-audit", "--no-fund", "--ignore-scripts"]
    subprocess.run(argv, check=True, timeout=INSTALL_TIMEOUT_S, stdout=subprocess.DEVNULL)
    marker.write_text(VERSION + "\n")
    return script


def command(script: Path, port: int) -> list[str]:
    return ["node", str(script), f"--port={port}", "--headless"]


def environment() -> dict[str, str]:
    return {**os.environ, "NODE_ENV": "production"}


def headers(upstream_base: str) -> tuple[tuple[str, str], ...]:
    """What routes one request to the mock: provider, its base URL, the (mock's) key."""
    return (
        ("x-portkey-provider", "openai"),
        ("x-portkey-custom-host", upstream_base),
        ("authorization", "Bearer bench"),
    )


if __name__ == "__main__":
    print(ensure_installed())
