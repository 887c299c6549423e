"""The embedded store: everything in this process's memory, for a single replica.

The same shapes and bounds as the Redis store (gateway/state/base.py); it never fails.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Collection, Sequence

from gateway.state.base import (
    CODE_OF_OUTCOME,
    HOUR,
    HOUR_BUCKET_TTL_S,
    MAX_WINDOW_COUNT,
    MINUTE,
    MINUTE_BUCKET_TTL_S,
    ByWorkflow,
    Counts,
    Feedback,
    Outcome,
    Query,
    Record,
    Result,
    bucket_starts,
    count_recent,
)
from gateway.state.counters import Admission, Check, MemoryCounters, Settlement
from gateway.state.records import Key, Records, key_of

log = logging.getLogger("floorgate.state")
Entry = tuple[float, str, str]  # (time, code, workflow), as in the recent lists
BucketKey = tuple[str, str, int, int]  # (route, model, width, start)
MAX_DOCUMENTS = 100_000  # stored responses kept in memory, the oldest dropped first
TTL_BY_WIDTH = {MINUTE: MINUTE_BUCKET_TTL_S, HOUR: HOUR_BUCKET_TTL_S}


class MemoryStore:
    def __init__(self, retention_s: float, memory_max: int = 32 * 2**20) -> None:
        self.retention_s = retention_s
        # Packed, within `memory_max` bytes, and out of the collector's sight (records.py): a
        # million tracked records made each full collection stall the loop for 269 ms.
        self._records = Records(memory_max)
        # Outcomes reported per request id: only the few records that got feedback have any.
        self._outcomes: dict[Key, dict[Outcome, tuple[float, str | None]]] = {}
        self._buckets: dict[BucketKey, ByWorkflow] = {}
        self._answers: dict[tuple[str, str], deque[Entry]] = {}
        self._feedback: dict[tuple[str, str], deque[Entry]] = {}
        self._documents: dict[str, tuple[float, str]] = {}  # key -> (expires at, value)
        self._next_purge = 0.0
        self._warned_full = False
        self.counters = MemoryCounters()

    async def write(self, records: Sequence[Record]) -> int:
        written = 0
        for record in records:
            if not self._records.add(record):
                continue
            written += 1
            if record.cancelled:  # nothing was answered: no statistic counts it
                continue
            self._count(record.route, record.model, record.workflow, record.time, _names(record))
            self._recent(self._answers, record, (record.time, record.code, record.workflow))
        self._purge(time.time())
        return written

    async def lookup(self, request_ids: Sequence[str]) -> list[Record | None]:
        now = time.time()
        return [self._live(request_id, now) for request_id in request_ids]

    async def add_feedback(self, items: Sequence[tuple[Feedback, Record]]) -> list[Result]:
        return [self._add_one(item, record) for item, record in items]

    async def tallies(self, queries: Sequence[Query], now: float) -> list[ByWorkflow]:
        return [self._tally(query, now) for query in queries]

    async def admit(
        self, checks: Sequence[Check], now: float, member: str, lease_s: float, dry: bool = False
    ) -> Admission:
        return self.counters.admit(checks, now, member, lease_s, dry)

    async def settle(self, settlements: Sequence[Settlement], now: float) -> None:
        self.counters.settle(settlements, now)

    async def put_document(self, key: str, value: str, ttl_s: float) -> None:
        documents = self._documents
        documents.pop(key, None)
        documents[key] = (time.time() + ttl_s, value)
        while len(documents) > MAX_DOCUMENTS:  # the oldest first: dicts keep insertion order
            del documents[next(iter(documents))]

    async def get_document(self, key: str) -> str | None:
        found = self._documents.get(key)
        if found is None or found[0] <= time.time():
            return None
        return found[1]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _live(self, request_id: str, now: float) -> Record | None:
        record = self._records.get(request_id)
        if record is None:
            return None
        return record if record.time + self.retention_s > now else None

    def _add_one(self, item: Feedback, record: Record) -> Result:
        if self._live(item.request_id, item.time) is None:
            return "not_found"
        outcomes = self._outcomes.setdefault(key_of(item.request_id), {})
        if item.outcome in outcomes:
            return "duplicate"
        outcomes[item.outcome] = (item.time, item.note)
        self._count(record.route, record.model, record.workflow, item.time, (item.outcome,))
        entry_ = (item.time, CODE_OF_OUTCOME[item.outcome], record.workflow)
        self._recent(self._feedback, record, entry_)
        return "recorded"

    def _count(
        self, route: str, model: str, workflow: str, at: float, names: Sequence[str]
    ) -> None:
        buckets = self._buckets
        for width in (MINUTE, HOUR):
            key = (route, model, width, int(at // width) * width)
            # Looked up before made: every answer comes here, nearly all to existing counts.
            by_workflow = buckets.get(key)
            if by_workflow is None:
                by_workflow = buckets[key] = {}
            counts = by_workflow.get(workflow)
            if counts is None:
                counts = by_workflow[workflow] = Counts()
            for name in names:
                counts.bump(name)

    def _recent(
        self, lists: dict[tuple[str, str], deque[Entry]], record: Record, entry: Entry
    ) -> None:
        key = (record.route, record.model)
        recent = lists.get(key)
        if recent is None:
            recent = lists[key] = deque(maxlen=MAX_WINDOW_COUNT)
        recent.appendleft(entry)  # newest first, as LPUSH keeps them

    def _tally(self, query: Query, now: float) -> ByWorkflow:
        pair = (query.route, query.model)
        if query.count is not None or query.seconds is None:
            answers = self._answers.get(pair, ())
            return count_recent(answers, self._feedback.get(pair, ()), query, now)
        width, starts = bucket_starts(query.seconds, now)
        out: ByWorkflow = {}
        for start in starts:
            for workflow, counts in self._buckets.get((*pair, width, start), {}).items():
                out.setdefault(workflow, Counts()).add(counts)
        return out

    def _purge(self, now: float) -> None:
        """Expire what Redis would: old records, old buckets; and keep the records' budget."""
        expired_before = now - self.retention_s
        for rows in self._records.evict(expired_before):
            if self._records.evicted_early and not self._warned_full:
                self._warned_full = True
                log.warning(
                    "in-memory ledger full (%d bytes): evicting the oldest records early; "
                    "raise FLOORGATE_LEDGER_MEMORY_MAX or set FLOORGATE_REDIS_URL",
                    self._records.budget,
                )
            self._forget_outcomes(rows)
        if now < self._next_purge:
            return
        self._next_purge = now + MINUTE
        stale = [k for k in self._buckets if k[3] + k[2] + TTL_BY_WIDTH[k[2]] <= now]
        for key in stale:
            del self._buckets[key]

    def _forget_outcomes(self, rows: Collection[Key]) -> None:
        outcomes = self._outcomes
        if len(outcomes) < len(rows):  # few have feedback: look each of them up
            for key in [k for k in outcomes if k in rows]:
                del outcomes[key]
        else:
            for key in rows:
                outcomes.pop(key, None)


# What an answered record counts, by (abstained, self-flagged).
_NAMES = {
    (False, False): ("answered",),
    (True, False): ("answered", "abstained"),
    (False, True): ("answered", "self_flagged"),
    (True, True): ("answered", "abstained", "self_flagged"),
}


def _names(record: Record) -> tuple[str, ...]:
    return _NAMES[bool(record.abstained), bool(record.self_flagged)]
