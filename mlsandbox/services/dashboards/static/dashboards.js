// The candidate's dashboards drawn from their queries' results (uPlot for time series), and the small DOM
// helpers the console's pages share. Used by the room page and inlined into `mlsandbox dashboards preview`.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#7f7f7f", "#393b79", "#637939"];
const charts = new Map(); // chart id -> uPlot, kept across refreshes

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const clock = (t) => (t ? new Date(t * 1000).toLocaleTimeString([], { hour12: false }) : "--:--:--");
const num = (v) => (v === null || v === undefined ? "-" : Math.abs(v) >= 1000 || v === Math.round(v)
  ? String(Math.round(v * 100) / 100) : v.toPrecision(4));

// --- 4. the candidate's dashboards ----------------------------------------------------------------------
function chart(id, q, unit, holder, range) {
  if (!q.series || !q.series.length) return; // an ended room's archive may hold counts but no points
  const times = [...new Set(q.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const data = [times, ...q.series.map((s) => {
    const ys = new Array(times.length).fill(null);
    for (const [t, v] of s.points) ys[index.get(t)] = v;
    return ys;
  })];
  const opts = { width: Math.max(300, holder.clientWidth - 8), height: 180, legend: { show: q.series.length <= 4 },
    scales: { x: { time: true, range: range } },
    axes: [{}, { label: unit || "", size: 60 }],
    series: [{}, ...q.series.map((s, i) => ({ label: s.label.slice(0, 60), stroke: COLORS[i % COLORS.length], width: 1.5 }))] };
  const old = charts.get(id);
  if (old) old.destroy();
  charts.set(id, new uPlot(opts, data, holder));
}

function drawPanel(board, p, bi, pi, range) {
  const box = el("div", { class: "panel", "data-panel": p.title, "data-type": p.type },
    el("h4", {}, p.title || "(untitled)", el("span", { class: "muted", text: ` ${p.type}${p.unit ? " · " + p.unit : ""}` })));
  if (p.problem) box.append(el("p", { class: "bad", text: p.problem }));
  if (!p.drawn) {
    box.append(el("p", { class: "muted", text: `a ${p.type} panel is not drawn here; its queries:` }));
  }
  p.queries.forEach((q, qi) => {
    const line = el("div", { class: "query", "data-expr": q.expr, "data-series-count": q.series_count ?? "",
      "data-last": q.last ?? "" });
    line.append(el("code", { text: q.expr }));
    if (q.link) line.append(" ", el("a", { href: q.link, target: "_blank", text: "open in Prometheus" }));
    if (q.error) line.append(el("p", { class: "bad", text: `query failed: ${q.error}` }));
    else if (q.empty) line.append(el("p", { class: "bad", text: "no data: the query returns nothing over the session" }));
    else if (p.drawn) {
      line.append(el("p", { class: "muted", text: `${q.series_count} series, last value ${num(q.last)}${p.unit ? " " + p.unit : ""}` }));
      if (p.type === "timeseries" || p.type === "graph") {
        const holder = el("div", { class: "chart" });
        line.append(holder);
        requestAnimationFrame(() => chart(`${bi}/${pi}/${qi}`, q, p.unit, holder, range));
      } else {
        line.append(el("div", { class: "stat", text: `${num(q.last)}${p.unit ? " " + p.unit : ""}` }));
      }
    }
    box.append(line);
  });
  return box;
}

function drawDashboards(d, body = document.getElementById("dashboards-body")) {
  if (!d.dashboards || !d.dashboards.length) { body.textContent = "no dashboard in the candidate's dashboards/ folder"; return; }
  for (const c of charts.values()) c.destroy();
  charts.clear();
  // Every chart over the same window, as the grader reads the session; the test reads these back.
  body.dataset.start = d.start; body.dataset.end = d.end; body.dataset.step = d.step;
  const range = [d.start, d.end];
  body.replaceChildren(...d.dashboards.map((b, bi) => el("div", { class: "board", "data-board": b.title },
    el("h3", {}, b.title, el("span", { class: "muted", text: ` ${b.source}` }),
      b.grafana ? el("a", { href: b.grafana, target: "_blank", text: " open in Grafana" }) : null),
    b.error ? el("p", { class: "bad", text: b.error }) : null,
    el("div", { class: "panels" }, ...b.panels.map((p, pi) => drawPanel(b, p, bi, pi, range))))));
  body.classList.remove("muted");
}

