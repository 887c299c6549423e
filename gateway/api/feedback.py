"""POST /v1/feedback and /v1/feedback/batch: outcomes for answered requests, by request id.

Authenticated with the same API keys as chat; a key may report only on its own workflows.
One item: 200 (recorded, or a duplicate not counted again), 404 for an unknown or expired
request id, 422 for a bad outcome. A batch: 200 with one result per item, in order.
Either: 503 with Retry-After while the state store is unreachable.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.api.asgi import read_body
from gateway.api.deps import RuntimeDep
from gateway.errors import Unprocessable
from gateway.feedback import FeedbackDesk, FeedbackItem, ItemResult, invalid_result
from gateway.plan import parse_json

router = APIRouter()
MAX_BATCH = 1000
STATUS = {"recorded": 200, "duplicate": 200, "not_found": 404, "invalid": 422}


@router.post("/v1/feedback")
async def feedback(request: Request, rt: RuntimeDep) -> JSONResponse:
    caller = rt.keys.authenticate(request.headers.get("authorization"))
    body = parse_json(await read_body(request.scope, request.receive, *rt.settings.body_limits))
    desk = FeedbackDesk(rt)
    [result] = await desk.submit(caller, [desk.parse(body)])
    if result.error is not None:
        raise result.error
    return JSONResponse(result.as_json())


@router.post("/v1/feedback/batch")
async def feedback_batch(request: Request, rt: RuntimeDep) -> JSONResponse:
    caller = rt.keys.authenticate(request.headers.get("authorization"))
    body = parse_json(await read_body(request.scope, request.receive, *rt.settings.body_limits))
    raw_items = body.get("items")
    if not isinstance(raw_items, list) or not 0 < len(raw_items) <= MAX_BATCH:
        rt.metrics.unattributed("invalid")
        raise Unprocessable(
            f"items must be a list of 1 to {MAX_BATCH} feedback objects "
            "({request_id, outcome, note?}).",
            param="items",
            code="invalid_feedback",
        )
    desk = FeedbackDesk(rt)
    parsed: list[FeedbackItem | ItemResult] = [_parse(desk, raw) for raw in raw_items]
    valid = [p for p in parsed if isinstance(p, FeedbackItem)]
    submitted = iter(await desk.submit(caller, valid) if valid else [])
    results = [p if isinstance(p, ItemResult) else next(submitted) for p in parsed]
    return JSONResponse({"results": [_item_json(i, r) for i, r in enumerate(results)]})


def _parse(desk: FeedbackDesk, raw: Any) -> FeedbackItem | ItemResult:
    try:
        return desk.parse(raw)
    except Unprocessable as err:
        return invalid_result(raw, err)


def _item_json(index: int, result: ItemResult) -> dict[str, Any]:
    return {"index": index, "status_code": STATUS[result.status], **result.as_json()}
