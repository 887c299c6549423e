"""`floorgate eval report --live`: the four numbers from production's ledger and feedback,
read from a running gateway (in-memory store) or from Redis directly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.cli import main
from gateway.eval.stats import Rate
from tests.fake_upstream import FakeUpstream
from tests.policy_gateway import wait_for
from tests.redis_server import SHARED_URL, shared_prefix
from tests.state_gateway import Caller, gates_policy, served, state_settings

ADMIN_KEY = "admin-key-for-live-0123456789"


def traffic(url: str) -> None:
    """Four answers on deploy-pipeline; two merged, one escaped, one without feedback."""
    with Caller(url) as caller:
        ids = [caller.chat()[0] for _ in range(4)]
        for request_id, outcome in zip(ids, ["merged", "merged", "escaped_defect"], strict=False):
            # the ledger's writer takes the record to the store just after the answer
            wait_for(lambda r=request_id, o=outcome: caller.feedback(r, o).status_code == 200)


def expected_row(out: str) -> str:
    row = next(line for line in out.splitlines() if line.startswith("deploy-pipeline"))
    assert Rate(2, 3).text() in row  # merge: 2 of the 3 reported
    assert Rate(1, 3).text() in row  # escape: 1 of the 2 merged + 1 escaped
    assert row.rstrip().endswith("4")  # answered
    return row


def test_live_numbers_from_a_running_gateway(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    settings = state_settings(gates_policy(tmp_path, upstream), admin_key=SecretStr(ADMIN_KEY))
    with served(settings) as (url, _app):
        traffic(url)
        monkeypatch.setenv("FLOORGATE_ADMIN_KEY", ADMIN_KEY)
        assert main(["eval", "report", "--live", "--since", "1h", "--via", url]) == 0
        expected_row(out := capsys.readouterr().out)
        assert "Production, the last 1h" in out
        monkeypatch.setenv("FLOORGATE_ADMIN_KEY", "wrong")
        assert main(["eval", "report", "--live", "--via", url]) == 2
        assert ": 401 " in capsys.readouterr().err


def test_live_numbers_read_from_redis(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    policy = gates_policy(tmp_path, upstream)
    with shared_prefix() as prefix:
        settings = state_settings(policy, SHARED_URL, redis_key_prefix=prefix)
        with served(settings) as (url, _app):
            traffic(url)
        monkeypatch.setenv("FLOORGATE_REDIS_URL", SHARED_URL)
        monkeypatch.setenv("FLOORGATE_REDIS_KEY_PREFIX", prefix)
        code = main(["eval", "report", "--live", "--since", "7d", "--policies", str(policy)])
        assert code == 0
        expected_row(capsys.readouterr().out)


def test_live_needs_a_store_it_can_read_and_a_window(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOORGATE_REDIS_URL", raising=False)
    assert main(["eval", "report", "--live"]) == 2
    assert "pass --via http://GATEWAY" in capsys.readouterr().err
    assert main(["eval", "report", "--live", "--since", "fortnight"]) == 2
    assert "write a window such as 7d" in capsys.readouterr().err
