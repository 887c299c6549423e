"""The OpenAPI document names every endpoint, the raw-ASGI hot path's among them."""

from __future__ import annotations

import re
from typing import Any

import httpx
import schemathesis
from jsonschema import Draft202012Validator

from gateway.app import Floorgate

AUTH = {"Authorization": "Bearer key-any"}


def test_the_openapi_document_describes_every_endpoint(
    gateway: str, gateway_app: Floorgate
) -> None:
    paths = httpx.get(f"{gateway}/openapi.json", timeout=10).json()["paths"]
    for method, path in gateway_app.hot:
        assert method.lower() in paths.get(path, {}), f"{method} {path} is not documented"
    for prefix, _ in gateway_app.by_id:
        templated = [p for p in paths if re.fullmatch(re.escape(prefix) + r"\{\w+\}", p)]
        assert templated and "get" in paths[templated[0]], f"GET {prefix}{{id}} is not documented"
    assert "/v1/feedback" in paths  # FastAPI's own routes are still there


def _document(gateway: str) -> dict[str, Any]:
    return httpx.get(f"{gateway}/openapi.json", timeout=10).json()  # type: ignore[no-any-return]


def test_the_document_is_openapi_3_and_its_bodies_json_schemas(gateway: str) -> None:
    document = _document(gateway)
    schemathesis.openapi.from_dict(document).validate()  # OpenAPI 3.1's own schema
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody")
            if body is not None:  # 3.1's schema objects are JSON Schema 2020-12
                Draft202012Validator.check_schema(body["content"]["application/json"]["schema"])
                assert method == "post", path


def _body_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    return document["paths"][path]["post"]["requestBody"]["content"]["application/json"][  # type: ignore[no-any-return]
        "schema"
    ]


USER = [{"role": "user", "content": "Hi."}]
MODEL = "workflow/deploy-pipeline"
# A valid request per endpoint that takes a body, with the shapes the document describes.
VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Look it up."}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
             "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "found"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 64,
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": {}}},
        "metadata": {"workflow": "deploy-pipeline", "ticket": "T-1"},
    },
    "/v1/completions": {"model": MODEL, "prompt": ["Say hi."], "max_tokens": 8, "echo": False},
    "/v1/embeddings": {"model": "embed", "input": ["one", [1, 2, 3]], "encoding_format": "float"},
    "/v1/responses": {
        "model": MODEL,
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Look it up."}]},
            {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "found"},
        ],
        "tools": [{"type": "function", "name": "lookup", "parameters": {}}, {"type": "web_search"}],
        "text": {"format": {"type": "text"}},
        "reasoning": {"effort": "low"},
        "store": False,
    },
    "/v1/route/explain": {"model": MODEL, "messages": USER},
}  # fmt: skip
# Requests the gateway refuses (with this status) and the document refuses too.
INVALID: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/chat/completions", {"model": MODEL}, 400),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "tool", "content": "x"}]}, 400),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "stream_options": {}}, 400),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "temperature": 3}, 400),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "api_base": "http://x"}, 400),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER,
                              "response_format": {"type": "json_schema", "json_schema": "v"}}, 400),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "echo": True}, 400),
    ("/v1/embeddings", {"model": "embed", "input": ""}, 400),
    ("/v1/embeddings", {"model": "embed", "input": "x", "dimensions": 0}, 400),
    ("/v1/responses", {"model": MODEL, "input": [{"type": "function_call_output"}]}, 400),
    ("/v1/responses", {"model": MODEL, "input": "x", "reasoning": "high"}, 400),
    ("/v1/feedback", {"request_id": "fg-1", "outcome": "loved"}, 422),
    ("/v1/route/explain", {"model": 5}, 400),
]  # fmt: skip


def test_a_valid_request_per_endpoint_is_valid_by_the_document_and_served(gateway: str) -> None:
    document = _document(gateway)
    with httpx.Client(base_url=gateway, headers=AUTH, timeout=30) as http:
        chat = http.post("/v1/chat/completions", json={"model": MODEL, "messages": USER})
        request_id = chat.headers["x-floorgate-request-id"]
        valid = VALID | {
            "/v1/feedback": {"request_id": request_id, "outcome": "merged", "note": None},
            "/v1/feedback/batch": {"items": [{"request_id": request_id, "outcome": "rejected"}]},
        }
        for path, body in valid.items():
            Draft202012Validator(_body_schema(document, path)).validate(body)
            answer = http.post(path, json=body)
            assert answer.status_code == 200, (path, answer.text)
        for path, body, status in INVALID:
            assert not Draft202012Validator(_body_schema(document, path)).is_valid(body), body
            assert http.post(path, json=body).status_code == status, body
