"""A ticket's check: the team's own command run on an output in a fresh temporary directory."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

from gateway.eval.results import CheckStatus
from gateway.eval.tickets import Check

OUTPUT_FILE = "output.md"
KEEP_CHARS = 2000  # of the check's own output, its tail: where test runners say what failed


async def run_check(check: Check, output: str) -> tuple[CheckStatus, str]:
    with tempfile.TemporaryDirectory(prefix="floorgate-check-") as tmp:
        path = Path(tmp) / OUTPUT_FILE
        path.write_text(output, encoding="utf-8")
        process = await asyncio.create_subprocess_shell(
            check.command,
            cwd=tmp,
            env={**os.environ, "FLOORGATE_OUTPUT": str(path)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), check.timeout_s)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)  # the command and everything it started
            await process.wait()
            return "timeout", f"no result within {check.timeout_s:g} s"
        text = out.decode(errors="replace")[-KEEP_CHARS:]
        return ("passed" if process.returncode == 0 else "failed"), text
