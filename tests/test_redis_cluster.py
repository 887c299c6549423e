"""Gateways on a real three-node Redis Cluster (FLOORGATE_REDIS_CLUSTER=true): two replicas
share records and feedback; a node restarted under load fails no request and loses no record
the cluster acknowledged. The store's own contract runs against the cluster too
(tests/test_state_contract.py, tests/test_limit_counters.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fake_upstream import FakeUpstream
from tests.redis_cluster import START_TIMEOUT_S, cluster_nodes, wait_ready
from tests.state_gateway import (
    Caller,
    Load,
    drained,
    gates_policy,
    sample,
    served,
    state_settings,
    wait_until,
)

BULK = "workflow/bulk-summarization"  # ungated: the outcomes reported here move no gate


def test_replicas_on_one_redis_cluster_share_records_and_feedback(
    cluster_url: str, upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOORGATE_REDIS_CLUSTER", "true")
    settings = state_settings(gates_policy(tmp_path, upstream), cluster_url)
    assert settings.redis_cluster
    with (
        served(settings) as (url_a, app_a),
        served(settings) as (url_b, _app_b),
        Caller(url_a) as a,
        Caller(url_b) as b,
    ):
        ids = [a.chat(BULK)[0] for _ in range(12)]  # request ids spread over the shards
        wait_until(lambda: drained(app_a), what="the records reach the cluster")
        for request_id in ids:
            first = b.feedback(request_id, "merged")
            assert first.status_code == 200, first.text
            assert first.json()["status"] == "recorded"
            assert a.feedback(request_id, "merged").json()["status"] == "duplicate"
        unknown = b.feedback("fg-000000000000000000000000", "merged")
        assert unknown.status_code == 404


def test_a_node_restarted_under_load_fails_no_request_and_loses_no_record(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No replicas: the node comes back with its data from its append-only file (fsynced
    # before each reply), and meanwhile the ledger buffers what its slots cannot take.
    monkeypatch.setenv("FLOORGATE_REDIS_CLUSTER", "true")
    with cluster_nodes(durable=True) as nodes:
        url = f"redis://127.0.0.1:{nodes[0].port}/0"
        settings = state_settings(gates_policy(tmp_path, upstream), url)
        with served(settings) as (gateway, app), Caller(gateway) as caller:

            def answered(n: int) -> Callable[[], bool]:
                return lambda: len(load.answered) >= n

            def failures() -> float:
                return sample(app, "floorgate_ledger_write_failures_total") or 0.0

            with Load(gateway, workers=3) as load:
                wait_until(answered(10), START_TIMEOUT_S, "load before the restart")
                nodes[1].stop()  # slots 5461-10922: shards {s3} and {s7} live there
                wait_until(lambda: failures() > 0, START_TIMEOUT_S, "a write to the down node")
                nodes[1].start()
                wait_ready(nodes, time.monotonic() + START_TIMEOUT_S)
                wait_until(answered(len(load.answered) + 10), START_TIMEOUT_S, "load after")
            assert load.errors == []
            wait_until(lambda: drained(app), START_TIMEOUT_S, "the buffered records written")
            assert sample(app, "floorgate_ledger_dropped_total") == 0
            for request_id, _at in load.answered:
                reply = caller.feedback(request_id, "merged")
                assert reply.status_code == 200, reply.text
                assert reply.json()["status"] == "recorded"
