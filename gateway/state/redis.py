"""The Redis store, shared by every replica; the only module that imports redis.

Key layout (every key under the `floorgate:` prefix, every key with a TTL):

  {prefix}req:{request_id}                          hash, the ledger record, `retention_s`
      workflow route model policy_version abstained self_flagged time
      outcome:<outcome> = time reported, note:<outcome> = note     (feedback, on the record)
  {prefix}stats:{60|3600}:{route}:{model}:{start}   hash, "<workflow>|<count>" -> n
                                                    minute buckets 2 h, hour buckets 30 d
  {prefix}doc:{key}                                 string, a stored response, `retention_s`
  {prefix}recent:{answers|feedback}:{route}:{model} list, "<ms>|<code>|<workflow>", newest
                                                    first, trimmed to 10,000, 30 d

Writes are Lua scripts, so each is atomic and idempotent: a ledger record is written (and
counted) only if absent, so replaying a batch whose reply was lost counts nothing twice; an
outcome is counted only if HSETNX adds it to its record, so concurrent duplicates count once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

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
  local k, a = i * 4, 5 + i * 11
  if redis.call('EXISTS', KEYS[k + 1]) == 0 then
    local wf = ARGV[a + 1]
    redis.call('HSET', KEYS[k + 1], 'workflow', wf, 'route', ARGV[a + 2], 'model', ARGV[a + 3],
      'policy_version', ARGV[a + 4], 'abstained', ARGV[a + 5], 'self_flagged', ARGV[a + 6],
      'time', ARGV[a + 7], 'kind', ARGV[a + 9], 'source', ARGV[a + 10], 'evidence', ARGV[a + 11])
    redis.call('PEXPIRE', KEYS[k + 1], ARGV[1])
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
VERDICT_FIELDS = ("kind", "source", "evidence")  # absent from records an older version wrote
RESULTS: tuple[Result, ...] = ("not_found", "recorded", "duplicate")
HEALTH_CHECK_S = 10


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def record(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}"

    def document(self, key: str) -> str:
        return f"{self.prefix}doc:{key}"

    def bucket(self, route: str, model: str, width: int, start: int) -> str:
        return f"{self.prefix}stats:{width}:{_name(route)}:{_name(model)}:{start}"

    def recent(self, kind: str, route: str, model: str) -> str:
        return f"{self.prefix}recent:{kind}:{_name(route)}:{_name(model)}"

    def event(self, kind: str, request_id: str, route: str, model: str, at: float) -> list[str]:
        """The keys an event at `at` touches: its record, minute and hour buckets, and list."""
        return [
            self.record(request_id),
            self.bucket(route, model, MINUTE, int(at // MINUTE) * MINUTE),
            self.bucket(route, model, HOUR, int(at // HOUR) * HOUR),
            self.recent(kind, route, model),
        ]


class RedisStore:
    def __init__(
        self, url: str, prefix: str, retention_s: float, timeout_s: float, max_connections: int
    ) -> None:
        self.keys = Keys(prefix)
        self.retention_ms = int(retention_s * 1000)
        # Short timeouts, one immediate retry (a pooled connection may predate a Redis
        # restart), no backoff: the ledger's own buffer does the waiting, never a request.
        self.pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=HEALTH_CHECK_S,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
        self.client = Redis(connection_pool=self.pool)
        self._write = self.client.register_script(WRITE)
        self._feedback = self.client.register_script(FEEDBACK)
        self.counters = RedisCounters(self.client, prefix)

    async def write(self, records: Sequence[Record]) -> int:
        keys: list[str] = []
        args: list[Any] = [self.retention_ms, *_ttls_ms(), MAX_WINDOW_COUNT]
        for r in records:
            keys += self.keys.event("answers", r.request_id, r.route, r.model, r.time)
            entry = f"{int(r.time * 1000)}|{r.code}|{r.workflow}"
            args += [r.workflow, r.route, r.model, r.policy_version, int(r.abstained),
                     int(r.self_flagged), repr(r.time), entry, r.kind, r.source,
                     r.evidence]  # fmt: skip
        with _translated():
            return int(await self._write(keys, args))

    async def lookup(self, request_ids: Sequence[str]) -> list[Record | None]:
        with _translated():
            async with self.client.pipeline(transaction=False) as pipe:
                for request_id in request_ids:
                    pipe.hmget(self.keys.record(request_id), [*RECORD_FIELDS, *VERDICT_FIELDS])
                rows = await pipe.execute()
        return [_record(rid, row) for rid, row in zip(request_ids, rows, strict=True)]

    async def add_feedback(self, items: Sequence[tuple[Feedback, Record]]) -> list[Result]:
        keys: list[str] = []
        args: list[Any] = [*_ttls_ms(), MAX_WINDOW_COUNT]
        for item, r in items:
            keys += self.keys.event("feedback", item.request_id, r.route, r.model, item.time)
            entry = f"{int(item.time * 1000)}|{CODE_OF_OUTCOME[item.outcome]}|{r.workflow}"
            args += [item.outcome, repr(item.time), item.note or "", r.workflow, entry]
        with _translated():
            codes = await self._feedback(keys, args)
        return [RESULTS[int(code)] for code in codes]

    async def tallies(self, queries: Sequence[Query], now: float) -> list[ByWorkflow]:
        with _translated():
            async with self.client.pipeline(transaction=False) as pipe:
                plans = [self._plan(pipe, query, now) for query in queries]
                replies = iter(await pipe.execute())
        return [
            self._read(plan, query, replies, now)
            for plan, query in zip(plans, queries, strict=True)
        ]

    async def admit(
        self, checks: Sequence[Check], now: float, member: str, lease_s: float, dry: bool = False
    ) -> Admission:
        with _translated():
            return await self.counters.admit(checks, now, member, lease_s, dry)

    async def settle(self, settlements: Sequence[Settlement], now: float) -> None:
        with _translated():
            await self.counters.settle(settlements, now)

    async def put_document(self, key: str, value: str, ttl_s: float) -> None:
        with _translated():
            await self.client.set(self.keys.document(key), value, px=int(ttl_s * 1000))

    async def get_document(self, key: str) -> str | None:
        with _translated():
            value = await self.client.get(self.keys.document(key))
        return None if value is None else str(value)

    async def ping(self) -> None:
        with _translated():
            await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
        await self.pool.aclose()

    def _plan(self, pipe: Any, query: Query, now: float) -> int:
        """Queue the reads for one query; returns how many replies they take (0: the lists)."""
        if query.count is not None or query.seconds is None:
            limit = (query.count or MAX_WINDOW_COUNT) - 1
            pipe.lrange(self.keys.recent("answers", query.route, query.model), 0, limit)
            pipe.lrange(self.keys.recent("feedback", query.route, query.model), 0, limit)
            return 0
        width, starts = bucket_starts(query.seconds, now)
        for start in starts:
            pipe.hgetall(self.keys.bucket(query.route, query.model, width, start))
        return len(starts)

    @staticmethod
    def _read(buckets: int, query: Query, replies: Iterator[Any], now: float) -> ByWorkflow:
        if buckets == 0:
            answers, feedback = next(replies), next(replies)
            return count_recent(_entries(answers), _entries(feedback), query, now)
        out: ByWorkflow = {}
        for _ in range(buckets):
            for name, value in next(replies).items():
                workflow, _sep, count = name.rpartition("|")
                out.setdefault(workflow, Counts()).bump(count, int(value))
        return out


def _ttls_ms() -> list[int]:
    return [MINUTE_BUCKET_TTL_S * 1000, HOUR_BUCKET_TTL_S * 1000, RECENT_TTL_S * 1000]


def _name(name: str) -> str:
    return quote(name, safe="")  # a ':' in a route or model name cannot collide two keys


def _record(request_id: str, row: list[str | None]) -> Record | None:
    fields, verdict = row[: len(RECORD_FIELDS)], row[len(RECORD_FIELDS) :]
    if any(value is None for value in fields):
        return None
    workflow, route, model, version, abstained, flagged, at = fields
    kind, source, evidence = verdict
    return Record(request_id, str(workflow), str(route), str(model), str(version),
                  abstained == "1", flagged == "1", float(str(at)), kind or "",
                  source or "none", evidence or "")  # fmt: skip


def _entries(raw: list[str]) -> Iterator[tuple[float, str, str]]:
    for item in raw:
        ms, code, workflow = item.split("|", 2)
        yield int(ms) / 1000, code, workflow


@contextmanager
def _translated() -> Iterator[None]:
    """Redis's errors become StoreUnavailable here, and only here."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc
