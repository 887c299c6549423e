"""Two gateway replicas sharing their state in a real three-node Redis Cluster
(FLOORGATE_REDIS_CLUSTER=true): a record written by one is found by the other, feedback counts
once whichever replica it reaches. The store's own contract runs against the cluster too
(tests/test_state_contract.py, tests/test_limit_counters.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_upstream import FakeUpstream
from tests.state_gateway import Caller, drained, gates_policy, served, state_settings, wait_until

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
