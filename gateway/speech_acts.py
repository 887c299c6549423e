"""The shape of a reply as speech acts, for the classifier: where its sentences end, which of
its questions are put to the user (not offers, courtesies or guesses phrased as questions),
and whether an answer follows its opening.

These are word-order facts, not phrases: they hold for models and styles the phrase tables
in cues.py were never written from. Every function runs on lowercased prose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# A sentence ends at . ! or ? before a space, a closing mark or the end; or at a blank line.
_END = re.compile(r"[.!?]+[\"')*_\]]*(?=\s|$)|\n\s*\n")
# A question that is a courtesy or an offer at the end of an answer, not a need.
_COURTESY = re.compile(
    r"\b(?:you (?:like|want) me to|shall i|should i (?:also )?(?:add|write|explain|show|go)"
    r"|(?:does|did|do) (?:this|that|it) (?:help|answer|work for you|make sense)"
    r"|anything else|any (?:other |more |further )?questions|makes? sense\?"
    r"|is there anything|can i help|may i help|help with anything)"
)
# A guess phrased as a question ("could it be 1844?", "what about Martin?"): a hedged answer.
_PROPOSES = re.compile(
    r"\b(?:could|might|would|can|may) (?:it|this|that|they|he|she|the \w+) (?:have )?be(?:en)?\b"
    r"|\b(?:what|how) about\b|\b(?:is|was) it (?:maybe|perhaps|possibly|probably)\b"
    r"|\b(?:maybe|perhaps|possibly|probably)\b"
)
# A question that offers its own answer: "was it Martin?", "is it 1844?"
_GUESS = re.compile(
    r"\b(?:was|were) (?:it|he|she|they|there|the)\b"
    r"|(?:^|, (?:but|so|or) )(?:is|are|could|might) (?:it|he|she|they|this|that|there)\b(?!.* or )"
)
# Who a question is put to: the user, or what the user wants.
_TO_USER = re.compile(r"\b(?:you|your|yours)\b")
# Comma, colon or stop: where a clause starts, for what a hedge attaches to.
_CLAUSE = re.compile(r"[,;:.!?()\n\u2014-]")
# A hedge after one of these qualifies a detail of the answer, not the answer.
_DETAIL = re.compile(r"\b(?:which|who|whom|whose|where|you|your|you'll|you'd|you're)\b")


def sentences(prose: str) -> Iterator[tuple[int, int]]:
    """The (start, end) of each sentence, leading whitespace skipped."""
    start = 0
    for m in _END.finditer(prose):
        yield _trimmed(prose, start, m.end())
        start = m.end()
    if prose[start:].strip():
        yield _trimmed(prose, start, len(prose))


def _trimmed(prose: str, start: int, end: int) -> tuple[int, int]:
    while start < end and prose[start].isspace():
        start += 1
    return start, end


def sentence_end(prose: str, at: int) -> int:
    """Where the sentence that contains `at` ends."""
    m = _END.search(prose, at)
    return m.end() if m else len(prose)


def last_sentence(prose: str) -> tuple[int, int]:
    """The (start, end) of the prose's last sentence, trailing marks and spaces dropped."""
    end = len(prose.rstrip().rstrip("*_)\"'"))
    start = 0
    for m in _END.finditer(prose, 0, end - 1 if end else 0):
        start = m.end()
    return _trimmed(prose, start, end)


def is_question(prose: str, span: tuple[int, int]) -> bool:
    return prose[span[0] : span[1]].rstrip().rstrip("*_)\"'").endswith("?")


def asks_user(sentence: str) -> bool:
    """A question that asks the user for something: not a courtesy, an offer or a guess."""
    return not _COURTESY.search(sentence) and not guesses(sentence)


def guesses(sentence: str) -> bool:
    """A question that offers an answer of its own ("could it be 1844?")."""
    return bool(_PROPOSES.search(sentence) or _GUESS.search(sentence))


def proposes(prose: str) -> bool:
    """Whether any question in the prose offers an answer of its own."""
    return "?" in prose and any(
        is_question(prose, s) and guesses(prose[s[0] : s[1]]) for s in sentences(prose)
    )


def questions_to_user(prose: str, *, anywhere: bool) -> Iterator[tuple[int, int]]:
    """The questions the prose puts to the user: the last sentence if it is one, and with
    `anywhere`, every question that names the user ("do you need ...?")."""
    if "?" not in prose:
        return
    spans = [s for s in sentences(prose) if is_question(prose, s)]
    last = last_sentence(prose)
    for span in spans:
        sentence = prose[span[0] : span[1]]
        at_end = span[1] >= last[1]
        if (at_end or (anywhere and _TO_USER.search(sentence))) and asks_user(sentence):
            yield span


def questionnaire(prose: str) -> tuple[int, int] | None:
    """The first of two or more questions put to the user that make up at least half of the
    prose and end it ("Should an empty list raise? Are duplicates kept?"): a reply that asks
    instead of answering, whatever its words."""
    if prose.count("?") < 2:
        return None
    spans = list(sentences(prose))
    asked = [s for s in spans if is_question(prose, s)]
    if len(asked) < 2 or 2 * len(asked) < len(spans) or not is_question(prose, spans[-1]):
        return None
    if not all(asks_user(prose[s[0] : s[1]]) for s in asked):
        return None
    return asked[0]


def on_claim(prose: str, at: int) -> bool:
    """Whether a hedge at `at` qualifies the reply's claim: not inside a relative clause
    ("Paris, which is probably ...") or advice to the user ("you might need sudo")."""
    begin = max(0, at - 60)
    cut = [m.end() for m in _CLAUSE.finditer(prose, begin, at)]
    clause = prose[cut[-1] if cut else begin : at]
    return not _DETAIL.search(clause)


def answers_after(prose: str, at: int, has_code: bool, body: int) -> bool:
    """Whether a real answer follows `at`: code, or at least `body` characters of prose
    after the sentence `at` is in."""
    return has_code or len(prose) - sentence_end(prose, at) >= body
