// The console's room page: polls the room's JSON and draws it (dashboards.js draws the dashboards).
"use strict";

const ROOM = document.body.dataset.room;
const API = `/api/room/${encodeURIComponent(ROOM)}`;

async function get(path) {
  const r = await fetch(`${API}/${path}`, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  return r.json();
}

function injections(list) {
  return list.length ? list.map((i) => {
    const { kind, ...rest } = i;
    const args = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
    return `${kind}(${args.join(", ")})`;
  }).join("; ") : "nothing";
}

// --- 1. the scenario ------------------------------------------------------------------------------------
function drawScenario(s) {
  const body = document.getElementById("scenario-body");
  if (!s.played) { body.textContent = "no scenario has played yet"; return; }
  const head = el("p", {},
    el("b", { text: `${s.scenario}` }), ` seed ${s.seed}, speed ${s.speed}x, ${s.status}`,
    s.paused_at ? el("span", { class: "paused", text: ` · traffic paused since ${clock(s.paused_at)}` }) : null);
  const now = s.current ? el("p", { "data-now": s.current }, "now: ", el("b", { text: s.current }),
    ` · next: ${s.next.length ? s.next[0] : "end of scenario"}`) : null;
  const rows = s.phases.map((p) => el("tr", { class: p.end === null ? "current" : "" },
    el("td", { text: `${clock(p.start)}–${p.end ? clock(p.end) : "now"}` }),
    el("td", { text: p.name + (p.skipped ? " (skipped ahead)" : "") }),
    el("td", { text: injections(p.injections) }),
    el("td", { class: "muted", text: p.notes.join("; ") })));
  const upcoming = s.upcoming.map((n) => el("tr", { class: "upcoming" }, el("td", { text: "later" }),
    el("td", { text: n }), el("td", { text: "" }), el("td", { text: "" })));
  body.replaceChildren(head, now || "", el("table", { class: "phases" },
    el("tr", {}, el("th", { text: "when" }), el("th", { text: "phase" }), el("th", { text: "injected" }),
      el("th", { text: "" })), ...rows, ...upcoming));
  body.classList.remove("muted");
}

// --- 2. incidents against alerts ------------------------------------------------------------------------
function drawLanes(l) {
  const body = document.getElementById("lanes-body");
  if (!l.incidents.length && !l.firings.length) {
    body.textContent = l.start ? "no incident played yet" : "no scenario has played yet";
    return;
  }
  const span = Math.max(1, l.end - l.start);
  const x = (t) => `${Math.max(0, Math.min(100, (100 * (t - l.start)) / span))}%`;
  const w = (a, b) => `${Math.max(0.4, (100 * (Math.min(b, l.end) - Math.max(a, l.start))) / span)}%`;
  const bar = (f, cls) => el("div", { class: `firing ${cls}`, title: `${f.alert} ${clock(f.start)}–${clock(f.end)}`,
    style: `left:${x(f.start)};width:${w(f.start, f.end)}` });
  const lanes = [];
  if (l.baseline) {
    lanes.push(el("div", { class: "lane", "data-lane": "baseline" },
      el("div", { class: "lane-label" }, "baseline", el("br"),
        el("span", { class: l.false_alarms.length ? "bad" : "good",
          text: l.false_alarms.length ? `${l.false_alarms.length} false alarm(s)` : "no false alarm" })),
      el("div", { class: "lane-track" },
        el("div", { class: "span baseline", style: `left:${x(l.baseline[0])};width:${w(l.baseline[0], l.baseline[1])}` }),
        ...l.false_alarms.map((f) => bar(f, "false")))));
  }
  for (const inc of l.incidents) {
    const during = l.firings.filter((f) => f.end >= inc.start && f.start <= inc.end + 30);
    const caught = inc.latency !== null && inc.latency !== undefined;
    lanes.push(el("div", { class: "lane", "data-incident": inc.label, "data-detected-by": inc.detected_by || "",
      "data-latency": caught ? inc.latency : "" },
      el("div", { class: "lane-label" }, el("b", { text: inc.label }), el("br"),
        el("span", { class: caught ? "good" : inc.source === "under way" ? "muted" : "bad",
          text: caught ? `${inc.detected_by} after ${Math.round(inc.latency)} s`
            : inc.source === "under way" ? "not caught yet" : "not caught" }),
        el("span", { class: "muted", text: ` (${inc.source})` })),
      el("div", { class: "lane-track" },
        el("div", { class: "span", style: `left:${x(inc.start)};width:${w(inc.start, inc.end)}` }),
        ...during.map((f) => bar(f, "")))));
  }
  const names = [...new Set(l.firings.map((f) => f.alert))];
  body.replaceChildren(el("div", { class: "axis" }, el("span", { text: clock(l.start) }),
    el("span", { text: clock(l.end) })), ...lanes,
  el("p", { class: "muted", text: names.length ? `alerts that fired: ${names.join(", ")}` : "no alert has fired" }),
  l.error ? el("p", { class: "bad", text: l.error }) : "");
  body.classList.remove("muted");
}

// --- 3. the grade so far --------------------------------------------------------------------------------
function drawGrade(g) {
  const when = document.getElementById("grade-when");
  when.textContent = g.in_flight ? "grading ..." : g.graded_at ? `graded at ${clock(g.graded_at)}` : "";
  const body = document.getElementById("grade-body");
  if (!g.items) { body.textContent = g.error || "the first grade is on its way ..."; return; }
  const items = g.items.map((i) => {
    const checks = i.checks.map((c) => el("li", { class: c.applicable === false ? "na" : c.points >= c.max_points ? "good" : "bad" },
      `${c.name}${c.plus ? " (plus, not counted)" : ""}: `, c.applicable === false ? "not applicable" : `${num(c.points)}/${num(c.max_points)}`,
      el("span", { class: "muted", text: ` · ${c.summary}` })));
    return el("tr", { "data-item": i.key, "data-points": i.points },
      el("td", { text: i.title }), el("td", { class: "points", text: `${num(i.points)}/${num(i.max_points)}` }),
      el("td", {}, el("details", {}, el("summary", { text: `${i.checks.length} checks` }), el("ul", {}, ...checks))));
  });
  const roles = Object.entries(g.roles || {}).map(([role, found]) =>
    el("li", {}, el("b", { text: role }), `: ${found.join("; ")}`));
  body.replaceChildren(
    el("p", {}, el("b", { class: "score", text: `${g.score}%` }), ` (${num(g.points)} of ${num(g.max_points)} applicable points)`,
      g.level ? ` at the ${g.level} level` : "",
      g.plus && g.plus.checks.length ? el("span", { id: "plus", text: ` · plus, beside the score: ${num(g.plus.points)} of ${num(g.plus.max_points)}` }) : ""),
    el("table", { class: "grade" }, ...items),
    el("details", {}, el("summary", { text: `What the grader took for each role (${roles.length})` }),
      roles.length ? el("ul", {}, ...roles) : el("p", { class: "muted", text: "nothing found yet" })),
    el("h3", { text: "The improvement it would suggest now" }),
    el("p", { class: "improvement", text: g.improvement ? g.improvement.text : "-" }),
    g.error ? el("p", { class: "bad", text: `last attempt failed: ${g.error}` }) : "");
  body.classList.remove("muted");
}

// --- 5. the candidate's work: the workspace read-only, now or at a snapshot of the work history -------------
const work = { history: null, at: null, open: null };

function bytes(n) {
  return n === null || n === undefined ? "" : n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

function drawHistory(h) {
  work.history = h;
  const body = document.getElementById("history-body");
  if (!h.snapshots.length) { body.textContent = h.why || "no snapshot yet"; return; }
  const n = h.snapshots.length;
  let index = work.at === null ? n : h.snapshots.findIndex((s) => s.commit === work.at);
  if (index < 0) index = n;
  const span = Math.max(1, h.end - h.start);
  const x = (t) => Math.max(0, Math.min(100, (100 * (t - h.start)) / span));
  // Position n of the slider is the workspace as it is now; 0..n-1 are the snapshots, oldest first.
  const slider = el("input", { type: "range", id: "history-slider", min: 0, max: n, step: 1, value: index });
  slider.addEventListener("input", () => select(Number(slider.value)));
  const strip = el("div", { class: "lane-track history-strip" },
    ...h.phases.map((p) => el("div", { class: `span${p.injected.length ? "" : " baseline"}`,
      title: `${p.name}: ${p.injected.join(", ") || "nothing injected"}${p.play ? ` (${p.play})` : ""}`,
      style: `left:${x(p.start)}%;width:${Math.max(0.4, x(p.end) - x(p.start))}%` },
    el("span", { class: "phase-name", text: p.name }))),
    ...h.snapshots.map((s, i) => el("div", { class: "tick", "data-index": i,
      title: `+${(Math.max(0, s.time - h.start) / 60).toFixed(1)} min: ${s.files.join(", ")}`, style: `left:${x(s.time)}%` })),
    h.round ? el("div", { class: "round", title: "the improvement round starts", style: `left:${x(h.round)}%` }) : null,
    el("div", { class: "cursor", id: "history-cursor" }));
  body.replaceChildren(el("div", { class: "history-controls" }, el("span", { text: "history" }), slider,
    el("span", { id: "history-label" })), strip);
  body.classList.remove("muted");
  labelFor(index, x);
}

function labelFor(index, x) {
  const h = work.history, n = h.snapshots.length;
  const label = document.getElementById("history-label");
  const cursor = document.getElementById("history-cursor");
  if (index >= n) {
    label.textContent = ` the workspace now (${n} snapshot${n === 1 ? "" : "s"} before)`;
    label.dataset.at = "";
    cursor.style.left = "100%";
    return;
  }
  const s = h.snapshots[index];
  const phase = h.phases.find((p) => p.start <= s.time && s.time < p.end);
  label.textContent = ` snapshot ${index + 1} of ${n}: +${(Math.max(0, s.time - h.start) / 60).toFixed(1)} min (${clock(s.time)}), `
    + `${s.message}${phase ? ` · during ${phase.name}` : ""} · ${s.files.slice(0, 4).join(", ") || "no file"}`;
  label.dataset.at = s.commit;
  cursor.style.left = `${x(s.time)}%`;
}

function select(index) {
  const h = work.history, n = h.snapshots.length;
  work.at = index >= n ? null : h.snapshots[index].commit;
  const span = Math.max(1, h.end - h.start);
  labelFor(index, (t) => Math.max(0, Math.min(100, (100 * (t - h.start)) / span)));
  loadTree(true);
}

async function loadTree(withFile) {
  try {
    drawTree(await get(`workspace${work.at ? `?at=${work.at}` : ""}`), withFile);
  } catch (e) { document.getElementById("tree-body").textContent = `cannot load: ${e.message}`; }
}

function drawTree(t, withFile) {
  const body = document.getElementById("tree-body");
  const rows = t.entries.map((e) => {
    const depth = e.path.split("/").length - 1, name = e.path.split("/").pop();
    const row = el("div", { class: `entry ${e.kind}${e.path === work.open ? " open" : ""}`, "data-path": e.path,
      "data-kind": e.kind, style: `padding-left:${depth * 1.1}em` });
    if (e.kind === "file") {
      const link = el("a", { href: "#", text: name });
      link.addEventListener("click", (ev) => { ev.preventDefault(); openFile(e.path); });
      row.append(link, el("span", { class: "muted", text: ` ${bytes(e.size)}` }));
    } else if (e.kind === "link") {
      row.append(el("span", { text: `${name} → ${e.target}` }), el("span", { class: "muted", text: " (link, not followed)" }));
    } else if (e.kind === "dir") {
      row.append(el("span", { text: `${name}/` }));
    } else {
      row.append(el("span", { class: "muted", text: `${name} (${e.kind})` }));
    }
    return row;
  });
  body.replaceChildren(...(rows.length ? rows : [el("p", { class: "muted", text: "no file" })]),
    t.truncated ? el("p", { class: "muted", text: "... more than shown here" }) : "");
  body.classList.remove("muted");
  if (!work.open && t.entries.some((e) => e.path === "NOTES.md" && e.kind === "file")) { work.open = "NOTES.md"; withFile = true; }
  if (work.open && withFile) openFile(work.open);
}

async function openFile(path) {
  work.open = path;
  document.querySelectorAll("#tree-body .entry").forEach((r) => r.classList.toggle("open", r.dataset.path === path));
  const q = `path=${encodeURIComponent(path)}${work.at ? `&at=${work.at}` : ""}`;
  try { drawFile(await get(`workspace/file?${q}`)); } catch (e) {
    document.getElementById("file-body").textContent = `cannot load: ${e.message}`;
  }
}

function drawFile(f) {
  const body = document.getElementById("file-body");
  const head = el("p", { class: "file-head" }, el("b", { text: f.path }),
    el("span", { class: "muted", text: ` ${bytes(f.size)} · ${f.at ? `at snapshot ${f.at.slice(0, 8)}` : "now"}` }));
  const parts = [head];
  if (f.kind === "link") parts.push(el("p", { text: `a link to ${f.target}` }));
  if (f.problem) parts.push(el("p", { class: "muted", text: f.problem }));
  if (f.text !== null) {
    const source = el("pre", { class: "source", text: f.text });
    if (f.html !== null) {
      // Rendered by the console (sessions/workspace.py): no raw HTML of the candidate's, images as links.
      const rendered = el("div", { class: "markdown" });
      rendered.innerHTML = f.html;
      source.hidden = true;
      const toggle = el("button", { type: "button", text: "source" });
      toggle.addEventListener("click", () => { source.hidden = !source.hidden; rendered.hidden = !rendered.hidden;
        toggle.textContent = source.hidden ? "source" : "rendered"; });
      head.append(" ", toggle);
      parts.push(rendered);
    }
    parts.push(source);
  }
  body.replaceChildren(...parts);
  body.dataset.path = f.path;
  body.classList.remove("muted");
}

// --- 6. the scorecard -----------------------------------------------------------------------------------
const INTERVIEWER_KEY = "mlsandbox-interviewer";

async function loadScorecard(who) {
  const q = who ? `?interviewer=${encodeURIComponent(who)}` : "";
  try { drawScorecard(await get(`scorecard${q}`), who); } catch (e) {
    document.getElementById("scorecard-body").textContent = `cannot load: ${e.message}`;
  }
}

function drawScorecard(s, who) {
  const body = document.getElementById("scorecard-body");
  const name = el("input", { type: "text", id: "interviewer", value: who || "", placeholder: "your name",
    autocomplete: "off" });
  const open = el("button", { type: "button", id: "interviewer-open", text: "open my card" });
  const choose = () => { localStorage.setItem(INTERVIEWER_KEY, name.value.trim()); loadScorecard(name.value.trim()); };
  open.addEventListener("click", choose);
  name.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); choose(); } });
  const parts = [el("p", {}, "Interviewer: ", name, " ", open)];
  if (who) parts.push(cardForm(s, who));
  parts.push(othersPart(s));
  body.replaceChildren(...parts);
  body.classList.remove("muted");
}

function cardForm(s, who) {
  const mine = s.mine || { ratings: {}, notes: {}, recommendation: null, missing: null, complete: false };
  const fields = s.scorecard.competencies.map((c) => el("fieldset", { class: "competency", "data-competency": c.id },
    el("legend", { text: c.title }),
    ...Object.keys(c.anchors).map((r) => el("label", { class: "rating" },
      el("input", { type: "radio", name: `rating-${c.id}`, value: r, checked: mine.ratings[c.id] === Number(r) }),
      el("b", { text: ` ${r} ` }), el("span", { class: "anchor", text: c.anchors[r] }))),
    el("textarea", { name: `note-${c.id}`, rows: 2, placeholder: "a note (optional)", value: mine.notes[c.id] || "" })));
  const recs = el("fieldset", { class: "recommendation" }, el("legend", { text: "Overall recommendation" }),
    ...s.scorecard.recommendations.map((r) => el("label", {},
      el("input", { type: "radio", name: "recommendation", value: r.id, checked: mine.recommendation === r.id }),
      ` ${r.title} `)));
  const state = s.mine ? (mine.complete ? `your card is complete (${mine.changes} change${mine.changes === 1 ? "" : "s"}, last ${clock(mine.updated_at)})`
    : `still to give: ${mine.missing.join(", ")}`) : "no card of yours yet";
  const result = el("span", { id: "scorecard-result", class: "muted", text: state });
  const form = el("form", { id: "scorecard-form", "data-interviewer": who }, ...fields, recs,
    el("p", {}, el("button", { type: "submit", id: "scorecard-save", text: "save my card" }), " ", result));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const change = { interviewer: who, ratings: {}, notes: {}, recommendation: null };
    for (const c of s.scorecard.competencies) {
      const picked = form.querySelector(`input[name="rating-${c.id}"]:checked`);
      if (picked) change.ratings[c.id] = Number(picked.value);
      const note = form.querySelector(`textarea[name="note-${c.id}"]`).value.trim();
      if (note || mine.notes[c.id]) change.notes[c.id] = note;
    }
    const rec = form.querySelector('input[name="recommendation"]:checked');
    if (rec) change.recommendation = rec.value;
    const r = await fetch(`${API}/scorecard`, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(change) });
    if (!r.ok) {
      const detail = (await r.json().catch(() => ({}))).detail;
      result.textContent = `not saved: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`;
      result.className = "bad";
      return;
    }
    drawScorecard(await r.json(), who);
    document.getElementById("scorecard-result").textContent += ` · saved at ${clock(Date.now() / 1000)}`;
  });
  return form;
}

function othersPart(s) {
  if (!s.unlocked) {
    return el("p", { class: "muted", id: "scorecard-waiting", "data-waiting": s.waiting.join(",") },
      s.waiting.length ? `${s.waiting.length} other interviewer${s.waiting.length === 1 ? " has" : "s have"} scored `
        + `(${s.waiting.join(", ")}): their ratings show once your card is complete` : "no other interviewer has scored yet");
  }
  if (!s.others.length) return el("p", { class: "muted", text: "no other interviewer has scored yet" });
  const cards = [s.mine, ...s.others];
  const titles = Object.fromEntries(s.scorecard.recommendations.map((r) => [r.id, r.title]));
  const rows = s.scorecard.competencies.map((c) => el("tr", { "data-competency": c.id }, el("td", { text: c.title }),
    ...cards.map((k) => el("td", { "data-card": k.interviewer, "data-rating": k.ratings[c.id] ?? "",
      title: k.notes[c.id] || "" }, el("b", { text: k.ratings[c.id] ?? "-" }),
    k.notes[c.id] ? el("div", { class: "muted note", text: k.notes[c.id] }) : null))));
  rows.push(el("tr", {}, el("td", { text: "recommendation" }), ...cards.map((k) =>
    el("td", { "data-card": k.interviewer, "data-recommendation": k.recommendation || "",
      text: titles[k.recommendation] || "-" }))));
  const flags = s.calibration.map((d) => el("p", { class: "flag", "data-calibration": d.competency },
    `calibration: ${d.competency} is ${d.gap} apart (${Object.entries(d.ratings).map(([w, r]) => `${w} ${r}`).join(", ")}): talk it over`));
  return el("div", { id: "scorecard-all" }, el("h3", { text: "Every interviewer's card" }),
    el("table", { class: "cards" }, el("tr", {}, el("th", { text: "" }),
      ...cards.map((k) => el("th", { text: k.interviewer }))), ...rows), ...flags);
}

// --- refreshing -----------------------------------------------------------------------------------------
async function refresh(what, path, draw) {
  try { draw(await get(path)); } catch (e) {
    document.getElementById(`${what}-body`).textContent = `cannot load: ${e.message}`;
  }
}

function live() {
  refresh("scenario", "scenario", drawScenario);
  refresh("lanes", "lanes", drawLanes);
}

document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", async () => {
  const r = await fetch(`${API}/scenario/${b.dataset.action}`, { method: "POST", credentials: "same-origin" });
  document.getElementById("control-result").textContent = r.ok ? `asked: ${b.dataset.action}` : await r.text();
  setTimeout(live, 1200);
}));
document.getElementById("grade-now").addEventListener("click", async () => {
  await fetch(`${API}/grade`, { method: "POST", credentials: "same-origin" });
  document.getElementById("grade-when").textContent = "grading ...";
});

live();
refresh("grade", "grade", drawGrade);
refresh("dashboards", "dashboards", drawDashboards);
refresh("history", "history", drawHistory).then(() => loadTree(false));
if (document.getElementById("scorecard-body")) loadScorecard(localStorage.getItem(INTERVIEWER_KEY) || "");
if (document.body.dataset.running === "yes") {
  setInterval(live, 4000);
  setInterval(() => refresh("grade", "grade", drawGrade), 5000);
  setInterval(() => refresh("dashboards", "dashboards", drawDashboards), 15000);
  // New snapshots extend the slider; the tree follows when it shows the workspace now.
  setInterval(() => refresh("history", "history", drawHistory).then(() => { if (work.at === null) loadTree(false); }), 15000);
}
