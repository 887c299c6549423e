"""The classifier on its own: each source and kind, code answers, tools, n > 1, the CLI.

The replies here are written for these tests, to pin each rule; they are not a measure of
quality (that is bench/classify.py on labelled data, see docs/classify.md).
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from gateway import cues
from gateway.classify import (
    ABSTAIN_TOOL,
    FLAG_TOOL,
    MAX_SCAN,
    Verdict,
    classify_choice,
    classify_completion,
    classify_lines,
    classify_response,
    classify_text,
)
from gateway.cue_search import literal_opening


def label(text: str) -> tuple[str, str | None]:
    verdict = classify_text(text)
    return verdict.label, verdict.kind


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with deleting the production database.",
        "I can\u2019t assist with that request.",  # a typographic apostrophe
        "I won't be able to help with that.",
        "I must respectfully decline to write that script.",
        "That's not something I can do.",
        "It's not appropriate for me to give legal advice.",
        "I don't know.",
        "I don't think it's appropriate or respectful to rank employees by their religion.",
        "I'm an assistant and do not condone tampering with audit logs.",
        "The report is finished. It is not appropriate to speculate about who leaked it.",
        "I honestly don't know which team owns that queue.",
        "I'm unable to confirm the release date of that version.",
        "I don't have reliable information about that vendor's pricing.",
        "I'm not sure about the retention period of those backups.",
        "I'd rather not guess the root cause without the logs.",
    ],
)
def test_declined(text: str) -> None:
    assert label(text) == ("abstain", "declined")


@pytest.mark.parametrize(
    "text",
    [
        "There are two services named billing. Could you clarify which one you mean?",
        "Which version of Python are you using?",
        "To help you better, could you share the error message?",
        "Would you like me to delete the logs only, or the whole directory?",
    ],
)
def test_clarification(text: str) -> None:
    assert label(text) == ("abstain", "clarification")


@pytest.mark.parametrize(
    "text",
    [
        "Here is the patch. I haven't tested it against the staging schema.",
        "This assumes the list is sorted.",
        "I'm not entirely sure, but I think the limit is 10 MB.",
        "The answer is 42, to my knowledge.",
        "This code might not work on Windows.",
        "The code has not been tested on ARM.",
        "I'm unable to run code, so here is the script as I would write it.",
        "I'm a bit unsure, but the limit is probably 10 MB.",
        "I'm not sure about the retention period, but I think it is 30 days.",
        "If memory serves, the flag was added in version 2.3.",
        "This is a shot in the dark: the cache key changed.",
        "The timeout is likely 30 seconds.",
        "It might have been the 2.3 release that dropped Python 3.8.",
        "Here is the migration. " * 20 + "Take the row counts with a grain of salt.",
        "I'm not at all sure, but the cache key changed in 2.3.",
        "Here is the parser. " * 20 + "I could very well be mistaken about the date format.",
        "Here is the script. " * 20 + "I can't guarantee it handles symlinks.",
        "If I had to guess, the lock is never released.",
        "I honestly have no idea, but I'll say the cron job.",
        "The retry limit is conceivably 5.",
    ],
)
def test_flagged(text: str) -> None:
    assert label(text) == ("flag", None)


@pytest.mark.parametrize(
    "text",
    [
        "The migration adds an index on orders.created_at.",
        "I cannot stress enough how important backups are. Run pg_dump nightly.",
        "I can't help but notice the loop is quadratic; use a dict instead.",
        "Make sure to install the package first. Then run it.",
        "Possibly the most useful flag is --dry-run. " * 10 + "It prints the plan and exits.",
        "I think of the queue as a buffer. It holds 10,000 messages and drops the oldest.",
        "I don't think it's needed: the retry is already in the client.",
        "You may have to restart the service after the upgrade.",
        "I suggest restarting the pod.",
        "The error points to a missing variable: set DATABASE_URL.",
        "Here is a full answer with the steps. " * 20 + "Would you like me to add tests?",
        "",
    ],
)
def test_answers(text: str) -> None:
    assert label(text) == ("answer", None)


def test_evidence_quotes_the_reply_as_written() -> None:
    verdict = classify_text("Done. I HAVEN'T TESTED this on Windows.")
    assert verdict == Verdict("flag", None, "text", "I HAVEN'T TESTED")
    assert verdict.flagged and not verdict.abstained


def test_a_refusal_deep_in_an_answer_is_not_one() -> None:
    text = "Here is how the scheduler works. " * 20 + "I cannot help with the billing part."
    assert label(text) == ("answer", None)


CODE = "Here you go:\n```python\ndef first(xs):\n    {line}\n    return xs[0]\n```\n"


def test_doubt_in_a_code_comment_flags() -> None:
    verdict = classify_text(CODE.format(line="# I'm not sure this handles an empty list"))
    assert (verdict.label, verdict.evidence) == ("flag", "I'm not sure")
    assert classify_text(CODE.format(line="// FIXME: quadratic")).evidence == "FIXME"


def test_a_question_mark_in_code_is_not_a_question() -> None:
    assert label(CODE.format(line="y = xs if xs else None  # empty?")) == ("answer", None)
    assert label("```js\nconst f = (a) => a ? 1 : 2;\n```") == ("answer", None)


def test_words_in_code_are_not_prose() -> None:
    code = '```python\nprint("I cannot help with that")  # the error text\n```'
    assert label(code) == ("answer", None)


def test_a_reply_with_code_is_not_a_clarification() -> None:
    # It answered; the question it adds about the task is a doubt about its answer.
    assert label("Like this?\n```sql\nselect 1;\n```\nWhich version are you on?") == (
        "flag",
        None,
    )


def test_long_replies_are_read_at_both_ends() -> None:
    body = "The handler validates each field and returns a typed object. " * 2000
    assert len(body) > 10 * MAX_SCAN
    assert label("I'm sorry, but I can't help with that. " + body) == ("abstain", "declined")
    assert label(body + " I haven't tested this.") == ("flag", None)
    assert label(body[:30_000] + " I haven't tested this. " + body[:30_000]) == ("answer", None)


def test_a_fence_cut_out_of_a_long_reply_keeps_prose_and_code_apart() -> None:
    code = "```\n" + "x = 1  # what?\n" * 3000 + "```\n"
    assert label("Intro.\n" + code + "I'm not sure this is right.") == ("flag", None)


def message(content: Any = None, **fields: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **fields}


def call(name: str, arguments: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def test_calibration_tools_decide_first() -> None:
    args = json.dumps({"reason": "two tables are named users", "kind": "clarification"})
    verdict = classify_choice(message("Sure!", tool_calls=[call(ABSTAIN_TOOL, args)]), "stop")
    assert verdict == Verdict("abstain", "clarification", "tool", "two tables are named users")
    declined = json.dumps({"reason": "out of scope", "kind": "declined"})
    assert classify_choice(message(tool_calls=[call(ABSTAIN_TOOL, declined)]), None).kind == (
        "declined"
    )
    flag = call(FLAG_TOOL, json.dumps({"concern": "untested on 3.11"}))
    assert classify_choice(message("Done.", tool_calls=[flag]), "tool_calls") == Verdict(
        "flag", None, "tool", "untested on 3.11"
    )


def test_cut_short_tool_arguments_still_count() -> None:
    verdict = classify_choice(message(tool_calls=[call(ABSTAIN_TOOL, '{"kind": "clarif')]), None)
    assert (verdict.label, verdict.source) == ("abstain", "tool")


def test_refusal_field_and_refusal_parts() -> None:
    verdict = classify_choice(message(None, refusal="I can't help with that."), "stop")
    assert verdict == Verdict("abstain", "declined", "refusal", "I can't help with that.")
    parts = [{"type": "refusal", "refusal": "No."}]
    assert classify_choice(message(parts), "stop").source == "refusal"


def test_content_filter() -> None:
    verdict = classify_choice(message("Here is the first half"), "content_filter")
    assert (verdict.label, verdict.kind, verdict.source) == (
        "abstain",
        "declined",
        "content_filter",
    )


def test_text_content_parts_are_read() -> None:
    parts = [{"type": "text", "text": "I haven't tested this."}]
    assert classify_choice(message(parts), "stop").label == "flag"


def test_tool_calls_only_is_an_answer() -> None:
    lookup = call("search_docs", '{"q": "retry policy"}')
    assert classify_choice(message(None, tool_calls=[lookup]), "tool_calls") == Verdict("answer")


def test_text_beside_the_clients_tools_cannot_abstain() -> None:
    lookup = call("search_docs", '{"q": "retry policy"}')
    said = "I can't help with that from memory; searching."
    assert classify_choice(message(said, tool_calls=[lookup]), "tool_calls").label == "answer"


def completion(*choices: dict[str, Any]) -> dict[str, Any]:
    return {"object": "chat.completion", "choices": list(choices)}


def choice(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {"index": 0, "message": message(content), "finish_reason": finish_reason}


def test_with_n_choices_the_most_cautious_speaks() -> None:
    plain, hedge = choice("It is 42."), choice("It is 42, I'm not sure.")
    assert classify_completion(completion(plain, hedge)).label == "flag"
    refused = choice("I can't help with that.")
    assert classify_completion(completion(hedge, refused, plain)).kind == "declined"
    assert classify_completion(completion(plain, plain)) == Verdict("answer")
    assert classify_completion({"choices": None}) == Verdict("answer")


def test_classify_response_takes_text_message_or_completion() -> None:
    assert classify_response("I don't know.").abstained
    assert classify_response(message(None, refusal="no")).source == "refusal"
    assert classify_response(completion(choice("I haven't run it."))).flagged
    with pytest.raises(TypeError):
        classify_response(42)


def test_classify_lines_writes_one_verdict_per_line_in_order() -> None:
    lines = [
        json.dumps({"prompt": "drop it", "response": "I can't help with that."}),
        "",
        json.dumps({"response": "Done. I haven't tested it."}),
        "not json",
        json.dumps({"prompt": "no response"}),
        json.dumps({"response": completion(choice("partial", "content_filter"))}),
    ]
    out = io.StringIO()
    assert classify_lines(lines, out) == 1
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    assert got[0] == {
        "label": "abstain",
        "kind": "declined",
        "source": "text",
        "evidence": "I can't help",
    }
    assert got[1]["label"] == "flag"
    assert got[2]["error"].startswith("line 4: not JSON")
    assert got[3]["error"].startswith('line 5: no "response"')
    assert got[4]["source"] == "content_filter"


def test_the_classify_command(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    from gateway import cli

    monkeypatch.setattr("sys.stdin", io.StringIO('{"response": "Which one do you mean?"}\n'))
    assert cli.main(["classify"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "clarification"


def test_every_phrase_opens_with_a_literal_word() -> None:
    # One Aho-Corasick pass finds where each phrase's literal opening occurs, and a phrase is
    # tried only there: a phrase without one would never be found at all.
    assert literal_opening(r"doubts? about my\b") == "doubt"
    assert literal_opening(r"i'm sorry,? but\b") == "i'm sorry"
    assert literal_opening(r"(?:a|b) c") == ""
    tables = [
        v for v in vars(cues).values() if isinstance(v, tuple) and v and isinstance(v[0], cues.Cue)
    ]
    assert len(tables) >= 8
    short = [
        (c.name, phrase.pattern)
        for table in tables
        for c in table
        for literal, phrase in c.phrases
        if len(literal) < 3
    ]
    assert short == []
