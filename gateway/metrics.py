"""Every floorgate_ series, on an injected registry, with labels from bounded sets only.

Label children are cached per label tuple: `labels()` is the costly part of an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from gateway import __version__
from gateway.classify import Verdict
from gateway.gate_metrics import GateSeries
from gateway.loop_lag import BUCKETS as LOOP_LAG_BUCKETS
from gateway.policy.compiled import Policy
from gateway.policy_series import (
    ABSTENTION_SOURCES,
    ANSWERED_STREAM,
    FAILURE_KINDS,
    FLAG_SOURCES,
    OUTCOMES,
    VERDICT_LABELS,
    DeclaredSeries,
    declared_series,
)

AnyMetric = TypeVar("AnyMetric", Counter, Histogram, Gauge)
# Why a request was refused an upstream connection: the queue was full, or too slow.
QUEUE_REFUSALS = ("full", "timeout")
UNKNOWN = "unknown"
NONE = "none"
RELOAD_TRIGGERS = ("watch", "sighup", "admin")
UNATTRIBUTED = ("not_found", "forbidden", "invalid", "unavailable")
CANCEL_STAGES = ("before_first_byte", "mid_stream")
OVERLOAD_REASONS = ("loop_lag", "queue_wait", "in_flight")  # gateway/overload.py
# The gateway's own share: from 100 µs to 100 ms.
# From the kernel's tick (4 ms) to the 8.8 s seen at 600 streams/s (docs/bench.md).
ACCEPT_WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
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
        self._counters: dict[tuple[Any, ...], Any] = {}
        self._state_series(registry)
        self._usage_series(registry)
        self._limit_series(registry)
        self._queue_series(registry)
        self._overload_series(registry)

    def request(
        self, workflow: str, route: str, model: str, code: int, stream: bool, seconds: float
    ) -> None:
        key = (workflow, route, model, str(code), "true" if stream else "false")
        children = self._request_series(key)
        children[0].inc()
        children[1].observe(seconds)

    def _request_series(self, key: tuple[str, ...]) -> tuple[Counter, Histogram]:
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.duration.labels(*key[:3]))
            self._children[key] = children
        return children

    def declare(self, series: DeclaredSeries) -> None:
        """Every series the policy declares, at 0 from now (so that the first request counts
        as an increase); those naming a workflow, route or model it no longer declares, gone."""
        self._forget(series)
        per_triple: tuple[tuple[Counter, tuple[tuple[str, ...], ...]], ...] = (
            (self.classified, tuple((label,) for label in VERDICT_LABELS)),
            (self.abstentions, ABSTENTION_SOURCES),
            (self.self_flags, tuple((source,) for source in FLAG_SOURCES)),
            (self.feedback, tuple((outcome,) for outcome in OUTCOMES)),
            (self.tokens, (("input",), ("output",))),
        )
        for triple in series.triples:
            for stream in ANSWERED_STREAM:
                self._request_series((*triple, "200", stream))
            for metric, tails in per_triple:
                for tail in tails:
                    self._child(metric, *triple, *tail)
        for workflow, model in dict.fromkeys((w, m) for w, _, m in series.triples):
            for said in VERDICT_LABELS:
                for judged in VERDICT_LABELS:
                    self._child(self.verdict_corrections, said, judged, workflow, model)
        pairs: list[tuple[Counter, tuple[str, ...]]] = [
            (self.decisions, p) for p in series.decisions
        ]
        pairs += [(self.cancelled_total, (*p, stage)) for p in series.decisions
                  for stage in CANCEL_STAGES]  # fmt: skip
        pairs += [(self.fallbacks, p) for p in series.pools]
        pairs += [(self.upstream_errors, (m, k)) for m in series.models for k in FAILURE_KINDS]
        pairs += [(self.rate_limited_total, p) for p in series.limits]
        limited = dict.fromkeys(workflow for workflow, _ in series.limits)
        pairs += [(self.limits_unavailable_total, (workflow,)) for workflow in limited]
        for metric, values in pairs:
            self._child(metric, *values)
        self._declare_queue(series.models)
        for workflow, dollars in series.budgets:
            self.budget_limit.labels(workflow).set(dollars)

    def _forget(self, series: DeclaredSeries) -> None:
        names = {"workflow": series.workflows, "route": series.routes, "model": series.models}

        def stale(labelnames: Sequence[str], values: Sequence[str]) -> bool:
            return any(
                value not in names[label] and value not in (UNKNOWN, NONE)
                for label, value in zip(labelnames, values, strict=True)
                if label in names
            )

        for key in [k for k in self._counters if stale(k[0]._labelnames, k[1:])]:
            del self._counters[key]
            key[0].remove(*key[1:])
        for key in [k for k in self._children if stale(self.requests._labelnames, k)]:
            del self._children[key]
            self.requests.remove(*key)
            self.duration.remove(*key[:3])

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

    def _queue_series(self, registry: CollectorRegistry) -> None:
        """The direct path's queue for upstream connections (ModelSpec.max_queued)."""
        self.queued = Gauge(
            "floorgate_upstream_queued_requests",
            "Requests waiting for a free connection to the model's upstream (direct path).",
            ("model",),
            registry=registry,
        )
        self.queue_refusals = Counter(
            "floorgate_upstream_queue_refusals",
            "Requests refused a connection to the model's upstream: its queue full or too slow.",
            ("model", "reason"),
            registry=registry,
        )
        # The count itself, kept apart from the series: a request waits across reloads, and
        # a reload forgets the series of a model it drops (and declares one it brings back at
        # 0), which the request's own -1 would then take below 0.
        self._waiting: dict[str, int] = {}
        self._queue_models: frozenset[str] = frozenset()

    def _declare_queue(self, models: frozenset[str]) -> None:
        self._queue_models = models
        for model in models:
            self._child(self.queued, model).set(self._waiting.get(model, 0))
            for reason in QUEUE_REFUSALS:
                self._child(self.queue_refusals, model, reason)

    def _overload_series(self, registry: CollectorRegistry) -> None:
        """Refusals of new model requests while overloaded (gateway/overload.py)."""
        self.overloaded = Gauge(
            "floorgate_overloaded",
            "1 while new model requests are refused because the gateway is overloaded.",
            registry=registry,
        )
        self.overload_refusals = Counter(
            "floorgate_overload_refusals",
            "Model requests refused (503 overloaded), by reason (loop_lag, queue_wait, in_flight).",
            ("reason",),
            registry=registry,
        )
        for reason in OVERLOAD_REASONS:
            self._child(self.overload_refusals, reason)
        self.accept_wait = Histogram(
            "floorgate_accept_queue_wait_seconds",
            "How long each new connection waited in the kernel's accept queue (Linux).",
            buckets=ACCEPT_WAIT_BUCKETS,
            registry=registry,
        )

    def upstream_waiting(self, model: str, delta: int) -> None:
        waiting = self._waiting[model] = self._waiting.get(model, 0) + delta
        if not waiting:
            del self._waiting[model]
        if model in self._queue_models:  # a dropped model's requests have no series
            self._child(self.queued, model).set(waiting)

    def upstream_queue_refused(self, model: str, reason: str) -> None:
        self._child(self.queue_refusals, model, reason).inc()

    def fallback(self, route: str, model: str) -> None:
        self._child(self.fallbacks, route, model).inc()

    def _child(self, metric: AnyMetric, *values: str) -> AnyMetric:
        key = (metric, *values)
        child: AnyMetric | None = self._counters.get(key)
        if child is None:
            child = self._counters[key] = metric.labels(*values)
        return child

    def policy_loaded(self, policy: Policy) -> None:
        self.policy.info({"name": policy.name, "version": policy.version})
        self.declare(declared_series(policy))
        self.policy_reloaded_at.set_to_current_time()
        self.policy_reload_ok.set(1)

    def policy_reload(self, result: str, trigger: str) -> None:
        self.policy_reloads.labels(result, trigger).inc()
        if result == "failure":
            self.policy_reload_ok.set(0)

    def _usage_series(self, registry: CollectorRegistry) -> None:
        """Tokens, estimated cost, time to first token, the gateway's own overhead, in flight."""
        labels = ("workflow", "route", "model")
        self.tokens = Counter(
            "floorgate_tokens",
            "Tokens reported by the upstream, by token_type (input, output).",
            (*labels, "token_type"),
            registry=registry,
        )
        self.cost = Counter(
            "floorgate_estimated_cost_dollars",
            "Estimated cost in US dollars, from litellm's price table (unpriced models: none).",
            labels,
            registry=registry,
        )
        self.first_token = Histogram(
            "floorgate_time_to_first_token_seconds",
            "Streams: time from request received to the first byte sent to the client.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "floorgate_overhead_seconds",
            "Time the gateway itself added: the client's wait minus the upstream's.",
            ("route", "model"),
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "floorgate_in_flight_requests", "Chat requests being served now.", registry=registry
        )
        self.loop_lag = Histogram(
            "floorgate_event_loop_lag_seconds",
            "How late a timer due every 25 ms ran: the wait the event loop adds to a request.",
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        )
        self.loop_lag_own = Histogram(
            "floorgate_event_loop_lag_own_seconds",
            "The loop's lag less the time its thread waited for a CPU meanwhile (Linux).",
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        )

    def usage(
        self, workflow: str, route: str, model: str, tokens: tuple[int, int], cost: float | None
    ) -> None:
        self._child(self.tokens, workflow, route, model, "input").inc(tokens[0])
        self._child(self.tokens, workflow, route, model, "output").inc(tokens[1])
        if cost:
            self._child(self.cost, workflow, route, model).inc(cost)

    def timing(
        self, workflow: str, route: str, model: str, overhead_s: float, first_token_s: float | None
    ) -> None:
        self._child(self.overhead, route, model).observe(overhead_s)
        if first_token_s is not None:
            self._child(self.first_token, workflow, route, model).observe(first_token_s)

    def _limit_series(self, registry: CollectorRegistry) -> None:
        """Limits (gateway/limits.py): refusals, daily budgets, and the store they count in."""
        self.rate_limited_total = Counter(
            "floorgate_rate_limited",
            "Requests refused by a limit (429), by workflow and limit.",
            ("workflow", "limit"),
            registry=registry,
        )
        self.limits_unavailable_total = Counter(
            "floorgate_limits_unavailable",
            "Requests refused (503) because a fail_closed limit could not be checked.",
            ("workflow",),
            registry=registry,
        )
        self.limits_local = Gauge(
            "floorgate_limits_local",
            "1 while limits are counted in this replica alone: the shared store is unreachable.",
            registry=registry,
        )
        self.limit_store_errors = Counter(
            "floorgate_limit_store_errors",
            "Limit checks and settlements the shared store failed or was too slow for.",
            registry=registry,
        )
        self._budgets: dict[str, tuple[Gauge, ...]] = {}
        self.budget_limit = Gauge(
            "floorgate_budget_dollars",
            "A workflow's spend_per_day, in US dollars.",
            ("workflow",),
            registry=registry,
        )
        self.budget_used = Gauge(
            "floorgate_budget_used_dollars",
            "Spent today (UTC) by a workflow, as this replica last saw it.",
            ("workflow",),
            registry=registry,
        )
        self.budget_remaining = Gauge(
            "floorgate_budget_remaining_dollars",
            "Left of a workflow's daily budget, as this replica last saw it.",
            ("workflow",),
            registry=registry,
        )

    def rate_limited(self, workflow: str, limit: str) -> None:
        self._child(self.rate_limited_total, workflow, limit).inc()

    def limits_unavailable(self, workflow: str) -> None:
        self._child(self.limits_unavailable_total, workflow).inc()

    def budget(self, workflow: str, limit: float, used: float) -> None:
        gauges = self._budgets.get(workflow)
        if gauges is None:
            gauges = self._budgets[workflow] = tuple(
                g.labels(workflow) for g in (self.budget_limit, self.budget_used,
                                             self.budget_remaining)
            )  # fmt: skip
        gauges[0].set(limit)
        gauges[1].set(used)
        gauges[2].set(max(0.0, limit - used))

    def _state_series(self, registry: CollectorRegistry) -> None:
        """Feedback, the request ledger and live gates (ledger.py, feedback.py, gates.py)."""
        self.feedback = Counter(
            "floorgate_feedback",
            "Feedback outcomes recorded, attributed to the response's workflow, route and model.",
            ("workflow", "route", "model", "outcome"),
            registry=registry,
        )
        self.verdict_corrections = Counter(
            "floorgate_verdict_corrections",
            "Verdicts a reviewer judged through feedback: the classifier's (`from`) and the "
            "reviewer's (`to`); from == to confirms it. Live precision per label.",
            ("from", "to", "workflow", "model"),
            registry=registry,
        )
        self.feedback_unattributed = Counter(
            "floorgate_feedback_unattributed",
            "Feedback not recorded: unknown or expired request id (not_found), another "
            "workflow's request (forbidden), a bad body (invalid), state store down (unavailable).",
            ("reason",),
            registry=registry,
        )
        for reason in UNATTRIBUTED:
            self.feedback_unattributed.labels(reason)
        self.feedback_duplicates = Counter(
            "floorgate_feedback_duplicates",
            "Feedback already recorded for that (request id, outcome), so not counted again.",
            registry=registry,
        )
        self.ledger_written = Counter(
            "floorgate_ledger_written", "Ledger records written to the store.", registry=registry
        )
        self.ledger_write_failures = Counter(
            "floorgate_ledger_write_failures",
            "Ledger write attempts (batches) that failed; their records stay buffered and retry.",
            registry=registry,
        )
        self.ledger_dropped = Counter(
            "floorgate_ledger_dropped",
            "Ledger records dropped because the buffer was full (or at shutdown, unwritten).",
            registry=registry,
        )
        self.cancelled_total = Counter(
            "floorgate_cancelled",
            "Requests whose client left before the answer was whole (ledgered as cancelled), "
            "by stage: before_first_byte, mid_stream.",
            ("workflow", "route", "stage"),
            registry=registry,
        )
        self.responses_unstored = Counter(
            "floorgate_responses_unstored",
            "Responses that could not be stored (the state store was down): "
            "previous_response_id and GET /v1/responses/{id} will not find them.",
            registry=registry,
        )
        self.ledger_buffered = Gauge(
            "floorgate_ledger_buffered",
            "Ledger records waiting to be written to the store.",
            registry=registry,
        )
        self.gates = GateSeries(registry)

    def cancelled(self, workflow: str, route: str, mid_stream: bool) -> None:
        self._child(self.cancelled_total, workflow, route, CANCEL_STAGES[mid_stream]).inc()

    def feedback_recorded(self, workflow: str, route: str, model: str, outcome: str) -> None:
        self._child(self.feedback, workflow, route, model, outcome).inc()

    def verdict_judged(self, said: str, judged: str, workflow: str, model: str) -> None:
        self._child(self.verdict_corrections, said, judged, workflow, model).inc()

    def unattributed(self, reason: str, n: int = 1) -> None:
        self._child(self.feedback_unattributed, reason).inc(n)
