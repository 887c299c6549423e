"""The report as a terminal table, as Markdown, and as one self-contained HTML file (inline
CSS and SVG: it opens with no network access)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from gateway.eval.report import METRICS, Numbers, Report
from gateway.eval.stats import Rate

CLEAR_NOTE = (
    "abstaining on a clear ticket is a cost: the task was specified, and a model that asks "
    "anyway slows the team down"
)


def _extra_rows(numbers: Sequence[Numbers]) -> list[tuple[str, list[str]]]:
    def capability(n: Numbers) -> str:
        return f"{n.capability.score:g}" if n.capability else "-"

    def latency(n: Numbers) -> str:
        return f"{n.latency_p50_s:.2f} s" if n.latency_p50_s is not None else "-"

    def cost(n: Numbers) -> str:
        return f"${n.cost_usd:.4f}" if n.cost_usd is not None else "-"

    return [
        ("published capability", [capability(n) for n in numbers]),
        ("outputs (errors)", [f"{n.answered} ({n.errors})" for n in numbers]),
        ("latency p50", [latency(n) for n in numbers]),
        ("tokens, cost", [f"{n.tokens}, {cost(n)}" for n in numbers]),
    ]


def rows(report: Report) -> list[tuple[str, list[str]]]:
    numbers = report.numbers
    out = [(m.title, [n.rates[m.name].text() for n in numbers]) for m in METRICS]
    return out + _extra_rows(numbers)


def _heading(report: Report) -> str:
    return (
        f"Production-readiness evaluation: tickets '{report.tickets_name}' ({report.tickets}: "
        f"{report.tickets - report.vague} clear, {report.vague} vague), {report.results_file} "
        f"(digest {report.digest})"
    )


def _sources(report: Report) -> list[str]:
    """`published capability: <benchmark>, <source>` for each catalogue entry shown."""
    seen = dict.fromkeys(
        (n.capability.benchmark, n.capability.source) for n in report.numbers if n.capability
    )
    return [f"published capability: {benchmark}, {source}" for benchmark, source in seen]


def as_table(report: Report) -> str:
    header = ["", *(n.candidate for n in report.numbers)]
    body = [[title, *cells] for title, cells in rows(report)]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [_heading(report), "", line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in body]
    out += ["", "95 % Wilson intervals in brackets; n is each rate's own sample size.",
            f"Abstention, clear tickets: {CLEAR_NOTE}.", *_sources(report), "",
            "Paired comparison (the same tickets, exact McNemar test):"]  # fmt: skip
    out += [f"  {c.sentence()}" for c in report.comparisons] or ["  (one candidate: nothing)"]
    out += ["", "Leaderboard and production readiness:", *(f"  {o}" for o in report.orders)]
    return "\n".join(out) + "\n"


def as_markdown(report: Report) -> str:
    def cells(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    out = [f"# {_heading(report)}", "", cells(["", *(n.candidate for n in report.numbers)])]
    out.append(cells(["---"] * (len(report.numbers) + 1)))
    out += [cells([f"**{title}**", *values]) for title, values in rows(report)]
    out += ["", "95 % Wilson intervals in brackets; n is each rate's own sample size.",
            f"Abstention on clear tickets: {CLEAR_NOTE}.", "",
            *(f"- {s}" for s in _sources(report)), "", "## Paired comparison", ""]  # fmt: skip
    out += [f"- {c.sentence()}" for c in report.comparisons] or ["- one candidate: nothing"]
    out += ["", "## Leaderboard and production readiness", "", *(f"- {o}" for o in report.orders)]
    return "\n".join(out) + "\n"


COLOURS = ("#3b6ea5", "#c2703d", "#4f8a4c", "#8a4c7d", "#6b6b6b")
STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left}th{background:#f3f3f3}.chart{display:inline-block;margin:0 1.5em 1.5em 0}
.disagree{color:#a00;font-weight:bold}"""


def _chart(report: Report, metric_index: int) -> str:
    metric = METRICS[metric_index]
    width, bar, gap, left = 360, 18, 8, 170
    height = len(report.numbers) * (bar + gap) + 24
    title = html.escape(metric.title)
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{title}">',
        f'<text x="0" y="12" font-weight="bold">{title}</text>',
    ]
    scale = width - left - 40
    for i, n in enumerate(report.numbers):
        y = 20 + i * (bar + gap)
        rate: Rate = n.rates[metric.name]
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<text x="0" y="{y + 13}">{html.escape(n.candidate[:24])}</text>')
        if rate.value is None or rate.interval is None:
            parts.append(f'<text x="{left}" y="{y + 13}">no samples</text>')
            continue
        low, high = rate.interval
        parts.append(f'<rect x="{left}" y="{y}" width="{rate.value * scale:.1f}" '
                     f'height="{bar}" fill="{colour}"/>')  # fmt: skip
        x1, x2, mid = left + low * scale, left + high * scale, y + bar / 2
        parts.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{mid}" y2="{mid}" stroke="#000"/>')
        parts.append(f'<text x="{left + scale + 4}" y="{y + 13}">{rate.value:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def as_html(report: Report) -> str:
    e = html.escape
    head = "".join(f"<th>{e(n.candidate)}</th>" for n in report.numbers)
    body = "".join(
        f"<tr><th>{e(title)}</th>{''.join(f'<td>{e(v)}</td>' for v in values)}</tr>"
        for title, values in rows(report)
    )
    charts = "".join(_chart(report, i) for i in range(len(METRICS)))
    comparisons = "".join(f"<li>{e(c.sentence())}</li>" for c in report.comparisons)
    orders = "".join(
        f'<li class="{"disagree" if o.startswith("DISAGREE") else ""}">{e(o)}</li>'
        for o in report.orders
    )
    sources = "".join(f"<li>{e(s)}</li>" for s in _sources(report))
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Floorgate evaluation"
        f"</title><style>{STYLE}</style></head><body><h1>{e(_heading(report))}</h1>"
        f"<table><tr><th></th>{head}</tr>{body}</table>"
        f"<p>95 % Wilson intervals in brackets (the black line in each chart); n is each "
        f"rate's own sample size. Abstention on clear tickets: {e(CLEAR_NOTE)}.</p>"
        f"<div>{charts}</div><h2>Paired comparison</h2><ul>{comparisons}</ul>"
        f"<h2>Leaderboard and production readiness</h2><ul>{orders}</ul>"
        f"<h2>Capability sources</h2><ul>{sources}</ul></body></html>\n"
    )
