"""Redis outages never stop traffic: a private redis-server is killed in the middle of a load
and restarted on the same port. Requests keep being answered; the ledger buffers what it
cannot write and replays it; what a full buffer cannot hold is counted exactly."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
import redis

from gateway.app import Floorgate
from tests.fake_upstream import FakeUpstream
from tests.redis_server import RedisServer, keys, unique_prefix
from tests.state_gateway import (
    Caller,
    Load,
    gates_policy,
    sample,
    served,
    state_settings,
    wait_until,
)


@pytest.fixture
def policy(upstream: FakeUpstream, tmp_path: Path) -> Path:
    return gates_policy(tmp_path, upstream)


def stored(url: str, prefix: str) -> tuple[set[str], int, int]:
    """(request ids in the ledger, answered in minute buckets, answered in hour buckets)."""
    found = keys(url, prefix)
    ids = {k.removeprefix(f"{prefix}req:") for k in found if k.startswith(f"{prefix}req:")}
    sums = {"60": 0, "3600": 0}
    with redis.Redis.from_url(url, decode_responses=True) as client:
        for key in found:
            if key.startswith(f"{prefix}stats:"):
                width = key.removeprefix(f"{prefix}stats:").split(":")[0]
                counts = client.hgetall(key)
                sums[width] += sum(int(v) for k, v in counts.items() if k.endswith("|answered"))
    return ids, sums["60"], sums["3600"]


def metric(app: Floorgate, name: str, **labels: str) -> float:
    return sample(app, name, **labels) or 0.0


def test_redis_killed_mid_load_costs_no_request_and_no_record(policy: Path) -> None:
    prefix = unique_prefix()
    with RedisServer() as server:
        settings = state_settings(policy, server.url, redis_key_prefix=prefix)
        with served(settings) as (url, app), Caller(url) as caller:
            with Load(url) as load:
                load.grows_by(60)
                server.kill()
                time.sleep(0.3)  # a reply already on its way has arrived: no write succeeds now
                settled = time.monotonic()
                lost_with_redis = metric(app, "floorgate_ledger_written_total")
                down = caller.feedback(load.answered[0][0], "merged")
                load.grows_by(60)
                assert metric(app, "floorgate_ledger_write_failures_total") > 0
                assert metric(app, "floorgate_ledger_buffered") > 0
                server.start()
                restarted = time.monotonic()
                load.grows_by(60)
            total = len(load.answered)
            written = lambda: metric(app, "floorgate_ledger_written_total") == total  # noqa: E731
            wait_until(written, what="every record replayed")
            # Answered once no write could succeed: a reply that arrived just after the kill may
            # have been written to, and lost with, the memory-only Redis.
            during = next(rid for rid, at in load.answered if settled < at < restarted)
            assert caller.feedback(during, "merged").json()["status"] == "recorded"
            ids, minute_sum, hour_sum = stored(server.url, prefix)

    assert load.errors == []
    assert down.status_code == 503 and down.headers["retry-after"] == "5"
    assert down.json()["error"]["code"] == "state_unavailable"
    assert metric(app, "floorgate_ledger_dropped_total") == 0
    assert metric(app, "floorgate_ledger_buffered") == 0
    # A memory-only Redis forgets what it held when killed; everything else is there, and
    # everything answered once no write could succeed (buffered, then replayed) certainly is.
    assert 0 < lost_with_redis < total
    assert len(ids) == total - lost_with_redis
    assert {rid for rid, at in load.answered if at > settled} <= ids
    assert minute_sum == hour_sum == len(ids)
    assert metric(app, "floorgate_requests_total", workflow="deploy-pipeline",
                  route="calibration-first", model="careful", code="200",
                  stream="false") == total  # fmt: skip


def test_redis_frozen_mid_load_costs_no_request_and_counts_each_record_once(policy: Path) -> None:
    """SIGSTOP: connections stay open and nothing answers. The writes that timed out meanwhile
    run once Redis is thawed, and are replayed too: each record is still counted once."""
    prefix = unique_prefix()
    with RedisServer() as server:
        settings = state_settings(policy, server.url, redis_key_prefix=prefix)
        with served(settings) as (url, app):
            with Load(url) as load:
                load.grows_by(30)
                server.freeze()
                failed = lambda: metric(app, "floorgate_ledger_write_failures_total") > 0  # noqa: E731
                wait_until(failed, what="a ledger write timed out")
                load.grows_by(40)  # answered while Redis is frozen
                server.thaw()
                load.grows_by(30)
            total = len(load.answered)
            written = lambda: metric(app, "floorgate_ledger_written_total") == total  # noqa: E731
            wait_until(written, what="every record written")
            ids, minute_sum, hour_sum = stored(server.url, prefix)
    assert load.errors == []
    assert metric(app, "floorgate_ledger_dropped_total") == 0
    assert ids == {rid for rid, _ in load.answered}
    assert minute_sum == hour_sum == total


def test_a_full_buffer_counts_exactly_what_it_drops(policy: Path) -> None:
    server = RedisServer()  # not running yet: Redis is down from the start
    settings = state_settings(policy, server.url, ledger_buffer_max=10)
    with served(settings) as (url, app), Caller(url) as caller:
        ids = [caller.chat()[0] for _ in range(25)]
        wait_until(lambda: metric(app, "floorgate_ledger_dropped_total") == 15, what="15 dropped")
        assert metric(app, "floorgate_ledger_buffered") == 10
        down = caller.feedback(ids[0], "merged")
        assert down.status_code == 503 and down.headers["retry-after"] == "5"
        assert metric(app, "floorgate_feedback_unattributed_total", reason="unavailable") == 1
        with server:
            wait_until(lambda: metric(app, "floorgate_ledger_written_total") == 10, what="replay")
            assert metric(app, "floorgate_ledger_buffered") == 0
            found, _, _ = stored(server.url, settings.redis_key_prefix)
            assert found == set(ids[:10])  # the first ten waited; the later fifteen were counted
            assert caller.feedback(ids[0], "merged").json()["status"] == "recorded"
            assert caller.feedback(ids[-1], "merged").status_code == 404
    assert metric(app, "floorgate_ledger_dropped_total") == 15


def test_responses_are_served_while_redis_is_down_and_counted_unstored(policy: Path) -> None:
    with RedisServer() as server:
        settings = state_settings(policy, server.url, redis_key_prefix=unique_prefix())
        with served(settings) as (url, app), Caller(url) as caller:
            client = caller.openai
            kept = client.responses.create(model="workflow/deploy-pipeline", input="Plan it.")
            assert client.responses.retrieve(kept.id).id == kept.id  # in Redis
            server.kill()
            served_anyway = client.responses.create(model="workflow/deploy-pipeline", input="Go.")
            assert served_anyway.output_text
            assert metric(app, "floorgate_responses_unstored_total") == 1
            with pytest.raises(openai.APIStatusError) as info:
                client.responses.retrieve(kept.id)
            assert info.value.status_code == 503
            assert info.value.code == "state_unavailable"
