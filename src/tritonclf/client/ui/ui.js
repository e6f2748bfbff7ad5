// The page of `tritonclf ui`. Labels, scores, limits and every refusal come from its server
// (api/models, api/classify); this file only shows them.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  model: $("model"), topK: $("top-k"), info: $("model-info"), status: $("status"),
  files: $("files"), choose: $("choose"), clear: $("clear"), drop: $("drop"),
  results: $("results"), card: $("card"),
};
const state = { models: new Map(), items: [] };

function showStatus(text) {
  ui.status.textContent = text;
  ui.status.hidden = !text;
}

function formatBytes(n) {
  if (n >= 1 << 20) return `${+(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${+(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} bytes`;
}

// The JSON answer, or an Error whose message is the one line to show.
async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new Error("cannot reach this page's server (tritonclf ui): is it still running?");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: reported below with the HTTP status
  }
  if (!response.ok || body === null) {
    throw new Error(body && body.error ? body.error : `tritonclf ui answered ${response.status} ${response.statusText}`);
  }
  return body;
}

async function loadModels() {
  try {
    const body = await api("api/models");
    state.models = new Map(body.models.map((m) => [m.name, m]));
    const previous = ui.model.value;
    ui.model.replaceChildren(...body.models.map((m) => new Option(m.name, m.name)));
    if (state.models.has(previous)) ui.model.value = previous;
    ui.model.disabled = false;
    showStatus("");
  } catch (err) {
    state.models = new Map();
    ui.model.replaceChildren();
    ui.model.disabled = true;
    showStatus(err.message);
  }
  showModel();
}

function currentModel() {
  return state.models.get(ui.model.value);
}

function showModel() {
  const m = currentModel();
  if (!m) {
    ui.info.textContent = "No model to call yet: add images to ask again.";
    return;
  }
  const versions = m.versions.length === 1 ? `version ${m.versions[0]}` : `versions ${m.versions.join(", ")}`;
  ui.info.textContent = `${m.name} · ${versions} · ${m.labels} labels · images up to ${formatBytes(m.max_image_bytes)}`;
  ui.topK.max = m.labels;
}

function topK() {
  const m = currentModel();
  const value = Math.max(1, Math.min(Number.parseInt(ui.topK.value, 10) || 5, m ? m.labels : Infinity));
  ui.topK.value = value;
  return value;
}

function makeItem(file) {
  const card = ui.card.content.firstElementChild.cloneNode(true);
  const img = card.querySelector("img");
  const url = URL.createObjectURL(file);
  img.addEventListener("error", () => card.querySelector(".thumb").classList.add("none"));
  img.src = url;
  card.querySelector(".name").textContent = file.name || "pasted image";
  ui.results.append(card);
  return { file, card, url, run: 0 };
}

function fail(item, message) {
  item.card.dataset.state = "refused";
  const error = item.card.querySelector(".error");
  error.textContent = message;
  error.hidden = false;
  item.card.querySelector(".meta").textContent = formatBytes(item.file.size);
}

function render(item, body, roundTripMs) {
  item.card.dataset.state = "done";
  const rows = body.predictions.map((p) => {
    const row = document.createElement("li");
    row.className = "prediction";
    row.title = `class ${p.index}, score ${p.score.toFixed(4)}`;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = p.label;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `${(100 * p.score).toFixed(1)}%`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0, Math.min(100, 100 * p.score))}%`;
    bar.append(fill);
    row.append(label, score, bar);
    return row;
  });
  item.card.querySelector(".predictions").replaceChildren(...rows);
  item.card.querySelector(".meta").textContent =
    `${formatBytes(item.file.size)} · Triton ${body.triton_ms} ms · round trip ${Math.round(roundTripMs)} ms`;
}

async function classify(item) {
  const run = ++item.run;
  item.card.dataset.state = "pending";
  item.card.querySelector(".predictions").replaceChildren();
  item.card.querySelector(".error").hidden = true;
  item.card.querySelector(".meta").textContent = `${formatBytes(item.file.size)} · classifying…`;
  const model = currentModel();
  if (!model) {
    fail(item, "not sent: no model to send it to (see the line above)");
    return;
  }
  if (item.file.size > model.max_image_bytes) {
    fail(item, `not sent: ${item.file.size} bytes, above the upload limit of ${model.max_image_bytes} bytes ` +
      `(${model.name} accepts no more)`);
    return;
  }
  const query = `model=${encodeURIComponent(model.name)}&top_k=${topK()}`;
  const started = performance.now();
  try {
    const body = await api(`api/classify?${query}`, {
      method: "POST", body: item.file, headers: { "Content-Type": "application/octet-stream" },
    });
    if (run === item.run) render(item, body, performance.now() - started);
  } catch (err) {
    if (run === item.run) fail(item, err.message);
  }
}

async function addFiles(files) {
  const list = [...files].filter((f) => f instanceof File);
  if (!list.length) return;
  if (!state.models.size) await loadModels();
  const items = list.map(makeItem);
  state.items.push(...items);
  ui.clear.hidden = false;
  items.forEach(classify);
}

function classifyAll() {
  showModel();
  state.items.forEach(classify);
}

ui.choose.addEventListener("click", () => ui.files.click());
ui.files.addEventListener("change", () => {
  addFiles(ui.files.files);
  ui.files.value = "";
});
ui.clear.addEventListener("click", () => {
  state.items.forEach((item) => URL.revokeObjectURL(item.url));
  state.items = [];
  ui.results.replaceChildren();
  ui.clear.hidden = true;
  ui.choose.focus();
});
ui.model.addEventListener("change", classifyAll);
ui.topK.addEventListener("change", () => {
  topK();
  classifyAll();
});
$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  topK();
  classifyAll();
});
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  ui.drop.classList.add("over");
});
document.addEventListener("dragleave", (event) => {
  if (!event.relatedTarget) ui.drop.classList.remove("over");
});
document.addEventListener("drop", (event) => {
  event.preventDefault();
  ui.drop.classList.remove("over");
  addFiles(event.dataTransfer.files);
});
document.addEventListener("paste", (event) => {
  const files = event.clipboardData ? [...event.clipboardData.files] : [];
  if (files.length) {
    event.preventDefault();
    addFiles(files);
  }
});

loadModels();
