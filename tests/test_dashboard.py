"""The shipped Grafana dashboard, read as Grafana would: its variables, its panels, and which
series each query reads. That every query returns the right data from a real Prometheus is
tests/test_prometheus_e2e.py.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from typing import Any

from tests.test_prometheus import DASHBOARD, ROOT

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
FILTERS = ("workflow", "route", "model")
# Range windows a query may use: Grafana's, or a day for feedback that arrives hours late.
WINDOWS = {"$__rate_interval", "$__range", "1d"}
# Selectors that deliberately ignore a variable their series carries: the upstream error
# ratio's successes stay unfiltered by workflow and route, as its errors cannot be.
UNFILTERED = {("Upstream error ratio by model", "floorgate_requests_total"): {"workflow", "route"}}
REQUIRED_PANELS = (
    "Route decisions by workflow",
    "Abstention rate by model and route",
    "Self-flag rate by model and route",
    "Merge rate by model (1d)",
    "Escape rate by model (1d)",
    "The four numbers per model, over the dashboard's time range",
    "Gate state by model and route",
    "Routes with every model failing",
    "Request latency p50 / p99",
    "Time to first token p50 / p99 (streams)",
    "Gateway overhead p50 / p99",
    "Tokens per second by model and type",
    "Estimated cost per hour by workflow and model",
    "Pods per policy version",
    "Policy reloads",
    "Upstream errors by model and kind",
    "Fallbacks by route and failed model",
    "Requests refused by limits",
    "Daily budget used by workflow",
    "Event-loop lag p99 by pod",
    "Accept-queue wait p50 / p99 by pod",
    "Overload refusals",
)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            found.append(item)
            walk(item.get("panels", []))

    walk(dashboard()["panels"])
    return found


def series_labels() -> dict[str, set[str]]:
    """docs/metrics.md's series table: name -> its labels."""
    section = (ROOT / "docs/metrics.md").read_text().split("\n## Series\n", 1)[1].split("\n## ")[0]
    rows = re.findall(r"^\| `(floorgate_\w+)` \| [^|]+ \|([^|]*)\|", section, re.M)
    return {
        name: {label.strip() for label in labels.split(",") if label.strip()}
        for name, labels in rows
    }


def selectors(expr: str) -> list[tuple[str, str]]:
    """(series, matchers) for each floorgate_ selector in a query."""
    return re.findall(r"\b(floorgate_\w+?)(?:_bucket)?(?:\{([^}]*)\})?(?:\[|\)|\s|$)", expr)


def test_identity_and_variables() -> None:
    board = dashboard()
    assert board["uid"] == "floorgate-model-behaviour"  # stable: links and provisioning use it
    assert board["id"] is None and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert list(variables) == ["datasource", *FILTERS]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in FILTERS:
        var = variables[name]
        assert var["type"] == "query" and var["datasource"] == DATASOURCE
        assert var["definition"].startswith("label_values(floorgate_requests_total")
        assert var["definition"].endswith(f", {name})")
        assert var["multi"] and var["includeAll"] and var["allValue"] == ".*"


def test_every_panel_queries_prometheus_through_the_variable() -> None:
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in panels()}
    assert set(REQUIRED_PANELS) <= titles, set(REQUIRED_PANELS) - titles
    for panel in (p for p in panels() if p["type"] != "row"):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            windows = set(re.findall(r"\[([^\]]+)\]", target["expr"]))
            assert windows <= WINDOWS, f"{panel['title']}: {windows - WINDOWS}"


def test_queries_read_documented_series_and_honour_the_filters() -> None:
    documented = series_labels()
    for panel in (p for p in panels() if p["type"] != "row"):
        for target in panel["targets"]:
            for series, matchers in selectors(target["expr"]):
                assert series in documented, f"{panel['title']}: {series} is not documented"
                skip = UNFILTERED.get((panel["title"], series), set())
                for label in (documented[series] & set(FILTERS)) - skip:
                    assert f'{label}=~"${label}"' in matchers, f"{panel['title']}: {series} {label}"


def test_rate_queries_use_the_rate_interval() -> None:
    for panel in (p for p in panels() if p["type"] == "timeseries"):
        for target in panel["targets"]:
            for window in re.findall(r"\b(?:rate|increase)\([^\[]+\[([^\]]+)\]", target["expr"]):
                assert window in ("$__rate_interval", "1d"), f"{panel['title']}: [{window}]"


def test_the_four_numbers_sit_side_by_side_per_model() -> None:
    [table] = [p for p in panels() if p["type"] == "table"]
    assert [t["refId"] for t in table["targets"]] == list("ABCDEF")
    assert all(t["instant"] and t["format"] == "table" for t in table["targets"])
    assert all("sum by (model)" in t["expr"] and "$__range" in t["expr"] for t in table["targets"])
    names = next(t for t in table["transformations"] if t["id"] == "organize")["options"]
    assert list(names["renameByName"].values())[:4] == [
        "abstention rate",
        "self-flag rate",
        "merge rate",
        "escape rate",
    ]


def test_panels_do_not_overlap() -> None:
    boxes = [(p["title"], p["gridPos"]) for p in panels()]
    for _, box in boxes:
        assert box["x"] + box["w"] <= 24
    for (a, p), (b, q) in combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"{a} overlaps {b}"
