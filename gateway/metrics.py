"""Every floorgate_ series, on an injected registry, with labels from bounded sets only.

Label children are cached per label tuple: `labels()` is the costly part of an update.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from gateway import __version__
from gateway.classify import Verdict

UNKNOWN = "unknown"
NONE = "none"
RELOAD_TRIGGERS = ("watch", "sighup", "admin")
LATENCY_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92)  # fmt: skip


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        labels = ("workflow", "route", "model")
        self.requests = Counter(
            "floorgate_requests",
            "Requests answered, by workflow, route, serving model and HTTP status code.",
            (*labels, "code", "stream"),
            registry=registry,
        )
        self.duration = Histogram(
            "floorgate_request_duration_seconds",
            "Time from request received to response finished, as the client saw it.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.decisions = Counter(
            "floorgate_route_decisions",
            "Route chosen for each request, by workflow.",
            ("workflow", "route"),
            registry=registry,
        )
        self.unknown_workflows = Counter(
            "floorgate_unknown_workflow_requests",
            "Requests that named an undeclared workflow and were routed as the default.",
            registry=registry,
        )
        self.upstream_errors = Counter(
            "floorgate_upstream_errors",
            "Failed upstream calls (after retries), by model and kind of failure.",
            ("model", "kind"),
            registry=registry,
        )
        self.fallbacks = Counter(
            "floorgate_fallbacks",
            "Times a route fell back from a failed model to the next in its pool.",
            ("route", "model"),
            registry=registry,
        )
        self.classified = Counter(
            "floorgate_classified",
            "Completed responses classified, by label (abstain, flag, answer).",
            (*labels, "label"),
            registry=registry,
        )
        self.abstentions = Counter(
            "floorgate_abstentions",
            "Responses where the model declined or asked instead of answering.",
            (*labels, "kind", "source"),
            registry=registry,
        )
        self.self_flags = Counter(
            "floorgate_self_flags",
            "Responses where the model answered but flagged doubt about its own output.",
            (*labels, "source"),
            registry=registry,
        )
        self.policy = Info("floorgate_policy", "The active policy.", registry=registry)
        self.policy_reloads = Counter(
            "floorgate_policy_reloads",
            "Policy reloads, by result (success, unchanged, failure) and trigger.",
            ("result", "trigger"),
            registry=registry,
        )
        for trigger in RELOAD_TRIGGERS:  # a first failure must show as an increase from 0
            for result in ("success", "failure"):
                self.policy_reloads.labels(result, trigger)
        self.policy_reloaded_at = Gauge(
            "floorgate_policy_last_reload_success_timestamp_seconds",
            "When the serving policy was last loaded, or confirmed, from its files.",
            registry=registry,
        )
        self.policy_reload_ok = Gauge(
            "floorgate_policy_last_reload_successful",
            "1 if the last reload was accepted; 0 while the files on disk are rejected.",
            registry=registry,
        )
        Info("floorgate_build", "Floorgate build.", registry=registry).info(
            {"version": __version__}
        )
        self._children: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}
        self._counters: dict[tuple[object, ...], Counter] = {}

    def request(
        self, workflow: str, route: str, model: str, code: int, stream: bool, seconds: float
    ) -> None:
        key = (workflow, route, model, str(code), "true" if stream else "false")
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.duration.labels(*key[:3]))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def verdict(self, workflow: str, route: str, model: str, verdict: Verdict) -> None:
        self._child(self.classified, workflow, route, model, verdict.label).inc()
        if verdict.label == "abstain":
            kind = verdict.kind or "declined"
            self._child(self.abstentions, workflow, route, model, kind, verdict.source).inc()
        elif verdict.label == "flag":
            self._child(self.self_flags, workflow, route, model, verdict.source).inc()

    def decision(self, workflow: str, route: str) -> None:
        self._child(self.decisions, workflow, route).inc()

    def upstream_error(self, model: str, kind: str) -> None:
        self._child(self.upstream_errors, model, kind).inc()

    def fallback(self, route: str, model: str) -> None:
        self._child(self.fallbacks, route, model).inc()

    def _child(self, metric: Counter, *values: str) -> Counter:
        key = (metric, *values)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = metric.labels(*values)
        return child

    def policy_loaded(self, name: str, version: str) -> None:
        self.policy.info({"name": name, "version": version})
        self.policy_reloaded_at.set_to_current_time()
        self.policy_reload_ok.set(1)

    def policy_reload(self, result: str, trigger: str) -> None:
        self.policy_reloads.labels(result, trigger).inc()
        if result == "failure":
            self.policy_reload_ok.set(0)
