"""The calibration contract: two tools the model may call instead of guessing.

When a policy turns it on, the upstream request gains `floorgate_abstain(reason, kind)` and
`floorgate_flag(concern)` plus a short system instruction; a call to either is the strongest
signal the classifier has. The client either sees those calls (passthrough) or gets them
translated: an abstention becomes the assistant's message stating the reason, a flag becomes
a note appended to the answer. The client's own tools are never touched.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from gateway.classify import ABSTAIN_TOOL, FLAG_TOOL

Contract = Literal["off", "passthrough", "translate"]
CONTRACT_TOOLS = frozenset({ABSTAIN_TOOL, FLAG_TOOL})

INSTRUCTION = (
    "If you cannot or should not do the task, or it is ambiguous, call floorgate_abstain "
    "instead of guessing. If you do the task but doubt part of your answer (untested, an "
    "assumption, a possible flaw), answer and also call floorgate_flag with your concern."
)
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": ABSTAIN_TOOL,
            "description": "Decline the task, or ask for clarification, instead of guessing.",
            "parameters": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "description": "Why, in one sentence."},
                    "kind": {"type": "string", "enum": ["declined", "clarification"]},
                },
                "required": ["reason", "kind"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": FLAG_TOOL,
            "description": "Flag a doubt about, or a possible flaw in, your own answer.",
            "parameters": {
                "type": "object",
                "properties": {"concern": {"type": "string"}},
                "required": ["concern"],
            },
        },
    },
]


def with_contract(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the upstream should see it: the client's tools plus the contract's."""
    if body.get("tool_choice") == "none":
        return body  # the client forbade tool calls; the text classifier still runs
    messages = [{"role": "system", "content": INSTRUCTION}, *body["messages"]]
    return {**body, "messages": messages, "tools": [*(body.get("tools") or []), *TOOLS]}


def translate_completion(data: dict[str, Any]) -> bool:
    """Rewrite contract tool calls in place as text; True if anything changed."""
    changed = False
    for choice in data.get("choices") or ():
        message = choice.get("message") or {}
        calls = message.get("tool_calls") or []
        ours = [c for c in calls if _name(c) in CONTRACT_TOOLS]
        if not ours:
            continue
        changed = True
        message["content"] = translated_text(message.get("content"), ours)
        kept = [c for c in calls if _name(c) not in CONTRACT_TOOLS]
        if kept:
            message["tool_calls"] = kept
        else:
            message.pop("tool_calls", None)
            if choice.get("finish_reason") == "tool_calls":
                choice["finish_reason"] = "stop"
    return changed


def translated_text(content: str | None, calls: list[dict[str, Any]]) -> str:
    """The answer with the contract calls said in words after it."""
    return (content or "") + contract_note(calls, follows_text=bool(content))


def contract_note(calls: list[dict[str, Any]], follows_text: bool) -> str:
    """What the contract calls say, for a client that never saw them: the reason for an
    abstention, or `Note: <concern>` for a flag."""
    parts = []
    for call in calls:
        args = _arguments(call)
        if _name(call) == ABSTAIN_TOOL:
            parts.append(str(args.get("reason") or "I can't complete this task as asked."))
        else:
            parts.append(f"Note: {args.get('concern') or 'I am not sure this is right.'}")
    text = "\n\n".join(parts)
    return f"\n\n{text}" if follows_text else text


def _name(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    return str(function.get("name") or "")


def _arguments(call: dict[str, Any]) -> dict[str, Any]:
    try:
        args = orjson.loads((call.get("function") or {}).get("arguments") or "{}")
    except orjson.JSONDecodeError:
        return {}
    return args if isinstance(args, dict) else {}
