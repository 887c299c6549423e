"""Gateways for the feedback, gate and Redis-outage tests: each over the gates policy
(tests/policies/gates.yaml) and its own state, in memory or in Redis, served by uvicorn in a
thread; chat goes through the openai SDK, feedback through httpx."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from gateway.app import Floorgate, create_app
from gateway.settings import Settings
from tests.fake_upstream import FakeUpstream
from tests.servers import serve_in_thread

HERE = Path(__file__).parent
KEYS = "key-any=*,key-deploy=deploy-pipeline,key-bulk=bulk-summarization"
CAREFUL = {"route": "calibration-first", "model": "careful"}


def gates_policy(directory: Path, upstream: FakeUpstream) -> Path:
    text = (HERE / "policies" / "gates.yaml").read_text()
    path = directory / "gates.yaml"
    path.write_text(text.replace("__UPSTREAM__", upstream.base_url))
    return path


def state_settings(policy: Path, redis_url: str | None = None, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "policies": policy,
        "api_keys": SecretStr(KEYS),
        "redis_url": SecretStr(redis_url) if redis_url else None,
        "policy_poll_s": 0,
        "gate_refresh_s": 0.05,
        "ledger_flush_s": 0.01,
    }
    return Settings(**(fields | overrides), _env_file=None)  # type: ignore[call-arg]


@contextmanager
def served(settings: Settings) -> Iterator[tuple[str, Floorgate]]:
    app = create_app(settings, CollectorRegistry())
    with serve_in_thread(app) as url:
        yield url, app


class Caller:
    """One client of a gateway: chat with the openai SDK, feedback with httpx."""

    def __init__(self, url: str, key: str = "key-any") -> None:
        self.openai = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        self.http = httpx.Client(
            base_url=url, timeout=10, headers={"Authorization": f"Bearer {key}"}
        )

    def chat(self, model: str = "workflow/deploy-pipeline") -> tuple[str, str]:
        """(request id, serving model) of one answered completion."""
        raw = self.openai.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "Is this migration safe?"}]
        )
        raw.parse()
        return raw.headers["x-floorgate-request-id"], raw.headers["x-floorgate-model"]

    def feedback(self, request_id: str, outcome: str, **extra: Any) -> httpx.Response:
        body = {"request_id": request_id, "outcome": outcome, **extra}
        return self.http.post("/v1/feedback", json=body)

    def close(self) -> None:
        self.openai.close()
        self.http.close()

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sample(app: Floorgate, metric: str, /, **labels: str) -> float | None:
    value: float | None = app.runtime.metrics.registry.get_sample_value(metric, labels)
    return value


def wait_until(probe: Callable[[], bool], timeout_s: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        time.sleep(0.02)


def drained(app: Floorgate) -> bool:
    """Every answered request's record has reached the store."""
    return app.runtime.ledger.pending == 0


class Load:
    """Threads sending chat completions until stopped; every answer or error is kept."""

    def __init__(self, url: str, workers: int = 6, model: str = "workflow/deploy-pipeline") -> None:
        self.url = url
        self.model = model
        self.answered: list[tuple[str, float]] = []  # (request id, when the client had it)
        self.latencies: list[tuple[float, float]] = []  # (when the client had it, seconds)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(workers)]

    def _run(self) -> None:
        with Caller(self.url) as caller:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    request_id, _ = caller.chat(self.model)
                except openai.OpenAIError as exc:
                    self.errors.append(repr(exc))
                    continue
                now = time.monotonic()
                self.answered.append((request_id, now))
                self.latencies.append((now, now - started))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def grows_by(self, n: int) -> None:
        target = len(self.answered) + n
        wait_until(lambda: len(self.answered) >= target, 10, f"{n} more answers")
