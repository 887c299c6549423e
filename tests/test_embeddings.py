"""/v1/embeddings through the gateway, with the official openai SDK over real HTTP: both upstream
paths, workflow labelling, retries without fallback, and every refusal by name."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from gateway.app import Floorgate
from tests.conftest import UPSTREAM_KEY, client_for, count, counted
from tests.fake_upstream import FakeUpstream

TEXTS = ["the deploy failed on step 3", "rollback finished"]


@pytest.mark.parametrize("model", ["embed", "embed-litellm"], ids=["direct", "litellm"])
def test_embeddings_come_back_from_the_named_model(
    client: openai.OpenAI, upstream: FakeUpstream, gateway_app: Floorgate, model: str
) -> None:
    where = {"workflow": "deploy-pipeline", "route": "none", "model": model, "stream": "false"}
    before = count(
        gateway_app.runtime.metrics.registry, "floorgate_requests_total", **where, code="200"
    )
    raw = client.embeddings.with_raw_response.create(model=model, input=TEXTS)
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert all(d.embedding == pytest.approx([0.1, 0.2, 0.3]) for d in result.data)
    assert result.usage.prompt_tokens == 2
    assert raw.headers["x-floorgate-model"] == model
    assert raw.headers["x-floorgate-workflow"] == "deploy-pipeline"  # the default workflow
    assert raw.headers["x-floorgate-request-id"].startswith("fg-")

    sent = upstream.received[-1]
    assert sent["path"] == "/v1/embeddings"
    assert sent["body"]["model"] == "ok"  # the provider's own name for it
    assert sent["body"]["input"] == TEXTS
    assert sent["headers"]["Authorization"] == f"Bearer {UPSTREAM_KEY}"

    registry = gateway_app.runtime.metrics.registry
    assert (
        counted(registry, "floorgate_requests_total", before + 1, **where, code="200") == before + 1
    )
    tokens = {"workflow": "deploy-pipeline", "route": "none", "model": model, "token_type": "input"}
    assert count(registry, "floorgate_tokens_total", **tokens) >= 2


def test_the_workflow_comes_from_the_key_or_the_header(gateway: str) -> None:
    with client_for(gateway, "key-deploy") as bound:
        raw = bound.embeddings.with_raw_response.create(
            model="embed", input="x", extra_headers={"X-Floorgate-Workflow": "deploy-pipeline"}
        )
        assert raw.headers["x-floorgate-workflow"] == "deploy-pipeline"
    with client_for(gateway, "key-two") as two:
        raw = two.embeddings.with_raw_response.create(
            model="embed", input="x", extra_headers={"X-Floorgate-Workflow": "bulk-summarization"}
        )
        assert raw.headers["x-floorgate-workflow"] == "bulk-summarization"
        with pytest.raises(openai.PermissionDeniedError):
            two.embeddings.create(
                model="embed", input="x", extra_headers={"X-Floorgate-Workflow": "deploy-pipeline"}
            )


def test_token_ids_and_base64_pass_through(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    client.embeddings.create(model="embed", input=[[1, 2, 3], [4]], encoding_format="float")
    assert upstream.received[-1]["body"]["input"] == [[1, 2, 3], [4]]
    client.embeddings.create(model="embed", input=[5, 6], dimensions=3)
    assert upstream.received[-1]["body"]["dimensions"] == 3


@pytest.mark.parametrize(
    ("change", "error", "param", "words"),
    [
        (
            {"model": "text-embedding-3-small"},
            openai.NotFoundError,
            "model",
            "Embedding models: embed",
        ),
        ({"model": "careful"}, openai.NotFoundError, "model", "not an embedding model"),
        ({"input": []}, openai.BadRequestError, "input", "non-empty array"),
        ({"input": [""]}, openai.BadRequestError, "input[0]", "non-empty string"),
        ({"input": ["a", 1]}, openai.BadRequestError, "input[1]", "token ids"),
        ({"input": [1.5]}, openai.BadRequestError, "input[0]", "token ids"),
        ({"encoding_format": "hex"}, openai.BadRequestError, "encoding_format", "'base64'"),
        ({"dimensions": 0}, openai.BadRequestError, "dimensions", ">= 1"),
        ({"api_base": "http://evil.example"}, openai.BadRequestError, "api_base", "not allowed"),
        ({"temperature": 0}, openai.BadRequestError, "temperature", "Unsupported parameter"),
    ],
)
def test_a_bad_request_is_refused_by_name_before_any_model_is_called(
    client: openai.OpenAI,
    upstream: FakeUpstream,
    change: dict[str, Any],
    error: type[openai.APIStatusError],
    param: str,
    words: str,
) -> None:
    calls = upstream.seen
    body: dict[str, Any] = {"model": "embed", "input": "x"} | change
    with pytest.raises(error) as info:
        client.post("/embeddings", body=body, cast_to=object)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == param
    assert words in info.value.message
    assert upstream.seen == calls


def test_a_failing_model_is_retried_but_never_swapped(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    upstream.counters.clear()
    calls = upstream.seen
    raw = client.embeddings.with_raw_response.create(model="embed-flaky", input="x")
    assert raw.headers["x-floorgate-model"] == "embed-flaky"
    tries = [r["body"]["model"] for r in upstream.since(calls)]
    assert tries == ["flaky:1", "flaky:1"]  # a 500, then the retry on the same model answered
    with pytest.raises(openai.InternalServerError) as failed:
        client.embeddings.create(model="embed-broken", input="x")
    assert failed.value.status_code == 502
    assert "embed-broken" in failed.value.message
    assert upstream.received[-1]["body"]["model"] == "status:500"  # no other model was tried
    with pytest.raises(openai.BadRequestError) as rejected:
        client.embeddings.create(model="embed-rejecting", input="x")
    assert rejected.value.code == "upstream_rejected"


def test_models_lists_the_embedding_models(client: openai.OpenAI) -> None:
    names = {m.id for m in client.models.list()}
    assert {"embed", "embed-litellm"} <= names
    assert "workflow/deploy-pipeline" in names


def test_an_embedding_model_cannot_answer_a_chat(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="embed", messages=[{"role": "user", "content": "hi"}])
