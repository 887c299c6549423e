"""Did the model abstain (decline, or ask instead of guessing) or flag doubt about its answer?

Sources, strongest first: the gateway's calibration tools, the OpenAI `refusal` field, a
`content_filter` finish reason, then the text rules below. Rules, not a model: they run in
microseconds on the event loop, and anyone can read why a response got its label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Label = Literal["abstain", "flag", "answer"]
Kind = Literal["declined", "clarification"]
Source = Literal["tool", "refusal", "content_filter", "text", "none"]

ABSTAIN_TOOL = "floorgate_abstain"
FLAG_TOOL = "floorgate_flag"

# Refusals lead: they are looked for near the start of the prose, not deep inside an answer.
LEAD_CHARS = 400
# Past this, only the head and the tail are read: doubt and questions sit at the ends.
MAX_SCAN = 8192

_DECLINE = re.compile(
    r"\b(?:i(?:'m| am) (?:sorry,? but |afraid )?i (?:can(?:'|no)t|cannot|won't|will not)"
    r"|i (?:can(?:'|no)t|cannot|won't|will not|must decline to|am unable to|'m unable to"
    r"|am not able to|'m not able to) (?:help|assist|comply|provide|do|fulfil|fulfill|"
    r"create|write|answer|share|support|generate|complete|engage|give|make|offer)"
    r"|i must (?:respectfully )?decline|i(?:'m| am) not comfortable"
    r"|(?:that|this) (?:is not|isn't) something i can)",
    re.IGNORECASE,
)
_ASK = re.compile(
    r"\b(?:could|can|would) you (?:please )?(?:clarify|specify|provide|share|tell me|confirm|"
    r"give me|let me know|explain what)|(?:please|kindly) (?:clarify|specify|provide more)"
    r"|what (?:exactly )?do you mean|which (?:one|version|file|option|of these)"
    r"|do you want me to|i need (?:more|some) (?:information|details|context)"
    r"|before i (?:proceed|continue|start|make)|(?:could|can) you (?:give|share) more",
    re.IGNORECASE,
)
_DOUBT = re.compile(
    r"\b(?:i (?:haven't|have not|did not|didn't) (?:tested|test|run|verified|checked)"
    r"|(?:this|it|that) (?:is )?untested|not (?:been )?tested"
    r"|(?:this|it|the code|the solution|my answer) assumes|assuming (?:that )?"
    r"|i(?:'m| am) not (?:entirely |completely |100% |fully )?(?:sure|certain|confident)"
    r"|i(?:'m| am) unsure|not (?:entirely )?sure (?:if|whether|that)"
    r"|(?:might|may|could) not (?:work|be (?:correct|accurate|right)|handle|compile)"
    r"|i (?:might|may|could) be (?:wrong|mistaken)"
    r"|(?:please|you should|you may want to|be sure to|make sure to) "
    r"(?:double[- ]check|verify|test)"
    r"|double[- ]check|caveat|potential (?:issue|problem|bug|flaw)"
    r"|(?:to|of) my knowledge|if i recall correctly|i believe (?:that )?)",
    re.IGNORECASE,
)
_CODE = re.compile(r"```.*?(?:```|$)", re.DOTALL)


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
    """The text rules: a refusal near the start, a question instead of an answer, or doubt."""
    if len(text) > MAX_SCAN:
        text = text[: MAX_SCAN // 2] + "\n" + text[-MAX_SCAN // 2 :]
    prose = _CODE.sub(" ", text) if "```" in text else text
    lead = prose[:LEAD_CHARS]
    found = _DECLINE.search(lead)
    if found:
        return Verdict("abstain", "declined", "text", found.group(0))
    stripped = prose.strip()
    if stripped.endswith("?") and len(stripped) < 1200 and "```" not in text:
        found = _ASK.search(prose)
        if found:
            return Verdict("abstain", "clarification", "text", found.group(0))
    found = _DOUBT.search(prose)
    if found:
        return Verdict("flag", None, "text", found.group(0))
    return ANSWER


def classify_choice(message: Mapping[str, Any], finish_reason: str | None) -> Verdict:
    """Classify one choice of a completion: its message and why it finished."""
    verdict = _from_tools(message.get("tool_calls"))
    if verdict is not None:
        return verdict
    refusal = message.get("refusal")
    if refusal:
        return Verdict("abstain", "declined", "refusal", str(refusal)[:200])
    if finish_reason == "content_filter":
        return Verdict("abstain", "declined", "content_filter", "finish_reason=content_filter")
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not content:
        return ANSWER  # tool calls only, or empty: nothing said about itself
    return classify_text(content)


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


def most_cautious(verdicts: Iterable[Verdict]) -> Verdict:
    rank = {"abstain": 2, "flag": 1, "answer": 0}
    return max(verdicts, key=lambda v: rank[v.label], default=ANSWER)


def _from_tools(tool_calls: Any) -> Verdict | None:
    if not isinstance(tool_calls, list):
        return None
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if name == ABSTAIN_TOOL:
            args = str(function.get("arguments", ""))  # type: ignore[union-attr]
            kind: Kind = "clarification" if "clarification" in args else "declined"
            return Verdict("abstain", kind, "tool", args[:200])
        if name == FLAG_TOOL:
            args = str(function.get("arguments", ""))  # type: ignore[union-attr]
            return Verdict("flag", None, "tool", args[:200])
    return None
