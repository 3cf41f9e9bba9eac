// The click-to-segment page: upload, prompt, draw masks, download. Talks to the robosam HTTP API.
"use strict";

const COLORS = [[30, 144, 255], [255, 99, 71], [50, 205, 50], [255, 215, 0], [186, 85, 211], [0, 206, 209],
  [255, 140, 0], [199, 21, 133], [127, 255, 0], [70, 130, 180]];
const $ = (id) => document.getElementById(id);
const canvas = $("view");
const ctx = canvas.getContext("2d");
const state = { imageId: null, fileName: "", image: null, points: [], labels: [], box: null, result: null,
  shown: [], drag: null, busy: 0, seq: 0 };

$("api-key").value = localStorage.getItem("robosam-api-key") || "";
$("api-key").addEventListener("change", () => localStorage.setItem("robosam-api-key", $("api-key").value));

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if ($("api-key").value) headers["X-API-Key"] = $("api-key").value;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function enable(on) {
  for (const id of ["clear", "auto", "text", "ground"]) $(id).disabled = !on;
}

$("file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const bitmap = await createImageBitmap(file).catch(() => null);
  if (!bitmap) { setStatus("This file is not an image the browser can read.", true); return; }
  state.image = bitmap; state.fileName = file.name; state.imageId = null;
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  clearPrompts();
  setStatus(`Uploading and embedding ${file.name} ...`);
  enable(false);
  try {
    const body = await api("/images", { method: "POST", body: file,
      headers: { "Content-Type": file.type || "application/octet-stream" } });
    state.imageId = body.id;
    enable(true);
    setStatus(`Ready: ${body.width}x${body.height}, embedded in ${body.encode_s.toFixed(2)} s. Click the image.`);
  } catch (error) { setStatus(`Upload failed: ${error.message}`, true); }
});

function imagePoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
    (event.clientY - rect.top) * canvas.height / rect.height];
}

canvas.addEventListener("contextmenu", (event) => event.preventDefault());
canvas.addEventListener("mousedown", (event) => {
  if (!state.imageId) return;
  state.drag = { start: imagePoint(event), end: null, button: event.button };
});
canvas.addEventListener("mousemove", (event) => {
  if (!state.drag) return;
  state.drag.end = imagePoint(event);
  draw();
});
canvas.addEventListener("mouseup", (event) => {
  const drag = state.drag;
  state.drag = null;
  if (!drag || !state.imageId) return;
  const end = imagePoint(event);
  const [x0, y0] = drag.start;
  const moved = Math.hypot(end[0] - x0, end[1] - y0) * canvas.getBoundingClientRect().width / canvas.width;
  if (moved > 5 && drag.button === 0) {
    state.box = [Math.min(x0, end[0]), Math.min(y0, end[1]), Math.max(x0, end[0]), Math.max(y0, end[1])];
  } else {
    state.points.push([x0, y0]);
    state.labels.push(drag.button === 2 ? 0 : 1);
  }
  segment();
});

function clearPrompts() {
  state.points = []; state.labels = []; state.box = null; state.result = null; state.shown = [];
  showScores([]);
  draw();
}
$("clear").addEventListener("click", clearPrompts);

async function request(path, payload, what) {
  const seq = ++state.seq;
  setStatus(`${what} ...`);
  try {
    const body = await api(`/images/${state.imageId}/${path}`, { method: "POST", body: JSON.stringify(payload),
      headers: { "Content-Type": "application/json" } });
    if (seq !== state.seq) return null;  // a newer request superseded this one
    return body;
  } catch (error) {
    if (seq === state.seq) setStatus(`${what} failed: ${error.message}`, true);
    return null;
  }
}

async function segment() {
  draw();
  if (!state.points.length && !state.box) { clearPrompts(); return; }
  const payload = { multimask: state.points.length === 1 && !state.box };
  if (state.points.length) { payload.points = state.points; payload.labels = state.labels; }
  if (state.box) payload.boxes = [state.box];
  const body = await request("segment", payload, "Segmenting");
  if (!body) return;
  // the best-scoring mask of each object
  const best = new Map();
  body.masks.forEach((mask, i) => {
    const current = best.get(mask.object_id);
    if (current === undefined || mask.score > body.masks[current].score) best.set(mask.object_id, i);
  });
  show(body, [...best.values()], `${best.size} mask(s) in ${(1000 * body.timings.decoder_s).toFixed(0)} ms`);
}

$("auto").addEventListener("click", async () => {
  state.points = []; state.labels = []; state.box = null;
  const body = await request("auto", {}, "Segmenting everything");
  if (body) show(body, body.masks.map((_, i) => i), `${body.masks.length} mask(s) found`);
});

$("ground-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  const body = await request("ground", { text }, `Looking for "${text}"`);
  if (body) show(body, body.masks.map((_, i) => i), `${body.masks.length} match(es) for "${text}"`);
});

function show(body, indexes, message) {
  state.result = body;
  state.shown = indexes.map((i) => ({ record: body.masks[i], mask: decodeRle(body.masks[i].segmentation) }));
  showScores(state.shown.map((s) => s.record));
  draw();
  setStatus(message);
}

function showScores(records) {
  $("scores").replaceChildren(...records.map((record, i) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.style.background = `rgb(${COLORS[i % COLORS.length].join(",")})`;
    item.append(swatch, `score ${record.score.toFixed(3)}  area ${record.area}`);
    return item;
  }));
}

function maskLayer(alpha) {
  const layer = new ImageData(canvas.width, canvas.height);
  state.shown.forEach(({ mask }, i) => {
    const [r, g, b] = COLORS[i % COLORS.length];
    for (let p = 0; p < mask.length; p++) {
      if (!mask[p]) continue;
      layer.data[4 * p] = r; layer.data[4 * p + 1] = g; layer.data[4 * p + 2] = b; layer.data[4 * p + 3] = alpha;
    }
  });
  return layer;
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.image) ctx.drawImage(state.image, 0, 0);
  if (state.shown.length) {
    const overlay = new OffscreenCanvas(canvas.width, canvas.height);
    overlay.getContext("2d").putImageData(maskLayer(140), 0, 0);
    ctx.drawImage(overlay, 0, 0);
  }
  canvas.dataset.masks = String(state.shown.length);
  const scale = Math.max(canvas.width, canvas.height) / 600;
  ctx.lineWidth = 2 * scale;
  const box = state.drag && state.drag.end ? [...state.drag.start, ...state.drag.end] : state.box;
  if (box) { ctx.strokeStyle = "#00e000"; ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]); }
  state.points.forEach(([x, y], i) => {
    ctx.beginPath();
    ctx.arc(x, y, 6 * scale, 0, 2 * Math.PI);
    ctx.fillStyle = state.labels[i] ? "#00c000" : "#e00000";
    ctx.fill(); ctx.strokeStyle = "#fff"; ctx.stroke();
  });
  const ready = state.shown.length > 0;
  $("download-png").disabled = !ready; $("download-json").disabled = !ready;
}

function download(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function stem() { return (state.fileName || "image").replace(/\.[^.]*$/, ""); }

$("download-png").addEventListener("click", () => {
  // one colour per mask on black, at the image's own size
  const out = new OffscreenCanvas(canvas.width, canvas.height);
  const octx = out.getContext("2d");
  octx.fillStyle = "#000"; octx.fillRect(0, 0, out.width, out.height);
  const layer = state.shown.length === 1 ? whiteLayer(state.shown[0].mask) : maskLayer(255);
  const tmp = new OffscreenCanvas(canvas.width, canvas.height);
  tmp.getContext("2d").putImageData(layer, 0, 0);
  octx.drawImage(tmp, 0, 0);
  out.convertToBlob({ type: "image/png" }).then((blob) => download(blob, `${stem()}_masks.png`));
});

function whiteLayer(mask) {
  const layer = new ImageData(canvas.width, canvas.height);
  for (let p = 0; p < mask.length; p++) {
    if (mask[p]) layer.data.fill(255, 4 * p, 4 * p + 4);
  }
  return layer;
}

$("download-json").addEventListener("click", () => {
  const coco = {
    images: [{ id: 1, file_name: state.fileName, width: canvas.width, height: canvas.height }],
    annotations: state.shown.map(({ record }, i) => ({ id: i + 1, image_id: 1, category_id: 1,
      segmentation: record.segmentation, bbox: record.bbox, area: record.area, score: record.score,
      iscrowd: 0 })),
    categories: [{ id: 1, name: "object" }],
    robosam: { image_id: state.imageId, points: state.points, labels: state.labels, box: state.box },
  };
  download(new Blob([JSON.stringify(coco)], { type: "application/json" }), `${stem()}_masks.json`);
});

draw();
