"""The capability catalogue: published benchmark scores, written by the user, shown beside the
four numbers (eval/catalogue.yaml ships a few, each with its source)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.eval.tickets import TicketsError
from gateway.policy import yamlpos
from gateway.policy.loader import PolicyProblem, validation_problems, yaml_problem
from gateway.policy.yamlpos import Where


class CatalogueError(TicketsError):
    """The catalogue file is malformed; `problems` says where."""


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    benchmark: str = Field(min_length=1)
    score: float
    source: str = Field(min_length=1)


class CatalogueDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[Entry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Catalogue:
    entries: tuple[Entry, ...] = ()

    def find(self, *names: str) -> Entry | None:
        """The first entry whose name or alias is one of `names` (case does not matter)."""
        wanted = [n.lower() for n in names]
        for name in wanted:
            for entry in self.entries:
                if name in (entry.name.lower(), *(a.lower() for a in entry.aliases)):
                    return entry
        return None


def load_catalogue(path: Path) -> Catalogue:
    """Read a catalogue file; CatalogueError (file:line problems) when it is malformed."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data, where = yamlpos.load(text, file)
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError([PolicyProblem(Where(file, 1, 1), f"cannot read: {exc}")]) from exc
    except yaml.YAMLError as exc:
        raise CatalogueError([yaml_problem(exc, text, file)]) from exc
    try:
        doc = CatalogueDocument.model_validate(data or {})
    except ValidationError as exc:
        raise CatalogueError(list(validation_problems(exc, where, file))) from exc
    return Catalogue(tuple(doc.models))
