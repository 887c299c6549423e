"""The kinds of reply the phrase rules missed on sources they were not tuned on (issue 13),
each built here from templates: code snippets, questions, openers and notes combined, so that
a test pins the structure (a question put to the user, code beside prose, where a hedge
attaches), not one sentence. None of these is a model reply."""

from __future__ import annotations

import itertools

import pytest

from gateway.classify import classify_text

SNIPPETS = (
    "```python\ndef median(xs):\n    xs = sorted(xs)\n    return xs[len(xs) // 2]\n```",
    "```js\nexport function slug(s) {\n  return s.toLowerCase().replace(/\\s+/g, '-');\n}\n```",
    "```sql\nSELECT id, total FROM orders WHERE created_at > now() - interval '1 day';\n```",
)
INTROS = ("Here is the function:", "This should do it.", "")


def replies(*parts: tuple[str, ...]) -> list[str]:
    return ["\n\n".join(p for p in combo if p) for combo in itertools.product(*parts)]


def label(text: str) -> tuple[str, str | None]:
    verdict = classify_text(text)
    return verdict.label, verdict.kind


# 1. Code and a question about the requirement, or its reading of it: a flag.
REQUIREMENT_QUESTIONS = (
    "Should an empty list return None or raise?",
    "Do you want the result rounded?",
    "Is the input already sorted, or should I sort it?",
)
READINGS = (
    "I interpreted 'recent' as the last 24 hours.",
    "The requirement is ambiguous about ties, so I picked the lower middle.",
    "If you meant the mean rather than the median, swap the last line.",
    "My reading of the spec is that duplicates count once.",
)


@pytest.mark.parametrize("text", replies(INTROS, SNIPPETS, REQUIREMENT_QUESTIONS))
def test_code_with_a_question_about_the_task_is_a_flag(text: str) -> None:
    assert label(text) == ("flag", None)


@pytest.mark.parametrize("text", replies(SNIPPETS, READINGS))
def test_code_with_its_reading_of_the_task_is_a_flag(text: str) -> None:
    assert label(text) == ("flag", None)


# Code answers: prose or comments that flag an untested path, an assumption, a limitation or
# a TODO make a flag; code alone, or with a courtesy offer, is an answer.
NOTES = (
    "I haven't tested the empty-input path.",
    "This assumes the timestamps are in UTC.",
    "One limitation: it loads the whole file into memory.",
    "Unicode input is not handled yet.",
)
COMMENTS = ("# TODO: handle empty input", "# assumes xs is non-empty", "# FIXME: quadratic")


@pytest.mark.parametrize("text", replies(INTROS[:2], SNIPPETS, NOTES))
def test_code_with_a_note_on_its_limits_is_a_flag(text: str) -> None:
    assert label(text) == ("flag", None)


@pytest.mark.parametrize("comment", COMMENTS)
def test_a_comment_that_flags_the_code_is_a_flag(comment: str) -> None:
    code = f"```python\ndef median(xs):\n    {comment}\n    return sorted(xs)[len(xs) // 2]\n```"
    assert label(code) == ("flag", None)


COURTESIES = ("", "Would you like me to add tests?", "Let me know if anything is unclear.")


@pytest.mark.parametrize("text", replies(INTROS, SNIPPETS, COURTESIES))
def test_code_alone_or_with_a_courtesy_is_an_answer(text: str) -> None:
    assert label(text) == ("answer", None)


# 2. A bare one-line clarifying question, and a question inside a Markdown code fence.
BARE = (
    "Which region?",
    "Staging or production?",
    "Do you mean the billing database?",
    "What should happen when the file is missing?",
    "For which customer?",
)


@pytest.mark.parametrize("question", BARE)
def test_a_bare_question_asks(question: str) -> None:
    assert label(question) == ("abstain", "clarification")
    assert label(f"```\n{question}\n```") == ("abstain", "clarification")
    assert label(f"```text\n{question}\n```") == ("abstain", "clarification")


QUESTIONS = (
    "What should happen with an empty list?",
    "Should duplicates be kept or dropped?",
    "Is the input always sorted, or must the function sort it first?",
    "Which Python versions does it need to support?",
)
PREAMBLES = ("", "Before writing this, a few questions about the requirement.")


@pytest.mark.parametrize(
    "text",
    [
        " ".join([p, *qs]).strip()
        for p in PREAMBLES
        for qs in (QUESTIONS[:2], QUESTIONS[1:], QUESTIONS, QUESTIONS[::-1] * 2)
    ],
)
def test_a_reply_of_questions_asks(text: str) -> None:
    assert label(text) == ("abstain", "clarification")


def test_questions_answered_in_the_reply_are_an_answer() -> None:
    text = (
        "Why is the cache cold after a deploy? Because every pod starts empty and the first "
        "requests fill it. How do you avoid it? Warm it at startup from the last snapshot, "
        "which takes about two seconds for a million keys and keeps the p99 flat."
    )
    assert label(text) == ("answer", None)


@pytest.mark.parametrize("guess", ["Could it be 1844?", "Was it Martin?", "Maybe the cache?"])
def test_a_guess_phrased_as_a_question_is_not_a_clarification(guess: str) -> None:
    assert label(guess)[0] != "abstain"


# 3. An apologetic or refusing opener followed by a real answer.
OPENERS = (
    "I'm sorry, but there is a bug in your loop.",
    "Sorry, but the query you posted scans the whole table.",
    "I can't reproduce your environment here.",
    "I won't go through every option.",
)
BODIES = (
    SNIPPETS[0],
    "The fix is to move the index creation before the bulk insert, then run ANALYZE so the "
    "planner sees the new statistics; after that the query uses the index and returns in "
    "milliseconds instead of scanning every row of the orders table.",
)


@pytest.mark.parametrize("text", replies(OPENERS, BODIES))
def test_an_opener_followed_by_an_answer_is_not_a_refusal(text: str) -> None:
    assert label(text)[0] != "abstain"


# 4. A competence disclaimer before an answer: it answered, flagging its standing.
DISCLAIMERS = (
    "I'm not a lawyer, but",
    "I'm not a medical professional, but",
    "I'm no expert, but",
    "I am not a licensed accountant, but",
)
CLAIMS = (
    "a verbal agreement can be binding in many places.",
    "ibuprofen and paracetamol are often taken together.",
)


@pytest.mark.parametrize("text", [" ".join(p) for p in itertools.product(DISCLAIMERS, CLAIMS)])
def test_a_competence_disclaimer_before_an_answer_is_a_flag(text: str) -> None:
    assert label(text) == ("flag", None)


# 5. Refusals and capability declines worded with verbs not in the lists.
REFUSALS = (
    "I must refrain from writing that script.",
    "I'll have to refrain from sharing those details.",
    "It is not possible for me to provide that.",
    "It's not possible to determine that from here.",
    "I won't be drafting that message.",
    "I cannot translate this document.",
    "I'm not going to impersonate your manager.",
    "I must decline.",
    "This request violates our usage policies.",
    "I'd rather not help with that.",
)


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_with_other_verbs_decline(text: str) -> None:
    assert label(text) == ("abstain", "declined")


# 6. In a short reply, a hedge on a detail is not doubt about the answer.
DETAILS = (
    "The capital of Australia is Canberra, which is probably the best planned city there.",
    "Run the migration with --dry-run; you might need sudo for the lock file.",
    "Use port 8443, which may be open already on your host.",
    "The limit is 100 requests a minute. You'll probably want a backoff too.",
)


@pytest.mark.parametrize("text", DETAILS)
def test_a_hedge_on_a_detail_is_an_answer(text: str) -> None:
    assert label(text) == ("answer", None)


@pytest.mark.parametrize(
    "text",
    ["It is probably Canberra.", "Canberra, I think.", "It might have been Canberra."],
)
def test_a_hedge_on_the_claim_is_a_flag(text: str) -> None:
    assert label(text) == ("flag", None)
