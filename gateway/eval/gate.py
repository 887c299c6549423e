"""`floorgate eval gate --route NAME`: each candidate against the route's gate, on the
evaluation's numbers; a pass is recorded as an admission (gateway/policy/admissions.py).

How the gate's limits read the evaluation (docs/eval.md):
- max_escape_rate, min_merge_rate: the escape and merge rates;
- min_abstention_rate: abstention on vague tickets (asking is what a careful model should do);
- max_abstention_rate: abstention on clear tickets (where it is a cost);
- min/max_self_flag_rate: flagged outputs over all outputs, as the live gate counts them.
`decide="point"` compares the rate itself with the limit; `decide="interval"` needs the whole
95 % interval on the right side of it. A limited rate with no samples fails either way; the
gate's `min_samples` belongs to live windows and does not apply to twenty tickets.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from gateway.eval.report import Numbers, Report
from gateway.eval.stats import Rate
from gateway.gates import limits
from gateway.policy.admissions import Admission, contract_on, gate_digest
from gateway.policy.compiled import Policy
from gateway.policy.model import Gate

Decide = Literal["point", "interval"]


@dataclass(frozen=True, slots=True)
class Check:
    text: str
    passed: bool


@dataclass(frozen=True, slots=True)
class Standing:
    candidate: str
    checks: tuple[Check, ...]
    problem: str | None = None  # why it cannot be admitted to this route at all

    @property
    def passed(self) -> bool:
        return self.problem is None and all(c.passed for c in self.checks)


def _rate(n: Numbers, name: str, bound: str) -> tuple[str, Rate]:
    if name == "abstention":
        key = "abstention_vague" if bound == "min" else "abstention_clear"
        return key.replace("_", " on ") + " tickets", n.rates[key]
    if name == "self_flag":
        return "flagged outputs", n.flagged
    return f"{name} rate", n.rates[name]


def _check(n: Numbers, name: str, bound: str, limit: float, decide: Decide) -> Check:
    title, rate = _rate(n, name, bound)
    sign = ">=" if bound == "min" else "<="
    if rate.value is None or rate.interval is None:
        return Check(f"{title}: no samples, so not shown to be {sign} {limit:g}", False)
    low, high = rate.interval
    edge = low if bound == "min" else high
    value = edge if decide == "interval" else rate.value
    passed = value >= limit if bound == "min" else value <= limit
    straddles = (low < limit <= high) if bound == "min" else (low <= limit < high)
    note = ""
    if decide == "point" and straddles:
        note = f"; its interval crosses {limit:g}: not yet conclusive at n = {rate.n}"
    what = "the interval's bound" if decide == "interval" else "the rate"
    verdict = "pass" if passed else "FAIL"
    return Check(f"{title} {rate.text()}: {what} {sign} {limit:g}? {verdict}{note}", passed)


def judge(policy: Policy, route: str, report: Report, decide: Decide) -> list[Standing]:
    definition = policy.spec.routes[route]
    gate = definition.gate
    assert gate is not None, "the caller checks the route has a gate"
    out = []
    for n in report.numbers:
        problem = None
        if n.model not in policy.spec.models:
            problem = f"the policy declares no model '{n.model}'"
        elif n.contract != contract_on(definition):
            runs = "runs" if contract_on(definition) else "does not run"
            was = "with" if n.contract else "without"
            problem = f"route '{route}' {runs} the calibration contract; this was {was} it"
        checks = tuple(_check(n, *limit, decide) for limit in limits(gate))
        out.append(Standing(n.candidate, checks, problem))
    return out


def admission(policy: Policy, route: str, gate: Gate, n: Numbers, report: Report) -> Admission:
    spec = policy.spec.models[n.model]
    return Admission(
        route=route,
        model=n.model,
        provider=spec.provider,
        upstream_model=spec.model,
        contract=n.contract,
        gate_digest=gate_digest(gate),
        results_digest=report.digest,
        candidate=n.candidate,
        tickets=f"{report.tickets_name} ({report.tickets} tickets)",
        admitted_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        numbers={name: rate.text() for name, rate in n.rates.items()},
    )
