"""A gateway of its own over a temporary policy directory, for the reload, admin and explain
tests: they rewrite the policy under it, so they must not share the session's gateway."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from gateway.app import Floorgate, create_app
from gateway.settings import Settings
from tests.fake_upstream import FakeUpstream
from tests.servers import serve_in_thread

T = TypeVar("T")
ADMIN_KEY = "admin-key-0123456789"
KEYS = "key-any=*,key-deploy=deploy-pipeline,key-two=bulk-summarization|draft-generation"
VERSION = "x-floorgate-policy-version"
SECRET_ENV = "FLOORGATE_TEST_RELOAD_KEY"

POLICY = """\
apiVersion: floorgate.dev/v1
kind: RoutingPolicy
metadata: {name: reload-test}
spec:
  traits:
    reversible: {unsafe: false, description: "Actions are reversible."}
    human_reviewed: {unsafe: false}
    throughput_bound: {unsafe: false}
  tree:
    start: reversible
    nodes:
      reversible: {ask: reversible, "yes": human_reviewed, "no": {route: calibration-first}}
      human_reviewed:
        {ask: human_reviewed, "yes": throughput_bound, "no": {route: calibration-first}}
      throughput_bound:
        ask: throughput_bound
        "yes": {route: capability-first}
        "no": {route: calibration-first}
  routes:
    capability-first: {pool: [fast]}
    calibration-first: {strictness: 1, pool: [broken, careful, keyed]}
  models:
    fast: {provider: openai_compatible, model: ok, api_base: "__UPSTREAM__"}
    broken: {provider: openai_compatible, model: "status:500", api_base: "__UPSTREAM__", retries: 0}
    careful: {provider: openai_compatible, model: ok, api_base: "__UPSTREAM__"}
    keyed: {provider: openai, model: ok, api_base: "__UPSTREAM__", api_key: {env: __SECRET_ENV__}}
  workflows:
    bulk-summarization: {traits: {reversible: true, human_reviewed: true, throughput_bound: true}}
    deploy-pipeline: {traits: {reversible: false}}
    draft-generation: {traits: {reversible: true, human_reviewed: true}}
  default_workflow: deploy-pipeline
  tests:
    - {workflow: bulk-summarization, expect: capability-first}
    - {workflow: deploy-pipeline, expect: calibration-first}
    - {workflow: draft-generation, expect: calibration-first}
"""
BULK_TRAITS = (
    "bulk-summarization: {traits: {reversible: true, human_reviewed: true, throughput_bound: true}}"
)
BULK_TEST = "{workflow: bulk-summarization, expect: capability-first}"


def policy_text(upstream: FakeUpstream) -> str:
    return POLICY.replace("__UPSTREAM__", upstream.base_url).replace("__SECRET_ENV__", SECRET_ENV)


def edited(text: str) -> str:
    """The same policy, with bulk-summarization no longer reviewed: it routes calibration-first."""
    text = text.replace(BULK_TRAITS, "bulk-summarization: {traits: {reversible: true}}")
    return text.replace(BULK_TEST, "{workflow: bulk-summarization, expect: calibration-first}")


def replace(path: Path, text: str) -> None:
    """Write as editors and `kubectl cp` do: a whole new file renamed over the old one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def wait_for(probe: Callable[[], T | None], timeout_s: float = 5.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s")
        time.sleep(0.05)


@contextmanager
def own_gateway(
    policies: Path,
    *,
    poll_s: float = 0.2,
    admin_key: str | None = ADMIN_KEY,
    api_keys: str | None = KEYS,
) -> Iterator[tuple[httpx.Client, Floorgate]]:
    settings = Settings(
        policies=policies,
        policy_poll_s=poll_s,
        admin_key=SecretStr(admin_key) if admin_key else None,
        api_keys=SecretStr(api_keys) if api_keys else None,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, CollectorRegistry())
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, app


def chat(client: httpx.Client, workflow: str, key: str = "key-any") -> httpx.Response:
    response = client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": f"workflow/{workflow}", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200, response.text
    return response


def sample(app: Floorgate, metric: str, /, **labels: str) -> float | None:
    value: float | None = app.runtime.metrics.registry.get_sample_value(metric, labels)
    return value
