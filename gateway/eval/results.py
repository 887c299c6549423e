"""The results file: one SQLite database per evaluation, holding the tickets it ran, every
output with its verdict, and the reviewers' outcomes.

SQLite rather than JSONL because two writers share it (`eval run` and an outcomes import, or the
review page): each result and each outcome is one transaction, so a killed run loses at most
the answers in flight, and two writers never interleave half-written lines. WAL mode lets the
report read while a run writes. docs/eval.md describes the tables.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from gateway.eval.tickets import LoadedTicket, TicketSet
from gateway.state.base import OUTCOMES, Outcome

SCHEMA_VERSION = "1"
Status = Literal["ok", "error"]
CheckStatus = Literal["passed", "failed", "timeout"]
Label = Literal["abstain", "flag", "answer"]
LABELS: tuple[Label, ...] = get_args(Label)
OutcomeSource = Literal["import", "review", "feedback"]
BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for the other one's transaction

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, tags TEXT NOT NULL, messages TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    ticket TEXT NOT NULL, candidate TEXT NOT NULL, sample INTEGER NOT NULL,
    model TEXT NOT NULL, upstream_model TEXT NOT NULL, contract INTEGER NOT NULL,
    status TEXT NOT NULL, output TEXT NOT NULL,
    label TEXT, kind TEXT, source TEXT, evidence TEXT NOT NULL, latency_s REAL,
    prompt_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL, error TEXT,
    check_status TEXT, check_output TEXT, finished_at REAL NOT NULL,
    PRIMARY KEY (ticket, candidate, sample));
CREATE TABLE IF NOT EXISTS outcomes (
    ticket TEXT NOT NULL, candidate TEXT NOT NULL, sample INTEGER NOT NULL,
    outcome TEXT NOT NULL, flag_pointed INTEGER, corrected_verdict TEXT,
    note TEXT NOT NULL, reviewer TEXT NOT NULL, source TEXT NOT NULL, recorded_at REAL NOT NULL,
    PRIMARY KEY (ticket, candidate, sample));
"""


class ResultsError(Exception):
    """The results file cannot be used as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Result:
    """One output of one candidate for one ticket (sample 1..k with `--repeat k`)."""

    ticket: str
    candidate: str
    sample: int
    model: str  # the policy model
    upstream_model: str  # the provider's name for it, as the capability catalogue knows it
    contract: bool  # the calibration contract was on
    status: Status  # error: no answer (the model failed); `error` says why
    output: str  # the answer's text, contract calls said in words
    label: Label | None  # the classifier's verdict
    kind: str | None
    source: str | None  # which signal decided it: tool, refusal, content_filter, text, none
    evidence: str
    latency_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error: str | None
    check_status: CheckStatus | None  # only with --run-checks and a ticket check
    check_output: str | None
    finished_at: float

    @property
    def key(self) -> tuple[str, str, int]:
        return self.ticket, self.candidate, self.sample


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """What became of one output, from a reviewer: the outcome model the review page writes.

    outcome: merged | merged_with_edits | rejected | escaped_defect (a defect that passed the
    checks and was caught only later). flag_pointed: whether the model's own flag (or
    abstention reason) pointed at the real problem; None when not judged. corrected_verdict:
    the reviewer's label when the classifier got it wrong (abstain | flag | answer).
    """

    ticket: str
    candidate: str
    outcome: Outcome
    sample: int = 1
    flag_pointed: bool | None = None
    corrected_verdict: Label | None = None
    note: str = ""
    reviewer: str = ""
    source: OutcomeSource = "import"
    recorded_at: float = 0.0

    @property
    def key(self) -> tuple[str, str, int]:
        return self.ticket, self.candidate, self.sample


RESULT_FIELDS = tuple(f.name for f in fields(Result))
OUTCOME_FIELDS = tuple(f.name for f in fields(OutcomeRecord))
RESULT_INSERT = (
    f"INSERT OR REPLACE INTO results ({', '.join(RESULT_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(RESULT_FIELDS))})"
)
OUTCOME_INSERT = (
    f"INSERT OR REPLACE INTO outcomes ({', '.join(OUTCOME_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(OUTCOME_FIELDS))})"
)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to a results file that waits for the other writer and lets readers in."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction that takes the write lock up front, so two writers queue."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class Results:
    """A results file, opened by one process; safe beside other processes that open it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = connect(path)
        except sqlite3.DatabaseError as exc:
            raise ResultsError(f"{path}: not a results file ({exc}); name another") from exc

    @classmethod
    def create(cls, path: Path) -> Results:
        """Open the file, making it (and its tables) if it does not exist yet."""
        path.parent.mkdir(parents=True, exist_ok=True)
        results = cls(path)
        try:
            results._db.executescript(_TABLES)
            with results._write():
                results._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
        except sqlite3.DatabaseError as exc:
            results.close()
            raise ResultsError(f"{path}: not a results file ({exc}); name another") from exc
        return results._checked()

    @classmethod
    def open(cls, path: Path) -> Results:
        """Open an existing results file; ResultsError if there is none, or not ours."""
        if not path.is_file():
            raise ResultsError(f"{path}: no results file here; make one with `floorgate eval run`")
        return cls(path)._checked()

    def _checked(self) -> Results:
        """This, if its schema is the one this code reads; else closed, and ResultsError."""
        try:
            version = self.meta().get("schema_version")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ResultsError(f"{self.path}: not a results file ({exc})") from exc
        if version != SCHEMA_VERSION:
            self.close()
            raise ResultsError(
                f"{self.path}: results schema {version!r}, expected {SCHEMA_VERSION}"
            )
        return self

    def close(self) -> None:
        self._db.close()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db)

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def bind(self, tickets: TicketSet) -> None:
        """Record the tickets this file evaluates; refuse a different set, whose results
        would not be comparable with those already here."""
        with self._write() as db:
            known = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if "tickets_digest" in known and known["tickets_digest"] != tickets.digest:
                raise ResultsError(
                    f"{self.path} holds results for tickets {known['tickets_file']} (digest "
                    f"{known['tickets_digest']}), not {tickets.file} ({tickets.digest}); "
                    "give this run its own --results file"
                )
            for key, value in (("tickets_digest", tickets.digest), ("tickets_file", tickets.file),
                               ("tickets_name", tickets.name)):  # fmt: skip
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            db.executemany(
                "INSERT OR REPLACE INTO tickets VALUES (?, ?, ?, ?)",
                [(t.id, t.spec, orjson.dumps(t.tags).decode(), orjson.dumps(t.messages).decode())
                 for t in tickets.tickets],
            )  # fmt: skip

    def tickets(self) -> dict[str, LoadedTicket]:
        """The tickets as run (their checks are not kept: they belong to the tickets file)."""
        rows = self._db.execute("SELECT id, spec, tags, messages FROM tickets ORDER BY rowid")
        return {
            r[0]: LoadedTicket(r[0], r[1], tuple(orjson.loads(r[2])), tuple(orjson.loads(r[3])))
            for r in rows
        }

    def finished(self) -> set[tuple[str, str, int]]:
        """The (ticket, candidate, sample) answered: a rerun skips these, retries errors."""
        rows = self._db.execute("SELECT ticket, candidate, sample FROM results WHERE status='ok'")
        return {(r[0], r[1], r[2]) for r in rows}

    def record(self, result: Result) -> None:
        with self._write() as db:
            db.execute(RESULT_INSERT, astuple(result))

    def results(self) -> list[Result]:
        rows = self._db.execute(
            f"SELECT {', '.join(RESULT_FIELDS)} FROM results ORDER BY candidate, ticket, sample"
        )
        return [_result(row) for row in rows]

    def outcomes(self) -> dict[tuple[str, str, int], OutcomeRecord]:
        rows = self._db.execute(f"SELECT {', '.join(OUTCOME_FIELDS)} FROM outcomes")
        return {o.key: o for o in map(_outcome, rows)}

    def write_outcome(self, outcome: OutcomeRecord) -> None:
        """Record one outcome atomically (the latest for an output replaces the one before)."""
        self.write_outcomes([outcome])

    def write_outcomes(self, outcomes: Sequence[OutcomeRecord]) -> None:
        """Record outcomes in one transaction: all of them, or (on a bad one) none."""
        now = time.time()
        with self._write() as db:
            for o in outcomes:
                _check_outcome(db, o)
                row = (*astuple(o)[:-1], o.recorded_at or now)
                db.execute(OUTCOME_INSERT, row)

    def digest(self) -> str:
        """A content digest of the results and outcomes: what an admission names."""
        h = hashlib.sha256(orjson.dumps(self.meta().get("tickets_digest")))
        for r in self.results():
            h.update(orjson.dumps([r.key, r.status, r.output, r.label, r.check_status]))
        for key, o in sorted(self.outcomes().items()):
            h.update(orjson.dumps([key, o.outcome, o.flag_pointed, o.corrected_verdict]))
        return h.hexdigest()[:16]


def astuple(row: Result | OutcomeRecord) -> tuple[Any, ...]:
    return tuple(asdict(row).values())


def _result(row: Sequence[Any]) -> Result:
    values = dict(zip(RESULT_FIELDS, row, strict=True))
    values["contract"] = bool(values["contract"])
    return Result(**values)


def _outcome(row: Sequence[Any]) -> OutcomeRecord:
    values = dict(zip(OUTCOME_FIELDS, row, strict=True))
    if values["flag_pointed"] is not None:
        values["flag_pointed"] = bool(values["flag_pointed"])
    return OutcomeRecord(**values)


def _check_outcome(db: sqlite3.Connection, o: OutcomeRecord) -> None:
    if o.outcome not in OUTCOMES:
        raise ResultsError(f"outcome '{o.outcome}' is not one of {', '.join(OUTCOMES)}")
    if o.corrected_verdict is not None and o.corrected_verdict not in LABELS:
        raise ResultsError(
            f"corrected_verdict '{o.corrected_verdict}' is not one of {', '.join(LABELS)}"
        )
    if db.execute("SELECT 1 FROM tickets WHERE id = ?", (o.ticket,)).fetchone() is None:
        raise ResultsError(f"ticket '{o.ticket}' is not among this file's tickets")
    found = db.execute(
        "SELECT 1 FROM results WHERE ticket = ? AND candidate = ? AND sample = ?", o.key
    ).fetchone()
    if found is None:
        raise ResultsError(
            f"no result for ticket '{o.ticket}', candidate '{o.candidate}', sample {o.sample}"
        )
