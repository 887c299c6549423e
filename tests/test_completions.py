"""POST /v1/completions (legacy) and GET /v1/models/{id}, with the official openai SDK."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import client_for
from tests.fake_upstream import FakeUpstream


def test_a_text_completion_is_served_by_the_workflows_route(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    seen = upstream.seen
    raw = client.completions.with_raw_response.create(
        model="workflow:bulk-summarization", prompt="Summarize: the build is red.", max_tokens=9
    )
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "fake answer"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 7
    assert raw.headers["x-floorgate-route"] == "capability-first"
    [sent] = [r["body"] for r in upstream.since(seen)]
    assert sent["messages"] == [{"role": "user", "content": "Summarize: the build is red."}]
    assert sent["max_tokens"] == 9


def test_a_streamed_text_completion(client: openai.OpenAI) -> None:
    stream = client.completions.create(
        model="workflow:bulk-summarization",
        prompt="Go.",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "fake answer"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


def test_what_a_chat_model_cannot_honour_is_refused_by_name(client: openai.OpenAI) -> None:
    for extra, param in (({"echo": True}, "echo"), ({"suffix": "x"}, "suffix"),
                         ({"best_of": 3}, "best_of"), ({"prompt": ""}, "prompt")):  # fmt: skip
        with pytest.raises(openai.BadRequestError) as info:
            client.completions.create(
                model="workflow:bulk-summarization", **{"prompt": "Go.", **extra}
            )
        assert info.value.body["param"] == param  # type: ignore[index]


def test_a_model_is_found_by_id_only_if_the_key_may_use_it(gateway: str) -> None:
    with client_for(gateway, "key-two") as limited:
        found = limited.models.retrieve("workflow/bulk-summarization")
        assert found.id == "workflow/bulk-summarization" and found.object == "model"
        assert limited.models.retrieve("route/capability-first").id == "route/capability-first"
        # The names a request's model may use in place of the listed ids (frameworks' forms).
        for name in ("workflow:bulk-summarization", "bulk-summarization", "route:capability-first"):
            assert limited.models.retrieve(name).id == name
        with pytest.raises(openai.NotFoundError) as info:
            limited.models.retrieve("workflow/deploy-pipeline")  # not this key's
        assert info.value.code == "model_not_found"
        for name in ("gpt-nonexistent", "workflow:deploy-pipeline", "deploy-pipeline"):
            with pytest.raises(openai.NotFoundError):
                limited.models.retrieve(name)
