"""The live gates' series (gateway/gates.py keeps them), on the registry `Metrics` is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class GateSeries:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.passing = Gauge(
            "floorgate_gate_passing",
            "1 while a model passes its route's live gate, 0 while it fails (and is skipped).",
            ("route", "model"),
            registry=registry,
        )
        self.all_failing = Gauge(
            "floorgate_gate_all_failing",
            "1 while every model of a gated route fails its gate.",
            ("route",),
            registry=registry,
        )
        self.rate = Gauge(
            "floorgate_gate_window_rate",
            "A model's rate over its gate's window, or a day if ungated (NaN with no samples).",
            ("route", "model", "rate"),
            registry=registry,
        )
        self.samples = Gauge(
            "floorgate_gate_window_samples",
            "The sample size behind floorgate_gate_window_rate.",
            ("route", "model", "rate"),
            registry=registry,
        )
        self.refresh_failures = Counter(
            "floorgate_gate_refresh_failures",
            "Gate refreshes that could not read the statistics; the last states stay in force.",
            registry=registry,
        )
