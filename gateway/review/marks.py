"""Each reviewer's marks, kept in the results file beside the outcomes table the report reads.

The results file's `outcomes` table holds one outcome per output (docs/eval.md). Two reviewers
marking the same output must not overwrite each other, so each reviewer's mark lives in its own
row of `review_marks` (keyed by output and reviewer), and the output's outcome is the latest
mark with an outcome, written to `outcomes` (source `review`) in the same save. Agreement
between reviewers is measured on `review_marks`.

A reviewer working in two windows is the one case where a mark could replace another unseen:
each save names the revision it was made on, and a save on an older one is refused (Conflict).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from gateway.eval.results import Label, OutcomeRecord, Results, connect, transaction
from gateway.state.base import Outcome

Key = tuple[str, str, int]  # ticket, candidate, sample: one output

_TABLE = """
CREATE TABLE IF NOT EXISTS review_marks (
    ticket TEXT NOT NULL, candidate TEXT NOT NULL, sample INTEGER NOT NULL,
    reviewer TEXT NOT NULL, outcome TEXT, flag_pointed INTEGER, corrected_verdict TEXT,
    note TEXT NOT NULL, revision INTEGER NOT NULL, recorded_at REAL NOT NULL,
    PRIMARY KEY (ticket, candidate, sample, reviewer));
"""


@dataclass(frozen=True, slots=True)
class Mark:
    """One reviewer's judgment of one output; outcome None until they give one."""

    ticket: str
    candidate: str
    sample: int
    reviewer: str
    outcome: Outcome | None = None
    flag_pointed: bool | None = None
    corrected_verdict: Label | None = None
    note: str = ""
    revision: int = 0  # 1 for the first save, +1 each save after
    recorded_at: float = 0.0

    @property
    def key(self) -> Key:
        return self.ticket, self.candidate, self.sample

    def as_outcome(self) -> OutcomeRecord:
        assert self.outcome is not None
        return OutcomeRecord(
            ticket=self.ticket, candidate=self.candidate, outcome=self.outcome,
            sample=self.sample, flag_pointed=self.flag_pointed,
            corrected_verdict=self.corrected_verdict, note=self.note, reviewer=self.reviewer,
            source="review", recorded_at=self.recorded_at,
        )  # fmt: skip


FIELDS = tuple(f.name for f in fields(Mark))


class Conflict(Exception):
    """The reviewer's mark changed elsewhere since this save's revision; `current` is it."""

    def __init__(self, current: Mark) -> None:
        when = time.strftime("%H:%M:%S", time.localtime(current.recorded_at))
        super().__init__(
            f"{current.reviewer} changed this mark in another window at {when} (revision "
            f"{current.revision}); it is shown now: mark again to change it"
        )
        self.current = current


class MarkBook:
    """The review marks of one results file; safe beside other processes that write it."""

    def __init__(self, results: Results) -> None:
        self.results = results
        self._db = connect(results.path)
        self._db.executescript(_TABLE)

    def close(self) -> None:
        self._db.close()

    def salt(self) -> str:
        """The blinding salt of this file, made on first use."""
        with transaction(self._db) as db:
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('review_salt', ?)", (secrets.token_hex(16),)
            )
            row = db.execute("SELECT value FROM meta WHERE key = 'review_salt'").fetchone()
        return str(row[0])

    def marks(self) -> list[Mark]:
        rows = self._db.execute(
            f"SELECT {', '.join(FIELDS)} FROM review_marks ORDER BY recorded_at"
        ).fetchall()
        return [_mark(row) for row in rows]

    def save(self, mark: Mark, seen: int) -> Mark:
        """Record `mark` as the reviewer's revision seen + 1, and the output's outcome with it.
        Conflict if the reviewer's mark is no longer at revision `seen`."""
        with transaction(self._db) as db:
            row = db.execute(
                f"SELECT {', '.join(FIELDS)} FROM review_marks WHERE ticket = ? AND "
                "candidate = ? AND sample = ? AND reviewer = ?", (*mark.key, mark.reviewer),
            ).fetchone()  # fmt: skip
            current = _mark(row) if row else None
            if (current.revision if current else 0) != seen:
                assert current is not None
                raise Conflict(current)
            saved = replace(mark, revision=seen + 1, recorded_at=time.time())
            values = tuple(asdict(saved).values())
            db.execute(f"INSERT OR REPLACE INTO review_marks VALUES ({_slots()})", values)
        self._settle(saved.key)
        return saved

    def settle_all(self) -> None:
        """Bring every reviewed output's outcome up to its latest mark: a save interrupted
        between its two writes is finished the next time the page is served."""
        for key in {m.key for m in self.marks()}:
            self._settle(key)

    def _settle(self, key: Key) -> None:
        latest = self._latest(key)
        if latest is None:
            return
        known = self.results.outcomes().get(key)
        if known is None or known.recorded_at < latest.recorded_at:
            self.results.write_outcome(latest.as_outcome())

    def _latest(self, key: Key) -> Mark | None:
        row = self._db.execute(
            f"SELECT {', '.join(FIELDS)} FROM review_marks WHERE ticket = ? AND candidate = ? "
            "AND sample = ? AND outcome IS NOT NULL ORDER BY recorded_at DESC LIMIT 1", key,
        ).fetchone()  # fmt: skip
        return _mark(row) if row else None


def _slots() -> str:
    return ", ".join("?" * len(FIELDS))


def _mark(row: Any) -> Mark:
    values = dict(zip(FIELDS, row, strict=True))
    if values["flag_pointed"] is not None:
        values["flag_pointed"] = bool(values["flag_pointed"])
    return Mark(**values)
