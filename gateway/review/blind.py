"""Blinding: each ticket's candidates shown as A, B, ... in an order of their own, so a reviewer
judges outputs, not brands, and cannot carry "A is the careful one" from ticket to ticket.

The order comes from a keyed hash (a salt kept in the results file), so it is the same for every
reviewer and after every restart, yet cannot be worked out from the candidate names."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable

LETTERS = string.ascii_uppercase


def letters(salt: str, ticket: str, candidates: Iterable[str]) -> dict[str, str]:
    """{candidate: letter} for one ticket."""
    ordered = sorted(set(candidates), key=lambda c: _key(salt, ticket, c))
    if len(ordered) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} candidates can be reviewed blind")
    return {candidate: LETTERS[i] for i, candidate in enumerate(ordered)}


def _key(salt: str, ticket: str, candidate: str) -> str:
    return hashlib.sha256(f"{salt}\0{ticket}\0{candidate}".encode()).hexdigest()
