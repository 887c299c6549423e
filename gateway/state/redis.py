"""The Redis store, shared by every replica; the only module that imports redis.

Key layout (every key under the `floorgate:` prefix, every key with a TTL; `{tag}` is empty on
a single server, and on a Redis Cluster the hash tag `{s<n>}` of the request's shard, n =
CRC-32 of the request id mod SHARDS, so a record and the counts and list it adds to share one
slot and one script call touches one slot):

  {prefix}{tag}req:{request_id}                          hash, the ledger record, `retention_s`
      workflow route model policy_version abstained self_flagged time kind source evidence
      cancelled (1: the client left first; then the record adds to no bucket or list)
      outcome:<outcome> = time reported, note:<outcome> = note     (feedback, on the record)
  {prefix}{tag}stats:{60|3600}:{route}:{model}:{start}   hash, "<workflow>|<count>" -> n
                                                         minute buckets 2 h, hour buckets 30 d
  {prefix}doc:{key}                                      string, a stored response, `retention_s`
  {prefix}{tag}recent:{answers|feedback}:{route}:{model} list, "<time>|<code>|<workflow>",
                            newest first, trimmed to 10,000, 30 d; the time in ms, or on a
                            Cluster in seconds to the µs ("1764576000.123456")

A Cluster's statistics are the sum of the SHARDS shards' (a window reads every shard's buckets;
a count window merges the shards' lists by time). SHARDS must not change while records live.
The limit counters' keys are in gateway/state/redis_counters.py.

Writes are Lua scripts, one call per shard, so each is atomic and idempotent: a ledger record
is written (and counted) only if absent, so replaying a batch whose reply was lost counts
nothing twice; an outcome is counted only if HSETNX adds it to its record, so concurrent
duplicates count once.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from itertools import chain
from typing import Any, TypeVar
from urllib.parse import quote

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from gateway.state.base import (
    CODE_OF_OUTCOME,
    HOUR,
    HOUR_BUCKET_TTL_S,
    MAX_WINDOW_COUNT,
    MINUTE,
    MINUTE_BUCKET_TTL_S,
    RECENT_TTL_S,
    ByWorkflow,
    Counts,
    Feedback,
    Query,
    Record,
    Result,
    StoreUnavailable,
    bucket_starts,
    count_recent,
)
from gateway.state.counters import Admission, Check, Settlement
from gateway.state.redis_counters import RedisCounters

WRITE = """
local ttl = {ARGV[2], ARGV[3]}
local cap = tonumber(ARGV[5])
local new = 0
for i = 0, #KEYS / 4 - 1 do
  local k, a = i * 4, 5 + i * 12
  if redis.call('EXISTS', KEYS[k + 1]) == 0 then
    local wf = ARGV[a + 1]
    redis.call('HSET', KEYS[k + 1], 'workflow', wf, 'route', ARGV[a + 2], 'model', ARGV[a + 3],
      'policy_version', ARGV[a + 4], 'abstained', ARGV[a + 5], 'self_flagged', ARGV[a + 6],
      'time', ARGV[a + 7], 'kind', ARGV[a + 9], 'source', ARGV[a + 10], 'evidence', ARGV[a + 11],
      'cancelled', ARGV[a + 12])
    redis.call('PEXPIRE', KEYS[k + 1], ARGV[1])
    if ARGV[a + 12] == '0' then
      for b = 1, 2 do
        local bucket = KEYS[k + 1 + b]
        redis.call('HINCRBY', bucket, wf .. '|answered', 1)
        if ARGV[a + 5] == '1' then redis.call('HINCRBY', bucket, wf .. '|abstained', 1) end
        if ARGV[a + 6] == '1' then redis.call('HINCRBY', bucket, wf .. '|self_flagged', 1) end
        redis.call('PEXPIRE', bucket, ttl[b])
      end
      redis.call('LPUSH', KEYS[k + 4], ARGV[a + 8])
      redis.call('LTRIM', KEYS[k + 4], 0, cap - 1)
      redis.call('PEXPIRE', KEYS[k + 4], ARGV[4])
    end
    new = new + 1
  end
end
return new
"""
FEEDBACK = """
local ttl = {ARGV[1], ARGV[2]}
local cap = tonumber(ARGV[4])
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local k, a = i * 4, 4 + i * 5
  local outcome = ARGV[a + 1]
  local result = 0
  if redis.call('EXISTS', KEYS[k + 1]) == 1 then
    result = 2
    if redis.call('HSETNX', KEYS[k + 1], 'outcome:' .. outcome, ARGV[a + 2]) == 1 then
      result = 1
      if ARGV[a + 3] ~= '' then
        redis.call('HSET', KEYS[k + 1], 'note:' .. outcome, ARGV[a + 3])
      end
      for b = 1, 2 do
        redis.call('HINCRBY', KEYS[k + 1 + b], ARGV[a + 4] .. '|' .. outcome, 1)
        redis.call('PEXPIRE', KEYS[k + 1 + b], ttl[b])
      end
      redis.call('LPUSH', KEYS[k + 4], ARGV[a + 5])
      redis.call('LTRIM', KEYS[k + 4], 0, cap - 1)
      redis.call('PEXPIRE', KEYS[k + 4], ARGV[3])
    end
  end
  out[i + 1] = result
end
return out
"""
RECORD_FIELDS = ("workflow", "route", "model", "policy_version", "abstained", "self_flagged",
                 "time")  # fmt: skip
# Absent from records an older version wrote.
VERDICT_FIELDS = ("kind", "source", "evidence", "cancelled")
RESULTS: tuple[Result, ...] = ("not_found", "recorded", "duplicate")
HEALTH_CHECK_S = 10
SHARDS = 8  # on a Cluster: the ledger's load spreads over up to this many nodes
T = TypeVar("T")


class Keys:
    def __init__(self, prefix: str, shards: int = 1) -> None:
        self.prefix = prefix
        self.shards = shards

    def shard(self, request_id: str) -> int:
        return zlib.crc32(request_id.encode()) % self.shards

    def record(self, request_id: str) -> str:
        return f"{self._tag(self.shard(request_id))}req:{request_id}"

    def document(self, key: str) -> str:
        return f"{self.prefix}doc:{key}"

    def bucket(self, shard: int, route: str, model: str, width: int, start: int) -> str:
        return f"{self._tag(shard)}stats:{width}:{_name(route)}:{_name(model)}:{start}"

    def recent(self, shard: int, kind: str, route: str, model: str) -> str:
        return f"{self._tag(shard)}recent:{kind}:{_name(route)}:{_name(model)}"

    def event(self, kind: str, request_id: str, route: str, model: str, at: float) -> list[str]:
        """The keys an event at `at` touches: its record, minute and hour buckets, and list,
        all in the request's shard."""
        shard = self.shard(request_id)
        return [
            self.record(request_id),
            self.bucket(shard, route, model, MINUTE, int(at // MINUTE) * MINUTE),
            self.bucket(shard, route, model, HOUR, int(at // HOUR) * HOUR),
            self.recent(shard, kind, route, model),
        ]

    def _tag(self, shard: int) -> str:
        return self.prefix if self.shards == 1 else f"{self.prefix}{{s{shard}}}"


class RedisStore:
    def __init__(
        self,
        url: str,
        prefix: str,
        retention_s: float,
        timeout_s: float,
        max_connections: int,
        cluster: bool = False,
    ) -> None:
        self.keys = Keys(prefix, SHARDS if cluster else 1)
        self.retention_ms = int(retention_s * 1000)
        self.timeout_s = timeout_s
        # Short timeouts, one immediate retry (a pooled connection may predate a Redis
        # restart), no backoff: the ledger's own buffer does the waiting, never a request.
        options: dict[str, Any] = {
            "max_connections": max_connections,
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "health_check_interval": HEALTH_CHECK_S,
            "retry": Retry(NoBackoff(), 1),
            "decode_responses": True,
        }
        self.pool: BlockingConnectionPool | None = None
        self.client: Any
        # A Cluster client's pool per node does not wait for a free connection, it fails:
        # here calls wait (up to the timeout) for one of `max_connections` turns instead.
        self._turns: asyncio.Semaphore | None = None
        if cluster:
            self.client = RedisCluster.from_url(url, **options)
            self._turns = asyncio.Semaphore(max_connections)
        else:
            self.pool = BlockingConnectionPool.from_url(url, timeout=timeout_s, **options)
            self.client = Redis(connection_pool=self.pool)
        self._learning = asyncio.Lock()
        self._ready = False
        self._write = self.client.register_script(WRITE)
        self._feedback = self.client.register_script(FEEDBACK)
        self.counters = RedisCounters(self.client, prefix)

    async def write(self, records: Sequence[Record]) -> int:
        calls: dict[int, tuple[list[str], list[Any]]] = {}
        for r in records:
            keys, args = calls.setdefault(
                self.keys.shard(r.request_id),
                ([], [self.retention_ms, *_ttls_ms(), MAX_WINDOW_COUNT]),
            )
            keys += self.keys.event("answers", r.request_id, r.route, r.model, r.time)
            entry = f"{self._stamp(r.time)}|{r.code}|{r.workflow}"
            args += [r.workflow, r.route, r.model, r.policy_version, int(r.abstained),
                     int(r.self_flagged), repr(r.time), entry, r.kind, r.source,
                     r.evidence, int(r.cancelled)]  # fmt: skip
        news = await self._each([partial(self._write, k, a) for k, a in calls.values()])
        return sum(int(new) for new in news)

    async def lookup(self, request_ids: Sequence[str]) -> list[Record | None]:
        async with self._call(), self.client.pipeline(transaction=False) as pipe:
            for request_id in request_ids:
                pipe.hmget(self.keys.record(request_id), [*RECORD_FIELDS, *VERDICT_FIELDS])
            rows = await pipe.execute()
        return [_record(rid, row) for rid, row in zip(request_ids, rows, strict=True)]

    async def add_feedback(self, items: Sequence[tuple[Feedback, Record]]) -> list[Result]:
        calls: dict[int, tuple[list[int], list[str], list[Any]]] = {}
        for i, (item, r) in enumerate(items):
            at, keys, args = calls.setdefault(
                self.keys.shard(item.request_id), ([], [], [*_ttls_ms(), MAX_WINDOW_COUNT])
            )
            at.append(i)
            keys += self.keys.event("feedback", item.request_id, r.route, r.model, item.time)
            entry = f"{self._stamp(item.time)}|{CODE_OF_OUTCOME[item.outcome]}|{r.workflow}"
            args += [item.outcome, repr(item.time), item.note or "", r.workflow, entry]
        replies = await self._each([partial(self._feedback, k, a) for _, k, a in calls.values()])
        results: list[Result] = ["not_found"] * len(items)
        for (at, _keys, _args), codes in zip(calls.values(), replies, strict=True):
            for i, code in zip(at, codes, strict=True):
                results[i] = RESULTS[int(code)]
        return results

    async def tallies(self, queries: Sequence[Query], now: float) -> list[ByWorkflow]:
        async with self._call(), self.client.pipeline(transaction=False) as pipe:
            plans = [self._plan(pipe, query, now) for query in queries]
            replies = iter(await pipe.execute())
        return [
            self._read(plan, query, replies, now)
            for plan, query in zip(plans, queries, strict=True)
        ]

    async def admit(
        self, checks: Sequence[Check], now: float, member: str, lease_s: float, dry: bool = False
    ) -> Admission:
        async with self._call():
            return await self.counters.admit(checks, now, member, lease_s, dry)

    async def settle(self, settlements: Sequence[Settlement], now: float) -> None:
        async with self._call():
            await self.counters.settle(settlements, now)

    async def put_document(self, key: str, value: str, ttl_s: float) -> None:
        async with self._call():
            await self.client.set(self.keys.document(key), value, px=int(ttl_s * 1000))

    async def get_document(self, key: str) -> str | None:
        async with self._call():
            value = await self.client.get(self.keys.document(key))
        return None if value is None else str(value)

    async def ping(self) -> None:
        async with self._call():
            await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
        if self.pool is not None:
            await self.pool.aclose()

    @asynccontextmanager
    async def _call(self) -> AsyncIterator[None]:
        """One call to Redis: on a Cluster, in its turn; its errors translated."""
        with _translated():
            if self._turns is None:
                yield
                return
            async with asyncio.timeout(self.timeout_s):
                await self._turns.acquire()
            try:
                if not self._ready:  # learn the slots once, not in each of several calls
                    async with asyncio.timeout(self.timeout_s), self._learning:
                        if not self._ready:
                            await self.client.initialize()
                            self._ready = True
                yield
            finally:
                self._turns.release()

    async def _each(self, calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
        """Script calls, one per shard, side by side (one only, on a single server)."""

        async def one(call: Callable[[], Awaitable[T]]) -> T:
            async with self._call():
                return await call()

        return list(await asyncio.gather(*(one(call) for call in calls)))

    def _plan(self, pipe: Any, query: Query, now: float) -> int:
        """Queue the reads for one query, every shard's; returns how many bucket replies they
        take (0: the lists)."""
        shards = range(self.keys.shards)
        if query.count is not None or query.seconds is None:
            limit = (query.count or MAX_WINDOW_COUNT) - 1
            for kind in ("answers", "feedback"):
                for shard in shards:
                    pipe.lrange(self.keys.recent(shard, kind, query.route, query.model), 0, limit)
            return 0
        width, starts = bucket_starts(query.seconds, now)
        for shard in shards:
            for start in starts:
                pipe.hgetall(self.keys.bucket(shard, query.route, query.model, width, start))
        return len(starts) * self.keys.shards

    def _read(self, buckets: int, query: Query, replies: Iterator[Any], now: float) -> ByWorkflow:
        if buckets == 0:
            answers, feedback = (self._merged(replies) for _ in range(2))
            return count_recent(answers, feedback, query, now)
        out: ByWorkflow = {}
        for _ in range(buckets):
            for name, value in next(replies).items():
                workflow, _sep, count = name.rpartition("|")
                out.setdefault(workflow, Counts()).bump(count, int(value))
        return out

    def _stamp(self, at: float) -> str:
        """A recent-list entry's time: ms on a single server (its one list keeps the order);
        seconds to the µs on a Cluster, whose shards' lists are merged by time."""
        return str(int(at * 1000)) if self.keys.shards == 1 else f"{at:.6f}"

    def _merged(self, replies: Iterator[Any]) -> list[tuple[float, str, str]]:
        """One kind of recent list, every shard's: in the order of the one list a single
        server keeps, or merged newest first across a Cluster's shards."""
        lists = [list(_entries(next(replies))) for _ in range(self.keys.shards)]
        if len(lists) == 1:
            return lists[0]
        return sorted(chain.from_iterable(lists), key=lambda entry: -entry[0])


def _ttls_ms() -> list[int]:
    return [MINUTE_BUCKET_TTL_S * 1000, HOUR_BUCKET_TTL_S * 1000, RECENT_TTL_S * 1000]


def _name(name: str) -> str:
    return quote(name, safe="")  # a ':' in a route or model name cannot collide two keys


def _record(request_id: str, row: list[str | None]) -> Record | None:
    fields, verdict = row[: len(RECORD_FIELDS)], row[len(RECORD_FIELDS) :]
    if any(value is None for value in fields):
        return None
    workflow, route, model, version, abstained, flagged, at = fields
    kind, source, evidence, cancelled = verdict
    return Record(request_id, str(workflow), str(route), str(model), str(version),
                  abstained == "1", flagged == "1", float(str(at)), kind or "",
                  source or "none", evidence or "", cancelled == "1")  # fmt: skip


def _entries(raw: list[str]) -> Iterator[tuple[float, str, str]]:
    for item in raw:
        at, code, workflow = item.split("|", 2)
        yield float(at) if "." in at else int(at) / 1000, code, workflow


@contextmanager
def _translated() -> Iterator[None]:
    """Redis's errors become StoreUnavailable here, and only here."""
    try:
        yield
    except (RedisError, RedisClusterException, OSError) as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc
