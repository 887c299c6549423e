"""The Store contract, run unchanged against every store: in memory, the shared Redis on
127.0.0.1:6379 under a key prefix unique to each test (deleted afterwards), and a three-node
Redis Cluster this module starts on loopback (tests/redis_cluster.py)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from gateway.policy.model import Window
from gateway.state.base import (
    MAX_WINDOW_COUNT,
    MAX_WINDOW_S,
    Counts,
    Feedback,
    Outcome,
    Query,
    Record,
    Store,
    StoreUnavailable,
    total,
)
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from tests.redis_cluster import RUNNING
from tests.redis_server import SHARED_URL, keys, shared_prefix
from tests.servers import free_port

Scenario = Callable[[Store], Awaitable[None]]  # run against each store: the `kind` fixture


def run(kind: str, scenario: Scenario, retention_s: float = 3600) -> None:
    with shared_prefix() as prefix:

        async def main() -> None:
            store: Store
            if kind == "memory":
                store = MemoryStore(retention_s)
            elif kind == "cluster":
                store = RedisStore(RUNNING[0], prefix, retention_s, 2.0, 8, cluster=True)
            else:
                store = RedisStore(SHARED_URL, prefix, retention_s, 2.0, 8)
            try:
                await scenario(store)
            finally:
                await store.close()

        asyncio.run(main())


def record(
    i: int, workflow: str = "wf", model: str = "m", at: float | None = None, **kw: Any
) -> Record:
    fields = {"abstained": False, "self_flagged": False} | kw
    at = time.time() if at is None else at
    return Record(f"req-{i}", workflow, "route", model, "v1", time=at, **fields)


def feedback(rec: Record, outcome: Outcome, at: float | None = None) -> tuple[Feedback, Record]:
    return Feedback(rec.request_id, outcome, "a note", time.time() if at is None else at), rec


def query(seconds: int | None = 600, count: int | None = None, model: str = "m") -> Query:
    return Query("route", model, seconds, count)


async def counts(store: Store, q: Query) -> Counts:
    [tally] = await store.tallies([q], time.time())
    return total(tally)


def test_records_are_written_once_and_read_back(kind: str) -> None:
    async def scenario(store: Store) -> None:
        first = record(1, abstained=True)
        assert await store.write([first, record(2)]) == 2
        assert await store.write([first]) == 0  # a replayed batch counts nothing twice
        found = await store.lookup(["req-1", "req-2", "req-unknown"])
        assert found[0] == first
        assert found[1] is not None and found[1].request_id == "req-2"
        assert found[2] is None
        assert (await counts(store, query())).answered == 2

    run(kind, scenario)


def test_a_record_keeps_its_verdict_source_and_evidence(kind: str) -> None:
    async def scenario(store: Store) -> None:
        asked = record(1, abstained=True, kind="clarification", source="text",
                       evidence="Staging or production?")  # fmt: skip
        flagged = record(2, self_flagged=True, source="tool", evidence="untested | on 3.11")
        await store.write([asked, flagged, record(3)])
        found = await store.lookup(["req-1", "req-2", "req-3"])
        assert found[:2] == [asked, flagged]
        assert [r.label if r else None for r in found] == ["abstain", "flag", "answer"]
        assert found[2] is not None and (found[2].source, found[2].evidence) == ("none", "")

    run(kind, scenario)


def test_a_cancelled_record_is_kept_and_counted_in_no_window(kind: str) -> None:
    async def scenario(store: Store) -> None:
        left = record(1, model="none", cancelled=True)
        assert await store.write([left, record(2)]) == 2
        assert await store.write([left]) == 0  # replayed: still once
        found = await store.lookup(["req-1", "req-2"])
        assert found[0] == left and found[0].outcome == "cancelled"
        assert found[1] is not None and found[1].outcome == "answered"
        for q in (query(), query(seconds=None, count=100)):
            assert (await counts(store, q)).answered == 1
        assert (await counts(store, query(model="none"))).answered == 0

    run(kind, scenario)


def test_a_redis_record_an_older_version_wrote_reads_with_no_verdict_detail() -> None:
    with shared_prefix() as prefix:

        async def main() -> None:
            store = RedisStore(SHARED_URL, prefix, 3600, 2.0, 8)
            try:
                client = redis.Redis.from_url(SHARED_URL, decode_responses=True)
                client.hset(store.keys.record("req-old"), mapping={
                    "workflow": "wf", "route": "route", "model": "m", "policy_version": "v1",
                    "abstained": "1", "self_flagged": "0", "time": "1.5"})  # fmt: skip
                [old] = await store.lookup(["req-old"])
                assert old == Record("req-old", "wf", "route", "m", "v1", True, False, 1.5)
                assert (old.kind, old.source, old.evidence) == ("", "none", "")
                assert old.outcome == "answered"
                client.close()
            finally:
                await store.close()

        asyncio.run(main())


def test_records_expire_after_the_retention(kind: str) -> None:
    async def scenario(store: Store) -> None:
        rec = record(1)
        await store.write([rec])
        assert await store.lookup([rec.request_id]) == [rec]
        await asyncio.sleep(0.45)
        assert await store.lookup([rec.request_id]) == [None]
        assert await store.add_feedback([feedback(rec, "merged")]) == ["not_found"]

    run(kind, scenario, retention_s=0.3)


def test_feedback_counts_once_per_request_and_outcome(kind: str) -> None:
    async def scenario(store: Store) -> None:
        rec = record(1)
        await store.write([rec])
        assert await store.add_feedback([feedback(rec, "merged")]) == ["recorded"]
        again = [feedback(rec, "merged"), feedback(rec, "escaped_defect")]
        assert await store.add_feedback(again) == ["duplicate", "recorded"]
        got = await counts(store, query())
        assert (got.merged, got.escaped_defect, got.feedback) == (1, 1, 2)

    run(kind, scenario)


def test_concurrent_duplicates_count_once(kind: str) -> None:
    async def scenario(store: Store) -> None:
        rec = record(1)
        await store.write([rec])
        sends = [store.add_feedback([feedback(rec, "rejected")]) for _ in range(25)]
        results = [r for [r] in await asyncio.gather(*sends)]
        assert results.count("recorded") == 1
        assert results.count("duplicate") == 24
        assert (await counts(store, query())).rejected == 1

    run(kind, scenario)


def test_rates_and_sample_sizes_per_workflow(kind: str) -> None:
    async def scenario(store: Store) -> None:
        recs = [
            record(1, "a", abstained=True),
            record(2, "a", self_flagged=True),
            record(3, "a"),
            record(4, "b"),
        ]
        await store.write(recs)
        outcomes: list[Outcome] = ["merged", "merged_with_edits", "rejected", "escaped_defect"]
        await store.add_feedback([feedback(r, o) for r, o in zip(recs, outcomes, strict=True)])
        [tally] = await store.tallies([query()], time.time())
        assert tally["a"].answered == 3 and tally["b"].answered == 1
        assert (tally["a"].abstained, tally["a"].self_flagged, tally["b"].escaped_defect) == (
            1,
            1,
            1,
        )
        got = total(tally)
        assert got.rate("abstention") == (0.25, 4)
        assert got.rate("self_flag") == (0.25, 4)
        assert got.rate("merge") == (0.5, 4)
        assert got.rate("escape") == (1 / 3, 3)  # over merged + merged_with_edits + escaped
        other = await counts(store, query(model="other"))
        assert other == Counts() and other.rate("escape") == (None, 0)

    run(kind, scenario)


def test_time_windows_leave_older_events_out(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = time.time()
        await store.write([record(1, at=now - 3 * 3600), record(2, at=now - 1800), record(3)])
        assert (await counts(store, query(seconds=600))).answered == 1  # minute buckets
        assert (await counts(store, query(seconds=3600))).answered == 2
        assert (await counts(store, query(seconds=86400))).answered == 3  # hour buckets
        assert (await counts(store, query(seconds=3600, count=100))).answered == 2

    run(kind, scenario)


def test_count_windows_read_the_latest_events(kind: str) -> None:
    async def scenario(store: Store) -> None:
        recs = [record(i, abstained=i >= 7) for i in range(10)]
        await store.write(recs)
        await store.add_feedback([feedback(r, "merged") for r in recs[:6]])
        await store.add_feedback([feedback(r, "escaped_defect") for r in recs[6:]])
        got = await counts(store, query(seconds=None, count=4))
        assert (got.answered, got.abstained) == (4, 3)
        assert (got.merged, got.escaped_defect) == (0, 4)
        got = await counts(store, query(seconds=None, count=8))
        assert (got.merged, got.escaped_defect) == (4, 4)

    run(kind, scenario)


def test_recent_events_are_capped(kind: str) -> None:
    async def scenario(store: Store) -> None:
        n = MAX_WINDOW_COUNT + 30
        for start in range(0, n, 2000):
            await store.write([record(i) for i in range(start, min(n, start + 2000))])
        assert (await counts(store, query(seconds=None, count=None))).answered == MAX_WINDOW_COUNT
        assert (await counts(store, query(seconds=600))).answered == n

    run(kind, scenario)


def test_every_redis_key_is_namespaced_and_expires() -> None:
    with shared_prefix() as prefix:

        async def main() -> None:
            store = RedisStore(SHARED_URL, prefix, 3600, 2.0, 4)
            rec = record(1, at=time.time())
            await store.write([rec])
            await store.add_feedback([feedback(rec, "merged", at=rec.time)])
            await store.close()

        asyncio.run(main())
        found = keys(SHARED_URL, prefix)
        assert len(found) == 5  # the record, a minute and an hour bucket, two recent lists
        with redis.Redis.from_url(SHARED_URL) as client:
            for key in found:
                assert key.startswith("floorgate:")
                assert 0 < client.pttl(key) <= (MAX_WINDOW_S + 2 * 3600) * 1000, key
            note = client.hget(f"{prefix}req:req-1", "note:merged")
        assert note == b"a note"


@pytest.mark.parametrize("cluster", [False, True])
def test_an_unreachable_redis_fails_fast_as_store_unavailable(cluster: bool) -> None:
    async def main() -> None:
        url = f"redis://127.0.0.1:{free_port()}/0"
        store = RedisStore(url, "floorgate:", 60, 0.5, 2, cluster=cluster)
        started = time.monotonic()
        for attempt in (store.write([record(1)]), store.lookup(["x"]), store.ping()):
            with pytest.raises(StoreUnavailable):
                await attempt
        assert time.monotonic() - started < 2
        await store.close()

    asyncio.run(main())


def test_gate_windows_fit_what_the_stores_keep() -> None:
    assert Window.model_fields["seconds"].metadata[-1].le == MAX_WINDOW_S
    assert Window.model_fields["count"].metadata[-1].le == MAX_WINDOW_COUNT


def test_the_memory_ledger_gives_the_garbage_collector_nothing_to_walk() -> None:
    # A full collection walks every tracked object while the event loop waits; the embedded
    # ledger holds up to a million records, so they must not be tracked ones.
    # Servers other tests left running allocate in their threads meanwhile, so the count is
    # taken over 20,000 records a few times and the least growth judged: a ledger that
    # tracked its records would grow by at least 20,000 every time.
    async def scenario(store: Store) -> None:
        await store.write([record(0)])
        growth = []
        for attempt in range(3):
            gc.collect()
            before = len(gc.get_objects())
            first = 1 + attempt * 20_000
            await store.write(
                [record(i, abstained=i % 3 == 0) for i in range(first, first + 20_000)]
            )
            await store.add_feedback([feedback(record(first + 4), "merged")])
            gc.collect()
            growth.append(len(gc.get_objects()) - before)
        assert min(growth) < 100, growth
        [found] = await store.lookup(["req-5"])
        assert found is not None and found.request_id == "req-5"

    run("memory", scenario)


def test_documents_are_kept_until_their_ttl(kind: str) -> None:
    async def scenario(store: Store) -> None:
        await store.put_document("resp:owner:a", '{"x": 1}', 0.3)
        await store.put_document("resp:owner:b", "kept", 60)
        assert await store.get_document("resp:owner:a") == '{"x": 1}'
        assert await store.get_document("resp:other:a") is None
        await asyncio.sleep(0.45)
        assert await store.get_document("resp:owner:a") is None
        assert await store.get_document("resp:owner:b") == "kept"

    run(kind, scenario)
