// zounds-xr explorer: the page. Plain JS, no build step, no network beyond this server.
// State lives in the URL hash: #/?q=&sort=&order=&offset= (catalog),
// #/doc/<id>?start=&end=&v0=&v1=&feature= (document), #/map?feature=&method=&colour= (map).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  info: null,
  catalog: { offset: 0, limit: 50, sort: null, order: "asc", q: "", total: 0, ids: [] },
  checked: new Set(), // ids ticked in the table
  labelColumns: [],   // catalog columns shown as labels
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

async function api(path, options) {
  const response = await fetch(path, options);
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
function catalogHash() {
  const c = state.catalog;
  const q = qs({ q: c.q, sort: c.sort, order: c.sort ? c.order : null, offset: c.offset || null });
  return "#/" + (q ? "?" + q : "");
}

function extraHeaders(extra) {
  const head = $("#catalog thead tr");
  for (const th of head.querySelectorAll("th.extra")) th.remove();
  for (const name of extra) {
    const th = document.createElement("th");
    th.className = "extra"; th.dataset.sort = name; th.textContent = name;
    th.addEventListener("click", () => sortBy(name));
    head.appendChild(th);
  }
}

async function loadCatalog() {
  const c = state.catalog;
  const page = await getJSON("api/catalog?" + qs({ offset: c.offset, limit: c.limit,
    sort: c.sort, order: c.order, q: c.q }));
  c.total = page.total;
  c.ids = page.rows.map((row) => row.id);
  if (!$("#catalog-view").hidden && location.hash !== catalogHash()) history.replaceState(null, "", catalogHash());
  const shown = [...document.querySelectorAll("#catalog th.extra")].map((th) => th.dataset.sort);
  if (shown.join("\n") !== page.extra.join("\n")) extraHeaders(page.extra);
  const body = $("#catalog tbody");
  body.replaceChildren(...page.rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.id = row.id;
    const check = document.createElement("input");
    check.type = "checkbox"; check.className = "row-check"; check.checked = state.checked.has(row.id);
    check.setAttribute("aria-label", "select " + row.source);
    check.addEventListener("click", (e) => {
      e.stopPropagation();
      if (check.checked) state.checked.add(row.id); else state.checked.delete(row.id);
      updateLabelBar();
    });
    const td0 = document.createElement("td");
    td0.className = "check"; td0.appendChild(check); tr.appendChild(td0);
    const cells = [[row.source, "source"], [fmt(row.duration), "num"], [row.samplerate ?? "", "num"],
      [row.channels ?? "", "num"], [row.tags], [row.features.join(", ")], [row.id, "id"],
      ...page.extra.map((name) => [row.extra[name] ?? "", "extra"])];
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => { location.hash = "#/doc/" + encodeURIComponent(row.id); });
    return tr;
  }));
  $("#check-page").checked = c.ids.length > 0 && c.ids.every((id) => state.checked.has(id));
  updateLabelBar();
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
    th.addEventListener("click", () => sortBy(th.dataset.sort));
  }
  $("#check-page").addEventListener("click", (e) => {
    for (const id of state.catalog.ids) {
      if (e.target.checked) state.checked.add(id); else state.checked.delete(id);
    }
    for (const box of document.querySelectorAll("#catalog .row-check")) box.checked = e.target.checked;
    updateLabelBar();
  });
}

function sortBy(column) {
  const c = state.catalog;
  if (c.sort === column) c.order = c.order === "asc" ? "desc" : "asc";
  else { c.sort = column; c.order = "asc"; }
  c.offset = 0;
  loadCatalog().catch((err) => showError(err.message));
}

// ---- document view ---------------------------------------------------------------------
const pictureKinds = ["spectrogram", "matrix"];

async function openDocument(id, start, end, view, feature) {
  if (!state.doc || state.doc.id !== id) {
    state.doc = await getJSON("api/documents/" + encodeURIComponent(id));
    const doc = state.doc;
    $("#doc-title").textContent = (doc.row.uri || doc.id).split("/").pop();
    $("#doc-meta").textContent = `${doc.id} · ${fmt(doc.duration)} s · ` +
      `${doc.row.samplerate ?? "?"} Hz · ${doc.row.channels ?? "?"} ch · plays from ${doc.playback}`;
    const flat = doc.features.filter((f) => f.pyramid === false).map((f) => f.name);
    if (flat.length) $("#doc-meta").textContent += ` · no pyramid of ${flat.join(", ")}: ` +
      "zooming out reads every frame (zounds-xr pyramid STORE)";
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
    showDocumentLabels();
  }
  if (feature && state.doc.features.some((f) => f.name === feature && pictureKinds.includes(f.kind))) {
    state.feature = feature; $("#feature").value = feature;
  }
  if (start !== null && end !== null && end > start) {
    state.sel = [start, end];
    const pad = Math.max((end - start) * 0.5, 0.05);
    state.view = [Math.max(0, start - pad), Math.min(state.doc.duration, end + pad)];
    preloadRange(id, state.sel);
  } else {
    state.sel = null;
  }
  if (view && view[1] > view[0]) state.view = [Math.max(0, view[0]), Math.min(state.doc.duration, view[1])];
  render();
}

function showDocumentLabels() {
  const extra = state.info ? Object.keys(state.doc.row).filter((k) => state.labelColumns.includes(k)) : [];
  $("#doc-labels").textContent = extra.map((k) => `${k}: ${state.doc.row[k] ?? "–"}`).join(" · ");
}

// seconds as h:mm:ss (or m:ss) once the ticks are a minute or more apart
function clock(t) {
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = Math.round(t % 60);
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function plotWidth() { return Math.max(100, Math.round($("#spec-plot").clientWidth)); }
const toX = (t) => (t - state.view[0]) / (state.view[1] - state.view[0]) * plotWidth();
const toT = (x) => state.view[0] + x / plotWidth() * (state.view[1] - state.view[0]);

function niceStep(span, target) {
  const raw = span / target;
  if (raw >= 60) {  // whole minutes and hours
    for (const m of [60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 36000]) if (raw <= m) return m;
  }
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
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
    span.dataset.t = t;
    span.textContent = step >= 60 ? clock(t) : (step < 0.01 ? t.toFixed(3) : step < 0.1 ? t.toFixed(2) :
      step < 1 ? t.toFixed(1) : t.toFixed(0)) + " s";
    labels.push(span);
  }
  axis.replaceChildren(...labels);
  $("#xaxis-unit").textContent = step >= 60 ? "time (h:mm:ss)" : "time (s)";
  $("#view-range").textContent = `showing ${fmt(v0)}–${fmt(v1)} s` + (v1 - v0 >= 120 ? ` (${clock(v0)}–${clock(v1)})` : "");
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
  img.dataset.t0 = meta.t0; img.dataset.t1 = meta.t1; img.dataset.level = meta.level;
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
  const whole = state.view[0] <= 0 && state.view[1] >= state.doc.duration;
  const q = qs({ start: state.sel ? fmt(state.sel[0], 4) : null, end: state.sel ? fmt(state.sel[1], 4) : null,
    v0: whole ? null : fmt(state.view[0], 4), v1: whole ? null : fmt(state.view[1], 4), feature: state.feature });
  const hash = "#/doc/" + encodeURIComponent(state.doc.id) + (q ? "?" + q : "");
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
// Points are drawn with WebGL (one draw call, positions and colours in GPU buffers), so
// 10^6 documents pan and zoom smoothly; without WebGL, pixels are written into an
// ImageData. Hover finds the nearest point through a uniform grid built once.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
  "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"];
const OTHER = "#b0b0b0", MISSING = 255, GRID = 256;
const mapState = {
  info: null, key: null, n: 0, xy: null, codes: null, legend: null, rgba: null,
  center: [0, 0], scale: 1, gl: null, renderer: null, grid: null, selected: null,
  hover: null, paintedAt: null, requestedAt: null, drag: null,
};

function hexRGB(hex) { return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)); }

function viridis(t) {  // 5-point viridis, linearly interpolated
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(1, Math.max(0, t)) * 4, i = Math.min(3, Math.floor(x)), f = x - i;
  return stops[i].map((v, c) => Math.round(v + (stops[i + 1][c] - v) * f));
}

function colourTable(legend) {
  const table = new Uint8Array(256 * 4);
  for (let code = 0; code < 256; code++) {
    let rgb;
    if (code === MISSING) rgb = [210, 210, 210];
    else if (!legend) rgb = hexRGB("#b5367a");
    else if (legend.kind === "number") rgb = viridis(code / 254);
    else rgb = code < legend.categories.length ? hexRGB(PALETTE[code % PALETTE.length]) : hexRGB(OTHER);
    table.set([...rgb, code === MISSING ? 120 : 200], code * 4);
  }
  return table;
}

function paintColours() {
  const m = mapState, table = colourTable(m.legend), rgba = new Uint8Array(m.n * 4);
  const sel = m.selected;
  for (let i = 0; i < m.n; i++) {
    const code = m.codes ? m.codes[i] : 0;
    rgba[4 * i] = table[4 * code]; rgba[4 * i + 1] = table[4 * code + 1];
    rgba[4 * i + 2] = table[4 * code + 2]; rgba[4 * i + 3] = table[4 * code + 3];
  }
  if (sel) {  // the selection stands out: others fade
    for (let i = 0; i < m.n; i++) rgba[4 * i + 3] = 40;
    for (const i of sel) { rgba[4 * i] = 20; rgba[4 * i + 1] = 20; rgba[4 * i + 2] = 20; rgba[4 * i + 3] = 255; }
  }
  m.rgba = rgba;
  if (m.gl) {
    const gl = m.gl.ctx;
    gl.bindBuffer(gl.ARRAY_BUFFER, m.gl.colour);
    gl.bufferData(gl.ARRAY_BUFFER, rgba, gl.STATIC_DRAW);
  }
  drawLegend();
}

function drawLegend() {
  const m = mapState, box = $("#map-legend");
  if (!m.legend) { box.replaceChildren(); return; }
  if (m.legend.kind === "number") {
    box.textContent = `${m.legend.column}: ${fmt(m.legend.min, 2)} `;
    const bar = document.createElement("span"); bar.className = "legend-ramp"; box.appendChild(bar);
    box.appendChild(document.createTextNode(` ${fmt(m.legend.max, 2)}`));
    return;
  }
  const items = m.legend.categories.map((name, i) => [PALETTE[i % PALETTE.length], `${name} (${m.legend.counts[i]})`]);
  if (m.legend.other) items.push([OTHER, `other (${m.legend.other})`]);
  box.replaceChildren(...items.map(([colour, text]) => {
    const s = document.createElement("span"); s.className = "legend-item";
    const dot = document.createElement("i"); dot.style.background = colour;
    s.append(dot, text); return s;
  }));
}

function setupGL(canvas) {
  const ctx = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: true });
  if (!ctx) return null;
  const compile = (type, src) => {
    const sh = ctx.createShader(type); ctx.shaderSource(sh, src); ctx.compileShader(sh);
    if (!ctx.getShaderParameter(sh, ctx.COMPILE_STATUS)) throw new Error(ctx.getShaderInfoLog(sh));
    return sh;
  };
  const program = ctx.createProgram();
  ctx.attachShader(program, compile(ctx.VERTEX_SHADER,
    "attribute vec2 p; attribute vec4 c; uniform vec2 centre; uniform vec2 k; uniform float size;" +
    "varying vec4 vc; void main() { gl_Position = vec4((p - centre) * k, 0.0, 1.0);" +
    " gl_PointSize = size; vc = c; }"));
  ctx.attachShader(program, compile(ctx.FRAGMENT_SHADER,
    "precision mediump float; varying vec4 vc; void main() { vec2 d = gl_PointCoord - 0.5;" +
    " if (dot(d, d) > 0.25) discard; gl_FragColor = vec4(vc.rgb * vc.a, vc.a); }"));
  ctx.linkProgram(program);
  if (!ctx.getProgramParameter(program, ctx.LINK_STATUS)) throw new Error(ctx.getProgramInfoLog(program));
  return { ctx, program, position: ctx.createBuffer(), colour: ctx.createBuffer(),
    p: ctx.getAttribLocation(program, "p"), c: ctx.getAttribLocation(program, "c"),
    centre: ctx.getUniformLocation(program, "centre"), k: ctx.getUniformLocation(program, "k"),
    size: ctx.getUniformLocation(program, "size") };
}

function pointSize() {
  const m = mapState, density = m.n / (m.scale * m.scale + 1e-9);
  return Math.max(1.5, Math.min(8, 3 / Math.sqrt(Math.max(density, 1e-6)) * 40 / Math.sqrt(Math.max(m.n, 1))));
}

function drawMap() {
  const m = mapState, canvas = $("#map");
  if (!m.xy) return;
  const w = canvas.width, h = canvas.height;
  if (m.gl) {
    const g = m.gl, gl = g.ctx;
    gl.viewport(0, 0, w, h);
    gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT);
    gl.enable(gl.BLEND); gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    gl.useProgram(g.program);
    gl.bindBuffer(gl.ARRAY_BUFFER, g.position);
    gl.enableVertexAttribArray(g.p); gl.vertexAttribPointer(g.p, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, g.colour);
    gl.enableVertexAttribArray(g.c); gl.vertexAttribPointer(g.c, 4, gl.UNSIGNED_BYTE, true, 0, 0);
    gl.uniform2f(g.centre, m.center[0], m.center[1]);
    gl.uniform2f(g.k, 2 * m.scale / w, 2 * m.scale / h);
    gl.uniform1f(g.size, pointSize() * (window.devicePixelRatio || 1));
    gl.drawArrays(gl.POINTS, 0, m.n);
  } else {
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h), px = img.data;
    px.fill(255);
    for (let i = 0; i < m.n; i++) {
      const [x, y] = toScreen(m.xy[2 * i], m.xy[2 * i + 1]);
      if (x < 0 || y < 0 || x >= w || y >= h) continue;
      const o = (Math.floor(y) * w + Math.floor(x)) * 4, a = m.rgba[4 * i + 3] / 255;
      for (let c = 0; c < 3; c++) px[o + c] = px[o + c] * (1 - a) + m.rgba[4 * i + c] * a;
    }
    ctx.putImageData(img, 0, 0);
  }
  drawOverlay();
  if (m.paintedAt === null) m.paintedAt = performance.now();
}

function toScreen(x, y) {
  const m = mapState, c = $("#map");
  return [(x - m.center[0]) * m.scale + c.width / 2, c.height / 2 - (y - m.center[1]) * m.scale];
}
function toData(sx, sy) {
  const m = mapState, c = $("#map");
  return [(sx - c.width / 2) / m.scale + m.center[0], (c.height / 2 - sy) / m.scale + m.center[1]];
}

function buildGrid() {  // counting sort of the points into GRID x GRID cells
  const m = mapState, [x0, x1, y0, y1] = m.info.bounds;
  const sx = GRID / ((x1 - x0) || 1), sy = GRID / ((y1 - y0) || 1);
  const cell = new Uint32Array(m.n), counts = new Uint32Array(GRID * GRID + 1);
  for (let i = 0; i < m.n; i++) {
    const cx = Math.min(GRID - 1, Math.max(0, Math.floor((m.xy[2 * i] - x0) * sx)));
    const cy = Math.min(GRID - 1, Math.max(0, Math.floor((m.xy[2 * i + 1] - y0) * sy)));
    cell[i] = cy * GRID + cx; counts[cell[i] + 1]++;
  }
  for (let k = 1; k <= GRID * GRID; k++) counts[k] += counts[k - 1];
  const order = new Uint32Array(m.n), fill = counts.slice(0, GRID * GRID);
  for (let i = 0; i < m.n; i++) order[fill[cell[i]]++] = i;
  m.grid = { x0, y0, sx, sy, starts: counts, order };
}

function pointAt(sx, sy, radius = 8) {
  const m = mapState, g = m.grid;
  if (!g) return null;
  const [x, y] = toData(sx, sy), r = radius / m.scale;
  const cx0 = Math.max(0, Math.floor((x - r - g.x0) * g.sx)), cx1 = Math.min(GRID - 1, Math.floor((x + r - g.x0) * g.sx));
  const cy0 = Math.max(0, Math.floor((y - r - g.y0) * g.sy)), cy1 = Math.min(GRID - 1, Math.floor((y + r - g.y0) * g.sy));
  let best = null, bestD = r * r;
  for (let cy = cy0; cy <= cy1; cy++) {
    for (let cx = cx0; cx <= cx1; cx++) {
      const k = cy * GRID + cx;
      for (let j = g.starts[k]; j < g.starts[k + 1]; j++) {
        const i = g.order[j], dx = m.xy[2 * i] - x, dy = m.xy[2 * i + 1] - y, d = dx * dx + dy * dy;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
  }
  return best;
}

function drawOverlay() {  // the lasso being drawn and the point under the pointer
  const m = mapState, canvas = $("#map-overlay"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (m.drag && m.drag.lasso && m.drag.path.length > 1) {
    ctx.beginPath(); ctx.moveTo(...m.drag.path[0]);
    for (const p of m.drag.path) ctx.lineTo(...p);
    ctx.closePath(); ctx.fillStyle = "rgba(74, 163, 255, .15)"; ctx.fill();
    ctx.strokeStyle = "#4aa3ff"; ctx.stroke();
  }
  if (m.hover !== null && m.xy) {
    const [x, y] = toScreen(m.xy[2 * m.hover], m.xy[2 * m.hover + 1]);
    ctx.beginPath(); ctx.arc(x, y, 6, 0, 2 * Math.PI); ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.stroke();
  }
}

function mapHash() {
  return "#/map?" + qs({ feature: mapState.key && mapState.key[0], method: mapState.key && mapState.key[1],
    colour: $("#map-colour").value || null });
}

async function openMap(params) {
  params = params || new URLSearchParams();
  const m = mapState, select = $("#map-feature");
  if (!select.options.length && state.info) {
    const candidates = state.info.features.filter((f) => state.info.kinds[f] && state.info.kinds[f] !== "audio");
    select.replaceChildren(...candidates.map((f) => new Option(f, f)));
  }
  if (params.get("feature")) select.value = params.get("feature");
  if (params.has("method")) $("#map-method").value = params.get("method");
  if (!select.value) return;
  const key = [select.value, $("#map-method").value || null];
  if (!m.key || m.key[0] !== key[0] || m.key[1] !== key[1]) {
    m.requestedAt = performance.now(); m.paintedAt = null;
    $("#map-status").textContent = "loading…";
    const info = await getJSON("api/map?" + qs({ feature: key[0], method: key[1] }));
    const buffer = await (await api("api/map/points.bin?" + qs({ feature: key[0], method: info.method }))).arrayBuffer();
    Object.assign(m, { info, key: [key[0], info.method], n: info.documents, xy: new Float32Array(buffer),
      codes: null, legend: null, selected: null, hover: null });
    const [x0, x1, y0, y1] = info.bounds, canvas = $("#map");
    m.center = [(x0 + x1) / 2, (y0 + y1) / 2];
    m.scale = 0.92 * Math.min(canvas.width / ((x1 - x0) || 1), canvas.height / ((y1 - y0) || 1));
    const colour = $("#map-colour");
    colour.replaceChildren(new Option("(one colour)", ""), ...info.columns.map((c) => new Option(c, c)));
    if (!m.gl && m.renderer === null) {
      try { m.gl = setupGL(canvas); } catch (err) { m.gl = null; }
      m.renderer = m.gl ? "webgl" : "2d";
    }
    if (m.gl) {
      const gl = m.gl.ctx;
      gl.bindBuffer(gl.ARRAY_BUFFER, m.gl.position);
      gl.bufferData(gl.ARRAY_BUFFER, m.xy, gl.STATIC_DRAW);
    }
    paintColours();
    drawMap();
    buildGrid();
    const what = info.method === "umap" ? "UMAP" : "PCA";
    $("#map-status").textContent = `${info.documents} documents, ${what} of ${info.feature}` +
      (info.stored ? "" : " (computed now)") + (info.documents !== info.total ? ` (the store has ` +
      `${info.total} now: rebuild it with zounds-xr map)` : "") + "; click a point to open it, shift+drag to select";
  }
  const wanted = params.has("colour") ? params.get("colour") : $("#map-colour").value;
  if (wanted !== ($("#map-colour").dataset.shown || "")) await colourMap(wanted);
  if (!$("#map-view").hidden && location.hash !== mapHash()) history.replaceState(null, "", mapHash());
}

async function colourMap(column) {
  const m = mapState, select = $("#map-colour");
  select.value = column || "";
  if (column) {
    const response = await api("api/map/colours.bin?" + qs({ feature: m.key[0], method: m.key[1], column }));
    m.legend = JSON.parse(response.headers.get("X-Zx-Legend"));
    m.codes = new Uint8Array(await response.arrayBuffer());
  } else { m.codes = null; m.legend = null; }
  select.dataset.shown = column || "";
  paintColours();
  drawMap();
  if (!$("#map-view").hidden) history.replaceState(null, "", mapHash());
}

function lassoSelect(path) {
  const m = mapState, poly = path.map(([x, y]) => toData(x, y));
  const xs = poly.map((p) => p[0]), ys = poly.map((p) => p[1]);
  const [bx0, bx1, by0, by1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const chosen = [];
  for (let i = 0; i < m.n; i++) {
    const x = m.xy[2 * i], y = m.xy[2 * i + 1];
    if (x < bx0 || x > bx1 || y < by0 || y > by1) continue;
    let inside = false;
    for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
      const [xa, ya] = poly[a], [xb, yb] = poly[b];
      if ((ya > y) !== (yb > y) && x < (xb - xa) * (y - ya) / (yb - ya) + xa) inside = !inside;
    }
    if (inside) chosen.push(i);
  }
  m.selected = chosen.length ? Uint32Array.from(chosen) : null;
  paintColours();
  drawMap();
  $("#map-selection").textContent = chosen.length ? `${chosen.length} selected (Esc clears)` : "";
  updateLabelBar();
}

function setupMap() {
  const canvas = $("#map"), overlay = $("#map-overlay");
  $("#map-feature").addEventListener("change", () => openMap().catch((err) => showError(err.message)));
  $("#map-method").addEventListener("change", () => openMap().catch((err) => showError(err.message)));
  $("#map-colour").addEventListener("change", (e) => colourMap(e.target.value).catch((err) => showError(err.message)));
  const at = (e) => {
    const box = overlay.getBoundingClientRect();
    return [(e.clientX - box.left) * overlay.width / box.width, (e.clientY - box.top) * overlay.height / box.height];
  };
  overlay.addEventListener("mousedown", (e) => {
    const p = at(e);
    mapState.drag = { lasso: e.shiftKey, from: p, centre: mapState.center.slice(), path: [p], moved: false };
    e.preventDefault();
  });
  window.addEventListener("mousemove", (e) => {
    const m = mapState;
    if (!m.xy || $("#map-view").hidden) return;
    const p = at(e);
    if (m.drag) {
      if (Math.abs(p[0] - m.drag.from[0]) + Math.abs(p[1] - m.drag.from[1]) > 3) m.drag.moved = true;
      if (m.drag.lasso) { m.drag.path.push(p); drawOverlay(); }
      else if (m.drag.moved) {
        m.center = [m.drag.centre[0] - (p[0] - m.drag.from[0]) / m.scale, m.drag.centre[1] + (p[1] - m.drag.from[1]) / m.scale];
        drawMap();
      }
      return;
    }
    const i = pointAt(...p);
    if (i !== m.hover) {
      m.hover = i; drawOverlay();
      if (i === null) { $("#map-label").textContent = ""; return; }
      getJSON("api/map/point?" + qs({ feature: m.key[0], method: m.key[1], i })).then((doc) => {
        if (m.hover === i) $("#map-label").textContent = `${doc.source || ""} (${doc.id})` +
          (m.codes && m.legend ? ` · ${m.legend.column}: ${labelOf(m.codes[i])}` : "");
      }).catch((err) => showError(err.message));
    }
  });
  window.addEventListener("mouseup", (e) => {
    const m = mapState, drag = m.drag;
    if (!drag) return;
    m.drag = null;
    if (drag.lasso && drag.path.length > 2) { lassoSelect(drag.path); drawOverlay(); return; }
    if (drag.moved) return;
    const i = pointAt(...at(e));
    if (i === null) return;
    getJSON("api/map/point?" + qs({ feature: m.key[0], method: m.key[1], i })).then((doc) => {
      location.hash = "#/doc/" + encodeURIComponent(doc.id);
    }).catch((err) => showError(err.message));
  });
  overlay.addEventListener("wheel", (e) => {
    e.preventDefault();
    const m = mapState, p = at(e), before = toData(...p);
    m.scale *= e.deltaY > 0 ? 0.8 : 1.25;
    const after = toData(...p);
    m.center = [m.center[0] + before[0] - after[0], m.center[1] + before[1] - after[1]];
    drawMap();
  }, { passive: false });
}

function labelOf(code) {
  const l = mapState.legend;
  if (code === MISSING) return "–";
  if (l.kind === "number") return "≈ " + fmt(l.min + (l.max - l.min) * code / 254, 3);
  return code < l.categories.length ? l.categories[code] : "other";
}

// ---- labels ----------------------------------------------------------------------------
// What a label edit applies to: the ticked rows (catalog), the document (document view)
// or the lasso selection (map).
function labelTargets() {
  if (!$("#document-view").hidden && state.doc) return { ids: [state.doc.id], what: "this document" };
  if (!$("#map-view").hidden) {
    const sel = mapState.selected;
    return sel ? { map: { feature: mapState.key[0], method: mapState.key[1] }, points: Array.from(sel),
      what: `${sel.length} selected on the map` } : { what: "nothing selected (shift+drag on the map)" };
  }
  const ids = [...state.checked];
  return ids.length ? { ids, what: `${ids.length} ticked` } : { what: "no rows ticked" };
}

function updateLabelBar() {
  const info = state.info;
  if (!info) return;
  $("#read-only").hidden = info.writable;
  $("#read-only").textContent = info.writable ? "" : "read-only: " + info.read_only;
  $("#label-bar").hidden = !info.writable;
  if (!info.writable) return;
  const t = labelTargets();
  const count = t.ids ? t.ids.length : t.points ? t.points.length : 0;
  $("#label-apply").disabled = count === 0;
  $("#label-target").textContent = t.what;
}

async function applyLabel() {
  const column = $("#label-column").value.trim(), raw = $("#label-value").value;
  const t = labelTargets();
  if (!column) { showError("name the label column"); return; }
  const value = raw === "" ? null : raw;
  const body = t.ids ? { column, value, ids: t.ids } : { column, value, map: t.map, points: t.points };
  const result = await (await api("api/labels", { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-Zx-Token": state.info.token } })).json();
  $("#label-status").textContent = `${result.column} set on ${result.documents} ` +
    `document${result.documents === 1 ? "" : "s"} (version ${result.version ?? "–"})`;
  state.info = await getJSON("api/info");
  state.labelColumns = state.info.extra;
  if (!$("#document-view").hidden) {
    state.doc = null; route();
  } else if (!$("#map-view").hidden) {
    if ($("#map-colour").value === column || !$("#map-colour").value) {
      const keep = mapState.selected;
      mapState.key = null;
      await openMap(new URLSearchParams({ feature: mapState.info.feature, method: mapState.info.method, colour: column }));
      mapState.selected = keep; paintColours(); drawMap();
    }
  } else {
    await loadCatalog();
  }
}

// a refused write may have made the explorer read-only (a store without write rights)
async function labelFailed(err) {
  showError(err.message);
  try { state.info = await getJSON("api/info"); updateLabelBar(); } catch (e) { /* the message stays */ }
}

function setupLabels() {
  $("#label-apply").addEventListener("click", () => applyLabel().catch(labelFailed));
  for (const input of [$("#label-column"), $("#label-value")]) {
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); applyLabel().catch(labelFailed); }
      e.stopPropagation();  // typing is not a shortcut
    });
  }
}

// ---- keyboard --------------------------------------------------------------------------
// space: play / pause; n, p: next / previous document; l: label; + - 0: zoom; arrows: pan;
// Esc: clear the selection; ?: list the shortcuts.
async function stepDocument(delta) {
  const c = state.catalog;
  if (!c.ids.length) await loadCatalog();
  let i = state.doc ? c.ids.indexOf(state.doc.id) : -1;
  if (i < 0) { i = delta > 0 ? -1 : c.ids.length; }
  i += delta;
  if (i >= c.ids.length && c.offset + c.limit < c.total) { c.offset += c.limit; await loadCatalog(); i = 0; }
  else if (i < 0 && c.offset > 0) { c.offset = Math.max(0, c.offset - c.limit); await loadCatalog(); i = c.ids.length - 1; }
  if (i >= 0 && i < c.ids.length) location.hash = "#/doc/" + encodeURIComponent(c.ids[i]);
}

function setupKeys() {
  window.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (e.ctrlKey || e.metaKey || e.altKey || ["input", "select", "textarea"].includes(tag)) return;
    const inDoc = !$("#document-view").hidden && state.doc;
    const run = (p) => p.catch((err) => showError(err.message));
    if (e.key === " " && inDoc) {
      e.preventDefault();
      const player = $("#player");
      if (!player.paused) player.pause(); else playRange(state.doc.id, state.sel || state.view);
    } else if (e.key === "n" && inDoc) run(stepDocument(1));
    else if (e.key === "p" && inDoc) run(stepDocument(-1));
    else if (e.key === "l" && state.info && state.info.writable) { e.preventDefault(); $("#label-value").focus(); }
    else if ((e.key === "+" || e.key === "=") && inDoc) $("#zoom-in").click();
    else if (e.key === "-" && inDoc) $("#zoom-out").click();
    else if (e.key === "0" && inDoc) $("#zoom-all").click();
    else if (e.key === "ArrowLeft" && inDoc) $("#pan-left").click();
    else if (e.key === "ArrowRight" && inDoc) $("#pan-right").click();
    else if (e.key === "Escape") {
      if (inDoc) { state.sel = null; render(); }
      if (!$("#map-view").hidden && mapState.selected) lassoSelect([]);
    } else if (e.key === "?") $("#shortcuts").hidden = !$("#shortcuts").hidden;
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
    const num = (k) => params.has(k) ? Number(params.get(k)) : null;
    const view = params.has("v0") && params.has("v1") ? [num("v0"), num("v1")] : null;
    openDocument(decodeURIComponent(doc[1]), num("start"), num("end"), view, params.get("feature"))
      .catch((err) => showError(err.message));
  } else if (hash.startsWith("#/map")) {
    show("map");
    openMap(new URLSearchParams(hash.split("?")[1] || "")).catch((err) => showError(err.message));
  } else {
    show("catalog");
    const params = new URLSearchParams(hash.split("?")[1] || ""), c = state.catalog;
    c.q = params.get("q") || ""; c.sort = params.get("sort") || null;
    c.order = params.get("order") === "desc" ? "desc" : "asc";
    c.offset = Math.max(0, Number(params.get("offset")) || 0);
    if ($("#filter").value !== c.q) $("#filter").value = c.q;
    loadCatalog().catch((err) => showError(err.message));
  }
  updateLabelBar();
}

async function main() {
  setupCatalog();
  setupDocument();
  setupMap();
  setupLabels();
  setupKeys();
  $("#help").addEventListener("click", () => { $("#shortcuts").hidden = !$("#shortcuts").hidden; });
  try {
    state.info = await getJSON("api/info");
    state.labelColumns = state.info.extra;
    $("#store-info").textContent = `${state.info.store || "store"} · ${state.info.documents} documents · ` +
      `features ${state.info.features.join(", ")}` + (state.info.version !== null ? ` · version ${state.info.version}` : "");
  } catch (err) { showError(err.message); }
  window.addEventListener("hashchange", route);
  route();
}

main();
