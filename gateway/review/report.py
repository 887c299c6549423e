"""The report page's data: `floorgate eval report`'s own numbers (the same Report, the same cell
texts), with the values the charts draw, review progress per candidate, and the text
detector's precision and recall on the reviewed outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.eval.catalogue import Catalogue, load_catalogue
from gateway.eval.render import CLEAR_NOTE, rows
from gateway.eval.report import METRICS, Report, build_report
from gateway.eval.results import Results
from gateway.eval.stats import Rate
from gateway.review.labels import scores_json


def reporter(catalogue_path: Path | None) -> Callable[[Results], dict[str, Any]]:
    """The report for the page, read from the catalogue as `eval report` reads it (once: the
    catalogue is the user's file, the results are what changes)."""
    catalogue = (
        load_catalogue(catalogue_path)
        if catalogue_path is not None and catalogue_path.exists()
        else Catalogue()
    )
    return lambda results: {
        **report_json(build_report(results, catalogue)),
        "detector": scores_json(results),
    }


def report_json(report: Report) -> dict[str, Any]:
    return {
        "tickets_name": report.tickets_name,
        "tickets": report.tickets,
        "vague": report.vague,
        "results_file": report.results_file,
        "digest": report.digest,
        "candidates": [n.candidate for n in report.numbers],
        "rows": [{"title": title, "cells": cells} for title, cells in rows(report)],
        "metrics": [
            {
                "name": m.name,
                "title": m.title,
                "higher_is_better": m.higher_is_better,
                "rates": [_rate(n.rates[m.name]) for n in report.numbers],
            }
            for m in METRICS
        ],
        "progress": [
            {
                "candidate": n.candidate,
                "judged": n.rates["merge"].n,
                "answered": n.answered,
                "errors": n.errors,
            }
            for n in report.numbers
        ],
        "comparisons": [c.sentence() for c in report.comparisons],
        "orders": list(report.orders),
        "clear_note": CLEAR_NOTE,
    }


def _rate(rate: Rate) -> dict[str, Any]:
    low, high = rate.interval or (None, None)
    return {"k": rate.k, "n": rate.n, "value": rate.value, "low": low, "high": high,
            "text": rate.text()}  # fmt: skip
