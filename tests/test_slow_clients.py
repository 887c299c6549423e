"""Clients that could exhaust the gateway without a key: it caps a request's head and the time
it may take, authenticates from the headers before reading a byte of the body, refuses an
oversized declared body before reading it, and lets a client too slow to send its body go."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client import CollectorRegistry

from gateway.api.server import head_limited
from gateway.app import Floorgate, create_app
from gateway.settings import Settings
from tests.conftest import count, counted
from tests.servers import recv_until, serve_in_thread


@pytest.fixture(scope="module")
def impatient(policy_path: Path) -> Iterator[tuple[str, Floorgate]]:
    settings = Settings(
        policies=policy_path, api_keys="key-any=*", client_body_timeout_s=0.5, _env_file=None
    )  # type: ignore[call-arg]
    app = create_app(settings, CollectorRegistry())
    # The protocol `floorgate serve` runs, with a small head and a short wait for it.
    with serve_in_thread(app, http=head_limited(8 * 1024, 0.5)) as url:
        yield url, app


def head_only(url: str, headers: str, body: bytes = b"") -> int:
    """Send a request's head (and maybe part of its body); the status of the answer, which
    must come within 5 s without the rest of the body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n{headers}\r\n"
        sock.sendall(head.encode() + body)
        answer = recv_until(sock, b"\r\n")
    return int(answer.split(b" ", 2)[1])


def test_no_key_is_refused_before_the_body_is_read(impatient: tuple[str, Floorgate]) -> None:
    url, _ = impatient
    assert head_only(url, "content-type: application/json\r\ncontent-length: 8000000\r\n") == 401


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    impatient: tuple[str, Floorgate],
) -> None:
    url, _ = impatient
    headers = "authorization: Bearer key-any\r\ncontent-length: 9000000\r\n"
    assert head_only(url, headers) == 413


def test_a_client_too_slow_to_send_its_body_gets_a_408(impatient: tuple[str, Floorgate]) -> None:
    url, app = impatient
    registry = app.runtime.metrics.registry
    labels = {"workflow": "unknown", "route": "none", "model": "none", "stream": "false"}
    before = count(registry, "floorgate_requests_total", **labels, code="408")
    headers = "authorization: Bearer key-any\r\ncontent-length: 100\r\n"
    assert head_only(url, headers, b'{"model": ') == 408
    assert counted(registry, "floorgate_requests_total", before + 1, **labels, code="408")
    assert count(registry, "floorgate_in_flight_requests") == 0


def test_a_head_over_the_cap_is_a_431_and_the_gateway_stays_responsive(
    impatient: tuple[str, Floorgate],
) -> None:
    url, _ = impatient
    assert head_only(url, "x-filler: " + "y" * 100_000 + "\r\n") == 431
    assert head_only(url, "x-ok: 1\r\ncontent-length: 2\r\n", b"{}") == 401


def test_a_head_sent_too_slowly_is_a_408(impatient: tuple[str, Floorgate]) -> None:
    parts = urlsplit(impatient[0])
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: 1")  # no end
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"type":"invalid_request_error"' in answer
