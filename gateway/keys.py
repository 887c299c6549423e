"""API keys: who is calling, and which workflows that caller may route as.

Keys are kept only as SHA-256 digests. They come from a YAML keys file (digests or env
references) or from FLOORGATE_API_KEYS (`key=workflow|workflow,...`, hashed on read).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import Unauthorized

ANY = "*"


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    workflows: frozenset[str] | None  # None: may use any workflow

    @property
    def bound(self) -> str | None:
        """The one workflow this caller always routes as, if it is bound to exactly one."""
        if self.workflows is not None and len(self.workflows) == 1:
            return next(iter(self.workflows))
        return None

    def may_use(self, workflow: str) -> bool:
        return self.workflows is None or workflow in self.workflows


ANONYMOUS = Caller("anonymous", None)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    def __init__(self, callers: dict[bytes, Caller]) -> None:
        self._callers = {key_digest: (key_digest, c) for key_digest, c in callers.items()}

    @property
    def open(self) -> bool:
        """No keys configured: every request is anonymous (only allowed on loopback)."""
        return not self._callers

    def authenticate(self, authorization: str | None) -> Caller:
        if self.open:
            return ANONYMOUS
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized(
                "Missing API key: send it as 'Authorization: Bearer <key>' "
                "(the openai SDK does this with api_key=...)."
            )
        presented = digest(authorization[7:].strip())
        # The lookup is by digest, so its timing says nothing about the key itself; the
        # final comparison is constant-time all the same.
        found = self._callers.get(presented)
        if found is None or not hmac.compare_digest(found[0], presented):
            raise Unauthorized("Invalid API key: check the key you were given for Floorgate.")
        return found[1]

    @classmethod
    def load(cls, keys_file: Path | None, inline: str | None) -> KeyRing:
        callers: dict[bytes, Caller] = {}
        if keys_file is not None:
            callers.update(_from_file(keys_file))
        if inline:
            callers.update(_from_inline(inline))
        return cls(callers)


def _workflows(value: Any) -> frozenset[str] | None:
    names = [value] if isinstance(value, str) else list(value or [ANY])
    return None if ANY in names else frozenset(names)


def _from_inline(inline: str) -> dict[bytes, Caller]:
    callers: dict[bytes, Caller] = {}
    for i, entry in enumerate(filter(None, (e.strip() for e in inline.split(",")))):
        key, _, workflows = entry.partition("=")
        if not key.strip():
            raise ValueError(f"FLOORGATE_API_KEYS entry {i + 1} has an empty key")
        callers[digest(key.strip())] = Caller(f"env-key-{i + 1}", _workflows(workflows.split("|")))
    return callers


def _from_file(path: Path) -> dict[bytes, Caller]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    callers: dict[bytes, Caller] = {}
    for i, entry in enumerate(data.get("keys", [])):
        name = entry.get("name", f"key-{i + 1}")
        if "sha256" in entry:
            key_digest = bytes.fromhex(entry["sha256"])
        elif isinstance(entry.get("key"), dict) and "env" in entry["key"]:
            variable = entry["key"]["env"]
            secret = os.environ.get(variable, "").strip()
            if not secret:  # the empty key would be the empty token's
                raise ValueError(f"{path}: key '{name}' reads ${variable}, which is unset or empty")
            key_digest = digest(secret)
        else:
            raise ValueError(f"{path}: key '{name}' needs sha256: <hex> or key: {{env: NAME}}")
        callers[key_digest] = Caller(name, _workflows(entry.get("workflows")))
    return callers
