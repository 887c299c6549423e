"""What the chaos scenarios (bench/chaos.py) run against: the real gateway under uvicorn and the
fake upstream (tests/fake_upstream.py), both on loopback, over the integration policy."""

from __future__ import annotations

import logging
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from gateway.api.server import head_limited
from gateway.app import Floorgate, create_app
from gateway.settings import Settings
from tests.conftest import KEYS, UPSTREAM_KEY, write_policy
from tests.fake_upstream import FakeUpstream
from tests.servers import serve_in_thread

AUTH = {"Authorization": "Bearer key-any"}
ADMIN_KEY = "chaos-admin-key"
BODY_TIMEOUT_S = 1.0


class Logged(logging.Handler):
    """Every log line the gateway writes, kept to be searched for secrets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Rig:
    url: str
    app: Floorgate
    upstream: FakeUpstream
    logged: Logged
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30, headers=AUTH)

    @property
    def registry(self) -> CollectorRegistry:
        return self.app.runtime.metrics.registry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def eventually(self, name: str, want: float, within_s: float = 5.0, **labels: str) -> float:
        """Seconds until the sample reaches `want` (metrics are recorded after the response)."""
        started = time.perf_counter()
        while self.sample(name, **labels) < want:
            if time.perf_counter() - started > within_s:
                raise AssertionError(f"{name}{labels} stayed below {want}")
            time.sleep(0.005)
        return time.perf_counter() - started

    def openai(self, **kwargs: object) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1",
            api_key="key-any",
            max_retries=0,
            **kwargs,  # type: ignore[arg-type]
        )

    def series(self) -> int:
        return sum(
            1 for line in self.http.get("/metrics").text.splitlines() if not line.startswith("#")
        )

    def healthz_ms(self, n: int = 30) -> list[float]:
        out = []
        with httpx.Client(base_url=self.url, timeout=30) as probe:
            for _ in range(n):
                started = time.perf_counter()
                probe.get("/healthz").raise_for_status()
                out.append((time.perf_counter() - started) * 1000)
        return out

    def raw(self, head: str, body: bytes = b"", timeout_s: float = 5.0) -> tuple[int, float]:
        """Send a request head (and maybe part of a body) over a socket: (status, seconds)."""
        parts = urlsplit(self.url)
        started = time.perf_counter()
        answer = b""
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as sock:
            try:
                sock.sendall(head.encode("latin-1") + body)
                while b"\r\n" not in answer:
                    piece = sock.recv(4096)
                    if not piece:
                        break
                    answer += piece
            except ConnectionError:  # the server answered and closed before taking it all
                pass
        status = int(answer.split(b" ", 2)[1]) if answer else 0
        return status, time.perf_counter() - started


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


@contextmanager
def rig() -> Iterator[Rig]:
    logged = Logged()
    logging.getLogger().addHandler(logged)
    logging.getLogger().setLevel(logging.INFO)
    upstream = FakeUpstream()
    upstream.start()
    os.environ["FAKE_UPSTREAM_KEY"] = UPSTREAM_KEY
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        with tempfile.TemporaryDirectory() as directory:
            settings = Settings(
                policies=write_policy(Path(directory), upstream),
                api_keys=KEYS,
                client_body_timeout_s=BODY_TIMEOUT_S,
                admin_key=SecretStr(ADMIN_KEY),
                _env_file=None,
            )  # type: ignore[call-arg]
            app = create_app(settings, CollectorRegistry())
            protocol = head_limited(settings.max_header_bytes, settings.client_header_timeout_s)
            with serve_in_thread(app, http=protocol) as url:  # as `floorgate serve` does
                yield Rig(url, app, upstream, logged)
    finally:
        upstream.stop()
        logging.getLogger().removeHandler(logged)
