"""A real gateway and a real Prometheus for the tests of the shipped rules and dashboard, and
`promtool check metrics` on the gateway's real /metrics after traffic.

serve_policy() runs create_app under uvicorn with a policy from tests/data/ in front of the
fake upstream; prometheus_server() runs the Prometheus binary on a free loopback port,
scraping it every second with helm/floorgate/files/floorgate-rules.yaml loaded, and stops it
whatever happens. tests/test_prometheus_e2e.py drives them; tests/test_prometheus_cardinality.py
holds the gateway to its series budget.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import UPSTREAM_KEY
from tests.fake_upstream import FakeUpstream
from tests.servers import free_port, serve_in_thread

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "helm" / "floorgate" / "files"
RULES = FILES / "floorgate-rules.yaml"
DASHBOARD = FILES / "floorgate-dashboard.json"
DATA = Path(__file__).resolve().parent / "data"
ANSWER = "SAY: Here is the summary you asked for."
ABSTAIN = "SAY: I'm sorry, but I can't help with that."
FLAG = "SAY: Done. I haven't tested this."
LABELS = {ANSWER: "answer", ABSTAIN: "abstain", FLAG: "flag"}
OUTCOMES = ("merged", "merged_with_edits", "rejected", "escaped_defect")
CAREFUL, FAST = "deploy-pipeline", "bulk-summarization"  # -> calibration-first, capability-first


@dataclass(frozen=True, slots=True)
class Sent:
    """One answered chat request, and what the fake upstream was told to say."""

    request_id: str
    workflow: str
    route: str
    model: str
    label: str


def policy_file(directory: Path, upstream: FakeUpstream, name: str) -> Path:
    path = directory / name
    path.write_text((DATA / name).read_text().replace("__UPSTREAM__", upstream.base_url))
    return path


@contextmanager
def serve_policy(policy: Path, registry: CollectorRegistry, **settings: Any) -> Iterator[str]:
    """A gateway serving `policy` on loopback, its metrics on `registry`; yields its URL."""
    app = create_app(Settings(policies=policy, _env_file=None, **settings), registry)  # type: ignore[call-arg]
    with serve_in_thread(app) as url:
        yield url


def promtool_check_metrics(text: str) -> str:
    """promtool's findings on an exposition ('' when clean): lint problems go to stdout."""
    run = subprocess.run(
        [need("promtool"), "check", "metrics"], input=text, capture_output=True, text=True
    )
    return (run.stdout + run.stderr).strip() or ("" if run.returncode == 0 else "failed")


def need(binary: str) -> str:
    path = shutil.which(binary)
    assert path, f"{binary} is not installed (Debian: apt-get install prometheus; .ci/run does)"
    return path


def poll(probe: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """`probe()` until `done` says so or `timeout` s pass; the last value, for the assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def partial(check: Callable[[T, T], bool], want: T) -> Callable[[T], bool]:
    return lambda got: check(got, want)


def local_total(registry: CollectorRegistry, sample: str) -> float:
    return sum(s.value for m in registry.collect() for s in m.samples if s.name == sample)


def chat(client: httpx.Client, workflow: str, text: str, stream: bool = False, **body: Any) -> Sent:
    body = {"model": f"workflow/{workflow}", "stream": stream} | body
    body["messages"] = [{"role": "user", "content": text}]
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.read()
    assert response.status_code == 200, response.text
    h = response.headers
    route, model = h["x-floorgate-route"], h["x-floorgate-model"]
    return Sent(h["x-floorgate-request-id"], workflow, route, model, LABELS[text])


def feedback(client: httpx.Client, sent: Sent, outcome: str, verdict: str | None = None) -> None:
    body = {"request_id": sent.request_id, "outcome": outcome}
    response = client.post("/v1/feedback", json=body | ({"verdict": verdict} if verdict else {}))
    assert response.status_code == 200, response.text


class Prometheus:
    """The HTTP API of a Prometheus server."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def ready(self) -> bool:
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.http.get("/api/v1/query", params={"query": expr}).json()
        assert body["status"] == "success", f"{expr}\n{body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {
            tuple(r["metric"].get(label, "") for label in labels): float(r["value"][1])
            for r in self.query(expr)
        }

    def total(self, expr: str) -> float | None:
        result = self.query(f"sum({expr})")
        return float(result[0]["value"][1]) if result else None

    def get(self, path: str, **params: str) -> Any:
        body = self.http.get(path, params=params).json()
        assert body["status"] == "success", f"{path}\n{body}"
        return body["data"]


@contextmanager
def prometheus_server(workdir: Path, gateway: str, scrape_s: int = 1) -> Iterator[Prometheus]:
    """The real Prometheus on a free loopback port, scraping `gateway` every `scrape_s` with
    the shipped rules evaluated every second; stopped on the way out, whatever happened."""
    port = free_port()
    every = {"scrape_interval": f"{scrape_s}s", "scrape_timeout": "1s"}
    config = {
        "global": every | {"evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "floorgate", "static_configs": [{"targets": [gateway.split("//")[1]]}]}
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    log_path = workdir / "prometheus.log"
    command = [
        need("prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            prometheus = Prometheus(http)
            assert poll(prometheus.ready, bool, 30), "Prometheus did not become ready"
            yield prometheus
    except BaseException:
        print(f"--- prometheus log ---\n{log_path.read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def warm_up(client: httpx.Client) -> list[Sent]:
    """Every series the load touches, with each feedback outcome for each (route, model)."""
    sent = []
    for workflow in (CAREFUL, FAST):
        batch = [chat(client, workflow, text) for text in (ANSWER, ABSTAIN, FLAG)]
        batch.append(chat(client, workflow, ANSWER, stream=True))
        for one, outcome in zip(batch, OUTCOMES, strict=True):
            feedback(client, one, outcome)
        sent += batch
    sent.append(chat(client, CAREFUL, ANSWER, model="route/fails-then-ok"))
    sent.append(chat(client, "no-such-workflow", ANSWER))  # routed as the default workflow
    return sent


def test_metrics_after_traffic_pass_promtool_check_metrics(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)
    registry = CollectorRegistry()
    policy = policy_file(tmp_path, upstream, "prometheus-policy.yaml")
    with (
        serve_policy(policy, registry, gate_refresh_s=0.1) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as client,
    ):
        warmed = warm_up(client)  # answers, abstentions, self-flags, a stream, a fallback
        bad = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/chat/completions", json=bad).status_code == 404
        answered = poll(
            lambda: local_total(registry, "floorgate_classified_total"),
            lambda v: v >= len(warmed),
            5,
        )
        assert answered == len(warmed)
        gates = "floorgate_gate_passing"
        assert poll(lambda: local_total(registry, gates), lambda v: v > 0, 5), "no gate state"
        exposition = client.get("/metrics").text
    for series in ("floorgate_abstentions_total{", "floorgate_self_flags_total{",
                   "floorgate_time_to_first_token_seconds_bucket{", "floorgate_fallbacks_total{",
                   "floorgate_feedback_total{", "floorgate_tokens_total{"):  # fmt: skip
        assert series in exposition
    assert promtool_check_metrics(exposition) == ""
