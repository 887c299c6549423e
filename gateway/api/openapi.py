"""The OpenAPI document: FastAPI's routes, plus the OpenAI endpoints that the raw-ASGI hot path
serves before FastAPI sees the request (gateway/app.py), so the document names every endpoint.

Request bodies are typed as the gateway checks them (gateway/api/schemas.py), the bodies of
FastAPI's routes too, which read their JSON themselves; replies are OpenAI's own shapes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.api import schemas
from gateway.api.schemas import Schema

ERROR = {"description": "An OpenAI-shaped error: {error: {message, type, param, code}}."}
WORKFLOW_HEADER = {
    "name": "X-Floorgate-Workflow",
    "in": "header",
    "required": False,
    "description": "The workflow the request is for, if the API key may use it.",
    "schema": {"type": "string"},
}
MODEL_NAMES = (
    " `model`: workflow/<name> (or workflow:<name>), route/<name> (or route:<name>), or an "
    "exposed model; see GET /v1/models."
)


def json_body(schema: Schema) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _post(summary: str, body: Schema, streams: bool) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        "post": {
            "summary": summary,
            "description": summary + MODEL_NAMES,
            "tags": ["openai"],
            "parameters": [WORKFLOW_HEADER],
            "requestBody": json_body(body),
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
    "/v1/chat/completions": _post("Chat completions, streamed or not.", schemas.CHAT, True),
    "/v1/responses": _post(
        "The Responses API, translated to chat completions for upstreams that lack it.",
        schemas.RESPONSES,
        True,
    ),
    "/v1/responses/{response_id}": _get(
        "A stored response, to the API key that created it.", "response_id"
    ),
    "/v1/completions": _post(
        "Legacy text completions, served by chat models.", schemas.COMPLETION, True
    ),
    "/v1/embeddings": _post(
        "Embeddings from a policy model that serves them.", schemas.EMBEDDINGS, False
    ),
    "/v1/models": _get("The workflows, routes and models this API key may name."),
    "/v1/models/{model}": _get("One of the models GET /v1/models lists.", "model"),
}
# FastAPI's routes that read their JSON body themselves (FastAPI cannot see it).
ROUTE_BODIES: dict[str, Schema] = {
    "/v1/feedback": schemas.FEEDBACK,
    "/v1/feedback/batch": schemas.FEEDBACK_BATCH,
    "/v1/route/explain": schemas.EXPLAIN,
}


def install(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json) describe the hot path's endpoints too."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            paths = schema.setdefault("paths", {})
            for path, body in ROUTE_BODIES.items():
                paths[path]["post"]["requestBody"] = json_body(body)
            paths["/v1/route/explain"]["post"]["parameters"] = [WORKFLOW_HEADER]
            paths.update(HOT_PATHS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
