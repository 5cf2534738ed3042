/**
 * The live dashboard served at the gateway's `GET /`: one self-contained HTML page (inline
 * CSS and JS, no build step, nothing fetched from the internet). It polls `/nodes` and
 * `/counter` every second and shows every node with its health and value, the cluster
 * value with a live chart, and buttons that increment and decrement through the gateway.
 * A node that stops answering (or that the gateway forgets, once discovery dropped it) stays
 * in the table as down, with the time it went down. The named counters are listed most
 * recently written first through the paged listing (`/counters?order=recent&limit&prefix&after`,
 * following `next`), with a search box for a name prefix. A page by recency may come back
 * short while more follow (a bounded scan per request), so the page asks again, a few times
 * at most, to fill itself.
 */

const css = `
:root {
  --bg: #0f1419; --panel: #171e26; --panel-2: #1d2631; --line: #2a3644; --text: #e6edf3;
  --muted: #8b98a8; --accent: #4fb3ff; --ok: #3fcf8e; --bad: #ff6b6b; --warn: #f5b94a;
  --radius: 12px;
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, sans-serif;
}
header {
  display: flex; align-items: center; justify-content: space-between; gap: 16px;
  padding: 18px 32px; border-bottom: 1px solid var(--line); background: var(--panel);
}
header h1 { margin: 0; font-size: 20px; letter-spacing: .3px; }
header h1 span { color: var(--accent); }
header .sub { color: var(--muted); font-size: 13px; }
.pill {
  display: inline-flex; align-items: center; gap: 8px; padding: 5px 12px; border-radius: 999px;
  background: var(--panel-2); border: 1px solid var(--line); font-size: 13px; white-space: nowrap;
}
.dot { width: 9px; height: 9px; border-radius: 50%; background: var(--muted); display: inline-block; }
.dot.ok { background: var(--ok); box-shadow: 0 0 8px var(--ok); }
.dot.bad { background: var(--bad); box-shadow: 0 0 8px var(--bad); }
.dot.warn { background: var(--warn); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 40px; display: grid; gap: 20px; }
.top { display: grid; grid-template-columns: minmax(320px, 440px) 1fr; gap: 20px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: 20px 22px; }
.card h2 {
  margin: 0 0 12px; font-size: 12px; font-weight: 600; color: var(--muted);
  text-transform: uppercase; letter-spacing: 1px;
}
#cluster-value { font-size: 64px; font-weight: 700; line-height: 1.05; font-variant-numeric: tabular-nums; }
#convergence { margin-top: 6px; font-size: 13px; color: var(--muted); min-height: 20px; }
.controls { display: flex; gap: 8px; margin-top: 18px; align-items: center; flex-wrap: wrap; }
button {
  font: inherit; font-weight: 600; border-radius: 9px; border: 1px solid var(--line); cursor: pointer;
  padding: 9px 15px; color: var(--text); background: var(--panel-2); transition: transform .05s, background .15s;
}
button:active { transform: scale(.97); }
button.primary { background: var(--accent); border-color: var(--accent); color: #04121f; }
button.primary:hover { background: #75c4ff; }
button:hover { background: #243142; }
input[type=number] {
  width: 58px; font: inherit; padding: 8px 10px; border-radius: 9px; border: 1px solid var(--line);
  background: var(--bg); color: var(--text);
}
label.by { color: var(--muted); font-size: 13px; display: flex; align-items: center; gap: 6px; }
#message { margin-top: 12px; font-size: 13px; min-height: 20px; color: var(--muted); }
#message.error { color: var(--bad); }
.chart-head { display: flex; justify-content: space-between; align-items: baseline; }
.chart-head .legend { color: var(--muted); font-size: 12px; }
#chart { width: 100%; height: 220px; display: block; }
#chart .grid { stroke: var(--line); stroke-width: 1; }
#chart .axis { fill: var(--muted); font-size: 11px; }
#chart .line { fill: none; stroke: var(--accent); stroke-width: 2.2; stroke-linejoin: round; }
#chart .area { fill: url(#fade); stroke: none; }
#chart .dot-now { fill: var(--accent); stroke: var(--panel); stroke-width: 2; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th {
  text-align: left; font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase;
  letter-spacing: .8px; padding: 0 12px 10px; border-bottom: 1px solid var(--line);
}
td { padding: 11px 12px; border-bottom: 1px solid var(--line); }
tr:last-child td { border-bottom: none; }
td.value { font-weight: 700; font-size: 17px; }
td.value.behind { color: var(--warn); }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
td.err { color: var(--bad); font-size: 12px; max-width: 300px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.status { display: inline-flex; align-items: center; gap: 7px; }
.empty { color: var(--muted); padding: 18px 12px; }
.toolbar { display: flex; gap: 8px; align-items: center; margin-bottom: 12px; flex-wrap: wrap; }
input[type=search] {
  flex: 1; min-width: 180px; font: inherit; padding: 8px 10px; border-radius: 9px; border: 1px solid var(--line);
  background: var(--bg); color: var(--text);
}
.since { color: var(--muted); font-size: 12px; margin-left: 4px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding-bottom: 28px; }
footer a { color: var(--accent); text-decoration: none; margin: 0 8px; }
@media (max-width: 820px) { .top { grid-template-columns: 1fr; } main, header { padding-left: 16px; padding-right: 16px; } }
`

const js = `
const HISTORY = 120;
const history = [];
let clusterValue = null;
let lastNodes = [];

const $ = (id) => document.getElementById(id);
const fmt = (n) => n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

async function getJson(path, init) {
  const res = await fetch(path, Object.assign({ headers: { accept: "application/json" }, cache: "no-store" }, init || {}));
  const text = await res.text();
  let body = null;
  try { body = text === "" ? null : JSON.parse(text); } catch (e) { body = { error: "bad_response", message: text.slice(0, 200) }; }
  return { ok: res.ok, status: res.status, body };
}

function setMessage(text, isError) {
  const el = $("message");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function showClusterValue(value) {
  clusterValue = value;
  $("cluster-value").textContent = fmt(value);
}

/** Every node ever listed, by HTTP address: a node the gateway forgets stays, shown down. */
const known = new Map();

function remember(nodes) {
  const now = Date.now();
  const listed = new Set();
  for (const n of nodes) {
    listed.add(n.httpAddr);
    const before = known.get(n.httpAddr);
    const downSince = n.healthy ? null : (before && before.downSince) || now;
    known.set(n.httpAddr, Object.assign({}, n, { downSince }));
  }
  for (const [addr, n] of known) {
    if (!listed.has(addr)) known.set(addr, Object.assign({}, n, { healthy: false, latencyMs: null, downSince: n.downSince || now, lastError: "no longer listed by the gateway" }));
  }
  return Array.from(known.values());
}

function renderNodes(listed) {
  const nodes = remember(listed);
  lastNodes = nodes;
  const healthy = nodes.filter((n) => n.healthy);
  const values = new Set(healthy.map((n) => n.value));
  const converged = healthy.length > 0 && values.size === 1;
  $("health-dot").className = "dot " + (healthy.length === 0 ? "bad" : healthy.length < nodes.length ? "warn" : "ok");
  $("health-text").textContent = healthy.length + " / " + nodes.length + " nodes healthy";
  $("convergence").innerHTML = healthy.length === 0
    ? '<span class="dot bad"></span> no healthy node'
    : converged
      ? '<span class="dot ok"></span> every healthy node agrees'
      : '<span class="dot warn"></span> nodes are converging (' + values.size + ' distinct values)';
  const reference = converged ? healthy[0].value : clusterValue;
  const rows = nodes.map((n) => {
    const behind = n.healthy && reference !== null && n.value !== reference;
    return '<tr data-node="' + esc(n.httpAddr) + '" data-healthy="' + n.healthy + '">' +
      '<td><span class="status"><span class="dot ' + (n.healthy ? "ok" : "bad") + '"></span>' + (n.healthy ? "healthy" : "down") +
        (n.downSince ? '<span class="since">since ' + esc(new Date(n.downSince).toLocaleTimeString()) + '</span>' : "") + '</span></td>' +
      '<td class="mono" title="' + esc(n.id) + '">' + esc(n.id.length > 14 ? n.id.slice(0, 12) + "…" : n.id) + '</td>' +
      '<td class="mono">' + esc(n.httpAddr) + '</td>' +
      '<td class="mono">' + esc(n.gossipAddr || "—") + '</td>' +
      '<td class="value' + (behind ? " behind" : "") + '">' + (n.healthy ? fmt(n.value) : "—") + '</td>' +
      '<td>' + (n.latencyMs === null ? "—" : n.latencyMs + " ms") + '</td>' +
      '<td>' + fmt(n.requests) + '</td>' +
      '<td class="err" title="' + esc(n.lastError || "") + '">' + esc(n.lastError || "") + '</td>' +
      '</tr>';
  });
  $("nodes").innerHTML = rows.length === 0
    ? '<tr><td class="empty" colspan="8">No node known yet: start nodes with --discovery, or give the gateway --nodes.</td></tr>'
    : rows.join("");
  $("node-count").textContent = nodes.length === 1 ? "1 node" : nodes.length + " nodes";
  if (converged) showClusterValue(healthy[0].value);
}

/** Up to 5 integer ticks covering [lo, hi]. */
function ticks(lo, hi) {
  const span = Math.max(1, hi - lo);
  const raw = span / 4;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag);
  const first = Math.floor(lo / step) * step;
  const out = [];
  for (let v = first; v <= hi + step / 2 && out.length < 7; v += step) out.push(v);
  return out;
}

function renderChart() {
  const svg = $("chart");
  const w = svg.clientWidth || 600, h = svg.clientHeight || 220, padL = 64, padR = 16, padT = 14, padB = 24;
  const pts = history.filter((p) => p.v !== null);
  let out = '<defs><linearGradient id="fade" x1="0" x2="0" y1="0" y2="1">' +
    '<stop offset="0" stop-color="#4fb3ff" stop-opacity=".30"/><stop offset="1" stop-color="#4fb3ff" stop-opacity="0"/></linearGradient></defs>';
  if (pts.length === 0) {
    svg.innerHTML = out + '<text class="axis" x="' + (w / 2 - 40) + '" y="' + (h / 2) + '">waiting for data…</text>';
    return;
  }
  let lo = Math.min(...pts.map((p) => p.v)), hi = Math.max(...pts.map((p) => p.v));
  if (hi - lo < 4) { const mid = Math.round((lo + hi) / 2); lo = mid - 2; hi = mid + 2; }
  const marks = ticks(lo, hi);
  lo = Math.min(lo, marks[0]); hi = Math.max(hi, marks[marks.length - 1]);
  const x = (i) => padL + (w - padL - padR) * (i / (HISTORY - 1));
  const y = (v) => padT + (h - padT - padB) * (1 - (v - lo) / (hi - lo));
  for (const v of marks) {
    const yy = y(v).toFixed(1);
    out += '<line class="grid" x1="' + padL + '" x2="' + (w - padR) + '" y1="' + yy + '" y2="' + yy + '"/>';
    out += '<text class="axis" text-anchor="end" x="' + (padL - 10) + '" y="' + (Number(yy) + 4) + '">' + esc(fmt(v)) + '</text>';
  }
  const offset = HISTORY - history.length;
  const coords = [];
  history.forEach((p, i) => { if (p.v !== null) coords.push([x(offset + i), y(p.v)]); });
  // a counter moves in steps: hold each value until the next sample
  let path = "M" + coords[0][0].toFixed(1) + "," + coords[0][1].toFixed(1);
  for (let i = 1; i < coords.length; i++) {
    path += " H" + coords[i][0].toFixed(1) + " V" + coords[i][1].toFixed(1);
  }
  const base = (h - padB).toFixed(1);
  const last = coords[coords.length - 1];
  out += '<path class="area" d="' + path + " V" + base + " H" + coords[0][0].toFixed(1) + ' Z"/>';
  out += '<path class="line" d="' + path + '"/>';
  out += '<circle class="dot-now" cx="' + last[0].toFixed(1) + '" cy="' + last[1].toFixed(1) + '" r="4"/>';
  out += '<text class="axis" x="' + padL + '" y="' + (h - 6) + '">2 min ago</text>';
  out += '<text class="axis" text-anchor="end" x="' + (w - padR) + '" y="' + (h - 6) + '">now</text>';
  svg.innerHTML = out;
}

async function tick() {
  try {
    const [nodes, counter] = await Promise.all([getJson("/nodes"), getJson("/counter")]);
    if (nodes.ok) renderNodes(nodes.body.nodes);
    const converged = nodes.ok && $("convergence").textContent.indexOf("agrees") >= 0;
    if (counter.ok && !converged) showClusterValue(counter.body.value);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("health-dot").className = "dot bad";
    $("health-text").textContent = "gateway unreachable";
  }
  history.push({ t: Date.now(), v: clusterValue });
  if (history.length > HISTORY) history.shift();
  renderChart();
}

async function change(kind) {
  const by = Math.max(1, Math.floor(Number($("by").value) || 1));
  const res = await getJson("/" + kind, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ by }) })
    .catch((e) => ({ ok: false, status: 0, body: { error: "network", message: String(e) } }));
  if (res.ok) {
    showClusterValue(res.body.value);
    setMessage((kind === "increment" ? "+" : "−") + by + " acknowledged by " + res.body.node + " → " + fmt(res.body.value), false);
  } else {
    setMessage((res.body && (res.body.error + ": " + res.body.message)) || ("HTTP " + res.status), true);
  }
}

// -- named counters: most recently written first, one page at a time through the paged listing
const PAGE = 20;
// the cursor each page starts after (a cursor of the node that answered the page before)
let pageStarts = [undefined];
let counterPage = 0;
let pageNext = undefined;
// requests to fill one page: a page by recency may come back short while more follow
const FILL_REQUESTS = 5;

async function loadCounters() {
  const prefix = $("search").value.trim();
  let after = pageStarts[counterPage];
  let list = [];
  let next = undefined;
  for (let i = 0; i < FILL_REQUESTS && list.length < PAGE; i++) {
    const query = "order=recent&limit=" + (PAGE - list.length) + (prefix ? "&prefix=" + encodeURIComponent(prefix) : "") + (after ? "&after=" + encodeURIComponent(after) : "");
    const res = await getJson("/counters?" + query).catch(() => null);
    if (res === null || !res.ok) {
      if (res !== null && counterPage > 0) {
        // the node that issued this page's cursor cannot resume it any more: back to the first page
        pageStarts = [undefined];
        counterPage = 0;
        return loadCounters();
      }
      $("counters").innerHTML = '<tr><td class="empty" colspan="2">' + esc(res && res.body ? res.body.message : "gateway unreachable") + '</td></tr>';
      return;
    }
    list = list.concat(res.body.counters);
    next = res.body.next;
    if (next === undefined) break;
    after = next;
  }
  pageNext = next;
  $("counters").innerHTML = list.length === 0
    ? '<tr><td class="empty" colspan="2">' + (prefix ? "No counter starts with " + esc(prefix) + "." : "No named counter yet: POST /counters/NAME/increment.") + '</td></tr>'
    : list.map((c) => '<tr data-counter="' + esc(c.name) + '"><td class="mono">' + esc(c.name) + '</td><td class="value">' + fmt(c.value) + '</td></tr>').join("");
  $("prev").disabled = counterPage === 0;
  $("next").disabled = pageNext === undefined;
  $("counter-page").textContent = "most recently written first · page " + (counterPage + 1);
}

$("search").addEventListener("input", () => { pageStarts = [undefined]; counterPage = 0; loadCounters(); });
$("next").addEventListener("click", () => { if (pageNext === undefined) return; counterPage++; pageStarts[counterPage] = pageNext; loadCounters(); });
$("prev").addEventListener("click", () => { if (counterPage === 0) return; counterPage--; loadCounters(); });
loadCounters();
setInterval(loadCounters, 2000);

$("increment").addEventListener("click", () => change("increment"));
$("decrement").addEventListener("click", () => change("decrement"));
window.addEventListener("resize", renderChart);
tick();
setInterval(tick, 1000);
`

export const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dcounter dashboard</title>
<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='7' fill='%230f1419'/%3E%3Ctext x='16' y='23' font-family='sans-serif' font-size='20' font-weight='700' text-anchor='middle' fill='%234fb3ff'%3Ed%3C/text%3E%3C/svg%3E">
<style>${css}</style>
</head>
<body>
<header>
  <div>
    <h1><span>d</span>counter</h1>
    <div class="sub">a distributed counter: every acknowledged write counted exactly once</div>
  </div>
  <div class="pill"><span id="health-dot" class="dot"></span><span id="health-text">connecting…</span></div>
</header>
<main>
  <section class="top">
    <div class="card">
      <h2>Cluster value</h2>
      <div id="cluster-value">—</div>
      <div id="convergence"></div>
      <div class="controls">
        <button id="increment" class="primary">+ Increment</button>
        <button id="decrement">− Decrement</button>
        <label class="by">by <input id="by" type="number" min="1" step="1" value="1"></label>
      </div>
      <div id="message"></div>
    </div>
    <div class="card">
      <div class="chart-head"><h2>Cluster value, last 2 minutes</h2><span class="legend" id="updated"></span></div>
      <svg id="chart" role="img" aria-label="cluster value over time"></svg>
    </div>
  </section>
  <section class="card">
    <div class="chart-head"><h2>Nodes</h2><span class="legend" id="node-count"></span></div>
    <table>
      <thead><tr><th>Status</th><th>Node id</th><th>HTTP</th><th>Gossip</th><th>Value</th><th>Latency</th><th>Requests</th><th>Last error</th></tr></thead>
      <tbody id="nodes"><tr><td class="empty" colspan="8">loading…</td></tr></tbody>
    </table>
  </section>
  <section class="card">
    <div class="chart-head"><h2>Named counters</h2><span class="legend" id="counter-page"></span></div>
    <div class="toolbar">
      <input id="search" type="search" placeholder="Search counters by name prefix, e.g. likes:" aria-label="search counters">
      <button id="prev" disabled>← Prev</button>
      <button id="next" disabled>Next →</button>
    </div>
    <table>
      <thead><tr><th>Name</th><th>Value</th></tr></thead>
      <tbody id="counters"><tr><td class="empty" colspan="2">loading…</td></tr></tbody>
    </table>
  </section>
</main>
<footer><a href="/docs">API docs</a>·<a href="/openapi.json">OpenAPI</a>·<a href="/metrics">metrics</a>·<a href="/nodes">/nodes</a></footer>
<script>${js}</script>
</body>
</html>
`
