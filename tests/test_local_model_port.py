"""The local model's port is one setting, FLOORGATE_LOCAL_MODEL_PORT: the shipped policy's
api_base follows it (`${FLOORGATE_LOCAL_MODEL_PORT:-8081}`), and `make run` (local_model.py
start) reuses a server on that port only when it serves the expected model and completes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway.policy.loader import load_policy
from gateway.readiness import check
from tests.fake_upstream import FakeUpstream
from tests.policy_gateway import policy_text
from tests.test_prometheus import ROOT

SCRIPT = ROOT / "scripts" / "local_model.py"


def test_the_shipped_policy_follows_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOORGATE_LOCAL_MODEL_PORT", raising=False)
    models = load_policy(ROOT / "policies").models
    assert {m.api_base for m in models.values()} == {"http://127.0.0.1:8081/v1"}
    monkeypatch.setenv("FLOORGATE_LOCAL_MODEL_PORT", "9555")
    models = load_policy(ROOT / "policies").models
    assert {m.api_base for m in models.values()} == {"http://127.0.0.1:9555/v1"}
    assert all(m.usable for m in models.values())


def test_an_api_base_naming_an_unset_variable_leaves_the_model_uncallable(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOORGATE_TEST_FAST_URL", raising=False)
    text = policy_text(upstream).replace(
        f'fast: {{provider: openai_compatible, model: ok, api_base: "{upstream.base_url}"}}',
        'fast: {provider: openai_compatible, model: ok, api_base: "${FLOORGATE_TEST_FAST_URL}"}',
    )
    (tmp_path / "policy.yaml").write_text(text)
    policy = load_policy(tmp_path)
    assert policy.models["fast"].missing_env == ("FLOORGATE_TEST_FAST_URL",)
    assert check(policy).problems == (
        "route capability-first has no model it could call (fast: FLOORGATE_TEST_FAST_URL unset)",
    )
    monkeypatch.setenv("FLOORGATE_TEST_FAST_URL", upstream.base_url)
    policy = load_policy(tmp_path)
    assert policy.models["fast"].api_base == upstream.base_url and check(policy).ready


@contextmanager
def model_server(models: list[str], completes: bool = True) -> Iterator[int]:
    """An HTTP server on loopback whose /v1/models lists `models`; its completions answer, or
    (`completes=False`) the connection closes without an answer, as a crashed server's does."""
    listing = json.dumps({"object": "list", "data": [{"id": m} for m in models]}).encode()
    answer = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Hi"}}]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.reply(listing)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            if completes:
                self.reply(answer.encode())

        def reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def start_on(port: int) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"FLOORGATE_LOCAL_MODEL_PORT": str(port)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=60
    )


def test_start_reuses_a_server_only_when_it_serves_the_expected_model() -> None:
    with model_server(["smollm2"]) as port:
        run = start_on(port)
        assert run.returncode == 0, run.stderr
        assert f"local model already answering on port {port}" in run.stdout
    with model_server(["some-other-model"]) as port:
        run = start_on(port)
        assert run.returncode == 1
        assert f"port {port} is taken by a server that does not serve smollm2" in run.stderr
        assert "['some-other-model']" in run.stderr and "FLOORGATE_LOCAL_MODEL_PORT" in run.stderr


def test_start_refuses_a_server_that_lists_the_model_but_cannot_complete() -> None:
    with model_server(["smollm2"], completes=False) as port:
        run = start_on(port)
    assert run.returncode == 1
    assert f"a server on port {port} lists smollm2 but fails a one-token completion" in run.stderr
