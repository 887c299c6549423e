"""The in-memory ledger's packed records: exact round trips, a byte budget that holds, the
oldest evicted first, and ids of any shape."""

from __future__ import annotations

import gc
import time

from gateway.plan import new_request_id
from gateway.state.base import Record
from gateway.state.records import Records, key_of


def record(request_id: str | None = None, at: float | None = None, **kw: object) -> Record:
    fields: dict[str, object] = {
        "workflow": "wf",
        "route": "route",
        "model": "m",
        "policy_version": "v1",
        "abstained": False,
        "self_flagged": False,
    } | kw
    return Record(
        request_id or new_request_id(),
        time=time.time() if at is None else at,
        **fields,  # type: ignore[arg-type]
    )


def test_a_record_comes_back_exactly() -> None:
    records = Records(1 << 20)
    kept = [record(), record(abstained=True, model="other"), record("req-1", at=1.0000001)]
    assert all(records.add(r) for r in kept)
    assert [records.get(r.request_id) for r in kept] == kept
    assert records.get(new_request_id()) is None and records.get("req-2") is None


def test_an_id_kept_once() -> None:
    records = Records(1 << 20)
    first = record()
    assert records.add(first)
    assert not records.add(first._replace(model="other"))
    assert records.get(first.request_id) == first and len(records) == 1


def test_ids_that_only_look_like_ours_stay_apart() -> None:
    ours = new_request_id()
    lookalikes = [ours.upper().replace("FG-", "fg-"), ours[:-1] + "_", "fg-" + "0" * 23 + "+1"]
    assert isinstance(key_of(ours), int)
    assert all(key_of(other) == other for other in lookalikes)
    records = Records(1 << 20)
    records.add(record(ours))
    assert [records.get(other) for other in lookalikes] == [None] * len(lookalikes)


def test_the_budget_holds_and_the_oldest_go_first() -> None:
    budget = 256 * 1024
    records = Records(budget)
    written = [record(at=1000.0 + i) for i in range(20_000)]
    for r in written:
        records.add(r)
        records.evict(expired_before=0.0)
    assert records.nbytes <= budget
    kept = len(records)
    assert 1000 < kept < 20_000
    assert records.evicted_early == 20_000 - kept
    assert records.get(written[-1].request_id) == written[-1]
    assert records.get(written[-kept].request_id) == written[-kept]
    assert records.get(written[-kept - 1].request_id) is None
    assert budget / kept <= 150  # bytes a record, tables included


def test_whole_generations_expire_with_the_retention() -> None:
    records = Records(4 << 20)
    old = [record(at=100.0) for _ in range(3000)]
    new = [record(at=200.0) for _ in range(3000)]
    for r in old + new:
        records.add(r)
    dropped = records.evict(expired_before=150.0)
    assert dropped and records.evicted_early == 0
    assert all(records.get(r.request_id) is None for r in old[:1000])
    assert records.get(new[-1].request_id) == new[-1]


def test_records_beyond_the_contexts_keep_their_own_tuple() -> None:
    records = Records(1 << 20, max_contexts=2)
    kept = [record(workflow=f"wf{i}") for i in range(5)]
    for r in kept:
        records.add(r)
    assert [records.get(r.request_id) for r in kept] == kept


def test_the_collector_does_not_track_them() -> None:
    records = Records(1 << 20)
    for _ in range(100):
        records.add(record())
    gc.collect()
    generations = records._generations  # the dicts a full collection would otherwise walk
    assert not any(gc.is_tracked(g.rows) for g in generations)


def test_evidence_is_kept_per_record_and_leaves_with_it() -> None:
    # Evidence is free text: were it part of the shared context, every distinct span would be
    # kept for the life of the process, after its record was evicted.
    records = Records(64 * 1024)
    written = [
        record(at=1000.0 + i, self_flagged=True, source="text", evidence=f"I think, case {i}")
        for i in range(5_000)
    ]
    for r in written:
        records.add(r)
        records.evict(expired_before=0.0)
    assert len(records._contexts) == 1
    assert records.nbytes <= 64 * 1024
    kept = [r for r in written if r.request_id in records]
    assert 0 < len(kept) < len(written)
    assert [records.get(r.request_id) for r in kept] == kept
