"""Did the model abstain (decline, or ask instead of guessing) or flag doubt about its answer?

Sources, strongest first: the gateway's calibration tools, the OpenAI `refusal` field, a
`content_filter` finish reason, then the text rules below (their phrases are in cues.py).
Rules, not a model: they run in tens of microseconds on the event loop, and anyone can read
why a response got its label. docs/classify.md explains them and how to audit them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import orjson

from gateway import cues, speech_acts

Label = Literal["abstain", "flag", "answer"]
Kind = Literal["declined", "clarification"]
Source = Literal["tool", "refusal", "content_filter", "text", "none"]

ABSTAIN_TOOL = "floorgate_abstain"
FLAG_TOOL = "floorgate_flag"

# Refusals lead: they are looked for near the start of the prose, not deep inside an answer.
LEAD_CHARS = 400
# The stock openings of a refusal ("It's not appropriate to ...", "I'm sorry, but") count only
# in the first sentence or so.
OPENING_CHARS = 120
# "I don't know" and the like decline only a reply this short; a longer one goes on to answer.
SHORT_CHARS = 300
# A reply that asks for clarification is short and carries no code.
CLARIFY_MAX = 1500
# A request for details opens a clarifying reply; an offer ("would you like me to ...?") asks
# only if it opens the reply.
ASK_LEAD = 400
OFFER_LEAD = 200
# Past this, only the head and the tail are read: refusals, questions and doubt sit at the ends.
MAX_SCAN = 8192
FENCE = "```"
# An answer follows an opening when this much prose comes after its first sentence.
BODY_CHARS = 200
# A bare question ("Which region?") asks instead of answering only in a reply this short.
BARE_QUESTION = 300
# Openings that apologise: what follows them may well be the answer.
APOLOGY = frozenset({"apologize-but"})
# After "I'm not sure", a "but" brings the answer it is not sure of.
_BUT = re.compile(r"\b(?:but|though)\b")
_COURTESY = re.compile(r"\b(?:wish|sorry|afraid|love to|like to|happy to|apologi[sz]e)\b")

# One pattern per comment marker: a literal prefix is scanned for at C speed.
_COMMENTS = tuple(re.compile(re.escape(m) + r"[^\n]*") for m in ("#", "//", "/*", "<!--", "-- "))


@dataclass(frozen=True, slots=True)
class Verdict:
    label: Label
    kind: Kind | None = None
    source: Source = "none"
    evidence: str = ""

    @property
    def abstained(self) -> bool:
        return self.label == "abstain"

    @property
    def flagged(self) -> bool:
        return self.label == "flag"


ANSWER = Verdict("answer")


def classify_text(text: str) -> Verdict:
    """The text rules: a refusal near the start, a question instead of an answer, or doubt;
    a reply with code that asks about, or states its reading of, the task is a flag."""
    reply = Reply.of(text)
    if not reply.hits and "?" not in reply.prose:
        return ANSWER  # every rule starts at a cue's opening or at a question: none here
    found = declined(reply)
    if found:
        return Verdict("abstain", "declined", "text", found)
    found = "" if reply.has_code else asks(reply)
    if found:
        return Verdict("abstain", "clarification", "text", found)
    found = doubts(reply) or (queries(reply) if reply.has_code else "")
    if found:
        return Verdict("flag", None, "text", found)
    return ANSWER


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply split for the rules: its prose, and its prose followed by the comments in its
    code. Each is held twice, lowered (what cues search) and as written (what evidence
    quotes), character for character; `hits` is where every cue's opening occurs in `said`,
    and so in `prose`, which `said` begins with."""

    prose: str
    said: str
    said_raw: str
    has_code: bool
    hits: cues.Hits

    @classmethod
    def of(cls, text: str) -> Reply:
        text = _bounded(text)
        if FENCE not in text:
            low = _lowered(text)
            return cls(low, low, text if len(text) == len(low) else low, False, cues.scan(low))
        prose_parts, code_parts = _unfenced(text.split(FENCE))
        prose_raw = " ".join(prose_parts)
        code = "\n".join(code_parts)
        if not code.strip():  # every fence held prose: a reply without code
            low = _lowered(prose_raw)
            raw = prose_raw if len(prose_raw) == len(low) else low
            return cls(low, low, raw, False, cues.scan(low))
        notes_raw = "\n".join(n for c in _COMMENTS for n in c.findall(code))
        prose = _lowered(prose_raw)
        said, said_raw = f"{prose}\n{_lowered(notes_raw)}", f"{prose_raw}\n{notes_raw}"
        if len(said) != len(said_raw):  # a few characters lowercase to two: quote the lowered
            said_raw = said
        return cls(prose, said, said_raw, True, cues.scan(said))

    def find(
        self,
        table: tuple[cues.Cue, ...],
        limit: int | None = None,
        *,
        said: bool = False,
        begin: int = 0,
    ) -> cues.Found | None:
        """The first cue of `table` in the prose (or all that is said), before `limit`."""
        return cues.first(table, self.said if said else self.prose, self.hits, limit, begin)

    def quote(self, found: cues.Found | None) -> str:
        return "" if found is None else self.said_raw[found.start : found.end][:200]


# What a line of code has and a sentence does not: assignment, a call, braces, operators.
_CODE_MARKS = re.compile(r"[=;{}<>$\\]|\w\(|^\s*(?:def|class|import|from|return|select)\b", re.M)
_PROSE_TAGS = frozenset({"", "text", "txt", "markdown", "md", "plaintext"})


def _unfenced(parts: list[str]) -> tuple[list[str], list[str]]:
    """The prose and the code of a reply split at fences. A fence that holds only prose (a
    question put in a code block) is prose."""
    prose, code = [parts[0]], []
    for i in range(1, len(parts), 2):
        after = parts[i + 1] if i + 1 < len(parts) else ""
        tag, _, body = parts[i].partition("\n")
        held = parts[i]
        if tag.strip().lower() in _PROSE_TAGS and "?" in held and not _CODE_MARKS.search(held):
            prose[-1] += f" {body or tag} {after}"
        else:
            code.append(parts[i])
            prose.append(after)
    return prose, code


def _lowered(text: str) -> str:
    return text.lower().replace("\u2019", "'")


def _bounded(text: str) -> str:
    if len(text) <= MAX_SCAN:
        return text
    half = MAX_SCAN // 2
    # Keep the fences in step: an odd number dropped from the middle flips prose and code.
    seam = FENCE if text.count(FENCE, half, len(text) - half) % 2 else "\n"
    return text[:half] + seam + text[-half:]


def declined(reply: Reply) -> str:
    """A refusal in the opening of the prose, or a short reply that says it cannot know.

    An apology that opens a reply declines only if no answer follows it; a refusal worded
    with any verb counts in the first sentence, if no answer follows it either.
    """
    prose = reply.prose
    found = reply.find(cues.DECLINE, _lead(prose, LEAD_CHARS))
    if found is None:
        found = reply.find(cues.DECLINE_OPENING, _lead(prose, OPENING_CHARS))
        if found and found.cue in APOLOGY and _answered_after(reply, found.end):
            found = None  # "I'm sorry, but the loop is off by one. Here is the fix: ..."
    if found is None:
        first = speech_acts.sentence_end(prose, 0)
        found = reply.find(cues.DECLINE_FIRST, first)
        if found and (_BUT.search(prose, 0, first) or _answered_after(reply, found.end)):
            found = None  # "I can't reproduce it here, but the fix is ..."
    if found is None and _short(reply):
        found = reply.find(cues.DECLINE_SHORT)
        if found and _hedged_answer(reply, found):
            found = None  # "I'm not sure, but possibly 1844": a hedged answer, not a refusal
    return reply.quote(found)


def _hedged_answer(reply: Reply, found: cues.Found) -> bool:
    """A short reply that offers an answer beside saying it cannot be sure of one: a "but"
    (not after a courtesy: "I wish I could help, but ..."), a hedge on a claim, a guess."""
    prose = reply.prose
    but = _BUT.search(prose)
    if but and but.start() < found.start and _COURTESY.search(prose, 0, but.start()):
        but = _BUT.search(prose, found.end)
    return bool(but or _hedge_on_claim(reply) or speech_acts.proposes(prose))


def _answered_after(reply: Reply, at: int) -> bool:
    return speech_acts.answers_after(reply.prose, at, reply.has_code, BODY_CHARS)


def _short(reply: Reply) -> bool:
    return len(reply.prose.strip()) <= SHORT_CHARS and not reply.has_code


def asks(reply: Reply) -> str:
    """A short reply, with no code, that asks for what it needs instead of answering.

    A request for details counts in the opening, or anywhere if the reply ends on a question;
    a bare question ("which version?") or an offer counts only if the reply ends on it, and a
    very short reply that ends on a question put to the user asks, whatever its words.
    """
    prose = reply.prose
    if len(prose.strip()) > CLARIFY_MAX:
        return ""
    last = speech_acts.last_sentence(prose)
    question = speech_acts.is_question(prose, last)
    found = reply.find(cues.ASK_STRONG, None if question else _lead(prose, ASK_LEAD))
    if found is None and question:
        found = reply.find(cues.ASK_WEAK) or reply.find(cues.ASK_OFFER, _lead(prose, OFFER_LEAD))
    if found is None and question and not (reply.find(cues.HEDGE) or reply.find(cues.DOUBT)):
        if len(prose.strip()) <= BARE_QUESTION and speech_acts.asks_user(prose[slice(*last)]):
            found = cues.Found("bare-question", *last)
        else:
            span = speech_acts.questionnaire(prose)
            found = cues.Found("questions", *span) if span else None
    return reply.quote(found)


def doubts(reply: Reply) -> str:
    """Doubt about its own output, in the prose or in a comment in the code it wrote; in a
    short reply, a hedge on its claim (not on a detail of it)."""
    found = reply.find(cues.DOUBT, said=True)
    if found is None and _short(reply):
        # A hedge on its claim; or "I have no idea, but ..." that declined() let through
        # because an answer followed.
        found = _hedge_on_claim(reply) or reply.find(cues.DECLINE_SHORT)
    if found is None and reply.has_code:  # the comments follow the prose and a newline
        found = reply.find(cues.CODE_DOUBT, said=True, begin=len(reply.prose) + 1)
    return reply.quote(found)


def _hedge_on_claim(
    reply: Reply, begin: int = 0, limit: int | None = None, depth: int = 3
) -> cues.Found | None:
    """A hedge that qualifies the claim, not a detail; the table finds the first hedge in
    its own order, so a hedge on a detail sends the search before it and after it."""
    found = reply.find(cues.HEDGE, limit, begin=begin)
    if found is None or speech_acts.on_claim(reply.prose, found.start):
        return found
    if not depth:
        return None
    return _hedge_on_claim(reply, begin, found.start, depth - 1) or _hedge_on_claim(
        reply, found.end, limit, depth - 1
    )


def queries(reply: Reply) -> str:
    """In a reply with code: a question about the task put to the user, its reading of a
    requirement, or a limit it admits (in prose or comments): it answered, with a doubt."""
    found = reply.find(cues.CODE_NOTES, said=True)
    if found is None:
        prose = reply.prose
        span = next(speech_acts.questions_to_user(prose, anywhere=True), None)
        found = cues.Found("question", *span) if span else None
    return reply.quote(found)


def _lead(prose: str, chars: int) -> int:
    """Where the opening `chars` characters of the prose end, leading whitespace skipped."""
    return len(prose) - len(prose.lstrip()) + chars


def classify_choice(message: Mapping[str, Any], finish_reason: str | None) -> Verdict:
    """Classify one choice of a completion: its message and why it finished."""
    calls = message.get("tool_calls")
    verdict = _from_tools(calls)
    if verdict is not None:
        return verdict
    content = message.get("content")
    refusal = message.get("refusal") or _part(content, "refusal")
    if refusal:
        return Verdict("abstain", "declined", "refusal", str(refusal)[:200])
    if finish_reason == "content_filter":
        return Verdict("abstain", "declined", "content_filter", "finish_reason=content_filter")
    if isinstance(content, list):  # content parts
        content = _part(content, "text")
    if not content or not isinstance(content, str):
        return ANSWER  # tool calls only, or empty: nothing said about itself
    verdict = classify_text(content)
    if verdict.abstained and calls:
        return ANSWER  # it called the client's tools: it is doing the task, whatever it said
    return verdict


def _part(content: Any, kind: str) -> str:
    """The text of the content parts of one type ("text", "refusal"), joined."""
    if not isinstance(content, list):
        return ""
    return " ".join(
        str(p.get(kind) or "")
        for p in content
        if isinstance(p, dict) and p.get("type", kind) == kind
    )


def classify_completion(data: Mapping[str, Any]) -> Verdict:
    """One verdict for a completion: with n > 1, the most cautious choice speaks for it."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        return ANSWER
    verdicts = [
        classify_choice(c.get("message") or {}, c.get("finish_reason"))
        for c in choices
        if isinstance(c, dict)
    ]
    return most_cautious(verdicts)


def classify_response(response: Any) -> Verdict:
    """Whatever a caller holds: reply text, an assistant message, or a whole completion."""
    if isinstance(response, str):
        return classify_text(response)
    if isinstance(response, Mapping):
        if "choices" in response:
            return classify_completion(response)
        return classify_choice(response, response.get("finish_reason"))
    raise TypeError("a response is a string, an assistant message or a chat completion object")


def as_record(verdict: Verdict) -> dict[str, str | None]:
    """The verdict as one JSON object: what `floorgate classify` writes."""
    return {
        "label": verdict.label,
        "kind": verdict.kind,
        "source": verdict.source,
        "evidence": verdict.evidence,
    }


def classify_lines(lines: Iterable[str], out: TextIO) -> int:
    """`floorgate classify`: one JSON verdict per JSON line in, in order; 1 if any line was bad.

    A line is {"prompt": ..., "response": ...} (prompt optional and unused by the rules), where
    the response is reply text, an assistant message or a chat completion object.
    """
    status = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            verdict = classify_response(record["response"])
            result: dict[str, Any] = as_record(verdict)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            result, status = {"error": f"line {number}: {_why(exc)}"}, 1
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    return status


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return 'no "response": write {"prompt": ..., "response": ...}'
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg})"
    return str(exc) or type(exc).__name__


def most_cautious(verdicts: Iterable[Verdict]) -> Verdict:
    rank = {"abstain": 2, "flag": 1, "answer": 0}
    return max(verdicts, key=lambda v: rank[v.label], default=ANSWER)


def _from_tools(tool_calls: Any) -> Verdict | None:
    if not isinstance(tool_calls, list):
        return None
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or function.get("name") not in (ABSTAIN_TOOL, FLAG_TOOL):
            continue
        raw = function.get("arguments")
        args = _arguments(raw)
        if function["name"] == FLAG_TOOL:
            return Verdict("flag", None, "tool", str(args.get("concern") or raw or "")[:200])
        kind: Kind = "clarification" if args.get("kind") == "clarification" else "declined"
        if not args and "clarification" in str(raw):
            kind = "clarification"  # arguments cut short by max_tokens: still say what we can
        return Verdict("abstain", kind, "tool", str(args.get("reason") or raw or "")[:200])
    return None


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str | bytes) else None
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
