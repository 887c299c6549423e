"""The tickets file: the shipped sample set, its schema, and file:line for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from gateway.eval.schema import SCHEMA_FILE, render_tickets_schema
from gateway.eval.tickets import TicketsError, load_tickets
from gateway.policy import yamlpos

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "eval" / "tickets.yaml"
A = "  - {id: a, spec: clear, prompt: x}\n"
HEAD = "apiVersion: floorgate.dev/v1\nkind: EvalTickets\nmetadata: {name: t}\ntickets:\n"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tickets.yaml"
    path.write_text(HEAD + body)
    return path


def problems(path: Path) -> str:
    with pytest.raises(TicketsError) as info:
        load_tickets(path)
    return str(info.value)


def test_the_shipped_tickets_are_twenty_half_vague() -> None:
    tickets = load_tickets(SHIPPED)
    assert len(tickets.tickets) == 20
    assert sum(t.spec == "vague" for t in tickets.tickets) == 10
    assert {tag for t in tickets.tickets for tag in t.tags} >= {"coding", "ops", "data"}


def test_context_files_are_appended_to_the_prompt() -> None:
    ticket = next(t for t in load_tickets(SHIPPED).tickets if t.id == "retry-backoff-fix")
    (message,) = ticket.messages
    assert message["role"] == "user"
    assert "--- context/retry.py ---\nimport time" in message["content"]


def test_committed_schema_is_generated_and_validates_the_shipped_file() -> None:
    committed = ROOT / SCHEMA_FILE
    assert committed.read_text() == render_tickets_schema(), (
        f"{SCHEMA_FILE} is stale: run `floorgate schema --tickets -o {SCHEMA_FILE}`"
    )
    validator = Draft202012Validator(json.loads(committed.read_text()))
    data, _ = yamlpos.load(SHIPPED.read_text(), str(SHIPPED))
    assert list(validator.iter_errors(data)) == []
    assert SHIPPED.read_text().startswith("# yaml-language-server: $schema=./schema/tickets.json")


def test_a_bad_spec_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, f"{A}  - {{id: b, spec: fuzzy, prompt: y}}\n")
    text = problems(path)
    assert f"{path}:6:" in text and "tickets.1.spec" in text


def test_an_id_that_is_not_a_name_says_what_a_name_is(tmp_path: Path) -> None:
    path = write(tmp_path, f"{A}  - {{id: Retry_Fix!, spec: clear, prompt: y}}\n")
    assert f"{path}:6:6: tickets.1.id: 'Retry_Fix!' is not a name: lower-case letters" in problems(
        path
    )


def test_a_duplicate_id_points_at_both(tmp_path: Path) -> None:
    path = write(tmp_path, f"{A}  - {{id: a, spec: vague, prompt: y}}\n")
    assert f"{path}:6:" in (text := problems(path))
    assert f"already used at {path}:5:" in text


def test_a_missing_context_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "  - id: a\n    spec: clear\n    prompt: x\n    context: [nope.py]\n")
    text = problems(path)
    assert f"{path}:8:" in text and "'nope.py' cannot be read" in text


def test_prompt_or_messages_not_both(tmp_path: Path) -> None:
    body = "  - id: a\n    spec: clear\n    prompt: x\n    messages: [{role: user, content: y}]\n"
    assert "either a prompt or messages" in problems(write(tmp_path, body))


def test_invalid_yaml_and_unknown_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "  - {id: a, spec: clear, prompt: x\n")
    assert f"{path}:" in problems(path) and "invalid YAML" in problems(path)
    path = write(tmp_path, "  - {id: a, spec: clear, prompt: x, colour: red}\n")
    assert "unknown field 'colour'" in problems(path) and f"{path}:5:" in problems(path)
