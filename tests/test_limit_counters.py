"""The limit counters (gateway/state/counters.py), run unchanged against every store: in memory,
the shared Redis under a key prefix unique to each test, and a three-node Redis Cluster (the
`kind` fixture, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import re
import time

import redis

from gateway.state.base import Store
from gateway.state.counters import DAY, MINUTE, Check, Settlement, minute_start
from gateway.state.redis import RedisStore
from tests.redis_server import SHARED_URL, keys, shared_prefix
from tests.test_state_contract import run

LEASE_S = 600.0


def window(limit: int, cost: int = 1, name: str = "requests") -> Check:
    return Check("window", "wf", name, limit, cost)


def day(limit: int) -> Check:
    return Check("day", "wf", "spend", limit, 1)


def slots(limit: int) -> Check:
    return Check("slots", "wf", "concurrency", limit, 1)


def mid_minute() -> float:
    """Half way through the current minute: the previous minute then weighs one half."""
    return minute_start(time.time()) + 30.0


async def admitted(store: Store, checks: list[Check], now: float, n: int) -> int:
    results = [await store.admit(checks, now, f"r{i}", LEASE_S) for i in range(n)]
    return sum(1 for r in results if r.refused is None)


def test_a_window_admits_up_to_its_limit_and_counts_no_refusal(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        assert await admitted(store, [window(5)], now, 8) == 5
        refusal = await store.admit([window(5)], now, "again", LEASE_S)
        assert refusal.refused == 0
        assert refusal.counts == [(0, 5)]  # the refusals counted nothing

    run(kind, scenario)


def test_a_request_is_counted_against_all_its_checks_or_none(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        loose, tight = window(100, name="workflow"), window(2, name="key")
        assert await admitted(store, [loose, tight], now, 5) == 2
        result = await store.admit([loose, tight], now, "x", LEASE_S)
        assert result.refused == 1
        assert result.counts == [(0, 2), (0, 2)]  # the loose one was not counted either

    run(kind, scenario)


def test_the_previous_minute_weighs_what_is_left_of_it(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        assert await admitted(store, [window(10)], now, 10) == 10
        later = now + MINUTE  # half way through the next minute: 10 * 0.5 still count
        assert await admitted(store, [window(10)], later, 10) == 5
        result = await store.admit([window(10)], later + 15, "y", LEASE_S)  # 10 * 0.25 + 5
        assert result.refused is None and result.counts == [(10, 5)]

    run(kind, scenario)


def test_a_token_estimate_is_corrected_in_the_minute_it_was_counted(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        tokens = window(1000, cost=800, name="tokens")
        assert (await store.admit([tokens], now, "a", LEASE_S)).refused is None
        assert (await store.admit([tokens], now, "b", LEASE_S)).refused == 0
        await store.settle([Settlement([(tokens, -700)], now, "a")], now + 1)  # it used 100
        result = await store.admit([tokens], now + 2, "b", LEASE_S)
        assert result.refused is None and result.counts == [(0, 100)]

    run(kind, scenario)


def test_a_day_admits_while_below_its_limit_and_starts_again_the_next_day(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        budget = day(1_000_000)  # micro-dollars
        assert (await store.admit([budget], now, "a", LEASE_S)).refused is None
        await store.settle([Settlement([(budget, 999_999)], now, "a")], now)
        assert (await store.admit([budget], now, "b", LEASE_S)).refused is None  # still below
        await store.settle([Settlement([(budget, 5)], now, "b")], now)  # the one in flight finishes
        result = await store.admit([budget], now, "c", LEASE_S)
        assert result.refused == 0 and result.counts == [(1_000_004, 0)]
        assert (await store.admit([budget], now + DAY, "d", LEASE_S)).refused is None

    run(kind, scenario)


def test_slots_are_held_until_settled_or_their_lease_ends(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        cap = slots(2)
        assert await admitted(store, [cap], now, 3) == 2
        await store.settle([Settlement([(cap, 0)], now, "r0")], now)
        assert (await store.admit([cap], now, "next", LEASE_S)).refused is None
        assert (await store.admit([cap], now, "more", LEASE_S)).refused == 0
        assert (await store.admit([cap], now + LEASE_S + 1, "late", LEASE_S)).refused is None

    run(kind, scenario)


def test_a_dry_run_reads_and_counts_nothing(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        checks = [window(3), slots(3)]
        await store.admit(checks, now, "a", LEASE_S)
        for _ in range(5):
            peek = await store.admit(checks, now, "p", LEASE_S, dry=True)
            assert peek.refused is None and peek.counts == [(0, 1), (1, 0)]

    run(kind, scenario)


def test_concurrent_requests_never_overshoot_the_limit(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        checks = [window(20), slots(30)]
        results = await asyncio.gather(
            *(store.admit(checks, now, f"c{i}", LEASE_S) for i in range(60))
        )
        assert sum(1 for r in results if r.refused is None) == 20

    run(kind, scenario)


def test_a_requests_redis_keys_share_one_cluster_slot_and_expire() -> None:
    with shared_prefix() as prefix:

        async def main() -> None:
            store = RedisStore(SHARED_URL, prefix, 3600, 2.0, 4)
            now = time.time()
            checks = [window(5), window(9, 3, "tokens"), day(10), slots(2)]
            await store.admit(checks, now, "r1", LEASE_S)
            await store.settle([Settlement([(checks[2], 4)], now, "r1")], now)
            await store.close()

        asyncio.run(main())
        found = keys(SHARED_URL, prefix)
        assert len(found) == 4  # two windows' minutes, a day, the slots
        assert {re.findall(r"\{[^}]*\}", key)[0] for key in found} == {"{lim:wf}"}
        with redis.Redis.from_url(SHARED_URL) as client:
            for key in found:
                assert 0 < client.pttl(key) <= 2 * DAY * 1000, key


def test_one_settlement_call_settles_many_requests_in_many_scopes(kind: str) -> None:
    async def scenario(store: Store) -> None:
        now = mid_minute()
        caps = [Check("slots", scope, "concurrency", 1, 1) for scope in ("wf-a", "wf-b")]
        for i, cap in enumerate(caps):
            assert (await store.admit([cap], now, f"r{i}", LEASE_S)).refused is None
        await store.settle(
            [Settlement([(cap, 0)], now, f"r{i}") for i, cap in enumerate(caps)], now
        )
        for cap in caps:
            assert (await store.admit([cap], now, "next", LEASE_S)).refused is None

    run(kind, scenario)
