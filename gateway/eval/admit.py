"""The gate's verdict printed, its exit status, and the admissions it earns written."""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.eval.gate import Decide, admission, judge
from gateway.eval.report import Report
from gateway.policy.admissions import (
    AdmissionsError,
    admissions_path,
    read_admissions,
    write_admissions,
)
from gateway.policy.loader import PolicyError, PolicyReadError, load_policy


def gate_report(policy_path: Path, route: str, report: Report, decide: Decide) -> int:
    """Print each candidate's standing against `route`'s gate; 0 all pass, 1 any fails,
    2 when the gate cannot be read. Every candidate that passes is admitted to the route."""
    try:
        policy = load_policy(policy_path, require_admissions=False)
    except (PolicyError, PolicyReadError) as exc:
        print(f"floorgate eval: {exc}", file=sys.stderr)
        return 2
    definition = policy.spec.routes.get(route)
    if definition is None or definition.gate is None:
        known = ", ".join(r for r, d in policy.spec.routes.items() if d.gate) or "none"
        print(f"floorgate eval: route '{route}' has no gate in policy {policy.name}; "
              f"gated routes: {known}", file=sys.stderr)  # fmt: skip
        return 2
    standings = judge(policy, route, report, decide)
    on = "each rate's whole 95 % interval" if decide == "interval" else "each rate itself"
    print(f"gate of route {route} (policy {policy.name} {policy.version}), decided on {on}:")
    for s in standings:
        print(f"  {s.candidate}: {'PASS' if s.passed else 'FAIL'}")
        if s.problem:
            print(f"    not admissible here: {s.problem}")
        for check in s.checks:
            print(f"    {check.text}")
    by_name = {n.candidate: n for n in report.numbers}
    earned = [admission(policy, route, definition.gate, by_name[s.candidate], report)
              for s in standings if s.passed]  # fmt: skip
    file = admissions_path(policy_path)
    if earned or file.exists():
        try:
            _, kept = read_admissions(file)
        except AdmissionsError as exc:
            print(f"floorgate eval: {exc}", file=sys.stderr)
            return 2
        # A candidate that fails now loses the admission an earlier evaluation gave it.
        replaced = {(route, by_name[s.candidate].model, by_name[s.candidate].contract)
                    for s in standings}  # fmt: skip
        kept = [a for a in kept if (a.route, a.model, a.contract) not in replaced]
        write_admissions(file, kept + earned)
        for a in earned:
            print(f"admitted {a.model} to {route} (results {a.results_digest}) in {file}")
    failed = [s.candidate for s in standings if not s.passed]
    if failed:
        print(f"{len(failed)} candidate(s) fail the gate of {route}: {', '.join(failed)}")
        return 1
    return 0
