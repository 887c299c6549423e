"""The request ledger: every answered response, and every request whose client left before
its answer was whole (cancelled), written to the store off the request path.

`record` is all the request path pays: one bounded deque append. A background task writes
the queue to the store in batches; while the store is down the records stay queued (counted
in floorgate_ledger_buffered) and are replayed when it returns. A record that finds the queue
full is counted in floorgate_ledger_dropped_total, never dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from itertools import islice
from typing import TYPE_CHECKING

from gateway.classify import Verdict
from gateway.metrics import Metrics
from gateway.state.base import Record, Store, StoreUnavailable

if TYPE_CHECKING:
    from gateway.runtime import Answered

log = logging.getLogger("floorgate.ledger")
BATCH = 256
MAX_BACKOFF_S = 2.0
Pending = tuple["Answered", Verdict | None, float]  # no verdict: cancelled


class Ledger:
    def __init__(self, store: Store, metrics: Metrics, buffer_max: int, flush_s: float) -> None:
        self.store = store
        self.metrics = metrics
        self.buffer_max = buffer_max
        self.flush_s = flush_s
        self._queue: deque[Pending] = deque()
        self._dropped = metrics.ledger_dropped
        self._lock = asyncio.Lock()  # one writer at a time: the loop, or a feedback's flush
        self._failing = False
        metrics.ledger_buffered.set_function(lambda: len(self._queue))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def record(self, call: Answered, verdict: Verdict | None) -> None:
        """On the request path: never waits, never raises. No verdict: the client left before
        its answer was whole, and the record says cancelled."""
        if len(self._queue) < self.buffer_max:
            self._queue.append((call, verdict, time.time()))
        else:
            self._dropped.inc()

    async def lookup(self, request_ids: Sequence[str], wait_s: float) -> list[Record | None]:
        """The store's records; an id answered a moment ago on this replica may still be
        queued, so a miss waits up to `wait_s` for the writer (not for a whole backlog
        replaying after an outage). Raises StoreUnavailable."""
        records = await self.store.lookup(request_ids)
        if None in records and self._queue:
            with suppress(TimeoutError):
                await asyncio.wait_for(self.flush(), wait_s)
            records = await self.store.lookup(request_ids)
        return records

    async def flush(self) -> bool:
        """Write everything queued; False if the store failed (the rest stays queued)."""
        async with self._lock:
            while self._queue:
                batch = list(islice(self._queue, BATCH))
                try:
                    await self.store.write([_record(p) for p in batch])
                except StoreUnavailable as exc:
                    self.metrics.ledger_write_failures.inc()
                    self._report(exc)
                    return False
                # Only the request path appends, and only to the right: these are the same
                # `len(batch)` records that were just written.
                for _ in batch:
                    self._queue.popleft()
                self.metrics.ledger_written.inc(len(batch))
            self._report(None)
            return True

    async def run(self) -> None:
        """Flush every `flush_s`; back off (to MAX_BACKOFF_S) while the store is down."""
        delay = self.flush_s
        while True:
            await asyncio.sleep(delay)
            try:
                ok = await self.flush()
            except Exception:  # the writer's top level: a bug must not end ledger writes
                log.exception("ledger flush failed")
                ok = False
            delay = self.flush_s if ok else min(max(delay * 2, 0.1), MAX_BACKOFF_S)

    async def close(self, timeout_s: float) -> None:
        """Last flush at shutdown; what cannot be written in time is counted as dropped."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout_s)
        left = len(self._queue)
        if left:
            self._dropped.inc(left)
            self._queue.clear()
            log.error("shutting down with %d ledger records unwritten: counted as dropped", left)

    def _report(self, error: StoreUnavailable | None) -> None:
        """Log transitions only: an outage is one warning and one recovery, not one per try."""
        if error is not None and not self._failing:
            log.warning("ledger writes failing (%s); buffering %d records", error, self.pending)
        elif error is None and self._failing:
            log.info("ledger writes recovered; the buffered records are written")
        self._failing = error is not None


def _record(pending: Pending) -> Record:
    call, verdict, at = pending
    if verdict is None:
        return Record(*_who(call), False, False, at, cancelled=True)
    return Record(
        *_who(call),
        verdict.abstained,
        verdict.flagged,
        at,
        verdict.kind or "",
        verdict.source,
        verdict.evidence,
    )


def _who(call: Answered) -> tuple[str, str, str, str, str]:
    return call.request_id, call.workflow, call.route, call.model, call.policy_version
