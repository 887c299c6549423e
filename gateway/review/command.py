"""`floorgate eval review [RESULTS]`: serve the review page for one results file; and
`floorgate eval labels`: the reviewed outputs as labelled replies for the detector's bench."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from gateway.eval.catalogue import CatalogueError
from gateway.eval.results import Results, ResultsError
from gateway.review.labels import labelled_lines, scores_json
from gateway.review.report import reporter
from gateway.review.server import create_review_app, new_token

DEFAULT_PORT = 8090


def add_review_command(sub: Any, default_results: Path, default_catalogue: Path) -> None:
    review_p = sub.add_parser(
        "review", help="serve the reviewer's page: mark outputs blind, by keyboard, saved at once"
    )
    review_p.add_argument("results", nargs="?", type=Path, default=default_results,
                          help=f"the results file (default: {default_results})")  # fmt: skip
    review_p.add_argument(
        "--results",
        dest="results_option",
        metavar="RESULTS",
        type=Path,
        help="the results file, as the other eval commands name it",
    )
    review_p.add_argument(
        "--host",
        default="127.0.0.1",
        help="where to listen (default 127.0.0.1; elsewhere a token is asked)",
    )
    review_p.add_argument("--port", type=int, default=DEFAULT_PORT)
    review_p.add_argument(
        "--catalogue",
        type=Path,
        default=default_catalogue,
        help=f"published capability scores (default: {default_catalogue})",
    )
    review_p.set_defaults(run=review_command)


def add_labels_command(sub: Any, default_results: Path) -> None:
    labels_p = sub.add_parser(
        "labels",
        help="the reviewed outputs as labelled JSON lines for `make bench-classify` "
        "(CLASSIFY_DATA), with the detector's precision and recall on them",
    )
    labels_p.add_argument("--results", type=Path, default=default_results,
                          help=f"default: {default_results}")  # fmt: skip
    labels_p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    labels_p.set_defaults(run=labels_command)


def labels_command(args: argparse.Namespace) -> int:
    try:
        results = Results.open(args.results)
    except ResultsError as exc:
        print(f"floorgate eval: {exc}", file=sys.stderr)
        return 2
    lines = [orjson.dumps(line).decode() + "\n" for line in labelled_lines(results)]
    if args.output is None:
        sys.stdout.writelines(lines)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("".join(lines), encoding="utf-8")
    summary = scores_json(results)
    said = "; ".join(f"{s['label']}: precision {s['precision']}, recall {s['recall']}"
                     for s in summary["scores"])  # fmt: skip
    print(f"{len(lines)} reviewed output(s) judged by the text detector, "
          f"{summary['corrected']} corrected; {said}", file=sys.stderr)  # fmt: skip
    return 0


def review_command(args: argparse.Namespace) -> int:
    path = args.results_option or args.results
    try:
        Results.open(path).close()  # a missing or foreign file is refused before serving
        report = reporter(args.catalogue)
    except (ResultsError, CatalogueError) as exc:
        print(f"floorgate eval: {exc}", file=sys.stderr)
        return 2
    token = new_token(args.host)
    app = create_review_app(path, token=token, report=report)
    host = f"[{args.host}]" if ":" in args.host else args.host
    suffix = f"/?token={token}" if token else "/"
    print(f"reviewing {path} at http://{host}:{args.port}{suffix} (Ctrl+C to stop)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
