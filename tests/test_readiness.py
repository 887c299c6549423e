"""/readyz is not ready, with the reason, while a route has no model it could call (a key
variable unset, a host that does not resolve), and a warning at start names them; it turns
ready when a reload gives the route a callable model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.fake_upstream import FakeUpstream
from tests.policy_gateway import own_gateway, policy_text, replace, wait_for

UNSET = "FLOORGATE_TEST_NEVER_SET_KEY"
NOWHERE = "http://no-such-host.invalid:80/v1"


def broken_capability_route(upstream: FakeUpstream) -> str:
    """capability-first's only model needs an unset key; calibration-first's whole pool
    points at a host that does not resolve."""
    text = policy_text(upstream).replace(
        'fast: {provider: openai_compatible, model: ok, api_base: "',
        f'fast: {{provider: openai, api_key: {{env: {UNSET}}}, model: ok, api_base: "',
    )
    return text.replace("pool: [broken, careful, keyed]", "pool: [nowhere]").replace(
        "  workflows:",
        f"    nowhere: {{provider: openai_compatible, model: ok, api_base: {NOWHERE}}}\n"
        "  workflows:",
    )


def test_readyz_names_each_route_without_a_callable_model(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(broken_capability_route(upstream))
    with (
        caplog.at_level(logging.WARNING, "floorgate.readiness"),
        own_gateway(tmp_path) as (
            client,
            _,
        ),
    ):
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["reasons"] == [
            f"route capability-first has no model it could call (fast: {UNSET} unset)",
            "route calibration-first has no model it could call "
            "(nowhere: host no-such-host.invalid does not resolve)",
        ]
        warned = [r.getMessage() for r in caplog.records if r.name == "floorgate.readiness"]
        assert any(f"fast: {UNSET} unset" in m for m in warned), warned
        assert any("no-such-host.invalid" in m for m in warned), warned
        replace(path, policy_text(upstream))
        ready = wait_for(lambda: client.get("/readyz").status_code == 200)
        assert ready
        assert client.get("/readyz").json()["status"] == "ready"


def test_a_route_with_one_callable_model_is_ready(tmp_path: Path, upstream: FakeUpstream) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        policy_text(upstream).replace("pool: [broken, careful, keyed]", "pool: [keyed, careful]")
    )
    with own_gateway(tmp_path) as (client, _):
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
