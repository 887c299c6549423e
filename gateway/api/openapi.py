"""The OpenAPI document: FastAPI's routes, plus the OpenAI endpoints that the raw-ASGI hot path
serves before FastAPI sees the request (gateway/app.py), so the document names every endpoint.

The OpenAI endpoints take and return OpenAI's own shapes; their schemas are OpenAI's, so they
are described here by what Floorgate adds (model names, errors), not re-specified.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR = {"description": "An OpenAI-shaped error: {error: {message, type, param, code}}."}
JSON_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object"}}},
}
MODEL_NAMES = (
    " `model`: workflow/<name> (or workflow:<name>), route/<name> (or route:<name>), or an "
    "exposed model; see GET /v1/models."
)


def _post(summary: str, streams: bool) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        "post": {
            "summary": summary,
            "description": summary + MODEL_NAMES,
            "tags": ["openai"],
            "requestBody": JSON_BODY,
            "responses": {
                "200": {"description": "As OpenAI's API.", "content": content},
                "4XX": ERROR,
                "5XX": ERROR,
            },
        }
    }


def _get(summary: str, parameter: str | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["openai"],
        "responses": {"200": {"description": "As OpenAI's API."}, "4XX": ERROR},
    }
    if parameter is not None:
        operation["parameters"] = [
            {"name": parameter, "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    return {"get": operation}


HOT_PATHS: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": _post("Chat completions, streamed or not.", streams=True),
    "/v1/responses": _post(
        "The Responses API, translated to chat completions for upstreams that lack it.", True
    ),
    "/v1/responses/{response_id}": _get(
        "A stored response, to the API key that created it.", "response_id"
    ),
    "/v1/completions": _post("Legacy text completions, served by chat models.", True),
    "/v1/embeddings": _post("Embeddings from a policy model that serves them.", False),
    "/v1/models": _get("The workflows, routes and models this API key may name."),
    "/v1/models/{model}": _get("One of the models GET /v1/models lists.", "model"),
}


def install(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json) describe the hot path's endpoints too."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("paths", {}).update(HOT_PATHS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
