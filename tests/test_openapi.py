"""The OpenAPI document names every endpoint, the raw-ASGI hot path's among them."""

from __future__ import annotations

import re

import httpx

from gateway.app import Floorgate


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
