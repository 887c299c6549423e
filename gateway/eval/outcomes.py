"""`floorgate eval outcomes import FILE`: reviewers' outcomes from CSV or JSON lines, checked
line by line against the results file and written all at once, or not at all.

Columns (CSV header, or JSON keys): ticket, candidate, outcome, and optionally sample (1),
flag_pointed (true/false, empty when not judged), corrected_verdict (abstain/flag/answer),
note, reviewer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from gateway.eval.results import LABELS, OutcomeRecord, Results
from gateway.state.base import OUTCOMES

COLUMNS = ("ticket", "candidate", "outcome", "sample", "flag_pointed", "corrected_verdict",
           "note", "reviewer")  # fmt: skip
REQUIRED = ("ticket", "candidate", "outcome")
TRUE, FALSE = {"true", "yes", "1", "y"}, {"false", "no", "0", "n"}


class OutcomesError(Exception):
    """The outcomes file has problems, each as file:line: message; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | str]]:
    """(line number, row) for each record of a .csv or .jsonl file, or (line number, problem)
    for a line that holds no record; a CSV header that cannot be read is one problem, at 1."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OutcomesError([f"{path}:1: cannot read: {exc}"]) from exc
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(text)
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, f"not JSON at column {exc.colno}: {exc.msg}"
            continue
        yield number, row if isinstance(row, dict) else "expected a JSON object per line"


def _csv_rows(text: str) -> Iterator[tuple[int, Mapping[str, Any] | str]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames
    if header is None:
        yield 1, f"empty: the first line names the columns, at least {', '.join(REQUIRED)}"
        return
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED if name not in header]
    if unknown or missing:
        wrong = [f"unknown column {', '.join(unknown)}"] if unknown else []
        wrong += [f"no column {', '.join(missing)}"] if missing else []
        yield 1, f"{'; '.join(wrong)}; the columns are {', '.join(COLUMNS)}"
        return
    for row in reader:
        if None in row:
            yield reader.line_num, f"more values than the header's {len(header)} columns"
        else:
            yield reader.line_num, row


def parse_row(row: Mapping[str, Any]) -> OutcomeRecord:
    """One outcome from its columns; ValueError naming the column that is wrong."""
    unknown = sorted(k for k in row if k not in COLUMNS)
    if unknown:
        raise ValueError(
            f"unknown column {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}"
        )
    for name in REQUIRED:
        if not str(row.get(name) or "").strip():
            raise ValueError(f"'{name}' is required")
    outcome = str(row["outcome"]).strip()
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome '{outcome}' is not one of {', '.join(OUTCOMES)}")
    corrected = str(row.get("corrected_verdict") or "").strip() or None
    if corrected is not None and corrected not in LABELS:
        raise ValueError(f"corrected_verdict '{corrected}' is not one of {', '.join(LABELS)}")
    return OutcomeRecord(
        ticket=str(row["ticket"]).strip(),
        candidate=str(row["candidate"]).strip(),
        outcome=outcome,
        sample=_sample(row.get("sample")),
        flag_pointed=_flag(row.get("flag_pointed")),
        corrected_verdict=corrected,
        note=str(row.get("note") or ""),
        reviewer=str(row.get("reviewer") or ""),
        source="import",
    )


def _sample(value: Any) -> int:
    if value in (None, ""):
        return 1
    try:
        sample = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"sample '{value}' is not a whole number") from None
    if sample < 1:
        raise ValueError("sample counts from 1")
    return sample


def _flag(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if not text:
        return None
    if text in TRUE | FALSE:
        return text in TRUE
    raise ValueError(f"flag_pointed '{value}' is not true or false")


def import_outcomes(path: Path, results: Results) -> int:
    """Check every row against the results file, then write them all in one transaction."""
    tickets = results.tickets()
    produced = {r.key for r in results.results()}
    problems: list[str] = []
    outcomes: list[OutcomeRecord] = []
    for number, row in read_rows(path):
        if isinstance(row, str):
            problems.append(f"{path}:{number}: {row}")
            continue
        try:
            outcome = parse_row(row)
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        missing = _missing(outcome, tickets, produced, results)
        if missing:
            problems.append(f"{path}:{number}: {missing}")
        else:
            outcomes.append(outcome)
    if problems:
        raise OutcomesError(problems)
    results.write_outcomes(outcomes)
    return len(outcomes)


def _missing(
    outcome: OutcomeRecord,
    tickets: Mapping[str, Any],
    produced: set[tuple[str, str, int]],
    results: Results,
) -> str | None:
    """Why an outcome names no output of this results file, or None if it does."""
    candidates = sorted({key[1] for key in produced})
    if outcome.ticket not in tickets:
        return (
            f"ticket '{outcome.ticket}' is not among the {len(tickets)} tickets of {results.path}"
        )
    if outcome.candidate not in candidates:
        return (
            f"candidate '{outcome.candidate}' was not run; the results hold {', '.join(candidates)}"
        )
    if outcome.key not in produced:
        return (
            f"no output for ticket '{outcome.ticket}', candidate '{outcome.candidate}', "
            f"sample {outcome.sample}"
        )
    return None
