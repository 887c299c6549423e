"""`floorgate eval run | outcomes import | report | gate`: the evaluation's command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.eval.candidates import CandidateError, parse_candidates
from gateway.eval.results import Results, ResultsError
from gateway.eval.run import Runner
from gateway.eval.tickets import TicketsError, load_tickets
from gateway.policy.loader import PolicyError, PolicyReadError, load_policy
from gateway.settings import Settings

DEFAULT_RESULTS = Path("eval-results.sqlite")


def add_eval_commands(commands: Any) -> None:
    eval_p = commands.add_parser("eval", help="the production-readiness evaluation")
    sub = eval_p.add_subparsers(dest="eval_command", required=True)
    run_p = sub.add_parser("run", help="every ticket to every candidate; resumes where it stopped")
    run_p.add_argument("--tickets", type=Path, required=True)
    run_p.add_argument("--candidates", required=True, metavar="A,B[+contract],...")
    _results_arg(run_p)
    run_p.add_argument("--policies", type=Path, help="default: FLOORGATE_POLICIES")
    run_p.add_argument("--repeat", type=_positive, default=1, help="samples per ticket")
    run_p.add_argument("--concurrency", type=_positive, default=4)
    run_p.add_argument("--max-tokens", type=_positive, help="cap each answer's length")
    run_p.add_argument("--run-checks", action="store_true", help="run the tickets' checks")
    run_p.set_defaults(run=run_command)


def _results_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help=f"default: {DEFAULT_RESULTS}"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def fail(message: object, code: int = 2) -> int:
    print(f"floorgate eval: {message}", file=sys.stderr)
    return code


def run_command(args: Any) -> int:
    try:
        tickets = load_tickets(args.tickets)
        policy = load_policy(args.policies or Settings().policies)
        candidates = parse_candidates(args.candidates, policy)
    except (TicketsError, PolicyError, PolicyReadError, CandidateError) as exc:
        return fail(exc)
    try:
        results = Results.create(args.results)
        runner = Runner(results, max_tokens=args.max_tokens, run_checks=args.run_checks)
        summary = asyncio.run(
            runner.run(tickets, candidates, args.repeat, args.concurrency, ProgressBar())
        )
    except ResultsError as exc:
        return fail(exc)
    print(
        f"{args.results}: {summary.total} outputs ({len(candidates)} candidate(s) x "
        f"{len(tickets.tickets)} tickets x {args.repeat}): {summary.skipped} from earlier runs, "
        f"{summary.answered} answered now, {summary.errors} error(s)"
    )
    return 1 if summary.errors else 0


class ProgressBar:
    """One line on stderr, redrawn in place on a terminal, every tenth elsewhere."""

    WIDTH = 30

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = -1

    def __call__(self, done: int, total: int, errors: int) -> None:
        step = done * 10 // max(total, 1)
        if not self.tty and step == self.shown and done != total:
            return
        self.shown = step
        filled = done * self.WIDTH // max(total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = f"[{bar}] {done}/{total}" + (f", {errors} error(s)" if errors else "")
        end = "\n" if done == total or not self.tty else ""
        print(("\r" if self.tty else "") + line, end=end, file=sys.stderr, flush=True)
