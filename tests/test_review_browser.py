"""The review page in a real headless browser (Debian's Chromium, driven by Playwright; nothing
downloaded): marking by keyboard into the results file, surviving a reload; blind; inert hostile
output; two reviewers and their kappa; and the report page, equal to `floorgate eval report` and
redrawn as marks arrive. FLOORGATE_SCREENSHOTS=DIR keeps the screenshots (docs/img has them)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from gateway.cli import main
from gateway.eval.results import Results
from gateway.review.agreement import cohen_kappa
from tests.eval_support import policy
from tests.review_support import (
    CATALOGUE,
    CHROMIUM,
    CHROMIUM_ARGS,
    NAMES,
    call,
    results_file,
    review_url,
)  # fmt: skip

__all__ = ["policy", "results_file", "review_url"]  # fixtures
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_review(
    browser: Browser, url: str, reviewer: str, where: str = "", bypass_csp: bool = False
) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=bypass_csp)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/?reviewer={reviewer}{where}")
    page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    assert errors == []
    return page


def wait_until(page: Page, expression: str) -> None:
    """Poll a JavaScript expression until it is true. Not wait_for_function: the page's CSP
    forbids the eval that it uses, and the page must work under its CSP."""
    for _ in range(WAIT_MS // 50):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {WAIT_MS} ms: {expression}")


def saved(page: Page) -> int:
    return int(page.evaluate("document.body.dataset.saved || '0'"))


def press(page: Page, *keys: str) -> None:
    """Press each key and wait until every mark it made is saved."""
    before = saved(page)
    for key in keys:
        page.keyboard.press(key)
    wait_until(page, f"Number(document.body.dataset.saved || 0) >= {before + len(keys)}")


def table(page: Page, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tr", "rows => rows.map(r => [...r.children].map(c => c.textContent))"
    )
    return rows


def cli_report(db: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    capsys.readouterr()
    assert main(["eval", "report", "--results", str(db), "--catalogue", str(CATALOGUE)]) == 0
    return {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}


def assert_same_as_cli(page: Page, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = cli_report(db, capsys)
    _header, *rows = table(page, "#numbers")
    assert len(rows) == 9
    for title, *cells in rows:
        line = lines[title]
        at = [line.index(cell, len(title)) for cell in cells]
        assert at == sorted(at), (title, cells, line)


def shot(page: Page, name: str, tmp_path: Path) -> Path:
    directory = Path(os.environ.get("FLOORGATE_SCREENSHOTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    return path


PLAN = [("2", "y"), ("1",), ("3", "n", "s"), ("1",), ("4", "y"), ("2", "-")]
OUTCOMES = {"1": "merged", "2": "merged_with_edits", "3": "rejected", "4": "escaped_defect"}


def test_marking_by_keyboard_saves_at_once_survives_reload_and_reports_as_the_cli(
    browser: Browser, review_url: str, results_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    page = open_review(browser, review_url, "alice")
    ids, shots = [], 0
    for i, keys in enumerate(PLAN):
        if i == 3:  # closing the tab loses nothing: the marks come back from the file
            page.reload()
            page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
            assert page.text_content("#position") == "4 / 6"  # the same output as before
            assert "you 3/6, 3 left" in (page.text_content("#progress") or "")
            page.keyboard.press("k")
            chosen = page.eval_on_selector_all(
                ".choices button.chosen", "b => b.map(x => x.textContent)"
            )
            assert chosen == ["3 rejected", "n no", "s an answer"]
            page.keyboard.press("j")
        ids.append(page.evaluate("decodeURIComponent(location.hash.slice(1))"))
        press(page, *keys)
        if page.text_content("#verdict") == "flag" and page.locator("mark.evidence").count():
            shot(page, "review-page.png", tmp_path)  # the flag's evidence highlighted
            shots += 1
        page.keyboard.press("j")
    assert len(set(ids)) == 6 and shots == 1
    assert "you 6/6, 0 left" in (page.text_content("#progress") or "")
    outcomes = Results.open(results_file).outcomes()
    assert Counter(o.outcome for o in outcomes.values()) == Counter(OUTCOMES[k[0]] for k in PLAN)
    assert {(o.reviewer, o.source) for o in outcomes.values()} == {("alice", "review")}
    _, marks = call(f"{review_url}/api/marks")
    by_id = {m["output"]: m for m in marks["marks"]}
    assert [by_id[i]["outcome"] for i in ids] == [OUTCOMES[k[0]] for k in PLAN]
    assert by_id[ids[2]]["flag_pointed"] is False and by_id[ids[2]]["corrected_verdict"] == "answer"
    assert by_id[ids[0]]["flag_pointed"] is True and by_id[ids[5]]["flag_pointed"] is None

    report = page.context.new_page()
    report.goto(f"{review_url}/report")
    report.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    assert_same_as_cli(report, results_file, capsys)
    assert report.locator("#charts svg").count() == 5
    shot(report, "report-page.png", tmp_path)


def test_the_review_page_names_no_model(browser: Browser, review_url: str) -> None:
    page = open_review(browser, review_url, "alice")
    seen = set()
    for _ in range(6):
        seen.add(page.text_content("#output-title"))
        html = page.content()
        assert not [name for name in NAMES if name in html]
        page.keyboard.press("j")
    assert seen == {"Output A", "Output B"}
    report = page.context.new_page()
    report.goto(f"{review_url}/report")
    report.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    assert "local-careful" in report.content()  # unblinded in the report only


def test_a_hostile_output_shows_as_text_and_runs_nothing(browser: Browser, review_url: str) -> None:
    # With the page's CSP bypassed: the escaping alone must keep the output inert.
    page = open_review(browser, review_url, "mallory", "#hostile%2FA%2F1", bypass_csp=True)
    for _ in range(2):  # both outputs of the hostile ticket
        assert page.text_content("#ticket-id") == "hostile"
        page.wait_for_timeout(300)
        assert page.evaluate("window.__xss") is None
        for selector in ("script:not([src])", "img", "[onerror]", "[onmouseover]",
                         'a[href^="javascript"]', "main iframe"):  # fmt: skip
            assert page.locator(selector).count() == 0, selector
        page.keyboard.press("j")  # the last ticket: from B, j stays on B
    assert page.text_content("#output-title") == "Output B"
    text = page.text_content("#messages") or ""
    assert "<script>window.__xss = 1</script>" in text
    assert "[image: pixel]" in text
    page.keyboard.press("e")
    page.keyboard.type('<img src=x onerror="window.__xss = 6">')
    page.keyboard.press("Escape")
    wait_until(page, "Number(document.body.dataset.saved || 0) >= 1")
    other = open_review(browser, review_url, "alice", "#hostile%2FB%2F1", bypass_csp=True)
    assert (
        other.locator("#others .note").first.text_content()
        == '<img src=x onerror="window.__xss = 6">'
    )
    assert other.locator("img").count() == 0 and other.evaluate("window.__xss") is None


def test_two_reviewers_keep_their_own_marks_and_see_each_others(
    browser: Browser, review_url: str, results_file: Path
) -> None:
    alice = open_review(browser, review_url, "alice")
    bob = open_review(browser, review_url, "bob")
    given = {"alice": ["1", "3", "1", "2"], "bob": ["1", "3", "2", "2"]}
    for page, name in ((alice, "alice"), (bob, "bob")):
        for key in given[name]:
            press(page, key)
            page.keyboard.press("j")
    alice.keyboard.press("k")
    wait_until(alice, "document.querySelectorAll('#others li').length === 2")
    others = alice.locator("#others li").all_text_contents()
    assert others == ["alice merged with edits", "bob merged with edits"]
    _, marks = call(f"{review_url}/api/marks")
    assert Counter(m["reviewer"] for m in marks["marks"]) == {"alice": 4, "bob": 4}
    kappa = cohen_kappa(zip(given["alice"], given["bob"], strict=True))
    assert kappa is not None and 0 < kappa < 1
    report = alice.context.new_page()
    report.goto(f"{review_url}/report")
    report.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    line = report.text_content("#agreement") or ""
    assert f"alice and bob: agreed on 3 of 4 output(s) both marked, kappa = {kappa:.2f}" in line


def test_the_report_page_follows_the_marks(
    browser: Browser, review_url: str, results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = browser.new_page()
    report.goto(f"{review_url}/report")
    report.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    merge = "#numbers tr:nth-child(2) td"
    assert report.locator(merge).all_text_contents() == ["- n=0", "- n=0"]
    reviewer = open_review(browser, review_url, "alice")
    press(reviewer, "1")
    wait_until(
        report,
        f"[...document.querySelectorAll('{merge}')].some(t => t.textContent.includes('n=1'))",
    )
    assert sorted(report.locator(merge).all_text_contents()) == ["- n=0", "100% [21-100%] n=1"]
    assert_same_as_cli(report, results_file, capsys)


def test_one_reviewer_in_two_windows_is_told_not_overwritten(
    browser: Browser, review_url: str
) -> None:
    """The second window marks on what it saw before the first saved: refused, said, and the
    first window's mark is what both show."""
    first = open_review(browser, review_url, "alice", "&poll=600000")
    second = open_review(browser, review_url, "alice", "&poll=600000")
    press(first, "1")
    second.keyboard.press("3")
    wait_until(second, "document.getElementById('status').classList.contains('error')")
    assert "alice changed this mark in another window" in (second.text_content("#status") or "")
    chosen = "document.querySelector('#outcome button.chosen')?.dataset.value"
    wait_until(second, f"{chosen} === 'merged'")
    _, marks = call(f"{review_url}/api/marks")
    assert [(m["reviewer"], m["outcome"]) for m in marks["marks"]] == [("alice", "merged")]
