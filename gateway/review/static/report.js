// The report page: the evaluation report with charts, redrawn whenever a mark changes it.
"use strict";

const { api, el, svg } = floorgate;
const COLOURS = ["#2f5bea", "#d9732b", "#12805c", "#8a4c7d", "#6b6b6b"];
let shown = "";

function table(node, header, rows) {
  const head = el("tr", {}, ...header.map((h) => el("th", { text: h })));
  node.replaceChildren(head, ...rows.map((cells) =>
    el("tr", {}, el("th", { text: cells[0] }), ...cells.slice(1).map((c) => el("td", { text: c })))));
}

function chart(metric, candidates) {
  const width = 420;
  const left = 140;
  const bar = 20;
  const gap = 12;
  const scale = width - left - 96;
  const height = candidates.length * (bar + gap) + 26;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                            "aria-label": metric.title });
  for (const tick of [0, 0.5, 1]) {
    const x = left + tick * scale;
    root.append(svg("line", { x1: x, x2: x, y1: 0, y2: height - 18, stroke: "#e4e7ec" }));
    const label = svg("text", { x, y: height - 4, "font-size": 11, fill: "#667085",
                                "text-anchor": "middle" });
    label.textContent = `${tick * 100}%`;
    root.append(label);
  }
  metric.rates.forEach((rate, i) => {
    const y = 4 + i * (bar + gap);
    const name = svg("text", { x: 0, y: y + 14, "font-size": 12, fill: "#1d2330" });
    name.textContent = candidates[i].length > 22 ? `${candidates[i].slice(0, 21)}…` : candidates[i];
    root.append(name);
    const value = svg("text", { x: left + scale + 6, y: y + 14, "font-size": 12, fill: "#1d2330" });
    if (rate.value === null) {
      value.setAttribute("x", left + 4);
      value.textContent = "no samples yet";
      root.append(value);
      return;
    }
    root.append(svg("rect", { x: left, y, width: Math.max(rate.value * scale, 1), height: bar,
                              rx: 3, fill: COLOURS[i % COLOURS.length], opacity: 0.85 }));
    const mid = y + bar / 2;
    const [x1, x2] = [left + rate.low * scale, left + rate.high * scale];
    root.append(svg("line", { x1, x2, y1: mid, y2: mid, stroke: "#111827", "stroke-width": 1.5 }));
    for (const x of [x1, x2]) {
      root.append(svg("line", { x1: x, x2: x, y1: mid - 5, y2: mid + 5, stroke: "#111827",
                                "stroke-width": 1.5 }));
    }
    value.textContent = `${Math.round(rate.value * 100)}% (n=${rate.n})`;
    root.append(value);
  });
  const better = metric.higher_is_better ? "higher is better" : "lower is better";
  return el("div", { class: "chart", "data-metric": metric.name },
            el("h3", { text: `${metric.title} (${better})` }), root);
}

function sentences(node, lines, empty) {
  const items = lines.map((line) =>
    el("li", { class: line.startsWith("DISAGREE") ? "warn" : "", text: line }));
  node.replaceChildren(...(items.length ? items : [el("li", { text: empty })]));
}

function render(report, agreement) {
  $("heading").textContent = `tickets '${report.tickets_name}' (${report.tickets}: ` +
    `${report.tickets - report.vague} clear, ${report.vague} vague), digest ${report.digest}`;
  table($("numbers"), ["", ...report.candidates],
        report.rows.map((row) => [row.title, ...row.cells]));
  $("clear-note").textContent = `Abstention on clear tickets: ${report.clear_note}.`;
  $("charts").replaceChildren(...report.metrics.map((m) => chart(m, report.candidates)));
  table($("progress"), ["candidate", "judged", "answered", "left", "errors"],
        report.progress.map((p) => [p.candidate, String(p.judged), String(p.answered),
                                    String(p.answered - p.judged), String(p.errors)]));
  sentences($("agreement"), agreement.map((a) =>
    `${a.first} and ${a.second}: agreed on ${a.agreed} of ${a.n} output(s) both marked, ` +
    `kappa = ${a.kappa === null ? "-" : a.kappa.toFixed(2)}`),
  "no output marked by two reviewers yet");
  const detector = report.detector || { reviewed: 0, corrected: 0, scores: [] };
  $("detector-sub").textContent = `${detector.reviewed} reviewed output(s) whose verdict the ` +
    `text detector made, ${detector.corrected} corrected by a reviewer. Precision: of the ` +
    "outputs it gave a label, how many had it; recall: of the outputs that had it, how many " +
    "it found. `floorgate eval labels` exports them for make bench-classify.";
  table($("detector"), ["", "precision", "recall"],
        detector.scores.map((s) => [s.label, s.precision, s.recall]));
  sentences($("comparisons"), report.comparisons, "one candidate: nothing to compare");
  sentences($("orders"), report.orders, "");
}

function $(id) {
  return document.getElementById(id);
}

async function refresh() {
  try {
    const [{ report }, { agreement }] = await Promise.all([api("/api/report"), api("/api/marks")]);
    const key = JSON.stringify([report, agreement]);
    if (key !== shown && report) {
      shown = key;
      render(report, agreement);
      $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
      $("status").className = "status ok";
    }
    document.body.dataset.ready = "true";
  } catch (err) {
    $("status").textContent = `cannot reach the review server: ${err.message}`;
    $("status").className = "status error";
  }
}

refresh();
setInterval(refresh, 2000);
