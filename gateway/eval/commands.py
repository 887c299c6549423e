"""`floorgate eval run | outcomes import | report | gate`: the evaluation's command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.eval.admit import gate_report
from gateway.eval.candidates import CandidateError, parse_candidates
from gateway.eval.catalogue import Catalogue, CatalogueError, load_catalogue
from gateway.eval.live_source import LiveError, read_live
from gateway.eval.outcomes import OutcomesError, import_outcomes
from gateway.eval.render import as_html, as_markdown, as_table
from gateway.eval.report import build_report
from gateway.eval.results import Results, ResultsError
from gateway.eval.run import Runner
from gateway.eval.tickets import TicketsError, load_tickets
from gateway.policy.loader import PolicyError, PolicyReadError, load_policy
from gateway.review.command import add_labels_command, add_review_command
from gateway.settings import Settings

DEFAULT_RESULTS = Path("eval-results.sqlite")
DEFAULT_CATALOGUE = Path("eval") / "catalogue.yaml"
RENDERERS = {".md": as_markdown, ".markdown": as_markdown, ".html": as_html, ".htm": as_html}


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
    outcomes_p = sub.add_parser("outcomes", help="reviewers' outcomes")
    outcomes_sub = outcomes_p.add_subparsers(dest="outcomes_command", required=True)
    import_p = outcomes_sub.add_parser("import", help="outcomes from a .csv or .jsonl file")
    import_p.add_argument("file", type=Path)
    _results_arg(import_p)
    import_p.set_defaults(run=import_command)
    report_p = sub.add_parser("report", help="the four numbers, intervals, paired comparison")
    _results_arg(report_p)
    report_p.add_argument(
        "--catalogue",
        type=Path,
        default=DEFAULT_CATALOGUE,
        help=f"published capability scores (default: {DEFAULT_CATALOGUE})",
    )
    report_p.add_argument(
        "-o",
        "--output",
        type=Path,
        action="append",
        default=[],
        help="also write it here: .md Markdown, .html HTML, else text",
    )
    report_p.add_argument("--gate", metavar="ROUTE", help="also run `eval gate` for ROUTE")
    report_p.add_argument(
        "--live",
        action="store_true",
        help="the numbers from production (the ledger and feedback) instead",
    )
    report_p.add_argument("--since", default="7d", help="with --live: the window (7d, 24h, 90m)")
    report_p.add_argument(
        "--via",
        metavar="URL",
        help="with --live: ask this gateway (its admin key from "
        "FLOORGATE_ADMIN_KEY) instead of reading FLOORGATE_REDIS_URL",
    )
    _gate_args(report_p)
    report_p.set_defaults(run=report_command)
    gate_p = sub.add_parser(
        "gate", help="check candidates against a route's gate; exit 1 if one fails; admit passes"
    )
    gate_p.add_argument("--route", required=True)
    _results_arg(gate_p)
    _gate_args(gate_p)
    gate_p.set_defaults(run=gate_command)
    add_review_command(sub, DEFAULT_RESULTS, DEFAULT_CATALOGUE)
    add_labels_command(sub, DEFAULT_RESULTS)


def _results_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help=f"default: {DEFAULT_RESULTS}"
    )


def _gate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", type=Path, help="default: FLOORGATE_POLICIES")
    parser.add_argument(
        "--decide", choices=("point", "interval"), default="point",
        help="point: the rate meets the limit; interval: its whole 95%% interval does",
    )  # fmt: skip


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
        policy = load_policy(args.policies or Settings().policies, require_admissions=False)
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
    except KeyboardInterrupt:
        print(f"\ninterrupted: every finished answer is kept in {args.results}; run the same "
              "command again to do only what is missing", file=sys.stderr)  # fmt: skip
        return 130
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


def import_command(args: Any) -> int:
    try:
        results = Results.open(args.results)
        count = import_outcomes(args.file, results)
    except OutcomesError as exc:
        return fail(f"nothing imported:\n{exc}", 1)
    except ResultsError as exc:
        return fail(exc)
    print(f"{args.results}: {count} outcome(s) recorded from {args.file}")
    return 0


def report_command(args: Any) -> int:
    if args.live:
        return live_command(args)
    try:
        catalogue = load_catalogue(args.catalogue) if args.catalogue.exists() else Catalogue()
        results = Results.open(args.results)
    except (CatalogueError, ResultsError) as exc:
        return fail(exc)
    report = build_report(results, catalogue)
    sys.stdout.write(as_table(report))
    for path in args.output:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RENDERERS.get(path.suffix.lower(), as_table)(report), encoding="utf-8")
        print(f"wrote {path}")
    if args.gate:
        print()
        return gate_report(args.policies or Settings().policies, args.gate, report, args.decide)
    return 0


def gate_command(args: Any) -> int:
    try:
        results = Results.open(args.results)
    except ResultsError as exc:
        return fail(exc)
    report = build_report(results, Catalogue())
    return gate_report(args.policies or Settings().policies, args.route, report, args.decide)


def live_command(args: Any) -> int:
    try:
        sys.stdout.write(read_live(args.since, args.via, args.policies))
    except LiveError as exc:
        return fail(exc)
    return 0
