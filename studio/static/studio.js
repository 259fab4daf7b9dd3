// The hint studio's page: the gallery, and the editor of one scan's known colors with its live preview.
// Plain JavaScript, no build step. Every request carries the studio's key (given to this page).
"use strict";

const KEY = document.querySelector('meta[name="studio-key"]').content;
const PAGE_SIZE = 60;
const PREVIEW_SIDE = 1024; // the preview's longer side: screen size
const BASE_SIDE = 2048; // the scan's fitted copy; zoomed in, crops of the region in view replace it
const HIT = 9; // screen pixels within which a click takes a point
const $ = (id) => document.getElementById(id);

const state = {
  show: "all", sort: "name", offset: 0,
  scan: null, // {relative, width, height, ...} from /api/scan
  points: [], selected: -1, undo: [], redo: [], savedPoints: "[]",
  color: "#808080", radius: 0,
  view: {scale: 1, x: 0, y: 0},
  base: null, region: null, preview: null, previewPixels: null,
  previewVersion: 0, previewBusy: false, previewAgain: false, previewTimer: 0, regionTimer: 0,
};

function say(text, isError) {
  const message = $("message");
  message.textContent = text;
  message.className = isError ? "error" : "";
}

async function api(path, options = {}) {
  const headers = Object.assign({"X-Studio-Key": KEY}, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, {headers, credentials: "same-origin"}));
  if (!response.ok) {
    let text = response.statusText;
    try { text = (await response.json()).error; } catch (ignored) { /* not JSON */ }
    throw new Error(text);
  }
  return response;
}

const query = (params) => new URLSearchParams(params).toString();
const format = (value, digits) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));

// The gallery

async function showGallery() {
  $("editor").hidden = true;
  $("gallery").hidden = false;
  const response = await api("/api/scans?" + query({show: state.show, sort: state.sort, offset: state.offset, limit: PAGE_SIZE}));
  const page = await response.json();
  $("summary").textContent = `${page.scans} scans`;
  const last = Math.min(page.offset + page.items.length, page.total);
  $("page").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "no scans";
  $("page-previous").disabled = page.offset === 0;
  $("page-next").disabled = last >= page.total;
  const cards = $("cards");
  cards.replaceChildren(...page.items.map(card));
}

function placeholder(text) {
  const none = document.createElement("div");
  none.className = "none";
  none.textContent = text;
  return none;
}

function thumbnail(relative, kind) {
  const image = document.createElement("img");
  image.loading = "lazy";
  image.alt = kind === "scan" ? "scan" : "colorized";
  image.onerror = () => image.replaceWith(placeholder("cannot be shown"));
  image.src = "/api/thumbnail?" + query({path: relative, kind});
  return image;
}

function card(item) {
  const element = document.createElement("div");
  element.className = "card";
  element.tabIndex = 0;
  element.dataset.relative = item.relative;
  const thumbs = document.createElement("div");
  thumbs.className = "thumbs";
  thumbs.append(thumbnail(item.relative, "scan"));
  thumbs.append(item.result ? thumbnail(item.relative, "result") : placeholder("not colorized"));
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = item.relative;
  const facts = document.createElement("div");
  facts.className = "facts";
  const row = item.row;
  const badges = [];
  if (row) badges.push([row.status, row.status]);
  if (item.hints_file) badges.push(["hints", "hints file"]);
  for (const [kind, text] of badges) {
    const badge = document.createElement("span");
    badge.className = "badge " + kind;
    badge.textContent = text;
    facts.append(badge);
  }
  if (row) {
    facts.append(`known colors ${row.hints ?? 0} · hint ΔE ${format(row.hint_delta_e2000, 2)} · colorfulness ${format(row.colorfulness, 1)}`);
    if (row.error) {
      const error = document.createElement("div");
      error.className = "error";
      error.textContent = row.error;
      facts.append(error);
    }
  }
  element.append(thumbs, name, facts);
  const open = () => openScan(item.relative).catch((error) => say(error.message, true));
  element.addEventListener("click", open);
  element.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
  return element;
}

// The editor

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("an image could not be loaded"));
    image.src = url;
  });
}

async function openScan(relative) {
  if (state.scan && JSON.stringify(state.points) !== state.savedPoints
      && !window.confirm("The known colors of this scan are not saved. Leave it anyway?")) {
    return;
  }
  say("opening " + relative);
  const scan = await (await api("/api/scan?" + query({path: relative}))).json();
  const base = await loadImage("/api/image?" + query({path: relative, max: BASE_SIDE}));
  Object.assign(state, {scan, base, region: null, preview: null, previewPixels: null, points: scan.hints.points.map(normalized),
                        selected: -1, undo: [], redo: []});
  state.savedPoints = JSON.stringify(scan.hints.error ? null : state.points);
  $("gallery").hidden = true;
  $("editor").hidden = false;
  $("scan-name").textContent = `${relative} (${scan.width} × ${scan.height})`;
  const error = $("hints-error");
  error.hidden = !scan.hints.error;
  error.textContent = scan.hints.error
    ? `${scan.hints.error}. The editor starts without its points; saving replaces the file.` : "";
  fitView();
  updateControls();
  say(`${relative}: ${scan.hints.exists ? "hints file " + scan.hints.location : "no hints file yet"}`);
  requestPreview(0);
  loadPalette();
}

function normalized(point) {
  const result = {x: point.x, y: point.y, color: point.color.toLowerCase()};
  if (point.radius) result.radius = point.radius;
  return result;
}

function fitView() {
  const canvas = $("scan-view");
  const scale = Math.min(canvas.width / state.scan.width, canvas.height / state.scan.height);
  state.view = {scale, x: (canvas.width - state.scan.width * scale) / 2, y: (canvas.height - state.scan.height * scale) / 2};
  draw();
}

const toScreen = (x, y) => [x * state.view.scale + state.view.x, y * state.view.scale + state.view.y];
const toScan = (x, y) => [(x - state.view.x) / state.view.scale, (y - state.view.y) / state.view.scale];

function drawImageAt(context, image, x, y, width, height) {
  const [left, top] = toScreen(x, y);
  context.drawImage(image, left, top, width * state.view.scale, height * state.view.scale);
}

function drawPoints(context, selectedOnly) {
  state.points.forEach((point, index) => {
    const [x, y] = toScreen(point.x + 0.5, point.y + 0.5);
    const radius = Math.max(6, (point.radius || 0) * state.view.scale);
    context.beginPath();
    context.arc(x, y, radius, 0, 2 * Math.PI);
    context.fillStyle = point.color;
    if (!selectedOnly) context.fill();
    context.lineWidth = index === state.selected ? 3 : 1.5;
    context.strokeStyle = index === state.selected ? "#ffeb3b" : "#ffffff";
    context.stroke();
  });
}

function draw() {
  if (!state.scan) return;
  const {width, height} = state.scan;
  for (const [id, image] of [["scan-view", state.base], ["preview-view", state.preview]]) {
    const canvas = $(id);
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = state.view.scale < 2;
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (image) drawImageAt(context, image, 0, 0, width, height);
    if (id === "scan-view" && state.region) {
      const region = state.region;
      drawImageAt(context, region.image, region.x, region.y, region.w, region.h);
    }
    drawPoints(context, id === "preview-view");
  }
  scheduleRegion();
}

// Zoomed in beyond the fitted copy's detail: a crop of the region in view at screen resolution.
function scheduleRegion() {
  window.clearTimeout(state.regionTimer);
  state.regionTimer = window.setTimeout(loadRegion, 200);
}

async function loadRegion() {
  const scan = state.scan;
  if (!scan || state.view.scale <= state.base.width / scan.width) return;
  const canvas = $("scan-view");
  const [x0, y0] = toScan(0, 0).map((value) => Math.max(0, Math.floor(value)));
  const [x1, y1] = toScan(canvas.width, canvas.height);
  const w = Math.min(scan.width, Math.ceil(x1)) - x0, h = Math.min(scan.height, Math.ceil(y1)) - y0;
  if (w <= 0 || h <= 0) return;
  const key = [x0, y0, w, h].join(",");
  if (state.region && state.region.key === key) return;
  const out = [Math.max(1, Math.round(Math.min(w * state.view.scale, 2048))), Math.max(1, Math.round(Math.min(h * state.view.scale, 2048)))];
  const relative = scan.relative;
  try {
    const image = await loadImage("/api/region?" + query({path: relative, x: x0, y: y0, w, h, width: out[0], height: out[1]}));
    if (state.scan && state.scan.relative === relative) {
      state.region = {key, image, x: x0, y: y0, w, h};
      draw();
    }
  } catch (error) { say(error.message, true); }
}

function updateControls() {
  const point = state.points[state.selected];
  $("point-state").textContent = point
    ? `Point ${state.selected + 1} of ${state.points.length} at (${point.x}, ${point.y}).`
    : `${state.points.length} known colors. No point selected: new points take this color.`;
  const color = point ? point.color : state.color;
  $("color-text").value = color;
  $("color-picker").value = color;
  $("radius").value = point ? point.radius || 0 : state.radius;
  $("delete-point").disabled = !point;
  $("undo").disabled = !state.undo.length;
  $("redo").disabled = !state.redo.length;
  const changed = JSON.stringify(state.points) !== state.savedPoints;
  $("saved-state").textContent = changed ? "not saved" : "saved";
}

// Every change goes through here: undo keeps the points as they were.
function change(mutate) {
  state.undo.push(JSON.stringify(state.points));
  state.redo = [];
  mutate();
  changed();
}

function changed() {
  updateControls();
  draw();
  requestPreview(150);
}

function restore(from, to) {
  if (!from.length) return;
  to.push(JSON.stringify(state.points));
  state.points = JSON.parse(from.pop());
  state.selected = Math.min(state.selected, state.points.length - 1);
  changed();
}

function setColor(color) {
  color = color.trim().toLowerCase();
  if (!color) return; // an emptied field, being typed into: the color stays
  if (!/^#[0-9a-f]{6}$/.test(color)) {
    say(`a color is written #rrggbb, not ${color}`, true);
    return;
  }
  state.color = color;
  if (state.points[state.selected] && state.points[state.selected].color !== color) {
    change(() => { state.points[state.selected].color = color; });
  } else {
    updateControls();
  }
}

function setRadius(text) {
  const radius = Math.max(0, Math.round(Number(text) || 0));
  state.radius = radius;
  const point = state.points[state.selected];
  if (point && (point.radius || 0) !== radius) {
    change(() => {
      if (radius) point.radius = radius; else delete point.radius;
    });
  }
}

function pointAt(screenX, screenY) {
  let found = -1, nearest = Infinity;
  state.points.forEach((point, index) => {
    const [x, y] = toScreen(point.x + 0.5, point.y + 0.5);
    const distance = Math.hypot(x - screenX, y - screenY);
    const reach = Math.max(HIT, (point.radius || 0) * state.view.scale);
    if (distance <= reach && distance < nearest) { found = index; nearest = distance; }
  });
  return found;
}

function scanPixel(screenX, screenY) {
  const [x, y] = toScan(screenX, screenY);
  const inside = x >= 0 && y >= 0 && x < state.scan.width && y < state.scan.height;
  return inside ? [Math.floor(x), Math.floor(y)] : null;
}

function setUpPointer(canvas) {
  let drag = null;
  canvas.addEventListener("mousedown", (event) => {
    if (!state.scan) return;
    const index = pointAt(event.offsetX, event.offsetY);
    drag = {index, startX: event.offsetX, startY: event.offsetY, moved: false, view: Object.assign({}, state.view),
            before: JSON.stringify(state.points)};
    if (index >= 0) { state.selected = index; updateControls(); draw(); }
  });
  canvas.addEventListener("mousemove", (event) => {
    if (!drag) return;
    const dx = event.offsetX - drag.startX, dy = event.offsetY - drag.startY;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    if (drag.index >= 0) {
      const pixel = scanPixel(event.offsetX, event.offsetY);
      if (pixel) { [state.points[drag.index].x, state.points[drag.index].y] = pixel; updateControls(); draw(); }
    } else {
      state.view.x = drag.view.x + dx;
      state.view.y = drag.view.y + dy;
      draw();
    }
  });
  window.addEventListener("mouseup", (event) => {
    if (!drag) return;
    const finished = drag;
    drag = null;
    if (finished.moved && finished.index >= 0) {
      state.undo.push(finished.before);
      state.redo = [];
      changed();
    } else if (!finished.moved && finished.index < 0 && event.target === canvas) {
      const pixel = scanPixel(event.offsetX, event.offsetY);
      if (!pixel) return;
      change(() => {
        const point = {x: pixel[0], y: pixel[1], color: state.color};
        if (state.radius) point.radius = state.radius;
        state.points.push(point);
        state.selected = state.points.length - 1;
      });
    }
  });
  canvas.addEventListener("wheel", (event) => {
    if (!state.scan) return;
    event.preventDefault();
    const fit = Math.min(canvas.width / state.scan.width, canvas.height / state.scan.height);
    const scale = Math.min(Math.max(state.view.scale * Math.exp(-event.deltaY / 300), fit / 2), 16);
    const [x, y] = toScan(event.offsetX, event.offsetY);
    state.view = {scale, x: event.offsetX - x * scale, y: event.offsetY - y * scale};
    draw();
  }, {passive: false});
}

// The live preview: one request at a time, the latest points after it.
function requestPreview(delay) {
  window.clearTimeout(state.previewTimer);
  state.previewTimer = window.setTimeout(runPreview, delay);
}

async function runPreview() {
  if (state.previewBusy) { state.previewAgain = true; return; }
  state.previewBusy = true;
  const scan = state.scan, points = JSON.stringify(state.points);
  const started = performance.now();
  try {
    const response = await api("/api/preview", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({path: scan.relative, points: JSON.parse(points), max: PREVIEW_SIDE}),
    });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const image = await loadImage(url);
    URL.revokeObjectURL(url);
    if (state.scan === scan) {
      state.preview = image;
      state.previewPixels = null;
      state.previewVersion += 1;
      const canvas = $("preview-view");
      canvas.dataset.version = state.previewVersion;
      canvas.dataset.points = points;
      const delta = response.headers.get("X-Hint-Delta-E2000");
      $("preview-caption").textContent = `Preview (${Math.round(performance.now() - started)} ms): what the next pipeline run writes`
        + (delta ? `; CIEDE2000 at the known colors ${Number(delta).toFixed(2)}` : "") + ".";
      draw();
    }
  } catch (error) {
    say(error.message, true);
  } finally {
    state.previewBusy = false;
    if (state.previewAgain) { state.previewAgain = false; runPreview(); }
  }
}

// The preview's color at a scan pixel, [r, g, b] (what the archivist sees there).
function previewColorAt(x, y) {
  if (!state.preview) return null;
  if (!state.previewPixels) {
    const canvas = document.createElement("canvas");
    canvas.width = state.preview.naturalWidth;
    canvas.height = state.preview.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(state.preview, 0, 0);
    state.previewPixels = context.getImageData(0, 0, canvas.width, canvas.height);
  }
  const pixels = state.previewPixels;
  const column = Math.min(pixels.width - 1, Math.floor((x + 0.5) * pixels.width / state.scan.width));
  const row = Math.min(pixels.height - 1, Math.floor((y + 0.5) * pixels.height / state.scan.height));
  const offset = (row * pixels.width + column) * 4;
  return Array.from(pixels.data.slice(offset, offset + 3));
}

async function save() {
  try {
    const response = await api("/api/hints", {
      method: "PUT", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({path: state.scan.relative, points: state.points}),
    });
    const saved = await response.json();
    state.savedPoints = JSON.stringify(state.points);
    $("hints-error").hidden = true;
    updateControls();
    say(`saved ${saved.points} known colors to ${saved.location}`);
    loadPalette();
  } catch (error) {
    say("not saved: " + error.message, true);
  }
}

async function step(direction) {
  const response = await api("/api/neighbour?" + query({path: state.scan.relative, show: state.show, sort: state.sort, step: direction}));
  const next = (await response.json()).relative;
  if (next) await openScan(next); else say(direction > 0 ? "this is the last scan" : "this is the first scan");
}

async function loadPalette() {
  const colors = (await (await api("/api/palette")).json()).colors;
  $("palette").replaceChildren(...colors.map((color) => {
    const swatch = document.createElement("button");
    swatch.type = "button";
    swatch.title = color;
    swatch.style.background = color;
    swatch.addEventListener("click", () => setColor(color));
    return swatch;
  }));
}

function openReference(file) {
  const reader = new FileReader();
  reader.onload = async () => {
    const image = await loadImage(reader.result);
    const canvas = $("reference");
    const scale = Math.min(1, 280 / image.naturalWidth);
    canvas.width = Math.round(image.naturalWidth * scale);
    canvas.height = Math.round(image.naturalHeight * scale);
    canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
  };
  reader.readAsDataURL(file);
}

function pickReference(event) {
  const [r, g, b] = $("reference").getContext("2d").getImageData(event.offsetX, event.offsetY, 1, 1).data;
  setColor("#" + [r, g, b].map((value) => value.toString(16).padStart(2, "0")).join(""));
}

function onKey(event) {
  if ($("editor").hidden || ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
  const control = event.ctrlKey || event.metaKey;
  const run = (promise) => Promise.resolve(promise).catch((error) => say(error.message, true));
  if (control && event.key.toLowerCase() === "z") run(event.shiftKey ? restore(state.redo, state.undo) : restore(state.undo, state.redo));
  else if (control && event.key.toLowerCase() === "y") restore(state.redo, state.undo);
  else if (control && event.key.toLowerCase() === "s") run(save());
  else if (event.key === "PageDown" || event.key === "n") run(step(1));
  else if (event.key === "PageUp" || event.key === "p") run(step(-1));
  else if ((event.key === "Delete" || event.key === "Backspace") && state.points[state.selected]) deleteSelected();
  else if (event.key === "Escape") run(backToGallery());
  else return;
  event.preventDefault();
}

function deleteSelected() {
  change(() => { state.points.splice(state.selected, 1); state.selected = -1; });
}

async function backToGallery() {
  if (JSON.stringify(state.points) !== state.savedPoints
      && !window.confirm("The known colors of this scan are not saved. Leave it anyway?")) {
    return;
  }
  state.scan = null;
  await showGallery();
}

function setUp() {
  const failing = (action) => () => Promise.resolve(action()).catch((error) => say(error.message, true));
  $("show").addEventListener("change", failing(() => { state.show = $("show").value; state.offset = 0; return showGallery(); }));
  $("sort").addEventListener("change", failing(() => { state.sort = $("sort").value; state.offset = 0; return showGallery(); }));
  $("page-previous").addEventListener("click", failing(() => { state.offset = Math.max(0, state.offset - PAGE_SIZE); return showGallery(); }));
  $("page-next").addEventListener("click", failing(() => { state.offset += PAGE_SIZE; return showGallery(); }));
  $("back").addEventListener("click", failing(backToGallery));
  $("previous-scan").addEventListener("click", failing(() => step(-1)));
  $("next-scan").addEventListener("click", failing(() => step(1)));
  $("undo").addEventListener("click", () => restore(state.undo, state.redo));
  $("redo").addEventListener("click", () => restore(state.redo, state.undo));
  $("save").addEventListener("click", failing(save));
  $("delete-point").addEventListener("click", deleteSelected);
  $("color-text").addEventListener("change", () => setColor($("color-text").value));
  $("color-picker").addEventListener("input", () => setColor($("color-picker").value));
  $("radius").addEventListener("change", () => setRadius($("radius").value));
  $("reference-file").addEventListener("change", () => { if ($("reference-file").files[0]) openReference($("reference-file").files[0]); });
  $("reference").addEventListener("click", pickReference);
  setUpPointer($("scan-view"));
  document.addEventListener("keydown", onKey);
  failing(showGallery)();
}

// For tests and the documentation's screenshots.
window.studio = {state, previewColorAt, openScan, select: (index) => { state.selected = index; updateControls(); draw(); }};
setUp();
