"""Abstentions and self-flags detected on real responses through the gateway, streamed and not."""

from __future__ import annotations

import openai
import pytest

from gateway.app import Floorgate
from tests.conftest import count, counted

DECLINE = "I'm sorry, but I can't help with deleting the production database."
CLARIFY = "There are two services named billing. Could you clarify which one you mean?"
HEDGE = "Here is the patch. I haven't tested it against the staging schema."
PLAIN = "The migration adds an index on orders.created_at."


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"SAY: {text}"}]


def run(client: openai.OpenAI, stream: bool, model: str, messages: list[dict[str, str]]) -> str:
    """Make the request; return x-floorgate-abstained (non-streamed) or '' (streamed)."""
    if stream:
        for _ in client.chat.completions.create(model=model, messages=messages, stream=True):  # type: ignore[call-overload]
            pass
        return ""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)  # type: ignore[call-overload]
    return str(raw.headers["x-floorgate-abstained"]) + "/" + raw.headers["x-floorgate-self-flagged"]


WHERE = {"workflow": "bulk-summarization", "route": "capability-first", "model": "fast"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("text", "series", "extra", "headers"),
    [
        (
            DECLINE,
            "floorgate_abstentions_total",
            {"kind": "declined", "source": "text"},
            "true/false",
        ),
        (
            CLARIFY,
            "floorgate_abstentions_total",
            {"kind": "clarification", "source": "text"},
            "true/false",
        ),
        (HEDGE, "floorgate_self_flags_total", {"source": "text"}, "false/true"),
        (PLAIN, "floorgate_classified_total", {"label": "answer"}, "false/false"),
    ],
    ids=["declined", "clarification", "hedged", "plain"],
)
def test_text_signals_move_the_right_counter(
    client: openai.OpenAI,
    gateway_app: Floorgate,
    stream: bool,
    text: str,
    series: str,
    extra: dict[str, str],
    headers: str,
) -> None:
    registry = gateway_app.runtime.metrics.registry
    before = count(registry, series, **WHERE, **extra)
    seen = run(client, stream, "workflow/bulk-summarization", ask(text))
    assert counted(registry, series, before + 1, **WHERE, **extra) == before + 1
    if not stream:
        assert seen == headers


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("route", "model", "source"),
    [("refuses", "refusal", "refusal"), ("filtered", "filtered", "content_filter")],
)
def test_refusal_field_and_content_filter_are_abstentions(
    client: openai.OpenAI, gateway_app: Floorgate, stream: bool, route: str, model: str, source: str
) -> None:
    registry = gateway_app.runtime.metrics.registry
    labels = {"workflow": "deploy-pipeline", "route": route, "model": model}
    extra = {"kind": "declined", "source": source}
    before = count(registry, "floorgate_abstentions_total", **labels, **extra)
    run(client, stream, f"route/{route}", ask("anything"))
    assert (
        counted(registry, "floorgate_abstentions_total", before + 1, **labels, **extra)
        == before + 1
    )


@pytest.mark.parametrize(
    ("model", "text", "source"),
    [
        ("route/refuses", "anything", "refusal"),
        ("route/filtered", "anything", "content_filter"),
        ("workflow/bulk-summarization", DECLINE, "text"),
        ("workflow/bulk-summarization", PLAIN, "none"),
    ],
)
def test_a_whole_response_names_the_source_of_its_verdict(
    client: openai.OpenAI, model: str, text: str, source: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=ask(text))  # type: ignore[call-overload]
    assert raw.headers["x-floorgate-verdict-source"] == source


def test_a_stream_names_no_verdict_source_it_cannot_know_yet(client: openai.OpenAI) -> None:
    stream = client.chat.completions.with_raw_response.create(  # type: ignore[call-overload]
        model="workflow/bulk-summarization", messages=ask(DECLINE), stream=True
    )
    assert "x-floorgate-verdict-source" not in stream.headers
    for _ in stream.parse():
        pass
