"""Candidates: the policy models an evaluation compares, each with the calibration contract
off (`NAME`) or on (`NAME+contract`), so one model with and without it is two candidates."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.policy.compiled import ModelTarget, Policy

CONTRACT_SUFFIX = "+contract"


class CandidateError(Exception):
    """A candidate the policy cannot provide; the message lists what it can."""


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str  # as written on the command line, and as results and outcomes name it
    target: ModelTarget
    contract: bool

    @property
    def model(self) -> str:
        return self.target.name


def split(name: str) -> tuple[str, bool]:
    """(policy model, contract on) for a candidate name."""
    if name.endswith(CONTRACT_SUFFIX):
        return name.removesuffix(CONTRACT_SUFFIX), True
    return name, False


def parse_candidates(text: str, policy: Policy) -> list[Candidate]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CandidateError("name at least one candidate, e.g. --candidates m,m+contract")
    chat = [n for n, t in policy.models.items() if t.spec.serves == "chat"]
    out = []
    for name in names:
        model, contract = split(name)
        target = policy.models.get(model)
        if target is None or target.spec.serves != "chat":
            raise CandidateError(
                f"unknown candidate '{name}': policy {policy.name} declares the chat models "
                f"{', '.join(chat)}; a candidate is one of them, optionally with "
                f"'{CONTRACT_SUFFIX}' (e.g. {chat[0]}{CONTRACT_SUFFIX})"
            )
        out.append(Candidate(name, target, contract))
    if len(set(names)) != len(names):
        raise CandidateError(f"a candidate is named twice in '{text}'")
    return out
