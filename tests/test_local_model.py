"""End to end: the shipped policy in front of the real local SmolLM2 server (`make test` starts it).

Not skipped when the model is missing: `make test` must start it, and CI must prove it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.settings import Settings
from tests.servers import serve_in_thread

ROOT = Path(__file__).parent.parent
LOCAL_MODEL_URL = os.environ.get("FLOORGATE_LOCAL_MODEL_URL", "http://127.0.0.1:8081/v1")
ASK = [{"role": "user", "content": "Name one colour of the sky."}]

pytestmark = pytest.mark.local_model


@pytest.fixture(scope="module")
def shipped_gateway() -> Iterator[openai.OpenAI]:
    assert LOCAL_MODEL_URL == "http://127.0.0.1:8081/v1", "the shipped policy points there"
    settings = Settings(policies=ROOT / "policies", _env_file=None)  # type: ignore[call-arg]
    with (
        serve_in_thread(create_app(settings, CollectorRegistry())) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client,
    ):
        yield client


def test_deploy_pipeline_gets_a_real_completion_on_calibration_first(
    shipped_gateway: openai.OpenAI,
) -> None:
    raw = shipped_gateway.chat.completions.with_raw_response.create(
        model="workflow/deploy-pipeline", messages=ASK, max_tokens=24, temperature=0
    )
    completion = raw.parse()
    assert raw.headers["x-floorgate-route"] == "calibration-first"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_bulk_summarization_routes_capability_first(shipped_gateway: openai.OpenAI) -> None:
    raw = shipped_gateway.chat.completions.with_raw_response.create(
        model="workflow/bulk-summarization", messages=ASK, max_tokens=8
    )
    assert raw.headers["x-floorgate-route"] == "capability-first"
    assert raw.parse().choices[0].message.content


def test_streaming_yields_the_models_tokens_incrementally(shipped_gateway: openai.OpenAI) -> None:
    stream = shipped_gateway.chat.completions.create(
        model="workflow/deploy-pipeline", messages=ASK, max_tokens=24, stream=True
    )
    pieces = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1, "tokens arrive as separate chunks"
    assert "".join(pieces).strip()


def test_max_completion_tokens_caps_the_real_models_reply(shipped_gateway: openai.OpenAI) -> None:
    completion = shipped_gateway.chat.completions.create(
        model="workflow:deploy-pipeline", messages=ASK, max_completion_tokens=5
    )
    assert completion.usage is not None and completion.usage.completion_tokens <= 5


def test_structured_output_from_the_real_model(shipped_gateway: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    completion = shipped_gateway.chat.completions.create(
        model="workflow/deploy-pipeline",
        messages=[{"role": "user", "content": "Is the sky blue? Answer in JSON."}],
        max_tokens=20,
        response_format={"type": "json_schema", "json_schema": {"name": "v", "schema": schema}},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


def test_a_response_streamed_from_the_real_model(shipped_gateway: openai.OpenAI) -> None:
    events = list(
        shipped_gateway.responses.create(
            model="workflow:deploy-pipeline",
            input="Name one colour.",
            max_output_tokens=16,
            stream=True,
        )
    )
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert events[-1].response.output_text.strip()
    assert events[-1].response.usage is not None and events[-1].response.usage.output_tokens > 0


def test_a_developer_message_as_codex_sends_it_reaches_the_real_model(
    shipped_gateway: openai.OpenAI,
) -> None:
    # Codex and the Agents SDK send their instructions as role 'developer', which the
    # llama-cpp-python server refuses with a 500; the gateway sends it as 'system'.
    response = shipped_gateway.responses.create(
        model="workflow:draft-generation",
        input=[
            {"role": "developer", "content": "Answer in one word."},
            {"role": "user", "content": "Name one colour."},
        ],
        max_output_tokens=8,
    )
    assert response.output_text.strip()
