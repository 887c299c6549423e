"""The review desk: the results file's outputs as blind items, and the marks reviewers give
them, each checked and saved at once. The HTTP layer (server.py) only translates."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.eval.results import Label, Results
from gateway.review.agreement import agreements
from gateway.review.marks import Conflict, Key, Mark, MarkBook
from gateway.review.view import Item, item_json, items, mark_json
from gateway.state.base import Outcome

REVIEWER = r"^[^\s<>&\"'`][^<>&\"'`]{0,62}[^\s<>&\"'`]?$"  # a name, not markup


class Conflicted(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "mark_conflict"


class MarkIn(BaseModel):
    """A save from the page: the reviewer's whole mark of one output, on the revision it saw."""

    model_config = ConfigDict(extra="forbid")

    output: str
    reviewer: str = Field(pattern=REVIEWER)
    outcome: Outcome | None = None
    flag_pointed: bool | None = None
    corrected_verdict: Label | None = None
    note: str = Field(default="", max_length=4000)
    revision: int = Field(default=0, ge=0)


class ReviewDesk:
    def __init__(self, results: Results) -> None:
        self.results = results
        self.book = MarkBook(results)
        self.book.settle_all()
        self.salt = self.book.salt()
        self.items: list[Item] = []
        self.by_id: dict[str, Item] = {}
        self.by_key: dict[Key, Item] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the outputs again: a run still going adds some while the page is open."""
        self.items = items(self.results.results(), self.results.tickets(), self.salt)
        self.by_id = {i.id: i for i in self.items}
        self.by_key = {i.key: i for i in self.items}

    def close(self) -> None:
        self.book.close()
        self.results.close()

    def items_json(self) -> dict[str, Any]:
        self.refresh()
        errors = sum(r.status == "error" for r in self.results.results())
        return {"items": [item_json(i) for i in self.items], "errors": errors}

    def marks_json(self) -> dict[str, Any]:
        """Every reviewer's marks, the outcomes that came from elsewhere (an import, feedback),
        and each two reviewers' agreement on the outcome."""
        marks = [mark_json(self.by_key[m.key].id, m) for m in self.book.marks()
                 if m.key in self.by_key]  # fmt: skip
        for key, o in self.results.outcomes().items():
            if o.source != "review" and key in self.by_key:
                mark = Mark(*key, reviewer=o.reviewer or f"({o.source})", outcome=o.outcome,
                            flag_pointed=o.flag_pointed, corrected_verdict=o.corrected_verdict,
                            note=o.note, recorded_at=o.recorded_at)  # fmt: skip
                marks.append({**mark_json(self.by_key[key].id, mark), "source": o.source})
        return {"marks": marks, "agreement": self.agreement_json()}

    def agreement_json(self) -> list[dict[str, Any]]:
        outcomes: dict[Key, dict[str, str]] = {}
        for m in self.book.marks():
            if m.outcome is not None:
                outcomes.setdefault(m.key, {})[m.reviewer] = m.outcome
        return [{"first": a.first, "second": a.second, "n": a.n, "agreed": a.agreed,
                 "kappa": a.kappa} for a in agreements(outcomes)]  # fmt: skip

    def save(self, body: Any) -> dict[str, Any]:
        """Check and save one mark; BadRequest, NotFound or Conflicted say what was wrong."""
        try:
            given = MarkIn.model_validate(body)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise BadRequest(f"{field or 'body'}: {first['msg']}", param=field) from exc
        item = self.by_id.get(given.output)
        if item is None:
            raise NotFound(
                f"no output '{given.output}' in {self.results.path}; the page lists the "
                "outputs there are (reload it)", param="output",
            )  # fmt: skip
        mark = Mark(*item.key, reviewer=given.reviewer.strip(), outcome=given.outcome,
                    flag_pointed=given.flag_pointed, corrected_verdict=given.corrected_verdict,
                    note=given.note)  # fmt: skip
        try:
            saved = self.book.save(mark, given.revision)
        except Conflict as exc:
            raise Conflicted(str(exc), param="revision") from exc
        return mark_json(item.id, saved)
