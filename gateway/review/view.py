"""What the review page shows, built from the results file: each answered output as an item
named by ticket, letter and sample (never by candidate), with its Markdown already rendered.

An item's id is `ticket/letter/sample`: readable in a URL, and it names no model. The server
alone maps it back to the candidate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.eval.results import Result
from gateway.eval.tickets import LoadedTicket
from gateway.review import blind
from gateway.review.markdown import render
from gateway.review.marks import Key, Mark


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    letter: str
    result: Result
    ticket: LoadedTicket
    samples: int  # how many samples each candidate gave this ticket

    @property
    def key(self) -> Key:
        return self.result.key


def items(results: Iterable[Result], tickets: dict[str, LoadedTicket], salt: str) -> list[Item]:
    """The answered outputs in review order: ticket by ticket (as the tickets file lists them),
    then letter, then sample."""
    answered = [r for r in results if r.status == "ok" and r.ticket in tickets]
    by_ticket: dict[str, list[Result]] = defaultdict(list)
    for r in answered:
        by_ticket[r.ticket].append(r)
    found = []
    for ticket_id, ticket in tickets.items():
        outputs = by_ticket.get(ticket_id, [])
        names = blind.letters(salt, ticket_id, (r.candidate for r in outputs))
        samples = max((r.sample for r in outputs), default=1)
        for r in outputs:
            found.append(Item(f"{ticket_id}/{names[r.candidate]}/{r.sample}", names[r.candidate],
                              r, ticket, samples))  # fmt: skip
    order = {ticket_id: i for i, ticket_id in enumerate(tickets)}
    found.sort(key=lambda i: (order[i.ticket.id], i.letter, i.result.sample))
    return found


def item_json(item: Item) -> dict[str, Any]:
    """One item for the page: everything a reviewer reads, and nothing that names the model."""
    r = item.result
    check = None if r.check_status is None else {"status": r.check_status,
                                                 "output": r.check_output or ""}  # fmt: skip
    return {
        "id": item.id,
        "letter": item.letter,
        "sample": r.sample,
        "samples": item.samples,
        "ticket": {
            "id": item.ticket.id,
            "spec": item.ticket.spec,
            "tags": list(item.ticket.tags),
            "messages": [
                {"role": m["role"], "html": render(m["content"])} for m in item.ticket.messages
            ],
        },
        "output_html": render(r.output),
        "verdict": {
            "label": r.label,
            "kind": r.kind,
            "source": r.source,
            "evidence": r.evidence,
        },
        "check": check,
    }


def mark_json(item_id: str, mark: Mark) -> dict[str, Any]:
    return {
        "output": item_id,
        "reviewer": mark.reviewer,
        "outcome": mark.outcome,
        "flag_pointed": mark.flag_pointed,
        "corrected_verdict": mark.corrected_verdict,
        "note": mark.note,
        "revision": mark.revision,
        "recorded_at": mark.recorded_at,
    }
