"""The review server over loopback: blind items, marks saved at once into the results file,
two reviewers kept apart, a stale save refused, bad input named, and the token off loopback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.eval.results import Results
from gateway.review.server import create_review_app, new_token
from tests.eval_support import policy, tickets_file
from tests.review_support import NAMES, call, results_file, review_url
from tests.servers import free_port, serve_in_thread

__all__ = ["policy", "results_file", "review_url"]  # fixtures


def items(url: str) -> list[dict[str, object]]:
    status, body = call(f"{url}/api/items")
    assert status == 200
    found: list[dict[str, object]] = body["items"]
    return found


def test_items_are_blind_and_carry_the_rendered_output(review_url: str) -> None:
    with urllib.request.urlopen(f"{review_url}/api/items") as response:
        raw = response.read().decode()
    assert not [name for name in NAMES if name in raw]
    found = items(review_url)
    assert len(found) == 6
    assert [i["id"] for i in found[:2]] == ["parse-duration/A/1", "parse-duration/B/1"]
    code = next(i for i in found if "def" in str(i["output_html"]))
    assert '<span class="k">def</span>' in str(code["output_html"])  # highlighted
    assert code["check"] == {"status": "passed", "output": "checked the output\n"}


def test_each_ticket_has_its_own_order(review_url: str, results_file: Path) -> None:
    """Over many tickets the letters must not follow the candidate: check the mapping with the
    file's salt over made-up ticket names (the three real ones could agree by chance)."""
    from gateway.review import blind

    salt = str(sqlite3.connect(results_file).execute(
        "SELECT value FROM meta WHERE key = 'review_salt'").fetchone()[0])  # fmt: skip
    orders = {blind.letters(salt, f"t{i}", ["x", "y"])["x"] for i in range(40)}
    assert orders == {"A", "B"}
    assert blind.letters(salt, "t1", ["x", "y"]) == blind.letters(salt, "t1", ["y", "x"])


def test_a_mark_is_in_the_results_file_at_once(review_url: str, results_file: Path) -> None:
    item = items(review_url)[0]
    status, saved = call(f"{review_url}/api/marks", {
        "output": item["id"], "reviewer": "alice", "outcome": "merged_with_edits",
        "flag_pointed": True, "corrected_verdict": "flag", "note": "fixed the hours",
        "revision": 0})  # fmt: skip
    assert status == 200 and saved["revision"] == 1
    outcomes = Results.open(results_file).outcomes()
    (record,) = outcomes.values()
    assert (record.ticket, record.outcome, record.flag_pointed, record.corrected_verdict,
            record.note, record.reviewer, record.source) == (
        "parse-duration", "merged_with_edits", True, "flag", "fixed the hours", "alice", "review"
    )  # fmt: skip


def test_two_reviewers_on_one_output_are_both_kept(review_url: str, results_file: Path) -> None:
    item = items(review_url)[0]
    for reviewer, outcome in (("alice", "merged"), ("bob", "rejected")):
        status, _ = call(
            f"{review_url}/api/marks",
            {"output": item["id"], "reviewer": reviewer, "outcome": outcome, "revision": 0},
        )
        assert status == 200
    status, body = call(f"{review_url}/api/marks")
    by = {m["reviewer"]: m["outcome"] for m in body["marks"]}
    assert by == {"alice": "merged", "bob": "rejected"}
    assert body["agreement"] == [{"first": "alice", "second": "bob", "n": 1, "agreed": 0,
                                  "kappa": 0.0}]  # fmt: skip
    # The report counts the latest mark; the earlier one is still there, named.
    (record,) = Results.open(results_file).outcomes().values()
    assert (record.outcome, record.reviewer) == ("rejected", "bob")


def test_a_save_on_an_old_revision_is_refused_not_lost(review_url: str) -> None:
    """One reviewer in two windows: the second window's save, made on what it saw before the
    first saved, would silently replace it; it is refused, saying why."""
    item = items(review_url)[0]
    mark = {"output": item["id"], "reviewer": "alice", "outcome": "merged", "revision": 0}
    assert call(f"{review_url}/api/marks", mark)[0] == 200
    status, body = call(f"{review_url}/api/marks", {**mark, "outcome": "rejected"})
    assert status == 409
    assert "alice changed this mark in another window" in body["error"]["message"]
    assert body["error"]["param"] == "revision"
    _, marks = call(f"{review_url}/api/marks")
    assert [m["outcome"] for m in marks["marks"]] == ["merged"]


def test_a_mark_for_an_output_that_does_not_exist_is_a_404(review_url: str) -> None:
    status, body = call(
        f"{review_url}/api/marks", {"output": "nope/A/1", "reviewer": "alice", "outcome": "merged"}
    )
    assert status == 404
    assert "no output 'nope/A/1'" in body["error"]["message"]


@pytest.mark.parametrize(("change", "field"), [
    ({"outcome": "great"}, "outcome"),
    ({"reviewer": "<b>eve</b>"}, "reviewer"),
    ({"corrected_verdict": "maybe"}, "corrected_verdict"),
    ({"model": "gpt"}, "model"),
])  # fmt: skip
def test_a_bad_mark_is_a_400_naming_the_field(
    review_url: str, change: dict[str, str], field: str
) -> None:
    item = items(review_url)[0]
    mark = {"output": item["id"], "reviewer": "alice", "outcome": "merged", **change}
    status, body = call(f"{review_url}/api/marks", mark)
    assert status == 400 and body["error"]["param"] == field
    assert body["error"]["message"].startswith(f"{field}: ")


def test_a_missing_or_foreign_results_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "review", str(tmp_path / "none.sqlite")]) == 2
    assert "no results file here; make one with `floorgate eval run`" in capsys.readouterr().err
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    assert main(["eval", "review", str(old)]) == 2
    assert "results schema '0', expected 1" in capsys.readouterr().err


def test_off_loopback_every_path_needs_the_token(results_file: Path) -> None:
    assert new_token("127.0.0.1") is None and new_token("::1") is None
    token = new_token("0.0.0.0")
    assert token is not None and len(token) >= 24
    with serve_in_thread(create_review_app(results_file, token=token)) as url:
        for path in ("/", "/report", "/api/items", "/static/review.js"):
            status, body = call(f"{url}{path}")
            assert status == 401 and "carries the token" in body["error"]["message"]
        assert call(f"{url}/api/items?token=wrong")[0] == 401
        with urllib.request.urlopen(f"{url}/?token={token}") as response:
            cookie = response.headers["set-cookie"].split(";")[0]
            assert "script-src 'self'" in response.headers["content-security-policy"]
        request = urllib.request.Request(f"{url}/api/items", headers={"cookie": cookie})
        with urllib.request.urlopen(request) as response:
            assert response.status == 200


def test_repeated_samples_are_items_of_their_own(policy: Path, tmp_path: Path) -> None:
    db = tmp_path / "repeat.sqlite"
    tickets = tickets_file(tmp_path, 1)
    args = ["--tickets", str(tickets), "--candidates", "local-fast,local-careful",
            "--policies", str(policy), "--results", str(db), "--repeat", "2"]  # fmt: skip
    assert main(["eval", "run", *args]) == 0
    with serve_in_thread(create_review_app(db)) as url:
        found = items(url)
    assert sorted(str(i["id"]) for i in found) == ["t0/A/1", "t0/A/2", "t0/B/1", "t0/B/2"]
    assert {i["samples"] for i in found} == {2}


def test_on_loopback_another_site_cannot_read_or_mark(review_url: str) -> None:
    """A page elsewhere reaching the server through a name rebound to 127.0.0.1, or posting
    a form to it, is refused."""
    rebound = urllib.request.Request(f"{review_url}/api/items", headers={"host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebound, timeout=10)
    assert refused.value.code == 403
    item = items(review_url)[0]
    body = json.dumps({"output": item["id"], "reviewer": "eve", "outcome": "merged"}).encode()
    for headers in (
        {"content-type": "text/plain"},
        {"content-type": "application/json", "origin": "http://evil.example"},
    ):
        form = urllib.request.Request(f"{review_url}/api/marks", body, headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(form, timeout=10)
        assert refused.value.code == 403
        assert "JSON, same origin" in json.loads(refused.value.read())["error"]["message"]
    assert call(f"{review_url}/api/marks")[1]["marks"] == []


def test_the_command_serves_the_file_and_prints_where(results_file: Path) -> None:
    """`floorgate eval review` as a user starts it: loopback with a plain URL, elsewhere with
    the token in it."""
    for host in ("127.0.0.1", "0.0.0.0"):
        port = free_port()
        command = [sys.executable, "-m", "gateway", "eval", "review", str(results_file),
                   "--host", host, "--port", str(port)]  # fmt: skip
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
            try:
                assert server.stdout is not None
                line = server.stdout.readline()
                url = line.split(" at ")[1].split()[0]
                assert url.startswith(f"http://{host}:{port}/")
                assert ("?token=" in url) == (host != "127.0.0.1")
                page = url.replace("0.0.0.0", "127.0.0.1")
                for _ in range(100):  # the line is printed just before uvicorn listens
                    try:
                        with urllib.request.urlopen(page, timeout=5) as response:
                            assert b"Floorgate review" in response.read()
                        break
                    except urllib.error.URLError:
                        time.sleep(0.05)
                else:
                    raise AssertionError(f"nothing answered at {page}")
            finally:
                server.terminate()
