// zounds-xr explorer: the page. Plain JS, no build step, no network beyond this server.
// State lives in the URL hash: #/ (catalog), #/doc/<id>?start=&end= , #/map
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  info: null,
  catalog: { offset: 0, limit: 50, sort: null, order: "asc", q: "", total: 0 },
  doc: null,          // the document JSON
  feature: null,      // the feature drawn as a picture
  view: [0, 1],       // visible seconds
  sel: null,          // [t0, t1] selected seconds
  renderToken: 0,
};

function showError(message) {
  const el = $("#error");
  el.textContent = message;
  el.hidden = !message;
}

async function api(path) {
  const response = await fetch(path);
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}
const getJSON = async (path) => (await api(path)).json();
const qs = (params) => new URLSearchParams(
  Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "")).toString();
const fmt = (x, digits = 3) => (x === null || x === undefined) ? "" : Number(x).toFixed(digits);
const hz = (f) => f >= 1000 ? (f / 1000).toFixed(f >= 10000 ? 0 : 1) + "k" : Math.round(f).toString();

// ---- catalog ---------------------------------------------------------------------------
async function loadCatalog() {
  const c = state.catalog;
  const page = await getJSON("api/catalog?" + qs({ offset: c.offset, limit: c.limit,
    sort: c.sort, order: c.order, q: c.q }));
  c.total = page.total;
  const body = $("#catalog tbody");
  body.replaceChildren(...page.rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.id = row.id;
    const cells = [[row.source], [fmt(row.duration), "num"], [row.samplerate ?? "", "num"],
      [row.channels ?? "", "num"], [row.tags], [row.features.join(", ")], [row.id, "id"]];
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => { location.hash = "#/doc/" + encodeURIComponent(row.id); });
    return tr;
  }));
  const last = Math.min(c.offset + page.rows.length, c.total);
  $("#catalog-count").textContent = c.total ? `rows ${c.offset + 1}–${last} of ${c.total}` : "no rows";
  $("#prev-page").disabled = c.offset === 0;
  $("#next-page").disabled = last >= c.total;
  for (const th of document.querySelectorAll("#catalog th[data-sort]")) {
    th.classList.toggle("sorted-asc", th.dataset.sort === c.sort && c.order === "asc");
    th.classList.toggle("sorted-desc", th.dataset.sort === c.sort && c.order === "desc");
  }
}

function setupCatalog() {
  let timer = null;
  $("#filter").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.catalog.q = e.target.value; state.catalog.offset = 0;
      loadCatalog().catch((err) => showError(err.message));
    }, 200);
  });
  $("#prev-page").addEventListener("click", () => {
    state.catalog.offset = Math.max(0, state.catalog.offset - state.catalog.limit);
    loadCatalog().catch((err) => showError(err.message));
  });
  $("#next-page").addEventListener("click", () => {
    state.catalog.offset += state.catalog.limit;
    loadCatalog().catch((err) => showError(err.message));
  });
  for (const th of document.querySelectorAll("#catalog th[data-sort]")) {
    th.addEventListener("click", () => {
      const c = state.catalog;
      if (c.sort === th.dataset.sort) c.order = c.order === "asc" ? "desc" : "asc";
      else { c.sort = th.dataset.sort; c.order = "asc"; }
      c.offset = 0;
      loadCatalog().catch((err) => showError(err.message));
    });
  }
}

// ---- document view ---------------------------------------------------------------------
const pictureKinds = ["spectrogram", "matrix"];

async function openDocument(id, start, end) {
  if (!state.doc || state.doc.id !== id) {
    state.doc = await getJSON("api/documents/" + encodeURIComponent(id));
    const doc = state.doc;
    $("#doc-title").textContent = (doc.row.uri || doc.id).split("/").pop();
    $("#doc-meta").textContent = `${doc.id} · ${fmt(doc.duration)} s · ` +
      `${doc.row.samplerate ?? "?"} Hz · ${doc.row.channels ?? "?"} ch · plays from ${doc.playback}`;
    const pictures = doc.features.filter((f) => pictureKinds.includes(f.kind));
    const select = $("#feature");
    select.replaceChildren(...pictures.map((f) => new Option(`${f.name} (${f.scale || f.kind}, ` +
      `${f.kind === "spectrogram" ? f.bands.centers.length + " bands" : f.shape.slice(1).join("x")})`, f.name)));
    const preferred = pictures.find((f) => f.kind === "spectrogram") || pictures[0];
    state.feature = preferred ? preferred.name : null;
    if (preferred) select.value = preferred.name;
    const searchable = doc.features.filter((f) => f.kind !== "audio");
    const nn = $("#nn-feature");
    const indexed = state.info ? state.info.indexes : [];
    nn.replaceChildren(...searchable.map((f) => new Option(f.name + (indexed.includes(f.name) ? " (indexed)" : ""), f.name)));
    const best = searchable.find((f) => indexed.includes(f.name)) || preferred || searchable[0];
    if (best) nn.value = best.name;
    state.view = [0, doc.duration];
  }
  if (start !== null && end !== null && end > start) {
    state.sel = [start, end];
    const pad = Math.max((end - start) * 0.5, 0.05);
    state.view = [Math.max(0, start - pad), Math.min(state.doc.duration, end + pad)];
    preloadRange(id, state.sel);
  } else {
    state.sel = null;
  }
  render();
}

function plotWidth() { return Math.max(100, Math.round($("#spec-plot").clientWidth)); }
const toX = (t) => (t - state.view[0]) / (state.view[1] - state.view[0]) * plotWidth();
const toT = (x) => state.view[0] + x / plotWidth() * (state.view[1] - state.view[0]);

function niceStep(span, target) {
  const raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

function drawTimeAxis() {
  const [v0, v1] = state.view, step = niceStep(v1 - v0, 8);
  const axis = $("#xaxis");
  const labels = [];
  for (let t = Math.ceil(v0 / step) * step; t <= v1 + 1e-9; t += step) {
    const span = document.createElement("span");
    span.style.left = toX(t) + "px";
    span.textContent = (step < 0.01 ? t.toFixed(3) : step < 0.1 ? t.toFixed(2) : step < 1 ? t.toFixed(1) : t.toFixed(0)) + " s";
    labels.push(span);
  }
  axis.replaceChildren(...labels);
  $("#view-range").textContent = `showing ${fmt(v0)}–${fmt(v1)} s`;
}

function drawSelection() {
  const box = $("#selection");
  if (!state.sel) {
    box.hidden = true;
    $("#selection-range").textContent = "drag over the pictures to select";
    return;
  }
  const x0 = Math.max(0, toX(state.sel[0])), x1 = Math.min(plotWidth(), toX(state.sel[1]));
  box.hidden = x1 <= 0 || x0 >= plotWidth();
  box.style.left = x0 + "px";
  box.style.width = Math.max(1, x1 - x0) + "px";
  $("#selection-range").textContent = `selection ${fmt(state.sel[0])}–${fmt(state.sel[1])} s ` +
    `(${fmt(state.sel[1] - state.sel[0])} s)`;
}

async function drawWave(token) {
  const canvas = $("#wave"), width = plotWidth();
  canvas.width = width;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, canvas.height);
  const audio = state.doc.features.find((f) => f.kind === "audio") ||
    state.doc.features.find((f) => f.kind === "series");
  if (!audio) { ctx.fillStyle = "#999"; ctx.fillText("no stored audio", 8, 40); return; }
  const v = await getJSON(`api/documents/${encodeURIComponent(state.doc.id)}/features/` +
    `${encodeURIComponent(audio.name)}/values?` + qs({ start: state.view[0], end: state.view[1], width }));
  if (token !== state.renderToken) return;
  const lo = v.min.map((x) => x ?? 0), hi = v.max.map((x) => x ?? 0);
  let top = audio.kind === "audio" ? 1 : Math.max(...hi.map(Math.abs), ...lo.map(Math.abs), 1e-9);
  let bottom = audio.kind === "audio" ? -1 : Math.min(0, ...lo);
  const h = canvas.height, y = (val) => h - (val - bottom) / (top - bottom) * h;
  const x0 = toX(v.t0), x1 = toX(v.t1), n = lo.length;
  ctx.fillStyle = "#b5367a";
  for (let i = 0; i < n; i++) {
    const xa = x0 + (x1 - x0) * i / n, xb = x0 + (x1 - x0) * (i + 1) / n;
    const ya = y(hi[i]), yb = y(lo[i]);
    ctx.fillRect(xa, ya, Math.max(1, xb - xa), Math.max(1, yb - ya));
  }
  $("#wave-axis").replaceChildren(...[[top, 0], [bottom, h]].map(([val, pos]) => {
    const s = document.createElement("span"); s.style.top = Math.min(h - 12, Math.max(7, pos)) + "px";
    s.textContent = audio.kind === "audio" ? val.toFixed(0) : val.toPrecision(3); return s;
  }));
}

async function drawSpectrogram(token) {
  const img = $("#spec"), msg = $("#spec-msg");
  const feature = state.doc.features.find((f) => f.name === state.feature);
  if (!feature) { img.removeAttribute("src"); msg.textContent = "no time-frequency feature stored"; return; }
  msg.textContent = "";
  const width = plotWidth(), height = Math.round($("#spec-plot").clientHeight);
  const response = await api(`api/documents/${encodeURIComponent(state.doc.id)}/features/` +
    `${encodeURIComponent(feature.name)}/image.png?` + qs({ start: state.view[0], end: state.view[1], width, height }));
  const meta = JSON.parse(response.headers.get("X-Zx-Image"));
  const blob = await response.blob();
  if (token !== state.renderToken) return;
  const old = img.src;
  img.onload = () => { if (old && old.startsWith("blob:")) URL.revokeObjectURL(old); };
  img.style.left = toX(meta.t0) + "px";
  img.style.width = (toX(meta.t1) - toX(meta.t0)) + "px";
  img.dataset.t0 = meta.t0; img.dataset.t1 = meta.t1;
  img.src = URL.createObjectURL(blob);
  // colour bar and frequency axis
  $(".cbar-top").textContent = fmt(meta.vmax, 0) + (meta.units ? " " + meta.units : "");
  $(".cbar-bottom").textContent = fmt(meta.vmin, 0) + (meta.units ? " " + meta.units : "");
  const axis = $("#spec-axis");
  const labels = [];
  const n = feature.kind === "spectrogram" ? feature.bands.centers.length : meta.bands;
  const ticks = Math.min(n, 7);
  for (let k = 0; k < ticks; k++) {
    const i = Math.round(k * (n - 1) / Math.max(1, ticks - 1));
    const s = document.createElement("span");
    s.style.top = Math.min(height - 7, Math.max(7, height - (i + 0.5) / n * height)) + "px";
    s.textContent = feature.kind === "spectrogram" ? hz(feature.bands.centers[i]) + " Hz" : String(i);
    labels.push(s);
  }
  axis.replaceChildren(...labels);
}

function render() {
  const token = ++state.renderToken;
  drawTimeAxis();
  drawSelection();
  const hash = "#/doc/" + encodeURIComponent(state.doc.id) +
    (state.sel ? `?start=${fmt(state.sel[0], 4)}&end=${fmt(state.sel[1], 4)}` : "");
  if (location.hash !== hash) history.replaceState(null, "", hash);
  Promise.all([drawWave(token), drawSpectrogram(token)]).catch((err) => showError(err.message));
}

function setView(v0, v1) {
  const d = state.doc.duration, minSpan = 0.01;
  let span = Math.min(Math.max(v1 - v0, minSpan), d);
  v0 = Math.min(Math.max(0, v0), d - span);
  state.view = [v0, v0 + span];
  render();
}

function setupDocument() {
  $("#back").addEventListener("click", () => { location.hash = "#/"; });
  $("#feature").addEventListener("change", (e) => { state.feature = e.target.value; render(); });
  $("#zoom-in").addEventListener("click", () => {
    if (state.sel) setView(state.sel[0], state.sel[1]);
    else { const [a, b] = state.view, c = (a + b) / 2, h = (b - a) / 4; setView(c - h, c + h); }
  });
  $("#zoom-out").addEventListener("click", () => {
    const [a, b] = state.view, c = (a + b) / 2, h = (b - a); setView(c - h, c + h);
  });
  $("#zoom-all").addEventListener("click", () => setView(0, state.doc.duration));
  $("#pan-left").addEventListener("click", () => { const [a, b] = state.view, s = (b - a) / 2; setView(a - s, b - s); });
  $("#pan-right").addEventListener("click", () => { const [a, b] = state.view, s = (b - a) / 2; setView(a + s, b + s); });
  const overlay = $("#overlay");
  let dragFrom = null;
  const xOf = (e) => e.clientX - overlay.getBoundingClientRect().left;
  overlay.addEventListener("mousedown", (e) => { dragFrom = xOf(e); e.preventDefault(); });
  window.addEventListener("mousemove", (e) => {
    if (dragFrom === null) return;
    const x = Math.min(Math.max(0, xOf(e)), plotWidth());
    if (Math.abs(x - dragFrom) < 3) return;
    const a = toT(Math.min(x, dragFrom)), b = toT(Math.max(x, dragFrom));
    state.sel = [Math.max(0, a), Math.min(state.doc.duration, b)];
    drawSelection();
  });
  window.addEventListener("mouseup", (e) => {
    if (dragFrom === null) return;
    const x = xOf(e);
    if (Math.abs(x - dragFrom) < 3) state.sel = null;
    dragFrom = null;
    render();
    if (state.sel) preloadRange(state.doc.id, state.sel);
  });
  overlay.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [a, b] = state.view;
    if (e.shiftKey) { const s = (b - a) * Math.sign(e.deltaY || e.deltaX) * 0.2; setView(a + s, b + s); return; }
    const t = toT(xOf(e)), k = e.deltaY > 0 ? 1.25 : 0.8;
    setView(t - (t - a) * k, t + (b - t) * k);
  }, { passive: false });
  $("#play").addEventListener("click", () => playRange(state.doc.id, state.sel || state.view));
  $("#nn-search").addEventListener("click", () => searchNeighbours().catch((err) => {
    $("#nn-status").textContent = ""; showError(err.message);
  }));
  window.addEventListener("resize", () => { if (!$("#document-view").hidden) render(); });
}

function audioUrl(id, range) {
  return new URL(`api/documents/${encodeURIComponent(id)}/audio.wav?` +
    qs({ start: fmt(range[0], 6), end: fmt(range[1], 6) }), location.href).href;
}

// load the selection's sound as soon as it is selected, so that the click only starts it
function preloadRange(id, range) {
  const player = $("#player"), url = audioUrl(id, range);
  if (player.src !== url) { player.preload = "auto"; player.src = url; player.load(); }
}

function playRange(id, range) {
  const player = $("#player");
  preloadRange(id, range);
  player.currentTime = 0;
  player.play().catch((err) => showError("playback: " + err.message));
}

async function searchNeighbours() {
  const range = state.sel || state.view;
  const feature = $("#nn-feature").value;
  $("#nn-status").textContent = "searching…";
  const t = performance.now();
  const r = await getJSON("api/neighbours?" + qs({ feature, id: state.doc.id,
    start: fmt(range[0], 6), end: fmt(range[1], 6), k: $("#nn-k").value }));
  const query = state.doc.id === r.query.id ? $("#doc-title").textContent : r.query.id;
  $("#nn-status").textContent = `neighbours of ${query} ${fmt(r.query.start, 2)}–${fmt(r.query.end, 2)} s: ` +
    `${r.results.length} nearest of ${r.windows} windows ` +
    `(${fmt(r.window, 2)} s, ${r.bits} bits) in ${Math.round(performance.now() - t)} ms`;
  $("#neighbours tbody").replaceChildren(...r.results.map((hit) => {
    const tr = document.createElement("tr");
    const play = document.createElement("button");
    play.type = "button"; play.textContent = "▶"; play.title = "play";
    play.className = "nn-play";
    play.addEventListener("click", (e) => { e.stopPropagation(); playRange(hit.id, [hit.start, hit.end]); });
    const link = document.createElement("a");
    link.textContent = hit.source || hit.id;
    link.className = "nn-open";
    link.href = `#/doc/${encodeURIComponent(hit.id)}?start=${hit.start}&end=${hit.end}`;
    const cells = [play, link, fmt(hit.start), fmt(hit.end), String(hit.distance), hit.id];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      if (i >= 2 && i <= 4) td.className = "num";
      if (i === 5) td.className = "id";
      tr.appendChild(td);
    });
    return tr;
  }));
}

// ---- map -------------------------------------------------------------------------------
const mapState = { data: null, points: [] };

async function openMap() {
  const select = $("#map-feature");
  if (!select.options.length && state.info) {
    const searchable = state.info.features.filter((f) => state.info.kinds[f] && state.info.kinds[f] !== "audio");
    const candidates = state.info.indexes.length ? state.info.indexes : searchable;
    select.replaceChildren(...candidates.map((f) => new Option(f, f)));
  }
  if (!select.value) return;
  $("#map-status").textContent = "loading…";
  const data = await getJSON("api/map?" + qs({ feature: select.value }));
  mapState.data = data;
  drawMap();
  $("#map-status").textContent = `${data.ids.length} documents, PCA of ${data.feature} summaries; click a point to open it`;
}

function drawMap() {
  const data = mapState.data, canvas = $("#map"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 20;
  ctx.clearRect(0, 0, w, h);
  if (!data || !data.x.length) return;
  const range = (a) => a.reduce(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [Infinity, -Infinity]);
  const [xmin, xmax] = range(data.x), [ymin, ymax] = range(data.y);
  const sx = (x) => pad + (x - xmin) / ((xmax - xmin) || 1) * (w - 2 * pad);
  const sy = (y) => h - pad - (y - ymin) / ((ymax - ymin) || 1) * (h - 2 * pad);
  mapState.points = data.x.map((x, i) => [sx(x), sy(data.y[i]), i]);
  const r = data.x.length > 20000 ? 1.5 : data.x.length > 2000 ? 2.5 : 5;
  ctx.fillStyle = "rgba(181, 54, 122, 0.7)";
  for (const [x, y] of mapState.points) { ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill(); }
}

function nearestPoint(e) {
  const canvas = $("#map"), box = canvas.getBoundingClientRect();
  const x = (e.clientX - box.left) * canvas.width / box.width, y = (e.clientY - box.top) * canvas.height / box.height;
  let best = null, bestD = 100;
  for (const [px, py, i] of mapState.points) {
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}

function setupMap() {
  $("#map-feature").addEventListener("change", () => openMap().catch((err) => showError(err.message)));
  $("#map").addEventListener("mousemove", (e) => {
    const i = nearestPoint(e);
    $("#map-label").textContent = i === null ? "" : `${mapState.data.labels[i]} (${mapState.data.ids[i]})`;
  });
  $("#map").addEventListener("click", (e) => {
    const i = nearestPoint(e);
    if (i !== null) location.hash = "#/doc/" + encodeURIComponent(mapState.data.ids[i]);
  });
}

// ---- routing ---------------------------------------------------------------------------
function route() {
  showError("");
  const hash = location.hash || "#/";
  const show = (name) => {
    for (const v of ["catalog", "document", "map"]) $(`#${v}-view`).hidden = v !== name;
  };
  const doc = hash.match(/^#\/doc\/([^?]+)(?:\?(.*))?$/);
  if (doc) {
    show("document");
    const params = new URLSearchParams(doc[2] || "");
    const start = params.has("start") ? Number(params.get("start")) : null;
    const end = params.has("end") ? Number(params.get("end")) : null;
    openDocument(decodeURIComponent(doc[1]), start, end).catch((err) => showError(err.message));
  } else if (hash.startsWith("#/map")) {
    show("map");
    openMap().catch((err) => showError(err.message));
  } else {
    show("catalog");
    loadCatalog().catch((err) => showError(err.message));
  }
}

async function main() {
  setupCatalog();
  setupDocument();
  setupMap();
  try {
    state.info = await getJSON("api/info");
    $("#store-info").textContent = `${state.info.store || "store"} · ${state.info.documents} documents · ` +
      `features ${state.info.features.join(", ")}`;
  } catch (err) { showError(err.message); }
  window.addEventListener("hashchange", route);
  route();
}

main();
