"""The Helm chart that ships the gateway, its policies, the dashboard and the rules, read as
files: the files it embeds exist, every value it reads is declared, and its template blocks
are balanced. tests/test_helm_chart.py renders it with real Helm.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.test_prometheus import ROOT

CHART = ROOT / "helm" / "floorgate"
TEMPLATES = sorted((CHART / "templates").glob("*.*"))


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "floorgate"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    names = {path.name for path in TEMPLATES}
    assert {
        "deployment.yaml",
        "service.yaml",
        "configmap-policies.yaml",
        "prometheusrule.yaml",
        "dashboard-configmap.yaml",
    } <= names


def test_every_value_a_template_reads_is_declared() -> None:
    declared = values()
    for path in TEMPLATES:
        for ref in re.findall(r"\.Values((?:\.\w+)+)", path.read_text()):
            node: Any = declared
            for key in ref.strip(".").split("."):
                assert isinstance(node, dict) and key in node, f"{path.name}: .Values{ref}"
                node = node[key]


def test_embedded_files_exist() -> None:
    for path in TEMPLATES:
        text = path.read_text()
        for name in re.findall(r'\.Files\.Get "([^"]+)"', text):
            assert (CHART / name).is_file(), f"{path.name}: {name}"
        for pattern in re.findall(r'\.Files\.Glob "([^"]+)"', text):
            assert list(CHART.glob(pattern)), f"{path.name}: nothing matches {pattern}"


def test_the_default_policy_is_the_repositorys_hosted_example() -> None:
    example = CHART / "files" / "example-policy.yaml"
    assert example.resolve() == (ROOT / "policies" / "examples" / "providers.yaml").resolve()


def test_template_blocks_are_balanced() -> None:
    for path in TEMPLATES:
        actions = re.findall(r"\{\{-?\s*(\w+)", path.read_text())
        opened = sum(a in ("if", "with", "range", "define") for a in actions)
        assert opened == actions.count("end"), path.name
        text = path.read_text()
        assert text.count("{{") == text.count("}}"), path.name


def test_the_dashboard_configmap_carries_the_grafana_sidecar_label() -> None:
    template = (CHART / "templates" / "dashboard-configmap.yaml").read_text()
    assert "{{ .Values.dashboard.label }}: {{ .Values.dashboard.labelValue | quote }}" in template
    assert '(.Files.Glob "files/floorgate-dashboard.json").AsConfig' in template
    dashboard = values()["dashboard"]
    assert (dashboard["label"], dashboard["labelValue"]) == ("grafana_dashboard", "1")


def test_policies_are_mounted_as_a_directory_so_reloads_see_changes() -> None:
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "subPath:" not in deployment
    assert "mountPath: /etc/floorgate/policies" in deployment
    assert "value: /etc/floorgate/policies" in deployment  # FLOORGATE_POLICIES
    assert "checksum/" not in deployment  # a policy change must not roll the pods
