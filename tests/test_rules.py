"""The shipped Prometheus rules: promtool checks them and runs their unit tests, and every
alert is shown both firing and not firing there.

What the rules compute on a real Prometheus scraping a real gateway is
tests/test_prometheus_e2e.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.test_prometheus import FILES, ROOT, RULES, need

UNIT_TESTS = sorted(FILES.glob("floorgate-rules*.test.yaml"))
CHART = ROOT / "helm" / "floorgate"
RECORD = r"[a-z_]+:floorgate_[a-z_]+:[a-z0-9_]+"  # level:metric:operations


def promtool(*args: str | Path, cwd: Path = FILES) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need("promtool"), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def unit_tests() -> list[dict[str, Any]]:
    return [t for path in UNIT_TESTS for t in yaml.safe_load(path.read_text())["tests"]]


def documented_series() -> set[str]:
    return set(
        re.findall(r"^\| `(floorgate_\w+)` \|", (ROOT / "docs/metrics.md").read_text(), re.M)
    )


def test_promtool_checks_the_rules() -> None:
    run = promtool("check", "rules", RULES)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(rules())} rules found" in run.stdout


def test_promtool_runs_the_unit_tests() -> None:
    assert [p.name for p in UNIT_TESTS] == [
        "floorgate-rules-burst.test.yaml",
        "floorgate-rules-long.test.yaml",
        "floorgate-rules.test.yaml",
    ]
    run = promtool("test", "rules", *UNIT_TESTS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("SUCCESS") == len(UNIT_TESTS), run.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts = {r["alert"] for r in rules() if "alert" in r}
    cases = [case for t in unit_tests() for case in t.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert firing == alerts
    assert quiet == alerts


def test_every_recording_rule_is_tested_or_feeds_a_tested_alert() -> None:
    exprs = [case["expr"] for t in unit_tests() for case in t.get("promql_expr_test", [])]
    exprs += [r["expr"] for r in rules() if "alert" in r]
    used = {name for expr in exprs for name in re.findall(RECORD, expr)}
    assert {r["record"] for r in rules() if "record" in r} <= used


def test_alerts_say_how_bad_and_what_to_do() -> None:
    for rule in (r for r in rules() if "alert" in r):
        assert rule["alert"].startswith("Floorgate")
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


def test_rules_read_only_documented_series_and_follow_the_naming_convention() -> None:
    for record in (r["record"] for r in rules() if "record" in r):
        assert re.fullmatch(RECORD, record), f"{record}: not level:metric:operations"
    used = {
        name
        for r in rules()
        for name in re.findall(r"\bfloorgate_\w+?(?=_bucket\b|\b)", re.sub(RECORD, "", r["expr"]))
    }
    assert used and used <= documented_series(), used - documented_series()


def test_the_chart_embeds_the_rules_file() -> None:
    # Rendered with the default values it is the file unchanged: tests/test_helm_chart.py.
    template = (CHART / "templates" / "prometheusrule.yaml").read_text()
    assert '.Files.Get "files/floorgate-rules.yaml"' in template
    assert "kind: PrometheusRule" in template
    # PrometheusRule.spec takes `groups` and nothing else
    assert set(yaml.safe_load(RULES.read_text())) == {"groups"}
    assert "*.test.yaml" in (CHART / ".helmignore").read_text().split()
