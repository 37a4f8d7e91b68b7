// The Thresher gallery. Every value from the server is shown with textContent or as an attribute
// value, never parsed as HTML; the page's Content-Security-Policy refuses inline scripts as well.
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE = Number(new URLSearchParams(location.search).get("page")) || 100;  // ?page=N: smaller pages
const FACET_TYPES = new Set(["int", "float", "string", "bool"]);
const MAX_FACETS = 8;
const state = { namespace: "", source: "", q: "", asOf: "", captions: [], cursor: "", done: false, loading: false,
                generation: 0, fields: {}, datasourceId: null };

class ApiError extends Error {
  constructor(status, body) { super(body.error || `HTTP ${status}`); this.status = status; this.body = body; }
}

async function api(path, params = {}, options = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined && v !== null) url.searchParams.set(k, v);
  const response = await fetch(url, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (response.status === 401 && path !== "/api/login") showSignIn();
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function show(text) { $("status").textContent = text; }
function showQueryError(error) {
  let text = error.message;
  if (error.body && typeof error.body.position === "number") {
    text += "\n" + state.q + "\n" + " ".repeat(error.body.position) + "^";
  }
  $("query-error").textContent = text;
}

// -- sign in -----------------------------------------------------------------------------------

function showSignIn() {
  $("signin").hidden = false;
  $("toolbar").hidden = true;
  document.querySelector("main").hidden = true;
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  try {
    await api("/api/login", {}, { method: "POST", headers: { "Content-Type": "application/json" },
                                  body: JSON.stringify({ token: $("token").value }) });
    $("token").value = "";
    $("signin").hidden = true;
    $("toolbar").hidden = false;
    document.querySelector("main").hidden = false;
    await loadNamespaces();
  } catch (error) {
    $("signin").hidden = false;
    $("signin-error").textContent = error.status === 401 ? "That token was not accepted: " + error.message : error.message;
  }
});

$("logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
  location.reload();
});

// -- namespaces and sources ------------------------------------------------------------------------

async function loadNamespaces() {
  const body = await api("/api/namespaces");
  $("logout").hidden = !body.signed_in;
  const select = $("namespace");
  select.replaceChildren(...body.namespaces.map((name) => new Option(name, name)));
  if (!body.namespaces.length) { show("No namespaces this token may read."); return; }
  const wanted = new URLSearchParams(location.hash.slice(1)).get("namespace");
  if (wanted && body.namespaces.includes(wanted)) select.value = wanted;
  await loadSources();
}

async function loadSources(keep) {
  state.namespace = $("namespace").value;
  const body = await api("/api/sources", { namespace: state.namespace });
  const select = $("source");
  const groups = [];
  for (const [label, list, kind] of [["Datasources", body.datasources, "datasource"], ["Datasets", body.datasets, "dataset"]]) {
    if (!list.length) continue;
    const group = document.createElement("optgroup");
    group.label = label;
    for (const item of list) group.append(new Option(item.name, `${kind}:${item.name}`));
    groups.push(group);
  }
  select.replaceChildren(...groups);
  if (keep) { select.value = keep; return; }  // after saving a dataset: the list grew, the view stays
  const wanted = new URLSearchParams(location.hash.slice(1)).get("source");
  if (wanted && [...select.options].some((o) => o.value === wanted)) select.value = wanted;
  if (select.value) await runQuery(); else show("This namespace has no datasources yet.");
}

$("namespace").addEventListener("change", () => loadSources().catch((error) => show(error.message)));
$("source").addEventListener("change", () => runQuery());

// -- query, grid and paging ----------------------------------------------------------------------------

function params() {
  return { namespace: state.namespace, source: state.source, q: state.q, as_of: state.asOf };
}

async function runQuery() {
  state.source = $("source").value;
  state.q = $("query").value;
  state.asOf = $("as-of").value.trim();
  state.captions = $("captions").value.split(",").map((s) => s.trim()).filter(Boolean);
  state.cursor = ""; state.generation += 1;
  $("query-error").textContent = "";
  $("grid").replaceChildren();
  $("facets").replaceChildren();
  history.replaceState(null, "", "#" + new URLSearchParams({ namespace: state.namespace, source: state.source }));
  state.done = false;
  const generation = state.generation;
  show("Counting…");
  while (state.loading) await state.pagePromise;  // a page of the previous query still on its way
  if (generation !== state.generation) return;
  // The grid first: its thumbnails should not queue behind the count and the facets (at most 1.5 s).
  if (!(await loadMore())) { if (generation === state.generation) show(""); return; }
  await Promise.race([thumbnailsSettled(), new Promise((resolve) => setTimeout(resolve, 1500))]);
  if (generation !== state.generation) return;
  api("/api/count", params()).then((body) => {
    if (generation === state.generation) show(`${body.count.toLocaleString()} datapoints`);
  }).catch((error) => show(error.message));
  loadFacets(generation);
}

function thumbnailsSettled() {
  const pending = [...document.querySelectorAll(".tile img.thumb")].filter((img) => !img.complete);
  return Promise.all(pending.map((img) => new Promise((resolve) => {
    img.addEventListener("load", resolve, { once: true });
    img.addEventListener("error", resolve, { once: true });
  })));
}

// Loads the next page; true when it did. The first page of a query also brings the view's fields.
async function loadMore() {
  if (state.loading || state.done || !state.source) return false;
  state.loading = true;
  state.pagePromise = loadPage();
  return state.pagePromise;
}

async function loadPage() {
  const generation = state.generation;
  let loaded = false;
  try {
    const body = await api("/api/items", { ...params(), cursor: state.cursor, limit: PAGE, captions: state.captions.join(",") });
    if (generation === state.generation) {
      if (body.fields) { state.fields = body.fields; state.datasourceId = body.datasource_id; }
      $("grid").append(...body.items.map(tile));
      state.cursor = body.next || "";
      state.done = !body.next;
      loaded = true;
    }
  } catch (error) {
    if (generation === state.generation) { showQueryError(error); state.done = true; }  // no paging a bad query
  } finally {
    state.loading = false;
  }
  if (generation === state.generation && !state.done && sentinelVisible()) loadMore();
  return loaded;
}

function sentinelVisible() {
  const wrap = $("grid-wrap").getBoundingClientRect();
  return $("sentinel").getBoundingClientRect().top < wrap.bottom + 400;
}

function tile(item) {
  const node = el("div", "tile");
  node.dataset.path = item.path;
  node.tabIndex = 0;
  if (item.thumb) {
    const img = el("img", "thumb");
    img.decoding = "async";
    img.alt = item.path;
    img.src = item.thumb;
    img.addEventListener("error", () => img.replaceWith(el("div", "nothumb", "no preview")));
    node.append(img);
  } else {
    node.append(el("div", "nothumb", "no preview"));
  }
  const caption = el("div", "caption");
  caption.append(el("div", "path", item.path));
  for (const [key, value] of Object.entries(item.captions)) caption.append(el("div", "kv", `${key}: ${format(value)}`));
  node.append(caption);
  node.title = item.path;
  node.addEventListener("click", () => openDetail(item.datasource_id, item.id));
  node.addEventListener("keydown", (event) => { if (event.key === "Enter") openDetail(item.datasource_id, item.id); });
  return node;
}

function format(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadMore();
}, { root: $("grid-wrap"), rootMargin: "400px" }).observe($("sentinel"));

$("query-form").addEventListener("submit", (event) => { event.preventDefault(); runQuery(); });

// -- facets ----------------------------------------------------------------------------------------------

function loadFacets(generation) {
  const names = Object.entries(state.fields).filter(([, type]) => FACET_TYPES.has(type)).map(([name]) => name).slice(0, MAX_FACETS);
  for (const name of names) {
    const box = el("div", "facet");
    box.dataset.field = name;
    box.append(el("h4", null, name));
    $("facets").append(box);
    api("/api/facet", { ...params(), field: name }).then((body) => {
      if (generation === state.generation) drawFacet(box, body);
    }).catch((error) => box.append(el("div", "missing", error.message)));
  }
}

function literal(value, type) {
  if (type === "string") return JSON.stringify(value);
  return String(value);
}

function field(name) { return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : "`" + name.replace(/`/g, "") + "`"; }

function addToQuery(condition) {
  const current = $("query").value.trim();
  $("query").value = current ? `(${current}) and ${condition}` : condition;
  runQuery();
}

function drawFacet(box, body) {
  const most = Math.max(1, ...body.counts.map((c) => c.count));
  for (const row of body.counts) {
    const line = el("div", "bar-row");
    const label = body.histogram ? `${round(row.low)} – ${round(row.high)}` : format(row.value);
    line.append(el("span", "bar-label", label));
    const bar = el("span", "bar");
    bar.style.width = `${Math.round(100 * row.count / most)}px`;
    line.append(bar, el("span", "bar-count", row.count.toLocaleString()));
    line.title = label;
    line.addEventListener("click", () => {
      const name = field(body.field);
      addToQuery(body.histogram ? `${name} >= ${row.low} and ${name} <= ${row.high}` : `${name} == ${literal(row.value, body.type)}`);
    });
    box.append(line);
  }
  if (body.missing) box.append(el("div", "missing", `${body.missing.toLocaleString()} without a value`));
}

function round(x) { return Math.abs(x) >= 100 ? x.toFixed(0) : Number(x.toPrecision(3)); }

// -- saving ----------------------------------------------------------------------------------------------

$("save-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const body = await api("/api/datasets", {}, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...params(), q: $("query").value, name: $("dataset-name").value }) });
    show(`Saved dataset ${body.saved} in ${body.namespace}`);
    await loadSources($("source").value);
  } catch (error) { $("query-error").textContent = error.message; }
});

// -- detail view ----------------------------------------------------------------------------------------------
// Annotations: any field whose value is (or is a string holding) JSON of this shape is drawn over the image:
//   [{"label": "cat", "box": [x, y, width, height]}, {"label": "road", "points": [[x, y], ...]}, ...]
// or an object whose values are such lists ({"detections": [...], "polygons": [...]}). Coordinates are
// pixels, or fractions of the image size when every one is at most 1. Each label has a toggle.

let detailTarget = null;

async function openDetail(datasourceId, datapointId) {
  detailTarget = { datasourceId, datapointId };
  $("detail").hidden = false;
  $("detail-as-of").value = state.asOf;
  await loadDetail();
}

async function loadDetail() {
  const { datasourceId, datapointId } = detailTarget;
  $("detail-error").textContent = "";
  let body;
  try {
    body = await api(`/api/datapoint/${datasourceId}/${datapointId}`, { as_of: $("detail-as-of").value.trim() });
  } catch (error) { $("detail-error").textContent = error.message; return; }
  $("detail-path").textContent = body.path;
  const img = $("full");
  $("overlay").replaceChildren();
  $("labels").replaceChildren();
  if (body.image) {
    img.hidden = false;
    img.onload = () => { fitImage(img); drawAnnotations(body, img); };
    img.src = body.file_url;
    img.alt = body.path;
  } else {
    img.hidden = true;
    img.removeAttribute("src");
  }
  const fields = $("detail-fields");
  fields.replaceChildren(row(["field", "type", "value"], "th"), row(["path", "string", body.path]), row(["datapoint_id", "int", body.id]));
  for (const [name, value] of Object.entries(body.values)) fields.append(row([name, body.fields[name] || "", format(value)]));
  const hist = $("detail-history");
  hist.replaceChildren();
  if (body.history.length) {
    const own = new Set(["written_at", "actor", "write_id", "path", "operation", "cleared"]);
    hist.append(row(["when", "who", "what", "values"], "th"));
    for (const entry of body.history) {
      const values = Object.entries(entry).filter(([k, v]) => !own.has(k) && v !== null)
        .map(([k, v]) => `${k} = ${format(v)}`);
      if (entry.cleared && entry.cleared.length) values.push(`cleared ${entry.cleared.join(", ")}`);
      hist.append(row([entry.written_at, entry.actor, entry.operation, values.join("; ")]));
    }
  } else {
    hist.append(row(["no recorded writes"]));
  }
  await loadNeighbours(datasourceId, datapointId);
}

// The strip of nearest neighbours, shown when the datasource has a vector field.
async function loadNeighbours(datasourceId, datapointId) {
  const section = $("neighbours");
  const grid = $("neighbour-grid");
  grid.replaceChildren();
  section.hidden = true;
  let body;
  try {
    body = await api(`/api/neighbours/${datasourceId}/${datapointId}`, { as_of: $("detail-as-of").value.trim() });
  } catch (error) { return; }  // no neighbours is not an error worth a message beside the datapoint
  if (!body.field) return;
  section.querySelector("h3").textContent = `Nearest neighbours by ${body.field}`;
  for (const item of body.items) {
    grid.append(tile({ ...item, captions: { distance: Number(item.distance).toFixed(4) } }));
  }
  section.hidden = false;
}

// Scales the image to fill the free space (small images grow, large ones shrink), keeping its shape.
function fitImage(img) {
  const box = img.closest(".detail-image").getBoundingClientRect();
  const scale = Math.min((box.width - 20) / img.naturalWidth, (box.height - 60) / img.naturalHeight);
  img.style.width = `${Math.max(1, Math.floor(img.naturalWidth * scale))}px`;
  img.style.height = `${Math.max(1, Math.floor(img.naturalHeight * scale))}px`;
}

function row(cells, tag = "td") {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(el(tag, null, cell));
  return tr;
}

function annotationShapes(value) {
  if (typeof value === "string") {
    const text = value.trim();
    if (!text.startsWith("[") && !text.startsWith("{")) return [];
    try { value = JSON.parse(text); } catch { return []; }
  }
  const lists = Array.isArray(value) ? [value] : (value && typeof value === "object" ? Object.values(value).filter(Array.isArray) : []);
  const shapes = [];
  for (const list of lists) for (const item of list) {
    if (!item || typeof item !== "object") continue;
    const box = Array.isArray(item.box) && item.box.length === 4 && item.box.every(Number.isFinite) ? item.box : null;
    const points = Array.isArray(item.points) && item.points.every((p) => Array.isArray(p) && p.length === 2 && p.every(Number.isFinite)) ? item.points : null;
    if (box || points) shapes.push({ label: String(item.label ?? ""), box, points });
  }
  return shapes;
}

const COLOURS = ["#ff5a5f", "#2ec4b6", "#ffbe0b", "#8338ec", "#3a86ff", "#fb5607", "#06d6a0"];
const SVG = "http://www.w3.org/2000/svg";

function drawAnnotations(body, img) {
  const svg = $("overlay");
  const width = img.naturalWidth, height = img.naturalHeight;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const byLabel = new Map();
  for (const [name, value] of Object.entries(body.values)) {
    for (const shape of annotationShapes(value)) {
      const coords = [...(shape.box || []), ...(shape.points || []).flat()];
      const relative = coords.every((c) => c >= 0 && c <= 1);
      const sx = relative ? width : 1, sy = relative ? height : 1;
      const key = `${name}: ${shape.label}`;
      if (!byLabel.has(key)) byLabel.set(key, []);
      let node;
      if (shape.box) {
        node = document.createElementNS(SVG, "rect");
        node.setAttribute("x", shape.box[0] * sx); node.setAttribute("y", shape.box[1] * sy);
        node.setAttribute("width", shape.box[2] * sx); node.setAttribute("height", shape.box[3] * sy);
      } else {
        node = document.createElementNS(SVG, "polygon");
        node.setAttribute("points", shape.points.map(([x, y]) => `${x * sx},${y * sy}`).join(" "));
      }
      const colour = COLOURS[[...byLabel.keys()].indexOf(key) % COLOURS.length];
      node.setAttribute("fill", colour + "33");
      node.setAttribute("stroke", colour);
      node.setAttribute("stroke-width", Math.max(1, width / 300));
      node.classList.add("annotation");
      svg.append(node);
      byLabel.get(key).push(node);
    }
  }
  for (const [key, nodes] of byLabel) {
    const label = el("label");
    const box = el("input");
    box.type = "checkbox"; box.checked = true;
    box.addEventListener("change", () => nodes.forEach((n) => { n.style.display = box.checked ? "" : "none"; }));
    label.append(box, document.createTextNode(` ${key} (${nodes.length})`));
    $("labels").append(label);
  }
}

$("detail-asof-form").addEventListener("submit", (event) => { event.preventDefault(); loadDetail(); });
$("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
document.addEventListener("keydown", (event) => { if (event.key === "Escape") $("detail").hidden = true; });

loadNamespaces().catch((error) => { if (error.status !== 401) show(error.message); });
