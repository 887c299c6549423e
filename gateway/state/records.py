"""The in-memory ledger's records, packed small and held within a byte budget.

A record would cost about 250 bytes as a tuple keyed by its id string (the string, the tuple, the
float, the dict slot). Here it is two ints in a dict: the id's 12 random bytes as one int, and one
int holding the time's exact float bits beside the index of its *context*: the tuple of the
record's other fields (workflow, route, model, policy version, verdict), which thousands of
records share and which is kept once. About 120 bytes a record, none of it tracked by the
garbage collector (measured by bench/ledger_memory.py).

A field with many distinct values must not join the context: it would be kept once per record
anyway, and never freed. The verdict's evidence (free text, on abstentions and flags) is kept
beside the packed int instead, as (int, evidence), and its bytes count in the budget.

Records live in generations, dicts of about 1/16 of the budget each, newest last: evicting the
oldest records drops a whole generation at once (a dict emptied from the front one key at a time
would be scanned past its deleted slots on every eviction), and a lookup tries at most 17 dicts.
"""

from __future__ import annotations

import operator
import struct
from dataclasses import dataclass, field
from sys import getsizeof

from gateway.state.base import Record

GENERATIONS = 16
_ID_PREFIX = "fg-"  # gateway/plan.py: "fg-" and 24 hex digits
_ID_HEX = 24
_ID_LENGTH = len(_ID_PREFIX) + _ID_HEX
_HEX = f"%0{_ID_HEX}x"
_CONTEXT_BITS = 20  # up to about a million distinct contexts, then records keep their tuple
_CONTEXT_MASK = (1 << _CONTEXT_BITS) - 1
_FLOAT = struct.Struct("<d")
_BITS = struct.Struct("<Q")
_OWN = ("request_id", "time", "evidence")
_CONTEXT_AT = tuple(i for i, name in enumerate(Record._fields) if name not in _OWN)
_context_of = operator.itemgetter(*_CONTEXT_AT)
_TIME_AT = Record._fields.index("time")
_EVIDENCE_AT = Record._fields.index("evidence")
Key = int | str
Value = int | tuple[object, ...]


@dataclass
class Generation:
    rows: dict[Key, Value] = field(default_factory=dict)
    entries: int = 0  # bytes of the keys and values (the dict's own size is read when needed)
    newest: float = 0.0  # the latest record time in it

    @property
    def size(self) -> int:
        return getsizeof(self.rows) + self.entries


class Records:
    """Request id -> Record, oldest evicted first once more than `budget` bytes are held."""

    def __init__(self, budget: int, max_contexts: int = 1 << _CONTEXT_BITS) -> None:
        self.budget = budget
        self.max_contexts = min(max_contexts, 1 << _CONTEXT_BITS)
        self._generations: list[Generation] = [Generation()]
        self._held = 0  # bytes of every generation but the newest
        self._contexts: dict[tuple[object, ...], int] = {}
        self._context_list: list[tuple[object, ...]] = []
        self.evicted_early = 0  # records dropped for the budget before their retention ended

    def __len__(self) -> int:
        return sum(len(g.rows) for g in self._generations)

    def __contains__(self, request_id: str) -> bool:
        return self._find(key_of(request_id)) is not None

    @property
    def nbytes(self) -> int:
        """What the records hold: keys, values and the dicts' tables (not the contexts)."""
        return self._held + self._generations[-1].size

    def add(self, record: Record) -> bool:
        """Keep `record`; False if one with its id is already kept. A few µs: every answer
        pays it once, in the ledger's batch writes."""
        key = key_of(record.request_id)
        if self._find(key) is not None:
            return False
        value = self._pack(record)
        newest = self._generations[-1]
        rows = newest.rows
        rows[key] = value
        newest.entries += getsizeof(key) + _size(value)
        if record.time > newest.newest:
            newest.newest = record.time
        if not len(rows) & 63 and newest.size * GENERATIONS >= self.budget:  # every 64th
            self._held += newest.size
            self._generations.append(Generation())
        return True

    def get(self, request_id: str) -> Record | None:
        value = self._find(key_of(request_id))
        return None if value is None else self._unpack(request_id, value)

    def evict(self, expired_before: float) -> list[dict[Key, Value]]:
        """Drop the oldest generations while over budget or wholly older than the cutoff;
        returns what was dropped."""
        dropped: list[dict[Key, Value]] = []
        generations = self._generations
        while len(generations) > 1 and (
            self.nbytes > self.budget or generations[0].newest < expired_before
        ):
            oldest = generations.pop(0)
            if oldest.newest >= expired_before:
                self.evicted_early += len(oldest.rows)
            self._held -= oldest.size
            dropped.append(oldest.rows)
        return dropped

    def _find(self, key: Key) -> Value | None:
        for generation in reversed(self._generations):
            value = generation.rows.get(key)
            if value is not None:
                return value
        return None

    def _pack(self, record: Record) -> Value:
        context = _context_of(record)
        index = self._contexts.get(context)
        if index is None:
            if len(self._context_list) >= self.max_contexts:
                return tuple(record)  # out of context slots: this record keeps its own tuple
            index = self._contexts[context] = len(self._context_list)
            self._context_list.append(context)
        bits: int = _BITS.unpack(_FLOAT.pack(record.time))[0]
        packed = bits << _CONTEXT_BITS | index
        return (packed, record.evidence) if record.evidence else packed

    def _unpack(self, request_id: str, value: Value) -> Record:
        if isinstance(value, tuple) and len(value) != 2:
            return Record._make(value)
        packed, evidence = value if isinstance(value, tuple) else (value, "")
        assert isinstance(packed, int)
        fields: list[object] = [None] * len(Record._fields)
        for at, item in zip(_CONTEXT_AT, self._context_list[packed & _CONTEXT_MASK], strict=True):
            fields[at] = item
        fields[0], fields[_EVIDENCE_AT] = request_id, evidence
        fields[_TIME_AT] = _FLOAT.unpack(_BITS.pack(packed >> _CONTEXT_BITS))[0]
        return Record._make(fields)


def _size(value: Value) -> int:
    if isinstance(value, tuple):
        return getsizeof(value) + sum(getsizeof(item) for item in value)
    return getsizeof(value)


def key_of(request_id: str) -> Key:
    """The gateway's own ids as one int (their 12 random bytes); any other id as it is."""
    if len(request_id) == _ID_LENGTH and request_id.startswith(_ID_PREFIX):
        digits = request_id[len(_ID_PREFIX) :]
        try:
            number = int(digits, 16)
        except ValueError:
            return request_id
        if _HEX % number == digits:  # one id, one int: no "A" for "a", no "_", no sign
            return number
    return request_id
