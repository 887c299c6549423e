"""The report's numbers, computed from a results file: per candidate the four numbers (merge,
abstention on vague tickets and on clear ones, self-flagged flaws, escape) with their samples
and 95 % intervals, a paired comparison of each two candidates, and the capability scores.

Definitions (docs/eval.md): an output is one answered (ticket, candidate, sample); its verdict
is the reviewer's corrected verdict when given, else the classifier's.
- merge: merged or merged_with_edits, over outputs with an outcome;
- abstention: abstained, over the outputs on vague tickets (and, apart, on clear ones);
- self-flagged flaws: flag_pointed, over outputs with a problem (merged_with_edits, rejected,
  escaped_defect) that did not abstain;
- escape: escaped_defect over merged + merged_with_edits + escaped_defect, as live gates count.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise

from gateway.eval.candidates import split
from gateway.eval.catalogue import Catalogue, Entry
from gateway.eval.results import OutcomeRecord, Result, Results
from gateway.eval.stats import Rate, mcnemar_exact
from gateway.eval.tickets import Spec

MERGES = frozenset({"merged", "merged_with_edits"})
PROBLEMS = frozenset({"merged_with_edits", "rejected", "escaped_defect"})
SIGNIFICANCE = 0.05


@dataclass(frozen=True, slots=True)
class Output:
    result: Result
    spec: Spec
    outcome: OutcomeRecord | None

    @property
    def label(self) -> str | None:
        corrected = self.outcome.corrected_verdict if self.outcome else None
        return corrected or self.result.label

    @property
    def pair_key(self) -> tuple[str, int]:
        return self.result.ticket, self.result.sample


def _judged(o: Output) -> bool:
    return o.outcome is not None


def _merged(o: Output) -> bool:
    return o.outcome is not None and o.outcome.outcome in MERGES


def _abstained(o: Output) -> bool:
    return o.label == "abstain"


def _problem(o: Output) -> bool:
    return o.outcome is not None and o.outcome.outcome in PROBLEMS and not _abstained(o)


def _pointed(o: Output) -> bool:
    return o.outcome is not None and o.outcome.flag_pointed is True


def _reached(o: Output) -> bool:
    return o.outcome is not None and o.outcome.outcome in MERGES | {"escaped_defect"}


def _escaped(o: Output) -> bool:
    return o.outcome is not None and o.outcome.outcome == "escaped_defect"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    title: str
    counts: Callable[[Output], bool]  # in the denominator
    hit: Callable[[Output], bool]  # in the numerator
    higher_is_better: bool
    verb: str  # what the better candidate does, in a sentence


METRICS: tuple[Metric, ...] = (
    Metric("merge", "merge rate", _judged, _merged, True, "merges more often than"),
    Metric("abstention_vague", "abstention, vague tickets", lambda o: o.spec == "vague",
           _abstained, True, "asks or declines more often on vague tickets than"),
    Metric("abstention_clear", "abstention, clear tickets (a cost)", lambda o: o.spec == "clear",
           _abstained, False, "abstains less often on clear tickets than"),
    Metric("self_flag", "self-flagged flaws", _problem, _pointed, True,
           "flags its own flaws more often than"),
    Metric("escape", "escape rate", _reached, _escaped, False, "lets fewer defects escape than"),
)  # fmt: skip
METRIC = {m.name: m for m in METRICS}


@dataclass(frozen=True, slots=True)
class Numbers:
    candidate: str
    model: str
    contract: bool
    rates: dict[str, Rate]
    flagged: Rate  # flagged at all, over outputs: the live gates' self-flag rate
    answered: int
    errors: int
    latency_p50_s: float | None
    tokens: int
    cost_usd: float | None
    capability: Entry | None


@dataclass(frozen=True, slots=True)
class Comparison:
    metric: Metric
    a: str
    b: str
    n: int  # outputs paired: both in the metric's denominator
    a_hits: int
    b_hits: int
    only_a: int
    only_b: int
    p: float

    def sentence(self) -> str:
        m = self.metric
        if self.n == 0:
            return f"{m.title}: no ticket where both can be compared"
        counts = f"{self.a} {self.a_hits}/{self.n}, {self.b} {self.b_hits}/{self.n}"
        if self.only_a == self.only_b:
            return f"{m.title}: {counts}; no difference on these tickets (exact McNemar p = 1.00)"
        a_better = (self.only_a > self.only_b) == m.higher_is_better
        better, worse = (self.a, self.b) if a_better else (self.b, self.a)
        verdict = "is" if self.p < SIGNIFICANCE else "is not"
        return (
            f"{m.title}: {counts}. {better} {m.verb} {worse} on these tickets; at n = {self.n} "
            f"the difference {verdict} distinguishable from chance (exact McNemar p = {self.p:.2f})"
        )


@dataclass(frozen=True, slots=True)
class Report:
    tickets_name: str
    tickets: int
    vague: int
    results_file: str
    digest: str
    numbers: tuple[Numbers, ...]
    comparisons: tuple[Comparison, ...]
    orders: tuple[str, ...]  # what the capability and readiness orders say, in sentences


def outputs(results: Results) -> list[Output]:
    tickets = results.tickets()
    outcomes = results.outcomes()
    return [Output(r, tickets[r.ticket].spec, outcomes.get(r.key)) for r in results.results()]


def rate(items: Sequence[Output], metric: Metric) -> Rate:
    counted = [o for o in items if metric.counts(o)]
    return Rate(sum(metric.hit(o) for o in counted), len(counted))


def build_report(results: Results, catalogue: Catalogue) -> Report:
    rows = results.results()
    answered = [o for o in outputs(results) if o.result.status == "ok"]
    candidates = list(dict.fromkeys(r.candidate for r in rows))
    numbers = tuple(_numbers(c, rows, answered, catalogue) for c in candidates)
    tickets = results.tickets()
    meta = results.meta()
    return Report(
        tickets_name=meta.get("tickets_name", "?"),
        tickets=len(tickets),
        vague=sum(t.spec == "vague" for t in tickets.values()),
        results_file=str(results.path),
        digest=results.digest(),
        numbers=numbers,
        comparisons=tuple(
            c for a, b in combinations(candidates, 2) for c in _compare(answered, a, b)
        ),
        orders=tuple(orders(numbers)),
    )


def _numbers(
    candidate: str, rows: list[Result], answered: list[Output], catalogue: Catalogue
) -> Numbers:
    mine = [o for o in answered if o.result.candidate == candidate]
    own_rows = [r for r in rows if r.candidate == candidate]
    latencies = [o.result.latency_s for o in mine if o.result.latency_s is not None]
    costs = [o.result.cost_usd for o in mine if o.result.cost_usd is not None]
    model, contract = split(candidate)
    upstream = own_rows[0].upstream_model if own_rows else model
    return Numbers(
        candidate=candidate,
        model=model,
        contract=contract,
        rates={m.name: rate(mine, m) for m in METRICS},
        flagged=Rate(sum(o.label == "flag" for o in mine), len(mine)),
        answered=len(mine),
        errors=len(own_rows) - len(mine),
        latency_p50_s=statistics.median(latencies) if latencies else None,
        tokens=sum((o.result.prompt_tokens or 0) + (o.result.completion_tokens or 0) for o in mine),
        cost_usd=sum(costs) if costs else None,
        capability=catalogue.find(candidate, model, upstream),
    )


def _compare(answered: list[Output], a: str, b: str) -> list[Comparison]:
    by_a = {o.pair_key: o for o in answered if o.result.candidate == a}
    by_b = {o.pair_key: o for o in answered if o.result.candidate == b}
    out = []
    for m in METRICS:
        pairs = [(by_a[k], by_b[k]) for k in by_a.keys() & by_b.keys()
                 if m.counts(by_a[k]) and m.counts(by_b[k])]  # fmt: skip
        only_a = sum(m.hit(x) and not m.hit(y) for x, y in pairs)
        only_b = sum(m.hit(y) and not m.hit(x) for x, y in pairs)
        out.append(Comparison(m, a, b, len(pairs), sum(m.hit(x) for x, _ in pairs),
                              sum(m.hit(y) for _, y in pairs), only_a, only_b,
                              mcnemar_exact(only_a, only_b)))  # fmt: skip
    return out


def readiness_key(n: Numbers) -> tuple[float, float, float]:
    """Fewer escapes first, then more merges, then more abstention on vague tickets; a rate
    with no samples sorts last."""
    escape = n.rates["escape"].value
    merge = n.rates["merge"].value
    vague = n.rates["abstention_vague"].value
    return (
        escape if escape is not None else 2.0,
        -(merge if merge is not None else -1.0),
        -(vague if vague is not None else -1.0),
    )


def _score(n: Numbers) -> float:
    return n.capability.score if n.capability is not None else float("-inf")


def orders(numbers: Sequence[Numbers]) -> list[str]:
    """The leaderboard order beside the production-readiness order, and where they disagree."""
    readiness = sorted(numbers, key=readiness_key)
    lines = ["production readiness: " + " > ".join(n.candidate for n in readiness)]
    board = sorted((n for n in numbers if n.capability is not None), key=lambda n: -_score(n))
    if len(board) < 2:
        lines.append("leaderboard: fewer than two candidates have a score in the catalogue")
        return lines
    benchmarks = " / ".join(sorted({n.capability.benchmark for n in board if n.capability}))
    text = f"{board[0].candidate} {_score(board[0]):g}"
    for x, y in pairwise(board):
        text += f" {'=' if _score(x) == _score(y) else '>'} {y.candidate} {_score(y):g}"
    lines.append(f"leaderboard ({benchmarks}): {text}")
    rank = {n.candidate: i for i, n in enumerate(readiness)}
    found = False
    for x, y in combinations(board, 2):
        if _score(x) > _score(y) and rank[x.candidate] > rank[y.candidate]:
            found = True
            lines.append(f"DISAGREE: the leaderboard puts {x.candidate} above {y.candidate}; on "
                         f"your own tickets {y.candidate} is the more production-ready. Trust "
                         "your own numbers.")  # fmt: skip
        elif _score(x) == _score(y) and readiness_key(x) != readiness_key(y):
            found = True
            lines.append(f"the leaderboard cannot tell {x.candidate} and {y.candidate} apart "
                         "(the same score); your tickets can")  # fmt: skip
    if not found:
        lines.append("the leaderboard order and the production-readiness order agree")
    return lines
