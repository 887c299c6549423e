"""Agent frameworks as their users run them, against the gateway over real HTTP: the OpenAI
Agents SDK with its default (Responses) provider, and LangChain's ChatOpenAI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import openai
import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.fake_upstream import FakeUpstream

LOOKED_UP: list[str] = []


@function_tool
def lookup(ticket: str) -> str:
    """Look a ticket up."""
    LOOKED_UP.append(ticket)
    return f"{ticket} is open"


def _run_agent(gateway: str, key: str, work: Callable[[], Awaitable[str]]) -> str:
    """Run `work` with the Agents SDK's default provider pointed at the gateway, tracing off."""
    set_tracing_disabled(True)

    async def main() -> str:
        client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)
        set_default_openai_client(client, use_for_tracing=False)
        try:
            return await work()
        finally:
            await client.close()

    return asyncio.run(main())


def _chat(upstream: FakeUpstream, seen: int) -> list[dict[str, object]]:
    return [r["body"] for r in upstream.since(seen) if r["path"] == "/v1/chat/completions"]


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
def test_an_agents_sdk_agent_calls_a_tool_through_the_gateway(
    gateway: str, upstream: FakeUpstream, streamed: bool
) -> None:
    LOOKED_UP.clear()
    agent = Agent(
        name="triage",
        instructions="Look the ticket up, then say what you found.",
        tools=[lookup],
        model="route:agent",  # the Agents SDK would read 'route/agent' as a provider prefix
    )
    prompt = 'Look up FG-7. ARGS: {"ticket": "FG-7"}'
    seen = upstream.seen

    async def run() -> str:
        if not streamed:
            return str((await Runner.run(agent, prompt)).final_output)
        result = Runner.run_streamed(agent, prompt)
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    assert _run_agent(gateway, "key-any", run) == "fake answer"
    assert LOOKED_UP == ["FG-7"]
    first, second = _chat(upstream, seen)
    assert first["messages"][0] == {  # type: ignore[index]
        "role": "system",
        "content": "Look the ticket up, then say what you found.",
    }
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]  # type: ignore[index, attr-defined]


def test_a_workflow_bound_key_accepts_the_sdks_default_model_name(gateway: str) -> None:
    agent = Agent(name="deployer", instructions="Plan the deploy.")  # the SDK's default model

    async def run() -> str:
        return str((await Runner.run(agent, "Plan it.")).final_output)

    assert _run_agent(gateway, "key-deploy", run) == "fake answer"


def _langchain(gateway: str, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=f"{gateway}/v1",
        api_key="key-any",  # type: ignore[arg-type]
        max_retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_langchain_invoke_caps_the_reply_where_the_upstream_reads_it(
    gateway: str, upstream: FakeUpstream
) -> None:
    seen = upstream.seen
    llm = _langchain(gateway, model="workflow:deploy-pipeline", max_tokens=5)
    assert llm.invoke("Plan the deploy.").content == "fake answer"
    [sent] = _chat(upstream, seen)
    assert sent["max_tokens"] == 5  # LangChain sent max_completion_tokens


def test_langchain_stream_counts_usage_from_an_upstream_that_sends_none(gateway: str) -> None:
    llm = _langchain(gateway, model="route:no-usage", stream_usage=True)
    chunks = list(llm.stream("Plan the deploy."))
    assert "".join(str(c.content) for c in chunks) == "fake answer"
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["output_tokens"] == 3


def test_langchain_bind_tools_streamed_gets_one_well_formed_call(gateway: str) -> None:
    def lookup_ticket(ticket: str) -> str:
        """Look a ticket up."""
        return ticket

    llm = _langchain(gateway, model="route:llama-tools").bind_tools(
        [lookup_ticket], tool_choice="lookup_ticket"
    )
    merged = None
    for chunk in llm.stream('Look up FG-9. ARGS: {"ticket": "FG-9"}'):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    [call] = merged.tool_calls  # type: ignore[attr-defined]
    assert call["name"] == "lookup_ticket"
    assert call["args"] == {"ticket": "FG-9"}


class Verdict(BaseModel):
    ok: bool
    reason: str


def test_langchain_structured_output_with_its_default_method(
    gateway: str, upstream: FakeUpstream
) -> None:
    llm = _langchain(gateway, model="route:json-object").with_structured_output(Verdict)
    seen = upstream.seen
    answer = json.dumps({"ok": True, "reason": "tests pass"})
    verdict = llm.invoke(f"Is it fixed? SAY: {answer}")
    assert verdict == Verdict(ok=True, reason="tests pass")
    [sent] = _chat(upstream, seen)
    response_format = sent["response_format"]
    assert response_format["type"] == "json_object"  # type: ignore[index]
    assert "ok" in response_format["schema"]["properties"]  # type: ignore[index]
