"""The admin endpoints (the active policy, reload on demand) and POST /v1/route/explain."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fake_upstream import FakeUpstream
from tests.policy_gateway import (
    ADMIN_KEY,
    SECRET_ENV,
    VERSION,
    chat,
    edited,
    line_of,
    own_gateway,
    policy_text,
    replace,
    sample,
)

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ANY = {"Authorization": "Bearer key-any"}


@pytest.fixture
def policy(tmp_path: Path, upstream: FakeUpstream) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(upstream))
    return path


def error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body: dict[str, str] = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    return body


def test_admin_endpoints_need_the_admin_key(policy: Path) -> None:
    with own_gateway(policy.parent, poll_s=0) as (client, _):
        for method, url in (("GET", "/admin/policies"), ("POST", "/admin/policies/reload")):
            assert error(client.request(method, url), 401)["type"] == "authentication_error"
            wrong = {"Authorization": "Bearer not-a-key"}
            assert error(client.request(method, url, headers=wrong), 401)["code"] == (
                "invalid_api_key"
            )
            assert error(client.request(method, url, headers=ANY), 403)["code"] == "not_admin"
            assert client.request(method, url, headers=ADMIN).status_code == 200


def test_without_an_admin_key_admin_is_open_only_on_an_open_gateway(policy: Path) -> None:
    with own_gateway(policy.parent, poll_s=0, admin_key=None) as (client, _):
        body = error(client.get("/admin/policies", headers=ANY), 403)
        assert body["code"] == "admin_disabled" and "FLOORGATE_ADMIN_KEY" in body["message"]
    with own_gateway(policy.parent, poll_s=0, admin_key=None, api_keys=None) as (client, _):
        assert client.get("/admin/policies").status_code == 200


def test_the_active_policy_shows_secrets_only_as_env_references(
    policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "sk-reload-secret-value")
    with own_gateway(policy.parent, poll_s=0) as (client, _):
        version = chat(client, "bulk-summarization").headers[VERSION]
        response = client.get("/admin/policies", headers=ADMIN)
        assert response.status_code == 200
        active = response.json()
        assert (active["name"], active["version"]) == ("reload-test", version)
        assert active["files"] == [str(policy)]
        assert active["spec"]["models"]["keyed"]["api_key"] == {"env": SECRET_ENV}
        assert active["models"]["keyed"] == {"usable": True, "missing_env": []}
        assert active["spec"]["workflows"]["deploy-pipeline"]["traits"] == {"reversible": False}
        assert "sk-reload-secret-value" not in response.text


def test_reload_on_demand_swaps_a_sound_policy_and_rejects_a_broken_one(policy: Path) -> None:
    with own_gateway(policy.parent, poll_s=0) as (client, app):
        old = chat(client, "bulk-summarization").headers[VERSION]
        reload = client.post("/admin/policies/reload", headers=ADMIN).json()
        assert reload == {
            "result": "unchanged", "name": "reload-test", "version": old, "previous_version": old
        }  # fmt: skip

        good = policy.read_text()
        replace(policy, edited(good))
        reload = client.post("/admin/policies/reload", headers=ADMIN).json()
        assert (reload["result"], reload["previous_version"]) == ("success", old)
        response = chat(client, "bulk-summarization")
        assert response.headers[VERSION] == reload["version"] != old
        assert response.headers["x-floorgate-route"] == "calibration-first"

        replace(policy, good.replace("pool: [fast]", "pool: [nowhere]"))
        body = error(client.post("/admin/policies/reload", headers=ADMIN), 422)
        assert (body["type"], body["code"]) == ("invalid_request_error", "policy_rejected")
        assert f"still serving version {reload['version']}" in body["message"]
        assert f"{policy}:{line_of(policy, 'pool: [nowhere]')}:" in body["message"]
        assert chat(client, "bulk-summarization").headers[VERSION] == reload["version"]
        assert sample(app, "floorgate_policy_reloads_total", result="failure", trigger="admin") == 1
        assert sample(app, "floorgate_policy_reloads_total", result="success", trigger="admin") == 1


def explain(client: httpx.Client, body: object, **headers: str) -> httpx.Response:
    return client.post("/v1/route/explain", headers={**ANY, **headers}, json=body)


def test_explain_is_a_dry_run_of_the_real_identification(
    policy: Path, upstream: FakeUpstream
) -> None:
    with own_gateway(policy.parent, poll_s=0) as (client, _):
        received = upstream.seen
        response = explain(client, {"model": "workflow/bulk-summarization"})
        assert response.status_code == 200, response.text
        assert upstream.seen == received  # no upstream call
        result = response.json()
        assert response.headers[VERSION] == result["policy"]["version"]
        assert result["workflow"] == "bulk-summarization"
        assert [(s["node"], s["value"], s["source"]) for s in result["steps"]] == [
            ("reversible", True, "declared"),
            ("human_reviewed", True, "declared"),
            ("throughput_bound", True, "declared"),
        ]
        assert result["steps"][0]["question"] == "Actions are reversible."
        assert (result["route"], result["model"]) == ("capability-first", "fast")

        # The header, then metadata, name the workflow; a key bound to one always wins.
        header = explain(
            client, {"model": "route/calibration-first"}, **_workflow("deploy-pipeline")
        )
        assert header.json()["workflow"] == "deploy-pipeline"
        metadata = explain(
            client,
            {"model": "route/calibration-first", "metadata": {"workflow": "deploy-pipeline"}},
        )
        assert metadata.json()["workflow"] == "deploy-pipeline"
        bound = explain(
            client,
            {"model": "workflow/bulk-summarization"},
            Authorization="Bearer key-deploy",
        )
        assert bound.json()["workflow"] == "deploy-pipeline"


def _workflow(name: str) -> dict[str, str]:
    return {"X-Floorgate-Workflow": name}


def test_explain_shows_unsafe_defaults_stricter_asks_and_model_health(policy: Path) -> None:
    with own_gateway(policy.parent, poll_s=0) as (client, _):
        result = explain(client, {"model": "route/calibration-first", "metadata": {}}).json()
        assert (
            result["workflow_why"] == "no workflow named: routed as the default 'deploy-pipeline'"
        )
        assert [s["source"] for s in result["steps"]] == ["declared"]
        asked = explain(
            client, {"model": "route/calibration-first", "metadata": {"workflow": "nope"}}
        ).json()
        assert "'nope' is not declared" in asked["workflow_why"]

        silent = explain(client, {"model": "workflow/draft-generation"}).json()
        assert [s["source"] for s in silent["steps"]] == ["declared", "declared", "unsafe_default"]
        assert (silent["steps"][-1]["value"], silent["route"]) == (False, "calibration-first")
        assert silent["route_why"] == "the tree's leaf"
        stricter = explain(
            client, {"model": "route/calibration-first"}, **_workflow("bulk-summarization")
        ).json()
        assert (stricter["decided_route"], stricter["route"]) == (
            "capability-first",
            "calibration-first",
        )
        assert "asked for route 'calibration-first'" in stricter["route_why"]
        pool = {p["name"]: p for p in stricter["pool"]}
        assert stricter["model"] == "broken" and pool["broken"]["healthy"]
        assert pool["keyed"]["usable"] is False and pool["keyed"]["missing_env"] == [SECRET_ENV]
        assert pool["careful"]["why"].startswith("fallback 1")

        for _ in range(3):  # real failures of `broken` rest it, as they would for traffic
            chat(client, "deploy-pipeline")
        rested = explain(client, {"model": "workflow/deploy-pipeline"}).json()
        pool = {p["name"]: p for p in rested["pool"]}
        assert rested["model"] == "careful"
        assert rested["model_why"].startswith("serves now: the first usable, healthy model")
        assert not pool["broken"]["healthy"] and "resting" in pool["broken"]["why"]


def test_explain_errors_are_openai_shaped(policy: Path) -> None:
    with own_gateway(policy.parent, poll_s=0) as (client, _):
        no_key = client.post("/v1/route/explain", json={"model": "workflow/deploy-pipeline"})
        assert error(no_key, 401)["type"] == "authentication_error"
        not_json = client.post("/v1/route/explain", headers=ANY, content=b"{")
        assert "not valid JSON" in error(not_json, 400)["message"]
        unknown = explain(client, {"model": "gpt-4o"})
        assert error(unknown, 404)["code"] == "model_not_found"
        denied = explain(
            client,
            {"model": "workflow/deploy-pipeline"},
            Authorization="Bearer key-two",
        )
        assert error(denied, 403)["code"] == "workflow_not_allowed"
        assert error(explain(client, {}), 400)["param"] == "model"


def say(client: httpx.Client, text: str) -> httpx.Response:
    response = client.post(
        "/v1/chat/completions",
        headers=ANY,
        json={
            "model": "workflow/bulk-summarization",
            "messages": [{"role": "user", "content": f"SAY: {text}"}],
        },
    )
    assert response.status_code == 200, response.text
    return response


def test_an_answered_request_shows_its_verdict_source_and_evidence(policy: Path) -> None:
    with own_gateway(policy.parent, poll_s=0) as (client, _):
        asked = say(client, "Staging or production?")
        assert asked.headers["x-floorgate-verdict-source"] == "text"
        plain = say(client, "The index is on orders.created_at.")
        assert plain.headers["x-floorgate-verdict-source"] == "none"
        request_id = asked.headers["x-floorgate-request-id"]
        body = client.get(f"/admin/requests/{request_id}", headers=ADMIN).json()
        assert body["request_id"] == request_id
        assert (body["workflow"], body["route"], body["model"]) == (
            "bulk-summarization",
            "capability-first",
            "fast",
        )
        assert body["verdict"] == {
            "label": "abstain",
            "kind": "clarification",
            "source": "text",
            "evidence": "Staging or production?",
        }
        other = plain.headers["x-floorgate-request-id"]
        verdict = client.get(f"/admin/requests/{other}", headers=ADMIN).json()["verdict"]
        assert verdict == {"label": "answer", "kind": None, "source": "none", "evidence": ""}


def test_an_unknown_request_is_404_and_the_ledger_needs_the_admin_key(policy: Path) -> None:
    with own_gateway(policy.parent, poll_s=0) as (client, _):
        body = error(client.get("/admin/requests/fg-unknown", headers=ADMIN), 404)
        assert (body["code"], body["param"]) == ("request_not_found", "request_id")
        assert "fg-unknown" in body["message"]
        request_id = say(client, "Done.").headers["x-floorgate-request-id"]
        assert error(client.get(f"/admin/requests/{request_id}", headers=ANY), 403)
