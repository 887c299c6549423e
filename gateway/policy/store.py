"""The live policy: one reference, swapped atomically; a bad reload keeps the last good policy."""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.policy.compiled import Policy
from gateway.policy.loader import PolicyError, PolicyReadError, load_policy

log = logging.getLogger(__name__)


class PolicyStore:
    def __init__(self, path: Path, policy: Policy) -> None:
        self.path = path
        # Readers take this reference once per request, so each sees one whole policy.
        self.current = policy

    @classmethod
    def open(cls, path: Path) -> PolicyStore:
        return cls(path, load_policy(path))

    def reload(self) -> bool:
        """Load the files again; swap only if the new policy is sound."""
        try:
            policy = load_policy(self.path)
        except (PolicyError, PolicyReadError) as exc:
            log.error("policy reload rejected, still serving %s:\n%s", self.current.version, exc)
            return False
        self.current = policy
        log.info("policy %s loaded (version %s)", policy.name, policy.version)
        return True
