"""The fake upstream itself, through the official openai SDK: each behaviour does what the
integration tests rely on it to do."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.fake_upstream import FakeUpstream

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Fix the flaky test."}]
TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object"}},
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def client(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    # No retries: a retried 5xx would hide the status the fake sent.
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as c:
        yield c


def test_ok_answers_with_usage_and_echoes_the_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="ok", messages=USER, n=2)
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "ok"
    assert [c.message.content for c in completion.choices] == ["fake answer", "fake answer"]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_say_sets_the_answer(client: openai.OpenAI) -> None:
    said: list[ChatCompletionMessageParam] = [{"role": "user", "content": "SAY: I don't know."}]
    completion = client.chat.completions.create(model="anything-else", messages=said)
    assert completion.choices[0].message.content == "I don't know."


def test_a_stream_arrives_word_by_word_then_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="ok", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    with stream:
        chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    words = [c.choices[0].delta.content for c in chunks[1:] if c.choices]
    assert words[:2] == ["fake", " answer"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_a_stream_is_server_sent_events_ending_in_done(fake: FakeUpstream) -> None:
    body = {"model": "ok", "messages": USER, "stream": True}
    with (
        httpx.Client() as http,
        http.stream("POST", f"{fake.base_url}/chat/completions", json=body) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"


def test_tool_calls_the_first_tool(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="tool", messages=USER, tools=[TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.function.name == "lookup"  # type: ignore[union-attr]
    assert call.function.arguments == '{"x": 1}'  # type: ignore[union-attr]


def test_refusal_sets_the_refusal_field(client: openai.OpenAI) -> None:
    message = client.chat.completions.create(model="refusal", messages=USER).choices[0].message
    assert message.content is None
    assert message.refusal == "I can't help with that."


def test_status_sends_that_status_with_an_openai_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="status:503", messages=USER)
    assert info.value.status_code == 503
    assert info.value.type == "server_error"
    assert "fake upstream error 503" in info.value.message
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="status:429", messages=USER)
    assert limited.value.response.headers["retry-after"] == "1"


def test_flaky_fails_k_times_then_answers(client: openai.OpenAI, fake: FakeUpstream) -> None:
    httpx.delete(f"{fake.root_url}/_requests")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="flaky:2", messages=USER)
    completion = client.chat.completions.create(model="flaky:2", messages=USER)
    assert completion.choices[0].message.content == "fake answer"


def test_malformed_is_a_200_the_sdk_cannot_parse(client: openai.OpenAI, fake: FakeUpstream) -> None:
    # The SDK lets json's ValueError through rather than wrapping it in an APIError.
    with pytest.raises((openai.APIError, ValueError)):
        client.chat.completions.create(model="malformed", messages=USER)
    response = httpx.post(f"{fake.base_url}/chat/completions", json={"model": "malformed"})
    assert response.status_code == 200
    assert response.content == b'{"id": "x", "choices": ['


@pytest.mark.parametrize(("model", "words"), [("cut", ["fake"]), ("midfail", ["fake", " answer"])])
def test_a_cut_stream_breaks_without_finishing(
    client: openai.OpenAI, model: str, words: list[str]
) -> None:
    received: list[str] = []
    finishes: list[str | None] = []
    with (
        pytest.raises(openai.APIConnectionError),
        client.chat.completions.create(model=model, messages=USER, stream=True) as stream,
    ):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
            finishes.append(chunk.choices[0].finish_reason)
    assert received == ["", *words]
    assert finishes == [None] * len(received)


@pytest.mark.parametrize(("model", "words"), [("cut:0", []), ("cut:1", [""])])
def test_a_stream_cut_after_n_events(client: openai.OpenAI, model: str, words: list[str]) -> None:
    received: list[str] = []
    with (
        pytest.raises(openai.APIConnectionError),
        client.chat.completions.create(model=model, messages=USER, stream=True) as stream,
    ):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert received == words


@pytest.mark.parametrize(
    "model", ["inband_error", "inband_error:0", "stall:0", "hold:0", "garbled:0"]
)
def test_a_stream_behaviour_answers_a_plain_request_with_json(
    client: openai.OpenAI, model: str
) -> None:
    # As a real server does: a request that does not stream never gets an event stream back
    # (the schemathesis scenario once named `inband-error` and got SSE, a 502 for malformed JSON).
    completion = client.chat.completions.create(model=model, messages=USER)
    assert completion.choices[0].message.content == "fake answer"


def test_a_garbled_stream_has_one_event_that_is_not_json(fake: FakeUpstream) -> None:
    body = {"model": "garbled:1", "stream": True}
    text = httpx.post(f"{fake.base_url}/chat/completions", json=body).text
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
    assert events[1] == '{"id": "chatcmpl-garbled", "choices": ['
    assert events[-1] == "[DONE]" and len(events) > 3


def test_a_stalled_stream_sends_its_first_events_then_nothing(fake: FakeUpstream) -> None:
    body = {"model": "stall:1", "stream": True}
    received = b""
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", f"{fake.base_url}/chat/completions", json=body, timeout=0.5) as resp,
    ):
        for piece in resp.iter_bytes():
            received += piece
    assert received.count(b"data: ") == 1


def test_a_cut_body_breaks_a_plain_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="cut", messages=USER)


def test_slow_waits_before_answering(client: openai.OpenAI) -> None:
    started = time.monotonic()
    client.chat.completions.create(model="slow:0.3", messages=USER)
    assert time.monotonic() - started >= 0.3


def test_embeddings_and_models(client: openai.OpenAI) -> None:
    embeddings = client.embeddings.create(model="ok", input=["a", "b"])
    assert [e.index for e in embeddings.data] == [0, 1]
    assert embeddings.data[0].embedding == [0.1, 0.2, 0.3]
    assert [m.id for m in client.models.list()] == ["ok"]


def test_requests_are_recorded_with_headers_and_cleared(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    httpx.delete(f"{fake.root_url}/_requests")
    client.chat.completions.create(model="ok", messages=USER, extra_headers={"x-client": "1"})
    [seen] = httpx.get(f"{fake.root_url}/_requests").json()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["Authorization"] == "Bearer k"
    assert seen["headers"]["x-client"] == "1"
    assert seen["body"]["messages"] == USER
    httpx.delete(f"{fake.root_url}/_requests")
    assert httpx.get(f"{fake.root_url}/_requests").json() == []


def test_the_script_writes_its_port_and_serves(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    script = Path(__file__).with_name("fake_upstream.py")
    args = [sys.executable, str(script), "--port", "0", "--port-file", str(port_file)]
    with subprocess.Popen(args, stderr=subprocess.DEVNULL) as process:
        try:
            deadline = time.monotonic() + 10
            while not port_file.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            port = int(port_file.read_text())
            response = httpx.get(f"http://127.0.0.1:{port}/v1/models")
            assert response.json()["data"][0]["id"] == "ok"
        finally:
            process.terminate()
        assert process.wait(10) == 0
