"""The chart, rendered by real Helm: the Helm v4 SDK that the PyPI package helm-python-sdk
bundles (no binary, no cluster, offline). For the default values and for every optional part
turned on, each rendered Kubernetes manifest is validated strictly against a pinned
Kubernetes version, the rendered PrometheusRule passes `promtool check rules`, and the
rendered dashboard ConfigMap holds the project's dashboard byte for byte.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from gateway.policy.loader import load_policy
from tests.test_prometheus import DASHBOARD, ROOT, RULES, need

CHART = ROOT / "helm" / "floorgate"
KUBERNETES = "1.31.0"  # the version every rendered manifest must be valid for
OPERATOR_KINDS = {"PrometheusRule", "ServiceMonitor"}  # CRDs: kubernetes-validate has no schema
EVERY_PART = {
    "replicaCount": 2,
    "existingSecret": "floorgate-env",
    "redis": {"existingSecret": "floorgate-redis"},
    "env": [{"name": "FLOORGATE_LOG_LEVEL", "value": "debug"}],
    "policies": {"files": {"default.yaml": (ROOT / "policies" / "default.yaml").read_text()}},
    "autoscaling": {"enabled": True},
    "podDisruptionBudget": {"enabled": True},
    "networkPolicy": {
        "enabled": True,
        "from": [{"namespaceSelector": {"matchLabels": {"team": "agents"}}}],
    },
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {"labels": {"release": "kube-prometheus-stack"}},
}
VALUES = {"defaults": {}, "every-part": EVERY_PART}


def render(values: dict[str, Any]) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name="floorgate", namespace="floorgate")


def manifests(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        doc
        for path, text in render(values).items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{kind}: {len(found)}"
    return found[0]


def test_helm_lints_the_chart() -> None:
    for values in VALUES.values():
        report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES}")
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("name", VALUES)
def test_every_rendered_manifest_is_valid_kubernetes(name: str) -> None:
    docs = manifests(VALUES[name])
    kinds = sorted(d["kind"] for d in docs)
    expected = ["ConfigMap", "ConfigMap", "Deployment", "PrometheusRule", "Service"]
    if name == "every-part":
        expected += ["HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget"]
        expected += ["ServiceMonitor"]
    assert kinds == sorted(expected)
    for doc in docs:
        if doc["kind"] not in OPERATOR_KINDS:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    if name == "every-part":
        monitor = one(docs, "ServiceMonitor")
        selector = one(docs, "Service")["spec"]["selector"]
        assert monitor["spec"]["selector"]["matchLabels"] == selector
        assert monitor["spec"]["endpoints"][0]["port"] == "http"


@pytest.mark.parametrize("name", VALUES)
def test_the_rendered_prometheusrule_passes_promtool(name: str, tmp_path: Path) -> None:
    rule = one(manifests(VALUES[name]), "PrometheusRule")
    path = tmp_path / "rendered-rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    run = subprocess.run(
        [need("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert rule["spec"] == yaml.safe_load(RULES.read_text())  # the defaults: the tested file


def test_the_rendered_dashboard_is_the_projects_byte_for_byte() -> None:
    config = [d for d in manifests({}) if d["metadata"]["name"] == "floorgate-dashboard"]
    assert config[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config[0]["data"]["floorgate-dashboard.json"].encode() == DASHBOARD.read_bytes()


@pytest.mark.parametrize(
    "values",
    [{"replicaCount": 2}, {"autoscaling": {"enabled": True}}],
    ids=["replicas", "autoscaling"],
)
def test_more_than_one_pod_without_shared_state_is_refused(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"needs shared state: set redis\.url"):
        render(values)
    render(values | {"redis": {"url": "redis://redis:6379/0"}})


def test_the_default_policy_names_no_loopback_upstream(tmp_path: Path) -> None:
    config = one([d for d in manifests({}) if "policies" in d["metadata"]["name"]], "ConfigMap")
    for name, text in config["data"].items():
        (tmp_path / name).write_text(text)
    policy = load_policy(tmp_path)  # a policy the gateway accepts, tests included
    hosts = {urlsplit(m.api_base).hostname for m in policy.spec.models.values() if m.api_base}
    assert hosts and not hosts & {"127.0.0.1", "localhost", "::1", "0.0.0.0"}, hosts


def test_the_pod_meets_the_restricted_profile_with_probes_and_a_long_grace() -> None:
    pod = one(manifests({}), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"startupProbe", "livenessProbe"} <= container.keys()
    assert pod["terminationGracePeriodSeconds"] > 600  # a model's default timeout_s


def test_the_values_schema_refuses_unknown_keys_and_wrong_types() -> None:
    for bad, where in (({"replicas": 2}, "replicas"), ({"replicaCount": "2"}, "/replicaCount")):
        with pytest.raises(helm.HelmValuesError, match=where):
            render(bad)


def test_notes_say_what_is_missing() -> None:
    notes = render({})["floorgate/templates/NOTES.txt"]
    assert "existingSecret is not set" in notes
    assert "/readyz" in notes
    assert "existingSecret is not set" not in render(EVERY_PART)["floorgate/templates/NOTES.txt"]


def test_alert_thresholds_and_watched_routes_are_values(tmp_path: Path) -> None:
    """Each threshold of the rules file, and the routes its calibration alerts watch, moves
    with its value; the result still passes promtool. The defaults are the file itself."""
    values = {
        "watchedRoutes": "careful|strict-.*",
        "maxEscapeRate": 0.1,
        "minJudged": 20,
        "abstentionCollapseRatio": 0.3,
        "minAnswered": 30,
        "maxUpstreamErrorRatio": 0.02,
        "maxLoopLagSeconds": 0.08,
        "maxOverloadRefusalRatio": 0.03,
    }
    rule = one(manifests({"prometheusRule": values}), "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    collapse = alerts["FloorgateAbstentionRateCollapsed"]["expr"]
    assert '{route=~"careful|strict-.*"}' in collapse and "< 0.3 * " in collapse
    assert "rate1h * 3600 >= 30" in collapse
    escape = alerts["FloorgateEscapeRateAboveGate"]
    assert '{route=~"careful|strict-.*"} > 0.1\n' in escape["expr"]
    assert "increase1d >= 20" in escape["expr"]
    assert "above 10%" in escape["annotations"]["summary"]
    assert "(gate: 10%)" in escape["annotations"]["description"]
    assert "ratio_rate5m > 0.02" in alerts["FloorgateUpstreamErrorRatioHigh"]["expr"]
    lag = alerts["FloorgateEventLoopLagHigh"]
    assert lag["expr"].endswith("[5m])) > 0.08\n")
    assert "more than 80 ms late" in lag["annotations"]["description"]
    refusing = alerts["FloorgateOverloadRefusing"]
    assert refusing["expr"].endswith(") > 0) > 0.03\n")
    assert "more than 3% of its requests" in refusing["annotations"]["description"]
    text = yaml.safe_dump(rule["spec"])
    for default in ("calibration-first.*", "0.05", ">= 50", "0.2 *", "5%", "> 0.01", "50 ms"):
        assert default not in text, f"{default!r} did not move with its value"
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    run = subprocess.run([need("promtool"), "check", "rules", str(path)], capture_output=True)
    assert run.returncode == 0, run.stdout + run.stderr
