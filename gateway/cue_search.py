"""How the text classifier finds its phrases (gateway/cues.py) within the time budget.

A cue is one or more phrases, each a regex that begins with a literal word, plus what must
come just before the phrase ("i'm not " before "sure"). One Aho-Corasick pass (`scan`, in C)
finds where every phrase's literal opening occurs in a reply; a phrase's regex then runs only
at those places. Searching for each phrase in turn instead would cost a pass per phrase, some
three times as much for a 2 KB reply with the ~150 phrases here (measured).

Every pattern runs on lowercased text with typographic apostrophes made plain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

# How far before a phrase its `before` context may start.
BACK = 48
# How far a phrase that starts inside a limited opening may run past the limit.
SPAN = 160
# At most this many places are tried for one phrase: a pathological reply stays cheap.
MAX_HITS = 32


@dataclass(frozen=True, slots=True)
class Cue:
    name: str
    phrases: tuple[tuple[str, re.Pattern[str]], ...]  # each with the literal it opens with
    before: re.Pattern[str] | None  # what must end right where the phrase starts, if anything


@dataclass(frozen=True, slots=True)
class Found:
    cue: str
    start: int
    end: int


def cue(name: str, *phrases: str, before: str | None = None) -> Cue:
    return Cue(
        name,
        tuple((literal_opening(p), re.compile(p)) for p in phrases),
        re.compile(f"(?:{before})$") if before else None,
    )


_META = frozenset("\\.^$*+?{}[]|()")
_QUANTIFIERS = frozenset("*?{")


def literal_opening(pattern: str) -> str:
    """The plain text every match of `pattern` starts with ("doubt" for "doubts? about")."""
    for i, char in enumerate(pattern):
        if char in _META:
            return pattern[: i - 1] if char in _QUANTIFIERS else pattern[:i]
    return pattern


def each(words: str, rest: str = r"\b") -> tuple[str, ...]:
    """One phrase per word ("possibly|perhaps"), each followed by `rest`: a phrase is found
    by its literal opening, which a phrase opening with an alternation would not have."""
    return tuple(w + rest for w in words.split("|"))


Hits = dict[str, list[int]]  # literal opening -> where it starts in the text, in order
Entry = tuple[int, Cue, str, re.Pattern[str]]  # (place in its table, cue, opening, phrase)


class Finder:
    """Finds the cues of a fixed set of tables: one automaton over all their openings."""

    def __init__(self, *tables: tuple[Cue, ...]) -> None:
        self._openings = ahocorasick.Automaton()
        for table in tables:
            for c in table:
                for literal, _ in c.phrases:
                    self._openings.add_word(literal, literal)
        self._openings.make_automaton()
        self._indexes = {id(table): _index(table) for table in tables}

    def scan(self, text: str) -> Hits:
        """Where each phrase's literal opening occurs in `text`: one pass for every table."""
        hits: Hits = {}
        for last, literal in self._openings.iter(text):
            hits.setdefault(literal, []).append(last - len(literal) + 1)
        return hits

    def first(
        self,
        table: tuple[Cue, ...],
        text: str,
        hits: Hits,
        limit: int | None = None,
        begin: int = 0,
    ) -> Found | None:
        """The first cue, in table order, found in `text` from `begin` and starting before
        `limit`. `hits` is `scan` of `text`, or of a longer text that `text` begins."""
        return _first(self._indexes[id(table)], text, hits, limit, begin)


def _index(table: Iterable[Cue]) -> dict[str, list[Entry]]:
    """A table's phrases by their literal opening, each with its place in the table."""
    index: dict[str, list[Entry]] = {}
    phrases = ((c, literal, phrase) for c in table for literal, phrase in c.phrases)
    for place, (c, literal, phrase) in enumerate(phrases):
        index.setdefault(literal, []).append((place, c, literal, phrase))
    return index


def _first(
    by_opening: dict[str, list[Entry]], text: str, hits: Hits, limit: int | None, begin: int
) -> Found | None:
    # Only the phrases whose opening occurs are looked at, in table order. The openings of
    # most tables are absent from most replies: one set intersection, in C, says so.
    opened = hits.keys() & by_opening.keys()
    if not opened:
        return None
    size = len(text)
    end = size if limit is None or limit > size else limit
    stop = min(size, end + SPAN)
    present = sorted(e for literal in opened for e in by_opening[literal])
    for _, c, literal, phrase in present:
        tried = 0
        for start in hits[literal]:
            if start >= end or tried == MAX_HITS:
                break
            if start < begin:
                continue
            tried += 1
            m = phrase.match(text, start, stop)
            if m is not None:
                found = _in_context(c, m, text)
                if found:
                    return found
    return None


def _in_context(c: Cue, m: re.Match[str], text: str) -> Found | None:
    """The match, if what comes before it fits the cue."""
    start = m.start()
    if c.before is None:
        if start == 0 or not text[start - 1].isalnum():
            return Found(c.name, start, m.end())
        return None
    # endpos=start makes `$` mean "ends right where the phrase starts"
    b = c.before.search(text, max(0, start - BACK), start)
    return Found(c.name, b.start(), m.end()) if b else None
