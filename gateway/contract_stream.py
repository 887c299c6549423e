"""The calibration contract's translation for streams: contract tool-call deltas are taken
out of the SSE stream as they pass, and their text is put in just before the choice finishes.

Only used when a policy asks for translation; passthrough streams are relayed untouched.
"""

from __future__ import annotations

from typing import Any

from gateway.calibration import CONTRACT_TOOLS, contract_note


class _Choice:
    __slots__ = ("client_calls", "ours", "renumber", "said")

    def __init__(self) -> None:
        self.ours: dict[int, dict[str, Any]] = {}  # upstream index -> accumulated call
        self.renumber: dict[int, int] = {}  # upstream index -> index the client sees
        self.client_calls = 0
        self.said = False  # content already streamed for this choice


class ContractFilter:
    """Feed it each event's data (gateway/sse.py frames them); get back what the client should
    see in its place."""

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}

    def rewrite(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """One event's data as the client should see it: none, it, or a note before it."""
        out = []
        had_choices = bool(data.get("choices"))
        for choice in data.get("choices") or ():
            state = self._choices.setdefault(choice.get("index", 0), _Choice())
            out += self._choice(data, choice, state)
        if not had_choices or data["choices"]:  # drop events left with nothing to say
            out.append(data)
        return out

    def _choice(
        self, data: dict[str, Any], choice: dict[str, Any], state: _Choice
    ) -> list[dict[str, Any]]:
        """Strip contract calls from this choice's delta; return events to emit before it."""
        delta = choice.get("delta") or {}
        state.said = state.said or bool(delta.get("content"))
        calls = delta.get("tool_calls")
        if calls:
            kept = [c for c in (self._call(c, state) for c in calls) if c is not None]
            if kept:
                delta["tool_calls"] = kept
            else:
                delta.pop("tool_calls")
        before: list[dict[str, Any]] = []
        if choice.get("finish_reason") and state.ours:
            text = contract_note(list(state.ours.values()), follows_text=state.said)
            note = {**choice, "delta": {"content": text}, "finish_reason": None}
            before.append({**data, "choices": [note]})
            if choice["finish_reason"] == "tool_calls" and not state.client_calls:
                choice["finish_reason"] = "stop"
        if not delta and not choice.get("finish_reason"):
            data["choices"] = [c for c in data["choices"] if c is not choice]
        return before

    def _call(self, call: dict[str, Any], state: _Choice) -> dict[str, Any] | None:
        index = call.get("index", 0)
        name = (call.get("function") or {}).get("name")
        if index not in state.ours and index not in state.renumber:
            if name in CONTRACT_TOOLS:
                state.ours[index] = {"function": {"name": name, "arguments": ""}}
            else:
                state.renumber[index] = state.client_calls
                state.client_calls += 1
        if index in state.ours:
            arguments = (call.get("function") or {}).get("arguments") or ""
            state.ours[index]["function"]["arguments"] += arguments
            return None
        return {**call, "index": state.renumber[index]}
