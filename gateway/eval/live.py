"""The same four numbers from production: per workflow and model, over a recent window, from
the ledger and feedback in the store (memory or Redis), with the same Wilson intervals.

Live traffic has no clear/vague split and no reviewer saying whether a flag pointed at the real
problem, so its abstention is over every answer and its self-flag rate is flagged answers over
answers, as the live gates count them; merge and escape are defined as in the evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.eval.stats import Rate
from gateway.policy.compiled import Policy
from gateway.state.base import MAX_WINDOW_S, RATES, Counts, Query, RateName, Store

_SINCE = re.compile(r"^(\d+)([smhd])$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TITLES: dict[RateName, str] = {
    "merge": "merge rate",
    "abstention": "abstention",
    "self_flag": "self-flagged",
    "escape": "escape rate",
}


@dataclass(frozen=True, slots=True)
class LiveRow:
    workflow: str
    route: str
    model: str
    counts: Counts

    def rate(self, name: RateName) -> Rate:
        return Rate(*self.counts.parts(name))


def parse_since(text: str) -> int:
    """`7d`, `24h`, `90m`, `3600s` as seconds; ValueError saying what is allowed."""
    found = _SINCE.match(text.strip())
    seconds = int(found.group(1)) * UNIT_S[found.group(2)] if found else 0
    if not 0 < seconds <= MAX_WINDOW_S:
        raise ValueError(f"since '{text}': write a window such as 7d, 24h or 90m, at most 30d")
    return seconds


async def live_rows(store: Store, policy: Policy, seconds: int, now: float) -> list[LiveRow]:
    """One row per (workflow, route, model) that answered in the window."""
    pairs = list(dict.fromkeys((r, m) for r, d in policy.spec.routes.items() for m in d.pool))
    tallies = await store.tallies([Query(r, m, seconds, None) for r, m in pairs], now)
    rows = [
        LiveRow(workflow, route, model, counts)
        for (route, model), by_workflow in zip(pairs, tallies, strict=True)
        for workflow, counts in sorted(by_workflow.items())
    ]
    return [row for row in rows if row.counts.answered or row.counts.feedback]


def as_json(rows: Sequence[LiveRow], seconds: int) -> dict[str, Any]:
    return {
        "since_s": seconds,
        "rows": [{"workflow": r.workflow, "route": r.route, "model": r.model,
                  "counts": r.counts.as_json()} for r in rows],
    }  # fmt: skip


def from_json(data: Mapping[str, Any]) -> list[LiveRow]:
    return [LiveRow(r["workflow"], r["route"], r["model"], Counts(**r["counts"]))
            for r in data["rows"]]  # fmt: skip


def live_table(rows: Sequence[LiveRow], since: str) -> str:
    header = ["workflow", "route", "model", *(TITLES[name] for name in RATES), "answered"]
    body = [[r.workflow, r.route, r.model, *(r.rate(name).text() for name in RATES),
             str(r.counts.answered)] for r in rows]  # fmt: skip
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [f"Production, the last {since}: the four numbers per workflow and model", "",
           line(header), line(["-" * w for w in widths]), *(line(b) for b in body)]  # fmt: skip
    if not body:
        out.append("(no answered request in the window)")
    out += ["", "95 % Wilson intervals; abstention and self-flagged over every answer (live "
            "traffic has no clear/vague split), merge and escape over feedback."]  # fmt: skip
    return "\n".join(out) + "\n"
