// samia annotate: a thin client over the server's annotation sessions (no build step, no CDN).
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const client = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now()).replace(/-/g, "");
const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const ui = {
  cases: document.getElementById("cases"), problems: document.getElementById("problems"),
  status: document.getElementById("status"), mode: document.getElementById("mode"),
  slicebar: document.getElementById("slicebar"), slice: document.getElementById("slice"),
  sliceinfo: document.getElementById("sliceinfo"), radius: document.getElementById("radius"),
  preset: document.getElementById("preset"), objects: document.getElementById("objects"),
  objectname: document.getElementById("objectname"), draftinfo: document.getElementById("draftinfo"),
};
const view = { state: null, plane: null, overlay: null, scale: 1, tool: "point", drag: null, polygon: [], busy: false, heartbeat: null };
window.samiaView = view; // for the end-to-end test and the browser console

function say(text, isError) {
  ui.status.textContent = text;
  ui.status.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const options = { method, headers: { "X-Samia-Token": token, "X-Samia-Client": client } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const content = isJson ? await response.json() : await response.blob();
  if (!response.ok) {
    const error = new Error(isJson && content.detail ? content.detail : response.status + " " + response.statusText);
    error.status = response.status;
    error.reason = isJson ? content.reason : undefined;
    throw error;
  }
  return content;
}

function loadImage(source) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the image could not be shown"));
    image.src = source;
  });
}

async function refreshCases() {
  const listing = await api("GET", "api/cases");
  ui.mode.textContent = (listing.mode === "manual" ? "manual (no model)" : "SAM-assisted")
    + (listing.rater ? ` \u00b7 rater ${listing.rater}` : "");
  ui.cases.replaceChildren(...listing.cases.map((item) => {
    const row = document.createElement("li");
    row.dataset.case = item.id;
    row.title = item.error || "";
    if (item.status === "error") row.classList.add("error");
    if (view.state && view.state.case === item.id) row.classList.add("current");
    const name = document.createElement("span");
    name.textContent = item.name;
    const sub = document.createElement("span");
    sub.className = "sub";
    sub.textContent = item.status === "error" ? "error" : item.status + (item.objects ? " \u00b7 " + item.objects : "");
    row.append(name, sub);
    row.addEventListener("click", () => openCase(item.id, false));
    return row;
  }));
  ui.problems.textContent = listing.problems.length ? listing.problems.length + " file(s) skipped: " + listing.problems.join("; ") : "";
}

async function openCase(id, force) {
  try {
    if (view.state && view.state.case !== id) await api("POST", "api/cases/" + view.state.case + "/close", {});
    const state = await api("POST", "api/cases/" + id + "/open", { force });
    view.polygon = [];
    await show(state, true);
    keepLease(state.case, state.lease_seconds);
    say("opened " + state.name);
  } catch (error) {
    if (error.reason === "held" && confirm(error.message + "\n\nTake it over here?")) return openCase(id, true);
    say(error.message, true);
  }
  refreshCases().catch((error) => say(error.message, true));
}

// The case stays ours while the page sends heartbeats; a lost lease is said, an expired one renewed.
function keepLease(id, seconds) {
  clearInterval(view.heartbeat);
  view.heartbeat = setInterval(() => {
    api("POST", "api/cases/" + id + "/heartbeat", {}).catch((error) => lostLease(id, error));
  }, Math.max(1000, (seconds * 1000) / 3));
}

function lostLease(id, error) {
  if (error.reason === "expired") return openCase(id, false);
  clearInterval(view.heartbeat);
  say(error.message, true);
}

async function show(state, newPlane) {
  const old = view.state;
  view.state = state;
  if (newPlane || !old || old.slice !== state.slice || old.preset !== state.preset || old.case !== state.case) {
    const blob = await api("GET", "api/cases/" + state.case + "/plane.png?index=" + state.slice);
    const url = URL.createObjectURL(blob);
    view.plane = await loadImage(url);
    URL.revokeObjectURL(url);
  }
  view.overlay = await loadImage(state.overlay);
  const [height, width] = state.shape;
  view.scale = Math.max(1, Math.min(720 / width, 640 / height));
  canvas.width = Math.round(width * view.scale);
  canvas.height = Math.round(height * view.scale);
  draw();
  ui.slicebar.hidden = !state.volume;
  ui.slice.max = String(state.depth - 1);
  ui.slice.value = String(state.slice);
  ui.sliceinfo.textContent = state.slice + 1 + " / " + state.depth;
  ui.preset.replaceChildren(...state.presets.map((name) => new Option(name, name, false, name === state.preset)));
  ui.objects.replaceChildren(...state.objects.map((item) => {
    const row = document.createElement("li");
    row.dataset.label = item.label;
    if (item.label === state.label) row.classList.add("current");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = item.color;
    const name = document.createElement("span");
    name.textContent = item.name + " (" + item.label + ")";
    const sub = document.createElement("span");
    sub.className = "sub";
    sub.textContent = item.slices.length ? (state.volume ? item.slices.length + item.propagated.length + " slices" : "accepted") : "";
    row.append(swatch, name, sub);
    row.addEventListener("click", () => run("POST", "object", { label: item.label }));
    return row;
  }));
  document.getElementById("undo").disabled = !state.can_undo;
  document.getElementById("redo").disabled = !state.can_redo;
  document.getElementById("propagate").disabled = !state.volume || state.mode === "manual";
  const iou = state.draft.predicted_iou === null ? "" : ", predicted IoU " + state.draft.predicted_iou.toFixed(3);
  ui.draftinfo.textContent = state.label ? "object " + state.label + ": " + state.draft.edits + " edit(s), " + state.draft.pixels + " px" + iou : "click or draw to start an object (or name it first)";
}

function draw() {
  context.imageSmoothingEnabled = false;
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (view.plane) context.drawImage(view.plane, 0, 0, canvas.width, canvas.height);
  if (view.overlay) context.drawImage(view.overlay, 0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#ffff00";
  context.lineWidth = 1.5;
  if (view.drag && view.tool === "box") {
    const [x0, y0] = view.drag.points[0];
    const [x1, y1] = view.drag.points[view.drag.points.length - 1];
    context.strokeRect(x0 * view.scale, y0 * view.scale, (x1 - x0) * view.scale, (y1 - y0) * view.scale);
  }
  const line = view.drag && view.tool !== "box" ? view.drag.points : view.polygon;
  if (line.length) {
    context.beginPath();
    line.forEach(([x, y], i) => (i ? context.lineTo : context.moveTo).call(context, (x + 0.5) * view.scale, (y + 0.5) * view.scale));
    context.stroke();
  }
}

async function run(method, action, body) {
  if (!view.state || view.busy) return;
  view.busy = true;
  let refused = null;
  try {
    const state = await api(method, "api/cases/" + view.state.case + "/" + action, body);
    await show(state, false);
    const written = state.written_slices ? ", " + state.written_slices.length + " slices written" : "";
    say(action + " \u00b7 " + state.latency_ms.toFixed(0) + " ms" + written);
    if (action === "accept" || action === "propagate") refreshCases().catch((error) => say(error.message, true));
  } catch (error) {
    refused = error;
    say(error.message, true);
  } finally {
    view.busy = false;
  }
  // nothing drawn is dropped unasked: accept first, or stay on the object
  if (refused && refused.reason === "unaccepted" && confirm(refused.message + "\n\nOK: accept it, then go on. Cancel: keep drawing it.")) {
    await run("POST", "accept", {});
    if (!view.state.draft.edits) await run(method, action, body);
  } else if (refused && (refused.reason === "expired" || refused.reason === "taken_over")) {
    lostLease(view.state.case, refused);
  }
}

function pixel(event) {
  const bounds = canvas.getBoundingClientRect();
  const [height, width] = view.state.shape;
  const x = Math.floor(((event.clientX - bounds.left) / bounds.width) * width);
  const y = Math.floor(((event.clientY - bounds.top) / bounds.height) * height);
  return [Math.min(Math.max(x, 0), width - 1), Math.min(Math.max(y, 0), height - 1)];
}

// The first edit of a case (no object started) starts one, named from the box if a name is typed.
function edit(body) {
  if (!view.state.label) {
    body.name = ui.objectname.value.trim() || null;
    ui.objectname.value = "";
  }
  run("POST", "edit", body);
}

canvas.addEventListener("contextmenu", (event) => event.preventDefault());
canvas.addEventListener("mousedown", (event) => {
  if (!view.state) return;
  canvas.focus();
  const at = pixel(event);
  if (view.tool === "point") {
    edit({ kind: "point", coords: at, positive: !(event.button === 2 || event.shiftKey) });
  } else if (view.tool === "polygon") {
    view.polygon.push(at);
    draw();
  } else {
    view.drag = { points: [at] };
  }
});
canvas.addEventListener("mousemove", (event) => {
  if (!view.drag) return;
  const at = pixel(event);
  if (view.tool === "box") view.drag.points[1] = at;
  else view.drag.points.push(at);
  draw();
});
window.addEventListener("mouseup", (event) => {
  if (!view.drag) return;
  const points = view.drag.points;
  view.drag = null;
  if (view.tool === "box") {
    const [x0, y0] = points[0];
    const [x1, y1] = points[points.length - 1];
    edit({ kind: "box", coords: [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)] });
  } else {
    edit({ kind: view.tool, coords: points.flat(), radius: Number(ui.radius.value) || 4 });
  }
  draw();
});

function closePolygon() {
  if (view.polygon.length >= 3) edit({ kind: "polygon", coords: view.polygon.flat() });
  else say("a polygon needs three vertices", true);
  view.polygon = [];
  draw();
}

function chooseTool(tool) {
  view.tool = tool;
  view.polygon = [];
  document.querySelectorAll("#tools button").forEach((button) => button.classList.toggle("active", button.dataset.tool === tool));
  draw();
}

function newObject() {
  const name = ui.objectname.value.trim();
  run("POST", "object", { name: name || null });
  ui.objectname.value = "";
}

function goToSlice(index) {
  if (!view.state || !view.state.volume) return;
  const target = Math.min(Math.max(index, 0), view.state.depth - 1);
  if (target !== view.state.slice) run("POST", "slice", { index: target });
}

document.querySelectorAll("#tools button").forEach((button) => button.addEventListener("click", () => chooseTool(button.dataset.tool)));
document.getElementById("undo").addEventListener("click", () => run("POST", "undo", {}));
document.getElementById("redo").addEventListener("click", () => run("POST", "redo", {}));
document.getElementById("accept").addEventListener("click", () => run("POST", "accept", {}));
document.getElementById("propagate").addEventListener("click", () => run("POST", "propagate", {}));
document.getElementById("newobject").addEventListener("click", newObject);
ui.preset.addEventListener("change", () => run("POST", "preset", { name: ui.preset.value }));
ui.slice.addEventListener("change", () => goToSlice(Number(ui.slice.value)));
canvas.addEventListener("wheel", (event) => {
  if (!view.state || !view.state.volume) return;
  event.preventDefault();
  goToSlice(view.state.slice + (event.deltaY > 0 ? 1 : -1));
}, { passive: false });

document.addEventListener("keydown", (event) => {
  if (event.target === ui.objectname) {
    if (event.key === "Enter") newObject();
    return;
  }
  const key = event.key.toLowerCase();
  const tools = { p: "point", b: "box", r: "brush", e: "erase", g: "polygon" };
  if ((event.ctrlKey || event.metaKey) && key === "z") run("POST", event.shiftKey ? "redo" : "undo", {});
  else if ((event.ctrlKey || event.metaKey) && key === "y") run("POST", "redo", {});
  else if (event.ctrlKey || event.metaKey || event.altKey) return;
  else if (tools[key]) chooseTool(tools[key]);
  else if (key === "enter") (view.tool === "polygon" && view.polygon.length ? closePolygon() : run("POST", "accept", {}));
  else if (key === "escape") { view.polygon = []; draw(); }
  else if (key === "n") newObject();
  else if (key === "t") run("POST", "propagate", {});
  else if (key === "pageup" || key === "arrowup") goToSlice(view.state ? view.state.slice - 1 : 0);
  else if (key === "pagedown" || key === "arrowdown") goToSlice(view.state ? view.state.slice + 1 : 0);
  else if (key === "[") ui.radius.value = Math.max(1, Number(ui.radius.value) - 1);
  else if (key === "]") ui.radius.value = Number(ui.radius.value) + 1;
  else return;
  event.preventDefault();
});
window.addEventListener("pagehide", () => {
  if (view.state) fetch("api/cases/" + view.state.case + "/close", { method: "POST", keepalive: true, headers: { "X-Samia-Token": token, "X-Samia-Client": client, "Content-Type": "application/json" }, body: "{}" });
});

refreshCases().then(() => {
  const first = ui.cases.querySelector("li:not(.error)");
  if (first) openCase(first.dataset.case, false);
}).catch((error) => say(error.message, true));
