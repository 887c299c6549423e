"""The calibration contract: the gateway offers the model two tools, records their calls as the
strongest signal, and shows them to the client as tool calls or as text, as the policy says."""

from __future__ import annotations

import httpx
import openai
import pytest

from gateway.app import Floorgate
from tests.conftest import count, counted
from tests.fake_upstream import FakeUpstream

ABSTAIN = (
    'ARGS: {"reason": "The ticket does not say which region to deploy.", "kind": "clarification"}'
)
FLAG = 'SAY: Patched the parser. ARGS: {"concern": "I have not run the fuzz corpus."}'
CLIENT_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def abstentions(app: Floorgate, route: str, model: str, kind: str) -> float:
    labels = {"workflow": "deploy-pipeline", "route": route, "model": model, "kind": kind}
    return count(
        app.runtime.metrics.registry, "floorgate_abstentions_total", **labels, source="tool"
    )


def test_upstream_gets_the_tools_and_instruction_next_to_the_clients_own(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    httpx.delete(f"{upstream.root_url}/_requests")
    client.chat.completions.create(
        model="route/contract-translate",
        messages=ask(ABSTAIN),  # type: ignore[arg-type]
        tools=[CLIENT_TOOL],  # type: ignore[list-item]
    )
    [seen] = httpx.get(f"{upstream.root_url}/_requests").json()
    names = [t["function"]["name"] for t in seen["body"]["tools"]]
    assert names == ["lookup", "floorgate_abstain", "floorgate_flag"]
    assert seen["body"]["messages"][0]["role"] == "system"
    assert "floorgate_abstain" in seen["body"]["messages"][0]["content"]


def test_translated_abstention_reads_as_the_reason(
    client: openai.OpenAI, gateway_app: Floorgate
) -> None:
    before = abstentions(gateway_app, "contract-translate", "abstainer", "clarification")
    raw = client.chat.completions.with_raw_response.create(
        model="route/contract-translate",
        messages=ask(ABSTAIN),  # type: ignore[arg-type]
    )
    choice = raw.parse().choices[0]
    assert choice.message.content == "The ticket does not say which region to deploy."
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert raw.headers["x-floorgate-abstained"] == "true"
    labels = {
        "workflow": "deploy-pipeline",
        "route": "contract-translate",
        "model": "abstainer",
        "kind": "clarification",
        "source": "tool",
    }
    registry = gateway_app.runtime.metrics.registry
    assert counted(registry, "floorgate_abstentions_total", before + 1, **labels) == before + 1


def test_passthrough_shows_the_contract_call(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="route/contract-passthrough",
        messages=ask(ABSTAIN),  # type: ignore[arg-type]
    )
    [call] = raw.parse().choices[0].message.tool_calls or []
    assert call.function.name == "floorgate_abstain"  # type: ignore[union-attr]
    assert raw.headers["x-floorgate-abstained"] == "true"


def test_translated_flag_becomes_a_note_after_the_answer(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="route/contract-flag",
        messages=ask(FLAG),  # type: ignore[arg-type]
    )
    message = raw.parse().choices[0].message
    assert message.content == "Patched the parser.\n\nNote: I have not run the fuzz corpus."
    assert raw.headers["x-floorgate-self-flagged"] == "true"


@pytest.mark.parametrize(
    ("route", "text", "expected"),
    [
        ("contract-translate", ABSTAIN, "The ticket does not say which region to deploy."),
        ("contract-flag", FLAG, "Patched the parser.\n\nNote: I have not run the fuzz corpus."),
    ],
)
def test_translated_streams_carry_the_text_not_the_call(
    client: openai.OpenAI, route: str, text: str, expected: str
) -> None:
    stream = client.chat.completions.create(
        model=f"route/{route}",
        messages=ask(text),  # type: ignore[arg-type]
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    assert not any(c.choices[0].delta.tool_calls for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_streamed_contract_call_is_counted_with_source_tool(
    client: openai.OpenAI, gateway_app: Floorgate
) -> None:
    before = abstentions(gateway_app, "contract-passthrough", "abstainer", "clarification")
    stream = client.chat.completions.create(
        model="route/contract-passthrough",
        messages=ask(ABSTAIN),  # type: ignore[arg-type]
        stream=True,
    )
    names = [
        call.function.name
        for c in stream
        if c.choices
        for call in c.choices[0].delta.tool_calls or []
        if call.function and call.function.name
    ]
    assert names == ["floorgate_abstain"]
    labels = {
        "workflow": "deploy-pipeline",
        "route": "contract-passthrough",
        "model": "abstainer",
        "kind": "clarification",
        "source": "tool",
    }
    registry = gateway_app.runtime.metrics.registry
    assert counted(registry, "floorgate_abstentions_total", before + 1, **labels) == before + 1
