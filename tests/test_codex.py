"""OpenAI's Codex CLI, which speaks only the Responses API, running `codex exec` with the gateway
as a custom model provider (the configuration the README shows). `make clients` installs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.fake_upstream import FakeUpstream

CODEX = (
    Path(__file__).resolve().parent.parent / ".run" / "clients" / "node_modules" / ".bin" / "codex"
)


def provider(gateway: str) -> str:
    return (
        'model_providers.floorgate={name="Floorgate", '
        f'base_url="{gateway}/v1", env_key="FLOORGATE_API_KEY", wire_api="responses"}}'
    )


def test_codex_exec_runs_a_task_through_the_gateway(
    gateway: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    assert CODEX.exists(), f"{CODEX} is missing: run `make clients`"
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CODEX_HOME": str(home),
           "FLOORGATE_API_KEY": "key-any"}  # fmt: skip
    seen = upstream.seen
    done = subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "-C", str(work),
         "-m", "workflow:draft-generation",
         "-c", "model_provider=floorgate", "-c", provider(gateway),
         # Nothing but the gateway: no analytics, no update check.
         "-c", "analytics.enabled=false", "-c", "check_for_update_on_startup=false",
         "Reply with one word. SAY: pong"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "pong"
    [sent] = [r for r in upstream.since(seen) if r["path"] == "/v1/chat/completions"]
    assert sent["body"]["model"] == "ok"  # draft-generation's route: calibration-first, careful
    assert sent["body"]["messages"][-1] == {
        "role": "user",
        "content": "Reply with one word. SAY: pong",
    }
    assert sent["body"]["tools"]  # Codex's function tools, translated
