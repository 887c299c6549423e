"""Limit counters in Redis (gateway/state/counters.py says what they count): one Lua script
admits a request against all its checks in one round trip, another settles it afterwards.

Keys (every one with a TTL; `{...}` is a hash tag, so every check of one request, which
shares a scope, lives in one Redis Cluster slot and one script may touch them all):

  {prefix}{lim:<scope>}:<name>:m:<minute start>   string, a window's count, 3 min
  {prefix}{lim:<scope>}:<name>:d:<day start>      string, a day's total, 2 days
  {prefix}{lim:<scope>}:<name>:slots              sorted set, request id -> lease end (ms)

Time comes from the replica (its clock, NTP-synchronised, places the windows), not from Redis,
so the memory store and this one count alike.

This module builds the calls; gateway/state/redis.py, the only module that imports redis,
owns the client and translates its errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from gateway.state.counters import (
    DAY_TTL_S,
    MINUTE,
    WINDOW_TTL_S,
    Admission,
    Check,
    Settlement,
    day_start,
    minute_start,
)

# KEYS: two per check (window: previous and this minute; day: the day, twice; slots: the set,
# twice). ARGV: fraction of this minute gone, now (ms), lease (ms), member, dry ('1': count
# nothing), then per check: kind (w, d, s), limit, cost, ttl (ms).
ADMIT = """
local frac, now, lease, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local n = #KEYS / 2
local counts, refused = {}, 0
for i = 1, n do
  local a = 5 + (i - 1) * 4
  local kind, limit, cost = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local first, second, used = 0, 0, 0
  if kind == 'w' then
    first = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
    second = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
    used = math.floor(first * (1 - frac)) + second
  elseif kind == 'd' then
    first = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
    used = first
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', now)
    first = redis.call('ZCARD', KEYS[2 * i])
    used = first
  end
  counts[i] = {first, second}
  if refused == 0 and used + cost > limit then refused = i end
end
if refused == 0 and ARGV[5] ~= '1' then
  for i = 1, n do
    local a = 5 + (i - 1) * 4
    local kind = ARGV[a + 1]
    if kind == 'w' then
      redis.call('INCRBY', KEYS[2 * i], ARGV[a + 3])
      redis.call('PEXPIRE', KEYS[2 * i], ARGV[a + 4])
    elseif kind == 's' then
      redis.call('ZADD', KEYS[2 * i], now + lease, member)
      redis.call('PEXPIRE', KEYS[2 * i], lease)
    end
  end
end
return {refused, counts}
"""
# KEYS: one per change. ARGV per change: kind, amount, ttl (ms), member.
SETTLE = """
for i = 1, #KEYS do
  local a = (i - 1) * 4
  if ARGV[a + 1] == 's' then
    redis.call('ZREM', KEYS[i], ARGV[a + 4])
  elseif ARGV[a + 2] ~= '0' then
    redis.call('INCRBY', KEYS[i], ARGV[a + 2])
    redis.call('PEXPIRE', KEYS[i], ARGV[a + 3])
  end
end
return 0
"""
KIND_CODES = {"window": "w", "day": "d", "slots": "s"}
TTL_MS = {"window": WINDOW_TTL_S * 1000, "day": DAY_TTL_S * 1000, "slots": 0}


class RedisCounters:
    def __init__(self, client: Any, prefix: str) -> None:
        self.prefix = prefix
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)

    def key(self, check: Check, suffix: str) -> str:
        scope, name = quote(check.scope, safe=""), quote(check.name, safe="")
        return f"{self.prefix}{{lim:{scope}}}:{name}:{suffix}"

    async def admit(
        self, checks: Sequence[Check], now: float, member: str, lease_s: float, dry: bool
    ) -> Admission:
        keys: list[str] = []
        now_ms = int(now * 1000)
        args: list[Any] = [repr((now % MINUTE) / MINUTE), now_ms, int(lease_s * 1000), member,
                           int(dry)]  # fmt: skip
        for check in checks:
            keys += self._keys(check, now)
            args += [KIND_CODES[check.kind], check.limit, check.cost, TTL_MS[check.kind]]
        refused, counts = await self._admit(keys, args)
        return Admission(
            int(refused) - 1 if int(refused) else None, [(int(a), int(b)) for a, b in counts]
        )

    async def settle(self, settlements: Sequence[Settlement], now: float) -> None:
        """One script call per scope (a Cluster slot each) for a whole batch of requests."""
        calls: dict[str, tuple[list[str], list[Any]]] = {}
        for changes, admitted_at, member in settlements:
            for check, amount in changes:
                keys, args = calls.setdefault(check.scope, ([], []))
                keys.append(self._settled_key(check, admitted_at, now))
                args += [KIND_CODES[check.kind], amount, TTL_MS[check.kind], member]
        for keys, args in calls.values():
            await self._settle(keys, args)

    def _settled_key(self, check: Check, admitted_at: float, now: float) -> str:
        if check.kind == "window":
            return self.key(check, f"m:{minute_start(admitted_at)}")
        return self.key(check, f"d:{day_start(now)}" if check.kind == "day" else "slots")

    def _keys(self, check: Check, now: float) -> list[str]:
        if check.kind == "window":
            start = minute_start(now)
            return [self.key(check, f"m:{start - MINUTE}"), self.key(check, f"m:{start}")]
        key = self.key(check, f"d:{day_start(now)}" if check.kind == "day" else "slots")
        return [key, key]
