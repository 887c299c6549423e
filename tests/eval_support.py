"""What the evaluation tests share: their policy on the fake upstream, and small ticket sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_upstream import FakeUpstream
from tests.servers import free_port

HERE = Path(__file__).parent
ROOT = HERE.parent
SHIPPED_TICKETS = ROOT / "eval" / "tickets.yaml"


def eval_policy(directory: Path, upstream: FakeUpstream) -> Path:
    text = (HERE / "policies" / "eval.yaml").read_text()
    text = text.replace("__UPSTREAM__", upstream.base_url)
    text = text.replace("__DOWN__", f"http://127.0.0.1:{free_port()}/v1")
    path = directory / "policy.yaml"
    path.write_text(text)
    return path


def tickets_file(directory: Path, n: int) -> Path:
    """n tickets, alternately clear and vague, whose answers say their own id (SAY:)."""
    lines = ["apiVersion: floorgate.dev/v1", "kind: EvalTickets", "metadata: {name: small}",
             "tickets:"]  # fmt: skip
    for i in range(n):
        spec = "clear" if i % 2 == 0 else "vague"
        lines.append(f"  - {{id: t{i}, spec: {spec}, prompt: 'SAY: answer to t{i}'}}")
    path = directory / "tickets.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def policy(upstream: FakeUpstream, tmp_path: Path) -> Path:
    return eval_policy(tmp_path, upstream)
