"""Feedback: outcomes the pipeline reports later (merged, merged_with_edits, rejected,
escaped_defect), attributed through the request ledger to the workflow, route and model that
produced the output. Recorded once per (request id, outcome), however often it is sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import GatewayError, NotFound, Unavailable, Unprocessable, error_object
from gateway.keys import Caller
from gateway.metrics import UNKNOWN
from gateway.runtime import Runtime
from gateway.state.base import OUTCOMES, Feedback, Outcome, Record, StoreUnavailable

Status = Literal["recorded", "duplicate", "not_found", "invalid"]
VerdictLabel = Literal["abstain", "flag", "answer"]
RETRY_AFTER_S = 5
FLUSH_WAIT_S = 1.0


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(min_length=1, max_length=128)
    outcome: Outcome
    note: str | None = Field(default=None, max_length=2000)
    # The reviewer's verdict on the reply, when it corrects (or confirms) the classifier's.
    verdict: VerdictLabel | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    status: Status
    request_id: str | None
    outcome: str | None
    record: Record | None = None
    error: GatewayError | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "outcome": self.outcome,
            "status": self.status,
        }
        if self.record is not None:
            record = self.record
            out |= {"workflow": record.workflow, "route": record.route, "model": record.model}
        if self.error is not None:
            out["error"] = error_object(self.error)
        return out


class FeedbackDesk:
    """Validates, attributes and records feedback; the HTTP layer only renders what it says."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def parse(self, raw: Any) -> FeedbackItem:
        try:
            return FeedbackItem.model_validate(raw)
        except ValidationError as exc:
            self.rt.metrics.unattributed("invalid")
            raise _unprocessable(exc) from exc

    async def submit(self, caller: Caller, items: list[FeedbackItem]) -> list[ItemResult]:
        """Raises Unavailable (503, Retry-After) when the store is unreachable."""
        try:
            records = await self._attribute(caller, items)
            now = time.time()
            found = [
                (Feedback(item.request_id, item.outcome, item.note, now), record)
                for item, record in zip(items, records, strict=True)
                if record is not None
            ]
            results = iter(await self.rt.store.add_feedback(found) if found else [])
        except StoreUnavailable as exc:
            self.rt.metrics.unattributed("unavailable", len(items))
            raise Unavailable(
                "Feedback cannot be recorded right now: the gateway's state store is "
                "unreachable. Send it again later; it is recorded once however often it is sent.",
                code="state_unavailable",
                headers={"retry-after": str(RETRY_AFTER_S)},
            ) from exc
        return [
            self._result(item, record, next(results) if record is not None else "not_found")
            for item, record in zip(items, records, strict=True)
        ]

    async def _attribute(self, caller: Caller, items: list[FeedbackItem]) -> list[Record | None]:
        ids = [item.request_id for item in items]
        records = await self.rt.ledger.lookup(ids, FLUSH_WAIT_S)
        allowed: list[Record | None] = []
        for record in records:
            if record is not None and not caller.may_use(record.workflow):
                self.rt.metrics.unattributed("forbidden")
                record = None  # another workflow's request: as if unknown, revealing nothing
            elif record is not None and record.cancelled:
                record = None  # its client left before the answer: no output to judge
            allowed.append(record)
        return allowed

    def _result(self, item: FeedbackItem, record: Record | None, result: str) -> ItemResult:
        metrics = self.rt.metrics
        if record is None or result == "not_found":
            metrics.unattributed("not_found")
            return ItemResult("not_found", item.request_id, item.outcome, None, self._missing(item))
        if result == "duplicate":
            metrics.feedback_duplicates.inc()
            return ItemResult("duplicate", item.request_id, item.outcome, record)
        workflow, route, model = self._labels(record)
        metrics.feedback_recorded(workflow, route, model, item.outcome)
        if item.verdict is not None:  # counted with its feedback: once per (id, outcome)
            metrics.verdict_judged(record.label, item.verdict, workflow, model)
        return ItemResult("recorded", item.request_id, item.outcome, record)

    def _labels(self, record: Record) -> tuple[str, str, str]:
        """Bounded labels: names the serving policy declares, `unknown` for any other."""
        spec = self.rt.policies.current.spec
        return (
            record.workflow if record.workflow in spec.workflows else UNKNOWN,
            record.route if record.route in spec.routes else UNKNOWN,
            record.model if record.model in spec.models else UNKNOWN,
        )

    def _missing(self, item: FeedbackItem) -> NotFound:
        days = self.rt.settings.ledger_retention_s / 86400
        return NotFound(
            f"No answered request '{item.request_id}' is on record: the id is unknown, older "
            f"than the ledger's retention ({days:g} days), or its client left before the answer "
            "was whole. Send the x-floorgate-request-id header of a response received whole.",
            param="request_id",
            code="request_not_found",
        )


def invalid_result(raw: Any, error: Unprocessable) -> ItemResult:
    fields = raw if isinstance(raw, dict) else {}
    request_id, outcome = fields.get("request_id"), fields.get("outcome")
    return ItemResult(
        "invalid",
        request_id if isinstance(request_id, str) else None,
        outcome if isinstance(outcome, str) else None,
        error=error,
    )


def _unprocessable(exc: ValidationError) -> Unprocessable:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    if field == "outcome":
        message = f"outcome must be one of {', '.join(OUTCOMES)}."
    elif field == "verdict":
        message = "verdict must be one of abstain, flag, answer (the reviewer's, for the reply)."
    else:
        message = f"{field or 'body'}: {first['msg']}."
    return Unprocessable(message, param=field, code="invalid_feedback")
