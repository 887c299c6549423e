"""The one ASGI boundary in front of every endpoint: request ids, in-flight accounting, request
metrics and OpenAI-shaped errors on the hot path and the FastAPI routes alike."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import Floorgate, create_app
from gateway.settings import Settings
from tests.conftest import count, counted
from tests.servers import serve_in_thread

UNLABELLED = {"workflow": "unknown", "route": "none", "model": "none", "stream": "false"}
AUTH = {"Authorization": "Bearer key-any"}


def boom() -> None:
    raise RuntimeError("a bug in a FastAPI route")


LET_GO = threading.Event()


async def held() -> dict[str, bool]:
    await asyncio.to_thread(LET_GO.wait, 10)  # answers once the test lets it go
    return {"ok": True}


@pytest.fixture(scope="module")
def own(policy_path: Path) -> Iterator[tuple[httpx.Client, Floorgate]]:
    """A gateway of its own, with one route that has a bug."""
    settings = Settings(policies=policy_path, api_keys="key-any=*", _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, CollectorRegistry())
    app.rest.add_api_route("/v1/boom", boom, methods=["GET"])
    app.rest.add_api_route("/v1/held", held, methods=["GET"])
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, app


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in str(r.exc_info) for r in caplog.records)


def assert_openai_error(response: httpx.Response, status: int, type_: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-floorgate-request-id"].startswith("fg-")
    error: dict[str, str] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_
    return error


def test_a_bug_in_a_fastapi_route_is_an_openai_shaped_500(
    own: tuple[httpx.Client, Floorgate], caplog: pytest.LogCaptureFixture
) -> None:
    client, app = own
    before = count(app.runtime.metrics.registry, "floorgate_requests_total", **UNLABELLED,
                   code="500")  # fmt: skip
    error = assert_openai_error(client.get("/v1/boom"), 500, "server_error")
    assert "a bug" not in error["message"]  # the client gets no internals
    # Starlette sends the 500 and then re-raises: the boundary logs it once the client has it.
    deadline = time.monotonic() + 2
    while not logged(caplog, "a bug in a FastAPI route") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logged(caplog, "a bug in a FastAPI route")
    after = counted(app.runtime.metrics.registry, "floorgate_requests_total", before + 1,
                    **UNLABELLED, code="500")  # fmt: skip
    assert after == before + 1


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("GET", "/v1/feedback", "POST"), ("GET", "/v1/chat/completions", "POST"),
     ("POST", "/v1/models", "GET"), ("DELETE", "/v1/embeddings", "POST")],
)  # fmt: skip
def test_a_wrong_method_is_405_with_allow(
    own: tuple[httpx.Client, Floorgate], method: str, path: str, allow: str
) -> None:
    client, _ = own
    response = client.request(method, path, headers=AUTH)
    error = assert_openai_error(response, 405, "invalid_request_error")
    assert error["code"] == "method_not_allowed"
    assert response.headers["allow"] == allow


def test_models_and_fastapi_routes_count_requests_and_in_flight(
    own: tuple[httpx.Client, Floorgate],
) -> None:
    client, app = own
    registry = app.runtime.metrics.registry
    for path, code in (("/v1/models", "200"), ("/v1/route/explain", "401")):
        before = count(registry, "floorgate_requests_total", **UNLABELLED, code=code)
        method = "GET" if path == "/v1/models" else "POST"
        response = client.request(method, path, headers=AUTH if code == "200" else {})
        assert response.status_code == int(code)
        assert response.headers["x-floorgate-request-id"].startswith("fg-")
        after = counted(registry, "floorgate_requests_total", before + 1, **UNLABELLED, code=code)
        assert after == before + 1
    assert count(registry, "floorgate_in_flight_requests") == 0


def test_a_request_being_served_is_in_flight_until_it_ends(
    own: tuple[httpx.Client, Floorgate],
) -> None:
    client, app = own
    registry = app.runtime.metrics.registry
    answered: list[int] = []
    caller = threading.Thread(target=lambda: answered.append(client.get("/v1/held").status_code))
    caller.start()
    try:
        assert counted(registry, "floorgate_in_flight_requests", 1) == 1
    finally:
        LET_GO.set()
        caller.join(10)
    assert answered == [200]
    deadline = time.monotonic() + 2  # the boundary counts it out once the client has its answer
    while count(registry, "floorgate_in_flight_requests") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count(registry, "floorgate_in_flight_requests") == 0


def test_feedback_errors_come_from_the_one_renderer(own: tuple[httpx.Client, Floorgate]) -> None:
    client, _ = own
    response = client.post("/v1/feedback", headers=AUTH, json={"request_id": "fg-x"})
    assert_openai_error(response, 422, "invalid_request_error")
    batch = client.post("/v1/feedback/batch", headers=AUTH, json={"items": [{"request_id": 1}]})
    [item] = batch.json()["results"]
    assert set(item["error"]) == {"message", "type", "param", "code"}


def test_a_trailing_slash_is_not_redirected_to_the_clients_host(
    own: tuple[httpx.Client, Floorgate],
) -> None:
    client, _ = own
    response = client.get("/healthz/", headers={"Host": "evil.example"})
    assert "location" not in response.headers
    assert_openai_error(response, 404, "invalid_request_error")
