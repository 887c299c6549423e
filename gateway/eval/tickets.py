"""The tickets file (YAML, kind EvalTickets): a team's own tasks, each `clear` or `vague`, read
with every problem named by file:line:col, as policies are."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.policy import yamlpos
from gateway.policy.loader import PolicyProblem, validation_problems, yaml_problem
from gateway.policy.model import NAME, Metadata
from gateway.policy.yamlpos import Where

Spec = Literal["clear", "vague"]
SPECS: tuple[Spec, ...] = ("clear", "vague")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class Check(Strict):
    """A command run on the output (only with `eval run --run-checks`): in a fresh temporary
    directory holding the output as `output.md` (its path also in $FLOORGATE_OUTPUT), through
    `sh -c`; exit 0 passes."""

    command: str = Field(min_length=1)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)


class Ticket(Strict):
    """One task, fixed across model releases: either a prompt (with optional context files)
    or the whole conversation as messages."""

    id: str = Field(pattern=NAME)
    spec: Spec
    """`clear`: well specified, abstaining is a cost; `vague`: underspecified on purpose, a
    careful model asks or declines instead of guessing."""
    prompt: str | None = None
    context: list[str] = Field(default_factory=list)
    """Files (relative to the tickets file) appended to the prompt, each under its name."""
    messages: list[Message] | None = Field(default=None, min_length=1)
    tags: list[str] = Field(default_factory=list)
    description: str = ""
    check: Check | None = None

    @model_validator(mode="after")
    def _one_body(self) -> Ticket:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a ticket has either a prompt or messages (not both, not neither)")
        if self.context and self.prompt is None:
            raise ValueError("context files go with a prompt; with messages, inline them")
        return self


class TicketsDocument(Strict):
    """A Floorgate evaluation tickets file."""

    apiVersion: Literal["floorgate.dev/v1"]
    kind: Literal["EvalTickets"]
    metadata: Metadata
    tickets: list[Ticket] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class LoadedTicket:
    id: str
    spec: Spec
    tags: tuple[str, ...]
    messages: tuple[dict[str, str], ...]
    check: Check | None = None


@dataclass(frozen=True, slots=True)
class TicketSet:
    name: str
    file: str
    digest: str  # of the file and its context files: a changed ticket is a different set
    tickets: tuple[LoadedTicket, ...]


class TicketsError(Exception):
    """The tickets file is unsound; `problems` says where and what to change."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load_tickets(path: Path) -> TicketSet:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TicketsError([PolicyProblem(Where(file, 1, 1), f"cannot read: {exc}")]) from exc
    try:
        data, where = yamlpos.load(text, file)
    except yaml.YAMLError as exc:
        raise TicketsError([yaml_problem(exc, text, file)]) from exc
    try:
        doc = TicketsDocument.model_validate(data)
    except ValidationError as exc:
        raise TicketsError(list(validation_problems(exc, where, file))) from exc
    problems = list(_duplicates(doc, where, file))
    digest = hashlib.sha256(text.encode())
    tickets = []
    for i, ticket in enumerate(doc.tickets):
        messages = _messages(ticket, path.parent, digest, problems, where, i, file)
        tickets.append(LoadedTicket(ticket.id, ticket.spec, tuple(ticket.tags), messages,
                                    ticket.check))  # fmt: skip
    if problems:
        raise TicketsError(problems)
    return TicketSet(doc.metadata.name, file, digest.hexdigest()[:12], tuple(tickets))


def _duplicates(
    doc: TicketsDocument, where: dict[Any, Where], file: str
) -> Iterator[PolicyProblem]:
    first: dict[str, int] = {}
    for i, ticket in enumerate(doc.tickets):
        if ticket.id in first:
            before = yamlpos.locate(where, ("tickets", first[ticket.id], "id"), file)
            yield PolicyProblem(
                yamlpos.locate(where, ("tickets", i, "id"), file),
                f"ticket id '{ticket.id}' is already used at {before}; give each ticket its own",
            )
        first.setdefault(ticket.id, i)


def _messages(
    ticket: Ticket,
    base: Path,
    digest: Any,
    problems: list[PolicyProblem],
    where: dict[Any, Where],
    index: int,
    file: str,
) -> tuple[dict[str, str], ...]:
    if ticket.messages is not None:
        return tuple({"role": m.role, "content": m.content} for m in ticket.messages)
    parts = [ticket.prompt or ""]
    for j, name in enumerate(ticket.context):
        try:
            content = (base / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            at = yamlpos.locate(where, ("tickets", index, "context", j), file)
            problems.append(PolicyProblem(at, f"context file '{name}' cannot be read: {exc}"))
            continue
        digest.update(name.encode() + b"\0" + content.encode())
        parts.append(f"--- {name} ---\n{content}")
    return ({"role": "user", "content": "\n\n".join(parts)},)
