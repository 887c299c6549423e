"""Refuse what a supply-chain attack leaves: a lock pinning a known-compromised release, a
requirement without hashes, and a .pth file nobody expects in the installed environment.

litellm 1.82.7 and 1.82.8 were published compromised: they ran code at every interpreter
start through a .pth file in site-packages. Python executes any `import` line of any .pth
file there, so the environment's .pth files are held to a short list of known ones.

    python scripts/check_supply_chain.py [--lock requirements.lock] [--site DIR ...]

Exit 0 when clean; 1 with one line per problem. `make lint` runs it on the lock and .venv;
the Dockerfile runs it on the image's environment.
"""

from __future__ import annotations

import argparse
import re
import sys
import sysconfig
from fnmatch import fnmatch
from pathlib import Path

COMPROMISED = {"litellm": {"1.82.7", "1.82.8"}}
# setuptools' distutils shim, and the editable install of this project (make setup).
# a1_coverage.pth: coverage's (a dev tool, for make test's coverage floor; not in the image),
# which measures a subprocess only when COVERAGE_PROCESS_START is set.
EXPECTED_PTH = ("distutils-precedence.pth", "__editable__.floorgate-*.pth", "a1_coverage.pth")
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def lock_problems(text: str, where: str = "requirements.lock") -> list[str]:
    """Every requirement pinned with == and hashed; no compromised release."""
    problems = []
    for number, (line, hashed) in _requirements(text):
        found = REQUIREMENT.match(line)
        if found is None:
            problems.append(f"{where}:{number}: not pinned with ==: {line.split()[0]}")
            continue
        name, version = _normal(found[1]), found[3]
        if version in COMPROMISED.get(name, set()):
            problems.append(f"{where}:{number}: {name}=={version} is a compromised release")
        if not hashed:
            problems.append(f"{where}:{number}: {name}=={version} has no --hash")
    return problems


def _requirements(text: str) -> list[tuple[int, tuple[str, bool]]]:
    """(line number, (requirement, has a hash)) for each requirement, continuations joined."""
    found: list[tuple[int, tuple[str, bool]]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line and not current:
            continue
        if not current:
            start = number
        current.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            joined = " ".join(part for part in current if part)
            if joined and not joined.startswith("-"):
                found.append((start, (joined, "--hash=" in joined)))
            current = []
    return found


def pth_problems(site: Path) -> list[str]:
    return [
        f"{path}: unexpected .pth file (Python runs its import lines at every start)"
        for path in sorted(site.glob("*.pth"))
        if not any(fnmatch(path.name, pattern) for pattern in EXPECTED_PTH)
    ]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, action="append", default=[])
    parser.add_argument("--site", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    sites = args.site or [Path(sysconfig.get_paths()["purelib"])]
    problems = [p for lock in args.lock for p in lock_problems(lock.read_text(), str(lock))]
    problems += [p for site in sites for p in pth_problems(site)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
