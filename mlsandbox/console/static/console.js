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
      `${c.name}: `, c.applicable === false ? "not applicable" : `${num(c.points)}/${num(c.max_points)}`,
      el("span", { class: "muted", text: ` · ${c.summary}` })));
    return el("tr", { "data-item": i.key, "data-points": i.points },
      el("td", { text: i.title }), el("td", { class: "points", text: `${num(i.points)}/${num(i.max_points)}` }),
      el("td", {}, el("details", {}, el("summary", { text: `${i.checks.length} checks` }), el("ul", {}, ...checks))));
  });
  const roles = Object.entries(g.roles || {}).map(([role, found]) =>
    el("li", {}, el("b", { text: role }), `: ${found.join("; ")}`));
  body.replaceChildren(
    el("p", {}, el("b", { class: "score", text: `${g.score}%` }), ` (${num(g.points)} of ${num(g.max_points)} applicable points)`),
    el("table", { class: "grade" }, ...items),
    el("details", {}, el("summary", { text: `What the grader took for each role (${roles.length})` }),
      roles.length ? el("ul", {}, ...roles) : el("p", { class: "muted", text: "nothing found yet" })),
    el("h3", { text: "The improvement it would suggest now" }),
    el("p", { class: "improvement", text: g.improvement ? g.improvement.text : "-" }),
    g.error ? el("p", { class: "bad", text: `last attempt failed: ${g.error}` }) : "");
  body.classList.remove("muted");
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
if (document.body.dataset.running === "yes") {
  setInterval(live, 4000);
  setInterval(() => refresh("grade", "grade", drawGrade), 5000);
  setInterval(() => refresh("dashboards", "dashboards", drawDashboards), 15000);
}
