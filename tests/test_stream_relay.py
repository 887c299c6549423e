"""The streamed relay's direct path (gateway/streaming.py's _Piped): past its first bytes a
direct-path stream is written to the client from the upstream connection's callbacks, with no
task woken per chunk. A client that stops reading still pauses the upstream, and gets every
event in order once it reads again; a body that ends without [DONE] still ends the stream with
the in-band error event."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.settings import Settings
from tests.servers import serve_in_thread
from tests.state_gateway import wait_until

EVENTS = 8192
PAD = "x" * 8000
# More than every buffer on the way can hold (each socket's, the connection's 256 KiB, the
# client transport's): a relay that ignored a paused client would read all of it.
TOTAL = EVENTS * len(PAD)
POLICY = """
apiVersion: floorgate.dev/v1
kind: RoutingPolicy
metadata: {name: relay-tests}
spec:
  traits:
    reversible: {unsafe: false}
  tree:
    start: reversible
    nodes:
      reversible: {ask: reversible, "yes": {route: flood}, "no": {route: flood}}
  routes:
    flood: {pool: [flood]}
    no-done: {pool: [no-done]}
  models:
    flood: {provider: openai_compatible, model: flood, api_base: "__UPSTREAM__", retries: 0}
    no-done: {provider: openai_compatible, model: no-done, api_base: "__UPSTREAM__", retries: 0}
  workflows:
    deploy-pipeline: {traits: {reversible: false}}
  default_workflow: deploy-pipeline
"""


def event(index: int) -> bytes:
    delta = {"content": f"{index}:{PAD}"}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


class Flood:
    """An upstream on a blocking socket: `flood` streams EVENTS events as fast as its socket
    takes them (`sent` counts the bytes of those it wrote), `no-done` three events and the
    body's end without [DONE]."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.sent = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            pending = b""
            while True:  # one request after another: the gateway keeps the connection
                while b"\r\n\r\n" not in pending:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    pending += piece
                head, _, pending = pending.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(pending) < length:
                    pending += conn.recv(65536)
                body, pending = pending[:length], pending[length:]
                try:
                    self._stream(conn, orjson.loads(body)["model"])
                except OSError:
                    return

    def _stream(self, conn: socket.socket, model: str) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")  # fmt: skip
        for index in range(EVENTS if model == "flood" else 3):
            data = event(index)
            conn.sendall(b"%x\r\n%b\r\n" % (len(data), data))
            self.sent += len(PAD)
        if model == "flood":
            done = b"data: [DONE]\n\n"
            conn.sendall(b"%x\r\n%b\r\n" % (len(done), done))
        conn.sendall(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flood]]:
    upstream = Flood()
    path: Path = tmp_path_factory.mktemp("relay") / "policy.yaml"
    path.write_text(POLICY.replace("__UPSTREAM__", upstream.url))
    settings = Settings(policies=path, api_keys="key-any=*", _env_file=None)  # type: ignore[call-arg]
    with serve_in_thread(create_app(settings, CollectorRegistry())) as url:
        yield url, upstream
    upstream.sock.close()


def stream(client: httpx.Client, url: str, route: str) -> httpx.Response:
    body = {
        "model": f"route/{route}",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"authorization": "Bearer key-any"}
    request = client.build_request("POST", f"{url}/v1/chat/completions", json=body, headers=headers)
    return client.send(request, stream=True)


def datas(received: bytes) -> list[dict[str, Any]]:
    """The JSON data of each event the client received ([DONE] aside)."""
    return [orjson.loads(e[6:]) for e in received.split(b"\n\n") if e.startswith(b"data: {")]


def indexes(found: list[dict[str, Any]]) -> list[int]:
    """Which of the upstream's events those are."""
    return [int(d["choices"][0]["delta"]["content"].split(":")[0]) for d in found if "choices" in d]


def steady(upstream: Flood) -> bool:
    """The upstream wrote nothing more over half a second."""
    before = upstream.sent
    time.sleep(0.5)
    return upstream.sent == before


def test_a_client_that_stops_reading_pauses_the_upstream_and_then_gets_every_event(
    flood: tuple[str, Flood],
) -> None:
    url, upstream = flood
    with httpx.Client(timeout=60) as client:
        response = stream(client, url, "flood")
        assert response.status_code == 200
        raw = response.iter_raw()
        received = next(raw)  # the stream is under way; then the client reads nothing
        wait_until(lambda: steady(upstream), timeout_s=60, what="the upstream to be paused")
        assert upstream.sent < TOTAL // 2
        received += b"".join(raw)
    assert indexes(datas(received)) == list(range(EVENTS))
    assert received.endswith(b"data: [DONE]\n\n")


def test_a_body_that_ends_without_done_ends_the_stream_with_an_error_event(
    flood: tuple[str, Flood],
) -> None:
    url, _ = flood
    with httpx.Client(timeout=60) as client:
        response = stream(client, url, "no-done")
        received = response.read()
        response.close()
    found = datas(received)
    assert indexes(found) == [0, 1, 2]
    assert "without [DONE]" in found[-1]["error"]["message"]
