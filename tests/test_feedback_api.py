"""POST /v1/feedback and /v1/feedback/batch, through a real gateway with in-memory state."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gateway.app import Floorgate
from tests.fake_upstream import FakeUpstream
from tests.state_gateway import (
    Caller,
    gates_policy,
    sample,
    served,
    state_settings,
    wait_until,
)

Gateway = tuple[str, Floorgate]
# An ungated route, so that the outcomes reported here move no gate.
BULK = "workflow/bulk-summarization"
FAST = {"workflow": "bulk-summarization", "route": "capability-first", "model": "fast"}


@pytest.fixture(scope="module")
def gateway(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    policy = gates_policy(tmp_path_factory.mktemp("feedback"), upstream)
    with served(state_settings(policy)) as served_gateway:
        yield served_gateway


@pytest.fixture
def caller(gateway: Gateway) -> Iterator[Caller]:
    with Caller(gateway[0]) as c:
        yield c


def feedback_count(app: Floorgate, outcome: str) -> float:
    return sample(app, "floorgate_feedback_total", **FAST, outcome=outcome) or 0.0


def test_feedback_is_attributed_and_recorded_once(gateway: Gateway, caller: Caller) -> None:
    app = gateway[1]
    request_id, _ = caller.chat(BULK)
    before = feedback_count(app, "merged_with_edits")
    duplicates = sample(app, "floorgate_feedback_duplicates_total") or 0.0
    first = caller.feedback(request_id, "merged_with_edits", note="renamed a variable")
    assert first.status_code == 200
    assert first.json() == {
        "request_id": request_id,
        "outcome": "merged_with_edits",
        "status": "recorded",
        **FAST,
    }
    again = caller.feedback(request_id, "merged_with_edits")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert feedback_count(app, "merged_with_edits") == before + 1
    assert sample(app, "floorgate_feedback_duplicates_total") == duplicates + 1


def test_a_streamed_response_takes_feedback_too(caller: Caller) -> None:
    stream = caller.openai.chat.completions.with_raw_response.create(
        model=BULK,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )
    request_id = stream.headers["x-floorgate-request-id"]
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
    assert caller.feedback(request_id, "rejected").json()["status"] == "recorded"


def test_unknown_request_is_404_and_bad_outcome_422(gateway: Gateway, caller: Caller) -> None:
    app = gateway[1]
    not_found = sample(app, "floorgate_feedback_unattributed_total", reason="not_found") or 0
    missing = caller.feedback("fg-000000000000000000000000", "merged")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "request_not_found" and error["param"] == "request_id"
    assert error["type"] == "invalid_request_error" and "14 days" in error["message"]
    assert sample(app, "floorgate_feedback_unattributed_total", reason="not_found") == not_found + 1

    request_id, _ = caller.chat(BULK)
    bad = caller.feedback(request_id, "shipped")
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "outcome"
    assert "merged, merged_with_edits, rejected, escaped_defect" in bad.json()["error"]["message"]
    assert caller.feedback(request_id, "merged", extra=1).status_code == 422
    not_json = caller.http.post("/v1/feedback", content=b"{nope")
    assert not_json.status_code == 400


def test_feedback_needs_a_key_that_may_use_the_workflow(gateway: Gateway, caller: Caller) -> None:
    request_id, _ = caller.chat(BULK)
    body = {"request_id": request_id, "outcome": "merged"}
    anonymous = httpx.post(f"{gateway[0]}/v1/feedback", json=body)
    assert anonymous.status_code == 401
    with Caller(gateway[0], key="key-deploy") as other_team:
        assert other_team.feedback(request_id, "merged").status_code == 404
    with Caller(gateway[0], key="key-bulk") as owner:
        assert owner.feedback(request_id, "merged").status_code == 200


def test_concurrent_duplicates_count_once(gateway: Gateway, caller: Caller) -> None:
    request_id, _ = caller.chat(BULK)
    before = feedback_count(gateway[1], "escaped_defect")
    with ThreadPoolExecutor(16) as pool:
        sends = [pool.submit(caller.feedback, request_id, "escaped_defect") for _ in range(32)]
        statuses = [s.result().json()["status"] for s in sends]
    assert statuses.count("recorded") == 1 and statuses.count("duplicate") == 31
    assert feedback_count(gateway[1], "escaped_defect") == before + 1


def test_batch_reports_each_item(caller: Caller) -> None:
    first, _ = caller.chat(BULK)
    second, _ = caller.chat(BULK)
    items = [
        {"request_id": first, "outcome": "merged"},
        {"request_id": first, "outcome": "merged"},
        {"request_id": second, "outcome": "escaped_defect", "note": "broke prod"},
        {"request_id": "fg-unknown", "outcome": "merged"},
        {"request_id": second, "outcome": "bogus"},
        "not an object",
    ]
    response = caller.http.post("/v1/feedback/batch", json={"items": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["index"], r["status"], r["status_code"]) for r in results] == [
        (0, "recorded", 200),
        (1, "duplicate", 200),
        (2, "recorded", 200),
        (3, "not_found", 404),
        (4, "invalid", 422),
        (5, "invalid", 422),
    ]
    assert results[2]["model"] == "fast"
    assert results[3]["error"]["code"] == "request_not_found"
    assert results[4]["error"]["param"] == "outcome"
    empty = caller.http.post("/v1/feedback/batch", json={"items": []})
    assert empty.status_code == 422 and empty.json()["error"]["param"] == "items"


def test_feedback_finds_a_record_still_queued(upstream: FakeUpstream, tmp_path: Path) -> None:
    """Feedback sent the instant a response arrives still finds its record: a miss writes this
    replica's queued records before it answers 404 (here the writer would wait 60 s)."""
    settings = state_settings(gates_policy(tmp_path, upstream), ledger_flush_s=60)
    with served(settings) as (url, app), Caller(url) as caller:
        ids = [caller.chat(BULK)[0] for _ in range(5)]
        wait_until(lambda: app.runtime.ledger.pending == 5, what="records queued")
        with ThreadPoolExecutor(5) as pool:
            codes = list(pool.map(lambda i: caller.feedback(i, "merged").status_code, ids))
        assert codes == [200] * 5
        assert app.runtime.ledger.pending == 0


def corrections(app: Floorgate, said: str, judged: str) -> float | None:
    labels = {"from": said, "to": judged, "workflow": FAST["workflow"], "model": FAST["model"]}
    return sample(app, "floorgate_verdict_corrections_total", **labels)


def test_a_corrected_verdict_is_counted_once_with_its_feedback(
    gateway: Gateway, caller: Caller
) -> None:
    app = gateway[1]
    # Every (from, to) of a declared workflow and model exists from the policy's load.
    assert corrections(app, "flag", "answer") is not None
    request_id, _ = caller.chat(BULK)
    before = corrections(app, "answer", "abstain") or 0.0
    confirmed = corrections(app, "answer", "answer") or 0.0
    first = caller.feedback(request_id, "rejected", verdict="abstain")
    assert first.status_code == 200 and first.json()["status"] == "recorded"
    assert caller.feedback(request_id, "rejected", verdict="abstain").json()["status"] == (
        "duplicate"
    )
    assert corrections(app, "answer", "abstain") == before + 1
    other, _ = caller.chat(BULK)
    assert caller.feedback(other, "merged", verdict="answer").status_code == 200
    assert corrections(app, "answer", "answer") == confirmed + 1
    plain, _ = caller.chat(BULK)
    assert caller.feedback(plain, "merged").status_code == 200  # no verdict: nothing judged
    assert corrections(app, "answer", "answer") == confirmed + 1


def test_a_bad_verdict_is_422_naming_the_field(caller: Caller) -> None:
    request_id, _ = caller.chat(BULK)
    response = caller.feedback(request_id, "merged", verdict="maybe")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "verdict" and "abstain, flag, answer" in error["message"]
