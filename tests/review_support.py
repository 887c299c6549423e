"""What the review tests share: a results file made by `eval run` on the fake upstream, a
review server on it (a real uvicorn on loopback), and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.review.report import reporter
from gateway.review.server import create_review_app
from tests.eval_support import ROOT
from tests.servers import serve_in_thread

CATALOGUE = ROOT / "eval" / "catalogue.yaml"
CANDIDATES = "local-careful,abstainer+contract"
# What the page must never show: the candidates, their policy models, the upstream's names.
NAMES = ("local-careful", "abstainer", "smollm2", "floorgate_abstain", "contract")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HOSTILE = (
    '<script>window.__xss = 1</script> <img src=x onerror="window.__xss = 2"> '
    "[click me](javascript:window.__xss=3) ![pixel](http://127.0.0.1:9/pixel.png)\n\n"
    '```x" onmouseover="window.__xss=4\n</code></pre><script>window.__xss = 5</script>\n```'
)
TICKETS = f"""\
apiVersion: floorgate.dev/v1
kind: EvalTickets
metadata: {{name: review-tests}}
tickets:
  - id: parse-duration
    spec: clear
    tags: [coding, python]
    prompt: |
      Write parse_duration. SAY: Here it is:

      ```python
      def parse_duration(text: str) -> int:
          return int(text.rstrip("s"))
      ```

      I'm not sure it handles hours; you may want a test for that.
    check: {{command: "echo checked the output; grep -q parse_duration output.md"}}
  - id: make-it-faster
    spec: vague
    prompt: "The export is slow. SAY: Which export do you mean, and how slow is it now?"
  - id: hostile
    spec: clear
    prompt: {json.dumps("Render this. SAY: " + HOSTILE)}
"""


def make_results(directory: Path, policy: Path) -> Path:
    tickets = directory / "tickets.yaml"
    tickets.write_text(TICKETS)
    db = directory / "results.sqlite"
    args = ["eval", "run", "--tickets", str(tickets), "--candidates", CANDIDATES,
            "--policies", str(policy), "--results", str(db), "--run-checks"]  # fmt: skip
    # In a thread of its own: Playwright's sync API keeps an event loop in the test's thread,
    # and `eval run` starts one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(main, args).result() == 0
    return db


@pytest.fixture
def results_file(tmp_path: Path, policy: Path) -> Path:
    return make_results(tmp_path, policy)


@pytest.fixture
def review_url(results_file: Path) -> Iterator[str]:
    app = create_review_app(results_file, report=reporter(CATALOGUE))
    with serve_in_thread(app) as url:
        yield url


def call(url: str, body: Any = None) -> tuple[int, Any]:
    """(status, JSON body) of a GET, or of a POST when there is a body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())
