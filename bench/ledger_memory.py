"""What the in-memory ledger costs per record, and that its byte budget holds.

    .venv/bin/python -m bench.ledger_memory [--records 200000] [--budget BYTES]

Writes records shaped like the gateway's (its request ids, a few workflows, routes and models)
into a MemoryStore in batches, as the ledger does, and prints the bytes allocated per record
(tracemalloc: what the second half of the records added to everything the store keeps), the
bytes the store counts against its budget, and the records it kept. See docs/bench.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc

from gateway.plan import new_request_id
from gateway.state.base import Record
from gateway.state.memory import MemoryStore

WORKFLOWS = ("bulk-summarization", "deploy-pipeline", "draft-generation", "triage")
MODELS = ("fast-model", "careful-model", "careful-model-backup")
BATCH = 256
GOAL_BYTES_PER_RECORD = 150


def records(count: int, start: float) -> list[Record]:
    return [
        Record(
            new_request_id(),
            WORKFLOWS[i % len(WORKFLOWS)],
            "calibration-first" if i % 3 else "capability-first",
            MODELS[i % len(MODELS)],
            "3f2a9c1b7d4e",
            i % 17 == 0,
            i % 11 == 0,
            start + i * 0.001,
        )
        for i in range(count)
    ]


async def fill(store: MemoryStore, count: int) -> None:
    # Made batch by batch, as the ledger hands them over, so that only the store keeps them.
    start = time.time() - count * 0.001
    for offset in range(0, count, BATCH):
        batch = records(min(BATCH, count - offset), start + offset * 0.001)
        await store.write(batch)


def allocated() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def measure(count: int, budget: int) -> dict[str, float]:
    """Fill half, then the other half: the second half's bytes are what a record costs, apart
    from what the store holds whatever its size (its recent lists, its buckets)."""
    tracemalloc.start()
    before = allocated()
    store = MemoryStore(14 * 86400, budget)
    asyncio.run(fill(store, count // 2))
    half, kept_half = allocated(), len(store._records)
    asyncio.run(fill(store, count - count // 2))
    full, kept = allocated(), len(store._records)
    tracemalloc.stop()
    grown = kept - kept_half
    return {
        "records_written": count,
        "records_kept": kept,
        "budget_bytes": budget,
        "counted_bytes": store._records.nbytes,
        "allocated_bytes": full - before,
        "bytes_per_record": (full - half) / grown if grown else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_memory", description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--budget", type=int, default=1 << 40, help="bytes (default: no cap)")
    args = parser.parse_args(argv)
    result = measure(args.records, args.budget)
    per = result["bytes_per_record"]
    verdict = "pass" if per <= GOAL_BYTES_PER_RECORD else "MISS"
    print(
        f"in-memory ledger: {int(result['records_kept']):,} of {args.records:,} records kept,"
        f" {result['allocated_bytes'] / 2**20:.1f} MiB allocated in all, {per:.0f} bytes a record"
        f" (goal <= {GOAL_BYTES_PER_RECORD}: {verdict});"
        f" counted against the budget {result['counted_bytes'] / 2**20:.1f} MiB"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
