"""Watch a live calibration gate work: escaped defects push a model out of its route's pool,
merged outputs bring it back.

Against a running gateway whose policy gates the workflow's route (tests/policies/gates.yaml):

    .venv/bin/python -m tests.fake_upstream --port 8090 &
    sed 's#__UPSTREAM__#http://127.0.0.1:8090/v1#' tests/policies/gates.yaml > /tmp/gates.yaml
    FLOORGATE_POLICIES=/tmp/gates.yaml FLOORGATE_GATE_REFRESH_S=0.2 .venv/bin/floorgate serve &
    .venv/bin/python scripts/gate_demo.py

or all in this process (fake upstream and gateway on loopback, in-memory state):

    .venv/bin/python scripts/gate_demo.py --spawn
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
RATES = ("escape", "merge", "abstention", "self_flag")


class Demo:
    def __init__(self, url: str, key: str, workflow: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})
        self.chat_client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        self.workflow = workflow
        self.route = ""

    def chat(self) -> tuple[str, str]:
        raw = self.chat_client.chat.completions.with_raw_response.create(
            model=f"workflow/{self.workflow}", messages=[{"role": "user", "content": "Ship it?"}]
        )
        self.route = raw.headers["x-floorgate-route"]
        return raw.headers["x-floorgate-request-id"], raw.headers["x-floorgate-model"]

    def report(self, request_id: str, outcome: str) -> None:
        response = self.http.post(
            "/v1/feedback", json={"request_id": request_id, "outcome": outcome}
        )
        response.raise_for_status()

    def gate(self, model: str) -> dict[str, float]:
        """The gate's numbers for `model`, as /metrics shows them."""
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(self.http.get("/metrics").text):
            for s in family.samples:
                if s.labels.get("route") != self.route or s.labels.get("model") != model:
                    continue
                if s.name == "floorgate_gate_passing":
                    found["passing"] = s.value
                elif s.name.startswith("floorgate_gate_window_"):
                    kind = "rate" if s.name.endswith("_rate") else "n"
                    found[f"{s.labels['rate']}_{kind}"] = s.value
        return found

    def settle(self, model: str, escape_samples: int) -> dict[str, float]:
        """Wait until the gate has read every outcome sent so far (it refreshes on its own)."""
        deadline = time.monotonic() + 10
        while (numbers := self.gate(model)).get("escape_n") != escape_samples:
            if time.monotonic() > deadline:
                sys.exit(f"the gate never read the outcomes; is route {self.route} gated?")
            time.sleep(0.05)
        return numbers

    def run(self, answers: int) -> None:
        served = [self.chat() for _ in range(answers)]
        model = served[0][1]
        ids = [request_id for request_id, m in served if m == model]
        print(f"route {self.route}: {len(ids)} of {answers} answers served by {model}")
        sent = self.drive(model, ids, "escaped_defect", until_serving=False, sent=0)
        self.drive(model, ids[sent:], "merged", until_serving=True, sent=sent)

    def drive(
        self, model: str, ids: list[str], outcome: str, until_serving: bool, sent: int
    ) -> int:
        """Report `outcome` for one output at a time until `model` is (or is no longer) serving."""
        for i, request_id in enumerate(ids, 1):
            self.report(request_id, outcome)
            numbers = self.settle(model, sent + i)
            _, now_serving = self.chat()
            print(f"  {outcome:>15} #{i}: {describe(numbers)} -> x-floorgate-model {now_serving}")
            if (now_serving == model) == until_serving:
                verdict = "back in" if until_serving else "gated out; the next model serves"
                print(f"{model} {verdict}\n")
                return sent + i
        sys.exit(f"{model} never changed state; send more answers (--answers) or check the gate")


def describe(numbers: dict[str, float]) -> str:
    rate, n = numbers.get("escape_rate", float("nan")), int(numbers.get("escape_n", 0))
    passing = "passing" if numbers.get("passing") == 1 else "FAILING"
    return f"escape rate {rate:.2f} of {n} merged, gate {passing}"


@contextmanager
def spawned() -> Iterator[str]:
    """The fake upstream and a gateway over tests/policies/gates.yaml, in this process."""
    sys.path.insert(0, str(ROOT))
    from prometheus_client import CollectorRegistry

    from gateway.app import create_app
    from gateway.settings import Settings
    from tests.fake_upstream import FakeUpstream
    from tests.servers import serve_in_thread

    upstream = FakeUpstream()
    upstream.start()
    with tempfile.TemporaryDirectory() as directory:
        policy = Path(directory) / "gates.yaml"
        text = (ROOT / "tests" / "policies" / "gates.yaml").read_text()
        policy.write_text(text.replace("__UPSTREAM__", upstream.base_url))
        settings = Settings(policies=policy, gate_refresh_s=0.1, _env_file=None)  # type: ignore[call-arg]
        with serve_in_thread(create_app(settings, CollectorRegistry())) as url:
            yield url
    upstream.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--gateway", default="http://127.0.0.1:4000")
    parser.add_argument("--key", default="unused-on-loopback", help="an API key for the workflow")
    parser.add_argument("--workflow", default="deploy-pipeline")
    parser.add_argument("--answers", type=int, default=12, help="answers to report outcomes on")
    parser.add_argument("--spawn", action="store_true", help="start upstream and gateway here")
    args = parser.parse_args()
    if args.spawn:
        with spawned() as url:
            Demo(url, args.key, args.workflow).run(args.answers)
    else:
        Demo(args.gateway, args.key, args.workflow).run(args.answers)


if __name__ == "__main__":
    main()
