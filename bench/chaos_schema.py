"""Chaos scenario over the gateway's own OpenAPI document: schemathesis generates requests for
every operation /openapi.json declares, valid and invalid, and no answer may be a 5xx
(bench/chaos.py lists every scenario)."""

from __future__ import annotations

import time

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import HypothesisException
from hypothesis.reporting import with_reporter
from schemathesis import APIOperation, Case, GenerationMode

from bench.chaos_rig import ADMIN_KEY, Rig

Figures = dict[str, str]
BUDGET_S = 40.0  # the whole scenario's, spread over the operations and both modes
EXAMPLES = 1000  # at most, per operation and mode
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Healthy models of the rig's policy whose dialects differ (gateway/upstream/dialect.py): a
# generated name routes as the workflow; these reach each dialect's own rewriting.
DIALECTS = ("json-object", "no-schema", "no-usage", "native", "openai-wire", "llama-tools",
            "embed", "embed-litellm")  # fmt: skip


class Tally:
    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.session = requests.Session()
        self.cases = 0
        self.server_errors: list[str] = []
        self.unexplored: list[str] = []  # operations hypothesis could not generate for
        self.steered = 0  # generated `model` values that named the policy (_policy_names)

    def call(self, case: Case) -> None:
        # Every other case on a key bound to a workflow, on which any `model` routes as it.
        key = "key-any" if self.cases % 2 else "key-deploy"
        key = ADMIN_KEY if case.path.startswith("/admin") else key
        headers = {"Authorization": f"Bearer {key}", **(case.headers or {})}
        body = case.body
        if isinstance(body, dict) and isinstance(model := body.get("model"), str):
            named = model in _policy_names(self.rig)
            self.steered += named
            if named or self.cases % 3 == 0:
                body["model"] = DIALECTS[self.cases // 3 % len(DIALECTS)]
        response = case.call(base_url=self.rig.url, session=self.session, headers=headers,
                             timeout=10)  # fmt: skip
        self.cases += 1
        if response.status_code >= 500 and not _not_ready(case, response):
            self.server_errors.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:160]} [{case.as_curl_command()[:300]}]"
            )


def schemathesis_openapi(rig: Rig) -> Figures:
    """Every operation of /openapi.json, with bodies, queries and paths schemathesis makes
    from its schemas (positive) and against them (negative), within BUDGET_S: 0 5xx."""
    schema = schemathesis.openapi.from_url(f"{rig.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    tally = Tally(rig)
    runs = [(operation, mode) for mode in MODES for operation in operations]
    end = time.monotonic() + BUDGET_S
    for done, (operation, mode) in enumerate(runs):  # what one leaves unspent, the next gets
        now = time.monotonic()
        _explore(tally, operation, mode, now + (end - now) / (len(runs) - done))
    if tally.server_errors:
        raise AssertionError(f"{len(tally.server_errors)} 5xx: {tally.server_errors[0]}")
    # An operation with no parameter and no body schema has no invalid request to make.
    return {"operations": str(len(operations)), "cases": str(tally.cases), "5xx": "0",
            "no_negative_case": f"{len(tally.unexplored)} of {len(runs)}",
            "policy_names_steered": str(tally.steered)}  # fmt: skip


class _Spent(Exception):
    """This operation's share of the budget is spent."""


def _explore(tally: Tally, operation: APIOperation, mode: GenerationMode, until: float) -> None:
    # Generation only: no shrinking of the _Spent that ends the run.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Case) -> None:
        if time.monotonic() > until:
            raise _Spent
        tally.call(case)

    try:
        with with_reporter(lambda _: None):  # hypothesis's own report of the _Spent
            one()
    except _Spent:
        pass
    except HypothesisException as exc:  # no case could be made for this operation and mode
        tally.unexplored.append(f"{operation.label} {mode.value} ({type(exc).__name__})")


def _policy_names(rig: Rig) -> frozenset[str]:
    """Every `model` that names one of the rig's models or routes. Hypothesis draws the string
    literals of the project's own modules (bench/chaos.py's "inband-error", say), and the rig's
    policy has models that fail on purpose (cut, echo-key, first-token, stall-long): their 5xx,
    or a stream that never ends, is the right answer. A generated name of the policy gets a
    healthy dialect instead, as every third case does."""
    policy = rig.app.runtime.policies.current
    routes = policy.spec.routes
    return frozenset([*policy.models, *(f"route/{r}" for r in routes),
                      *(f"route:{r}" for r in routes)])  # fmt: skip


def _not_ready(case: Case, response: requests.Response) -> bool:
    """/readyz's 503 is its answer, not a failure: the rig's policy has a route whose model
    lacks its key on purpose."""
    return case.path == "/readyz" and response.status_code == 503 and "not_ready" in response.text
