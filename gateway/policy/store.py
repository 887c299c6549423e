"""The live policy: one reference, swapped atomically; a bad reload keeps the last good policy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.policy.admissions import admissions_path
from gateway.policy.compiled import Policy
from gateway.policy.loader import PolicyError, PolicyReadError, load_policy, policy_files

Result = Literal["success", "unchanged", "failure"]
Fingerprint = tuple[tuple[object, ...], ...]


@dataclass(frozen=True, slots=True)
class Reload:
    """What one reload did: the policy serving after it, the one before, and any rejection."""

    result: Result
    policy: Policy
    previous: Policy
    error: PolicyError | PolicyReadError | None = None


def fingerprint(path: Path) -> Fingerprint:
    """What changes when any policy file does: the file names, and each file's device, inode,
    size and mtime, with symlinks followed.

    Following symlinks is what notices a Kubernetes ConfigMap update: the kubelet swaps the
    `..data` symlink, so every file resolves to a new inode though no name in the directory
    changed.
    """
    try:
        files = policy_files(path)
    except PolicyReadError as exc:
        return ((str(exc),),)
    entries: list[tuple[object, ...]] = []
    admissions = admissions_path(path)
    for file in [*files, *([admissions] if admissions.exists() else [])]:
        try:
            st = file.stat()
        except OSError as exc:  # removed between listing and stat: a change all the same
            entries.append((str(file), exc.errno))
            continue
        entries.append((str(file), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(entries)


class PolicyStore:
    def __init__(self, path: Path, policy: Policy, seen: Fingerprint) -> None:
        self.path = path
        # Readers take this reference once per request, so each sees one whole policy.
        self.current = policy
        self.loaded_at = time.time()
        self.seen = seen  # the files as they were when `current` was read

    @classmethod
    def open(cls, path: Path) -> PolicyStore:
        seen = fingerprint(path)  # before reading, so a change made while loading is noticed
        return cls(path, load_policy(path), seen)

    def changed(self) -> bool:
        """True when the files differ from what the last load (good or bad) read."""
        return fingerprint(self.path) != self.seen

    def reload(self, prepare: Callable[[Policy], None] | None = None) -> Reload:
        """Load the files again; swap only if the new policy is sound, tests included.
        `prepare` gets the new policy first, to ready what it needs before it serves."""
        self.seen = fingerprint(self.path)
        previous = self.current
        try:
            policy = load_policy(self.path)
        except (PolicyError, PolicyReadError) as exc:
            return Reload("failure", previous, previous, exc)
        if prepare is not None:
            prepare(policy)
        # Same text, same version; swap all the same so the models' env is read afresh.
        self.current = policy
        self.loaded_at = time.time()
        result: Result = "unchanged" if policy.version == previous.version else "success"
        return Reload(result, policy, previous)
