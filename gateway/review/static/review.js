// The review page: one output at a time beside its ticket; every mark saved as it is made.
"use strict";

const { api, el } = floorgate;
const FIELDS = ["outcome", "flag_pointed", "corrected_verdict", "note"];
const KEYS = {
  1: ["outcome", "merged"], 2: ["outcome", "merged_with_edits"],
  3: ["outcome", "rejected"], 4: ["outcome", "escaped_defect"],
  y: ["flag_pointed", true], n: ["flag_pointed", false], "-": ["flag_pointed", null],
  a: ["corrected_verdict", "abstain"], f: ["corrected_verdict", "flag"],
  s: ["corrected_verdict", "answer"], 0: ["corrected_verdict", null],
};

const PARAMS = new URLSearchParams(location.search);
const POLL_MS = Number(PARAMS.get("poll")) || 2500; // how often other reviewers' marks are read

const state = {
  reviewer: "",
  items: [],
  index: 0,
  marks: new Map(), // item id -> every reviewer's marks
  mine: new Map(), // item id -> {outcome, flag_pointed, corrected_verdict, note, revision}
  saving: Promise.resolve(),
  pending: 0,
  saved: 0,
};

const $ = (id) => document.getElementById(id);

function current() {
  return state.items[state.index];
}

function myMark(id) {
  return state.mine.get(id) || { outcome: null, flag_pointed: null, corrected_verdict: null,
                                 note: "", revision: 0 };
}

function showStatus(text, kind = "") {
  const status = $("status");
  status.textContent = text;
  status.className = `status ${kind}`;
}

// ---- saving -------------------------------------------------------------------------------

function change(field, value) {
  const item = current();
  if (!item) return;
  const mark = { ...myMark(item.id), [field]: value };
  state.mine.set(item.id, mark);
  renderMarks();
  renderProgress();
  save(item.id);
}

function save(id) {
  state.pending += 1;
  showStatus("saving…");
  // One save at a time, each on the revision the one before returned.
  state.saving = state.saving.then(() => send(id)).finally(() => {
    state.pending -= 1;
  });
  return state.saving;
}

async function send(id) {
  const mark = myMark(id);
  const body = { output: id, reviewer: state.reviewer, revision: mark.revision };
  for (const field of FIELDS) body[field] = mark[field];
  try {
    const saved = await api("/api/marks", { method: "POST", body: JSON.stringify(body) });
    const now = myMark(id);
    state.mine.set(id, { ...now, revision: saved.revision });
    upsertMark(saved);
    state.saved += 1;
    document.body.dataset.saved = String(state.saved); // what a test waits on
    showStatus(`saved ${new Date(saved.recorded_at * 1000).toLocaleTimeString()}`, "ok");
  } catch (err) {
    showStatus(err.message, "error");
    if (err.status === 409) {
      await refreshMarks(true); // show the mark that was kept
      renderMarks();
    }
  }
  renderOthers();
  renderProgress();
}

function upsertMark(mark) {
  const list = (state.marks.get(mark.output) || []).filter((m) => m.reviewer !== mark.reviewer);
  list.push(mark);
  state.marks.set(mark.output, list);
}

async function refreshMarks(adoptMine = false) {
  const { marks } = await api("/api/marks");
  state.marks = new Map();
  for (const mark of marks) upsertMark(mark);
  for (const mark of marks) {
    if (mark.reviewer !== state.reviewer || mark.source) continue;
    const known = state.mine.get(mark.output);
    // A newer revision from another window replaces ours unless a save of ours is in flight.
    if (!known || adoptMine || (mark.revision > known.revision && state.pending === 0)) {
      state.mine.set(mark.output, { ...mark });
    }
  }
}

// ---- rendering ----------------------------------------------------------------------------

function render() {
  const item = current();
  if (!item) return;
  location.replace(`#${encodeURIComponent(item.id)}`);
  $("position").textContent = `${state.index + 1} / ${state.items.length}`;
  renderTicket(item);
  renderOutput(item);
  renderMarks();
  renderOthers();
  renderProgress();
}

function renderTicket(item) {
  const { ticket } = item;
  $("ticket-id").textContent = ticket.id;
  const spec = $("ticket-spec");
  spec.textContent = ticket.spec;
  spec.className = `badge spec-${ticket.spec}`;
  spec.title = ticket.spec === "vague"
    ? "underspecified on purpose: a careful model asks or declines"
    : "well specified: abstaining here is a cost";
  $("ticket-tags").replaceChildren(...ticket.tags.map((t) => el("span", { class: "tag", text: t })));
  const messages = ticket.messages.map((m) => {
    const body = el("div", { class: "md" });
    body.innerHTML = m.html; // rendered and escaped on the server
    return el("div", { class: `message role-${m.role}` },
              el("div", { class: "role", text: m.role }), body);
  });
  $("messages").replaceChildren(...messages);
}

function renderOutput(item) {
  const sample = item.samples > 1 ? `, sample ${item.sample} of ${item.samples}` : "";
  $("output-title").textContent = `Output ${item.letter}${sample}`;
  const v = item.verdict;
  const verdict = $("verdict");
  const label = v.label || "unclassified";
  verdict.className = `verdict verdict-${label}`;
  verdict.textContent = [label, v.kind].filter(Boolean).join(": ");
  verdict.title = `decided by: ${v.source || "none"}`;
  const output = $("output");
  output.innerHTML = item.output_html; // rendered and escaped on the server
  $("evidence").hidden = !v.evidence;
  $("evidence-text").textContent = v.evidence || "";
  if (v.evidence) highlightEvidence(output, v.evidence);
  const check = $("check");
  check.hidden = !item.check;
  if (item.check) {
    $("check-status").textContent = item.check.status;
    $("check-status").className = `badge check-${item.check.status}`;
    $("check-output").textContent = item.check.output || "(no output)";
    check.open = item.check.status !== "passed";
  }
}

function renderMarks() {
  const item = current();
  if (!item) return;
  const mark = myMark(item.id);
  pick("outcome", mark.outcome);
  pick("flag", mark.flag_pointed === null ? "" : String(mark.flag_pointed));
  pick("corrected", mark.corrected_verdict || "");
  const note = $("note");
  if (document.activeElement !== note) note.value = mark.note || "";
}

function pick(group, value) {
  for (const button of $(group).querySelectorAll("button")) {
    button.classList.toggle("chosen", button.dataset.value === (value || ""));
    button.setAttribute("aria-pressed", button.dataset.value === (value || "") ? "true" : "false");
  }
}

function renderOthers() {
  const item = current();
  if (!item) return;
  const marks = state.marks.get(item.id) || [];
  const rows = marks.map((m) => {
    const bits = [floorgate.outcomeTitle[m.outcome] || "no outcome yet"];
    if (m.flag_pointed !== null) bits.push(m.flag_pointed ? "flag pointed" : "flag missed");
    if (m.corrected_verdict) bits.push(`verdict → ${m.corrected_verdict}`);
    const who = el("span", { class: "reviewer", text: m.reviewer });
    const row = el("li", { class: m.reviewer === state.reviewer ? "mine" : "" }, who,
                   ` ${bits.join(" · ")}`);
    if (m.note) row.append(el("div", { class: "note", text: m.note }));
    return row;
  });
  $("others").replaceChildren(...(rows.length ? rows : [el("li", { class: "none", text: "none yet" })]));
}

function renderProgress() {
  const letters = new Map();
  let mine = 0;
  let anyone = 0;
  for (const item of state.items) {
    const entry = letters.get(item.letter) || { done: 0, total: 0 };
    entry.total += 1;
    const done = Boolean(myMark(item.id).outcome);
    if (done) { entry.done += 1; mine += 1; }
    if ((state.marks.get(item.id) || []).some((m) => m.outcome) || done) anyone += 1;
    letters.set(item.letter, entry);
  }
  const parts = [...letters.entries()].sort().map(([letter, e]) =>
    el("span", { class: "count", title: `outputs shown as ${letter} that you marked` },
       `${letter} ${e.done}/${e.total}`));
  const left = state.items.length - mine;
  parts.push(el("span", { class: "count total" }, `you ${mine}/${state.items.length}, ${left} left`));
  parts.push(el("span", { class: "count" }, `anyone ${anyone}/${state.items.length}`));
  $("progress").replaceChildren(...parts);
}

// The evidence is a quote of the output; find it in the rendered text (ignoring case and runs
// of white space, which Markdown rendering changes) and wrap each piece in <mark>.
function highlightEvidence(root, evidence) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const chars = []; // [node, offset] for each character of the normalized text
  let text = "";
  let space = true;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i += 1) {
      const ch = node.data[i];
      if (/\s/.test(ch)) {
        if (space) continue;
        space = true;
        text += " ";
      } else {
        space = false;
        text += ch.toLowerCase();
      }
      chars.push([node, i]);
    }
  }
  const needle = evidence.replace(/\s+/g, " ").trim().toLowerCase();
  const at = needle ? text.indexOf(needle) : -1;
  if (at < 0) return false;
  const pieces = new Map(); // node -> [start, end)
  for (let i = at; i < at + needle.length; i += 1) {
    const [node, offset] = chars[i];
    const piece = pieces.get(node) || [offset, offset + 1];
    piece[1] = offset + 1;
    pieces.set(node, piece);
  }
  for (const [node, [start, end]] of pieces) {
    const range = document.createRange();
    range.setStart(node, start);
    range.setEnd(node, end);
    const mark = el("mark", { class: "evidence", title: "the classifier's evidence" });
    range.surroundContents(mark);
  }
  return true;
}

// ---- navigation and keys ------------------------------------------------------------------

function go(index) {
  if (!state.items.length) return;
  state.index = Math.max(0, Math.min(state.items.length - 1, index));
  render();
  window.scrollTo(0, 0);
}

function nextOpen() {
  const n = state.items.length;
  for (let step = 1; step <= n; step += 1) {
    const index = (state.index + step) % n;
    if (!myMark(state.items[index].id).outcome) return go(index);
  }
  showStatus("you have marked every output", "ok");
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const note = $("note");
  if (document.activeElement === note) {
    if (event.key === "Escape") { note.blur(); event.preventDefault(); }
    return;
  }
  if (document.querySelector("dialog[open]")) return;
  const key = event.key;
  if (KEYS[key]) change(...KEYS[key]);
  else if (key === "j" || key === "ArrowRight") go(state.index + 1);
  else if (key === "k" || key === "ArrowLeft") go(state.index - 1);
  else if (key === " ") nextOpen();
  else if (key === "e") note.focus();
  else if (key === "?") $("help").showModal();
  else return;
  event.preventDefault();
}

function wire() {
  document.addEventListener("keydown", onKey);
  for (const [group, field] of [["outcome", "outcome"], ["flag", "flag_pointed"],
                                ["corrected", "corrected_verdict"]]) {
    $(group).addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      let value = button.dataset.value || null;
      if (field === "flag_pointed" && value !== null) value = value === "true";
      change(field, value);
    });
  }
  let timer = null;
  const note = $("note");
  const saveNote = () => {
    clearTimeout(timer);
    const item = current();
    if (item && note.value !== (myMark(item.id).note || "")) change("note", note.value);
  };
  note.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(saveNote, 400); });
  note.addEventListener("blur", saveNote);
  $("prev").addEventListener("click", () => go(state.index - 1));
  $("next").addEventListener("click", () => go(state.index + 1));
  $("next-open").addEventListener("click", nextOpen);
  $("help-button").addEventListener("click", () => $("help").showModal());
  $("who").addEventListener("click", askName);
}

// ---- start --------------------------------------------------------------------------------

function askName() {
  return new Promise((resolve) => {
    const dialog = $("name-dialog");
    $("name-input").value = state.reviewer;
    dialog.addEventListener("close", async () => {
      const name = $("name-input").value.trim();
      if (name && name !== state.reviewer) {
        setReviewer(name);
        if (state.items.length) {
          state.mine = new Map(); // the marks shown as "yours" are now another reviewer's
          await refreshMarks(true);
          render();
        }
      }
      resolve();
    }, { once: true });
    dialog.showModal();
  });
}

function setReviewer(name) {
  state.reviewer = name;
  localStorage.setItem("floorgate-reviewer", name);
  $("who").textContent = name;
}

async function start() {
  wire();
  const given = PARAMS.get("reviewer");
  const known = given || localStorage.getItem("floorgate-reviewer");
  if (known) setReviewer(known);
  else await askName();
  const { items, errors } = await api("/api/items");
  state.items = items;
  if (errors) {
    $("errors").hidden = false;
    $("errors").textContent = `${errors} failed (not shown)`;
    $("errors").title = "outputs the run could not get from the model; `floorgate eval run` retries them";
  }
  await refreshMarks(true);
  if (!items.length) { $("empty").hidden = false; return; }
  $("main").hidden = false;
  const wanted = decodeURIComponent(location.hash.slice(1));
  const index = items.findIndex((i) => i.id === wanted);
  if (index >= 0) go(index);
  else {
    const open = items.findIndex((i) => !myMark(i.id).outcome);
    go(open >= 0 ? open : 0);
  }
  document.body.dataset.ready = "true";
  setInterval(async () => {
    try {
      await refreshMarks();
      renderMarks();
      renderOthers();
      renderProgress();
    } catch (err) {
      showStatus(`cannot reach the review server: ${err.message}`, "error");
    }
  }, POLL_MS);
}

start();
