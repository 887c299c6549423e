"""The shared-state seam: what the ledger, feedback and live gates need from a store.

Two stores implement it: in process memory (the embedded default, one replica) and Redis
(FLOORGATE_REDIS_URL, shared by every replica). Both keep the same shapes with the same
bounds, so the contract tests run unchanged against either:

- the ledger: request id -> Record, for `retention_s`, answered or cancelled (the client left
  first); feedback is kept on the record, one entry per (request id, outcome), so a second
  report of the same outcome is a duplicate;
- time buckets of Counts per (route, model, workflow): per minute (kept 2 h) and per hour
  (kept MAX_WINDOW_S), which time windows are summed from;
- the latest MAX_WINDOW_COUNT answers and feedback reports per (route, model), which count
  windows are read from;
- limit counters (gateway/state/counters.py): sliding minutes, UTC days, leased slots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Literal, NamedTuple, Protocol, get_args

from gateway.state.counters import Admission, Check, Settlement

Outcome = Literal["merged", "merged_with_edits", "rejected", "escaped_defect"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
Result = Literal["recorded", "duplicate", "not_found"]
RateName = Literal["abstention", "self_flag", "merge", "escape"]
RATES: tuple[RateName, ...] = get_args(RateName)

MINUTE = 60
HOUR = 3600
MINUTE_BUCKETS_UP_TO = 2 * HOUR  # longer windows are summed from hour buckets
MAX_WINDOW_S = 30 * 86400
MAX_WINDOW_COUNT = 10_000
# Key lifetimes: a bucket lives as long as the longest window that can still reach it.
MINUTE_BUCKET_TTL_S = MINUTE_BUCKETS_UP_TO + 2 * MINUTE
HOUR_BUCKET_TTL_S = MAX_WINDOW_S + 2 * HOUR
RECENT_TTL_S = HOUR_BUCKET_TTL_S
# One letter per event in the recent lists: answered, abstained, self-flagged; then outcomes.
ANSWER_CODES = {"a": None, "x": "abstained", "f": "self_flagged"}
OUTCOME_CODES: dict[str, Outcome] = {
    "m": "merged",
    "e": "merged_with_edits",
    "r": "rejected",
    "d": "escaped_defect",
}
CODE_OF_OUTCOME = {outcome: code for code, outcome in OUTCOME_CODES.items()}


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time; nothing was recorded."""


class Record(NamedTuple):
    """One answered request, as feedback hours later is attributed to it; or one whose client
    left before its answer was whole (`cancelled`: no verdict, counted in no statistics, no
    feedback). A named tuple, so that the in-memory store can keep it as a plain one (see
    MemoryStore)."""

    request_id: str
    workflow: str
    route: str
    model: str
    policy_version: str
    abstained: bool
    self_flagged: bool
    time: float
    # The verdict as the classifier gave it, for audit: its kind, the source that decided it
    # (tool, refusal, content_filter, text, none) and the evidence it quoted (<= 200 chars).
    kind: str = ""
    source: str = "none"
    evidence: str = ""
    cancelled: bool = False

    @property
    def code(self) -> str:
        return "x" if self.abstained else "f" if self.self_flagged else "a"

    @property
    def label(self) -> str:
        return "abstain" if self.abstained else "flag" if self.self_flagged else "answer"

    @property
    def outcome(self) -> str:
        return "cancelled" if self.cancelled else "answered"


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    outcome: Outcome
    note: str | None
    time: float


@dataclass(frozen=True, slots=True)
class Query:
    """Counts for (route, model) over the last `seconds`, the last `count` events of each kind
    (answers, feedback), or both at once (whichever is fewer)."""

    route: str
    model: str
    seconds: int | None
    count: int | None


@dataclass(slots=True)
class Counts:
    answered: int = 0
    abstained: int = 0
    self_flagged: int = 0
    merged: int = 0
    merged_with_edits: int = 0
    rejected: int = 0
    escaped_defect: int = 0

    def bump(self, name: str, n: int = 1) -> None:
        if name in COUNT_FIELDS:  # a field a newer version wrote is ignored, not an error
            setattr(self, name, getattr(self, name) + n)

    def add(self, other: Counts) -> None:
        for name in COUNT_FIELDS:
            self.bump(name, getattr(other, name))

    @property
    def feedback(self) -> int:
        return self.merged + self.merged_with_edits + self.rejected + self.escaped_defect

    def rate(self, name: RateName) -> tuple[float | None, int]:
        """(rate, sample size); the rate is None with no samples."""
        part, whole = self.parts(name)
        return (part / whole if whole else None), whole

    def parts(self, name: RateName) -> tuple[int, int]:
        """(numerator, denominator) of a rate.

        escape: escaped_defect over the outputs that reached production, i.e. over
        merged + merged_with_edits + escaped_defect (an escaped defect was merged too).
        """
        merged = self.merged + self.merged_with_edits
        return {
            "abstention": (self.abstained, self.answered),
            "self_flag": (self.self_flagged, self.answered),
            "merge": (merged, self.feedback),
            "escape": (self.escaped_defect, merged + self.escaped_defect),
        }[name]

    def as_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_FIELDS}


COUNT_FIELDS = frozenset(f.name for f in fields(Counts))
ByWorkflow = dict[str, Counts]


def total(by_workflow: Mapping[str, Counts]) -> Counts:
    out = Counts()
    for counts in by_workflow.values():
        out.add(counts)
    return out


def bucket_starts(seconds: int, now: float) -> tuple[int, list[int]]:
    """(bucket width, start of every bucket a window of `seconds` ending now touches).

    Windows are measured in whole buckets: minutes up to 2 h, hours beyond.
    """
    width = MINUTE if seconds <= MINUTE_BUCKETS_UP_TO else HOUR
    first = int((now - seconds) // width) * width
    return width, list(range(first, int(now // width) * width + 1, width))


def count_recent(
    answers: Iterable[tuple[float, str, str]],
    feedback: Iterable[tuple[float, str, str]],
    query: Query,
    now: float,
) -> ByWorkflow:
    """Counts from the recent lists, newest first: (time, code, workflow) entries. Records
    replayed after an outage sit among newer ones, so an old entry ends nothing early."""
    since = now - query.seconds if query.seconds is not None else float("-inf")
    limit = query.count if query.count is not None else MAX_WINDOW_COUNT
    out: ByWorkflow = {}
    for entries, names in ((answers, ANSWER_CODES), (feedback, OUTCOME_CODES)):
        for i, (at, code, workflow) in enumerate(entries):
            if i >= limit:
                break
            if at < since:
                continue
            counts = out.setdefault(workflow, Counts())
            if names is ANSWER_CODES:
                counts.answered += 1
            name = names.get(code)
            if name is not None:
                counts.bump(name)
    return out


class Store(Protocol):
    """Implementations translate their own errors into StoreUnavailable at one boundary."""

    async def write(self, records: Sequence[Record]) -> int:
        """Record answered and cancelled requests (idempotent per request id; a cancelled one
        is kept but counted in no statistics); returns how many were new."""
        ...

    async def lookup(self, request_ids: Sequence[str]) -> list[Record | None]:
        """The ledger's records, None for an unknown or expired request id."""
        ...

    async def add_feedback(self, items: Sequence[tuple[Feedback, Record]]) -> list[Result]:
        """Record each outcome once per (request id, outcome), atomically, even when
        the same report arrives concurrently at several replicas."""
        ...

    async def tallies(self, queries: Sequence[Query], now: float) -> list[ByWorkflow]:
        """Counts per workflow for each query, in one round trip."""
        ...

    async def admit(
        self, checks: Sequence[Check], now: float, member: str, lease_s: float, dry: bool = False
    ) -> Admission:
        """Check a request against every limit that applies and, if none refuses (and not
        `dry`), count it against them all, atomically, in one round trip (counters.py)."""
        ...

    async def settle(self, settlements: Sequence[Settlement], now: float) -> None:
        """After requests end: correct their counts by the amounts, free their slots."""
        ...

    async def put_document(self, key: str, value: str, ttl_s: float) -> None:
        """Keep `value` under `key` for `ttl_s` (stored responses, gateway/responses/store.py)."""
        ...

    async def get_document(self, key: str) -> str | None:
        """The value kept under `key`, None once it expired or if it never was."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
