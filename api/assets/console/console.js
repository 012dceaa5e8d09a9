// The web console: a client of the public REST API only (the same calls as the CLI).
// No inline script, no asset from another host; the token lives in sessionStorage and
// is sent as a header, never in a URL.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN = "faas-console-token";
const FINAL = ["completed", "failed", "timed_out", "cancelled"];
const COLORS = { completed: "#2e9d57", failed: "#d0453a", timed_out: "#e08a1e", cancelled: "#9a8c2a", running: "#3b7ddd", pending: "#9aa3b5" };

const ui = { me: null, functions: [], selected: null, refresh: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

// --- the API ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body, headers = {}) {
  const token = sessionStorage.getItem(TOKEN);
  const h = { ...headers };
  if (token) h.Authorization = "Bearer " + token;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData) && !(body instanceof Blob)) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers: h, body: payload });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!res.ok) {
    if (res.status === 401 && token) logout("Your session ended: log in again.");
    const message = data && data.message ? data.message : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, data && data.error, message);
  }
  return data;
}

// XMLHttpRequest for uploads: fetch has no upload progress.
function upload(method, path, body, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    const token = sessionStorage.getItem(TOKEN);
    if (token) xhr.setRequestHeader("Authorization", "Bearer " + token);
    progress.hidden = false;
    progress.value = 0;
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = (100 * e.loaded) / e.total; };
    xhr.onload = () => {
      progress.hidden = true;
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (_) { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data && data.error, (data && data.message) || `${xhr.status}`));
    };
    xhr.onerror = () => { progress.hidden = true; reject(new Error("the upload was cut")); };
    xhr.send(body);
  });
}

function showError(target, e) {
  $(target).textContent = e ? e.message || String(e) : "";
}

// --- session ------------------------------------------------------------------

async function login(ev) {
  ev.preventDefault();
  showError("login-error", null);
  try {
    const res = await api("POST", "/auth/login", { username: $("login-username").value, password: $("login-password").value });
    sessionStorage.setItem(TOKEN, res.token);
    $("login-password").value = "";
    await start();
  } catch (e) {
    showError("login-error", e);
  }
}

function logout(message) {
  sessionStorage.removeItem(TOKEN);
  clearInterval(ui.refresh);
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = typeof message === "string" ? message : "";
}

async function start() {
  try {
    ui.me = await api("GET", "/api/me");
  } catch (e) {
    logout(e.status === 401 ? "" : e.message);
    return;
  }
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("whoami").textContent = `${ui.me.username} (${ui.me.role})`;
  $("admin-tab").hidden = ui.me.role !== "admin";
  show("functions");
  clearInterval(ui.refresh);
  ui.refresh = setInterval(() => {
    if (!$("tab-executions").hidden && $("auto-refresh").checked) loadExecutions().catch((e) => showError("app-error", e));
  }, 3000);
}

function show(tab) {
  for (const b of document.querySelectorAll("button.tab")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const body of document.querySelectorAll(".tab-body")) body.hidden = body.id !== "tab-" + tab;
  showError("app-error", null);
  const load = { functions: loadFunctions, executions: loadExecutions, secrets: loadSecrets, admin: loadAdmin }[tab];
  load().catch((e) => showError("app-error", e));
}

// --- functions ----------------------------------------------------------------

async function loadFunctions() {
  const res = await api("GET", "/api/functions");
  ui.functions = res.functions || res;
  const rows = $("function-rows");
  rows.replaceChildren();
  for (const f of ui.functions) {
    const row = el("tr", { "data-testid": "function-row", "data-id": f.id, onclick: () => select(f) },
      el("td", {}, f.name), el("td", {}, f.runtime), el("td", {}, `${f.timeout_secs} s`),
      el("td", {}, el("code", {}, f.id.slice(0, 8))));
    if (ui.selected && ui.selected.id === f.id) row.classList.add("selected");
    rows.append(row);
  }
  const filter = $("filter-function");
  const keep = filter.value;
  filter.replaceChildren(el("option", { value: "" }, "all"), ...ui.functions.map((f) => el("option", { value: f.id }, f.name)));
  filter.value = keep;
}

async function deploy(ev) {
  ev.preventDefault();
  showError("deploy-error", null);
  const name = $("deploy-name").value.trim();
  const file = $("deploy-file").files[0];
  const image = $("deploy-image").value.trim();
  const timeout = $("deploy-timeout").value;
  const memory = $("deploy-memory").value;
  try {
    let f;
    if (file) {
      const form = new FormData();
      form.append("name", name);
      form.append("timeout_secs", timeout);
      form.append("memory_mb", memory);
      form.append("module", file, file.name);
      f = await upload("POST", "/api/functions", form, $("deploy-progress"));
    } else if (image) {
      f = await api("POST", "/api/functions", { name, image_url: image, timeout_secs: Number(timeout), memory_mb: Number(memory) });
    } else {
      throw new Error("choose a wasm file or name an image");
    }
    $("deploy-form").reset();
    await loadFunctions();
    select(f);
  } catch (e) {
    showError("deploy-error", e);
  }
}

function select(f) {
  ui.selected = f;
  for (const row of document.querySelectorAll("[data-testid=function-row]")) row.classList.toggle("selected", row.dataset.id === f.id);
  $("function-detail").hidden = false;
  $("detail-name").textContent = f.name;
  for (const id of ["execution-result", "execution-output", "execution-logs"]) $(id).textContent = "";
  $("execution-status").textContent = "-";
  loadObjects().catch((e) => showError("app-error", e));
}

async function deleteFunction() {
  const f = ui.selected;
  if (!f || !confirm(`Delete ${f.name}, its objects and its executions' access to them?`)) return;
  try {
    await api("DELETE", `/api/functions/${encodeURIComponent(f.id)}`);
    ui.selected = null;
    $("function-detail").hidden = true;
    await loadFunctions();
  } catch (e) {
    showError("app-error", e);
  }
}

// --- invoke: submit, then the events stream (polling if it breaks) -------------

function showExecution(e) {
  const status = $("execution-status");
  status.textContent = e.status;
  status.className = "status-" + e.status;
  if (e.result !== undefined && e.result !== null) $("execution-result").textContent = JSON.stringify(e.result, null, 2);
  else if (FINAL.includes(e.status)) $("execution-result").textContent = e.error || "";
  $("execution-output").textContent = e.output || "";
  $("execution-logs").textContent = e.logs || "";
}

async function invoke(ev) {
  ev.preventDefault();
  showError("app-error", null);
  let input;
  try {
    input = JSON.parse($("invoke-input").value || "{}");
  } catch (e) {
    showError("app-error", new Error("the input is not JSON: " + e.message));
    return;
  }
  try {
    const e = await api("POST", `/api/functions/${encodeURIComponent(ui.selected.id)}/invoke?wait=0`, { input });
    showExecution(e);
    if (!FINAL.includes(e.status)) await follow(e.id);
  } catch (e) {
    showError("app-error", e);
  }
}

async function follow(id) {
  try {
    await stream(id);
  } catch (_) {
    for (;;) {
      const e = await api("GET", `/api/executions/${id}?wait=20`);
      showExecution(e);
      if (FINAL.includes(e.status)) return;
    }
  }
}

// Server-sent events over fetch (EventSource cannot send the Authorization header).
async function stream(id) {
  const res = await fetch(`/api/executions/${id}/events`, { headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN) } });
  if (!res.ok || !res.body) throw new Error("no event stream");
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      last = JSON.parse(data);
      showExecution(last);
    }
  }
  if (!last || !FINAL.includes(last.status)) throw new Error("the stream ended early");
}

// --- objects ------------------------------------------------------------------

async function loadObjects() {
  const fid = encodeURIComponent(ui.selected.id);
  const res = await api("GET", `/api/function-objects/${fid}`);
  const rows = $("object-rows");
  rows.replaceChildren();
  for (const o of res.objects || []) {
    rows.append(el("tr", {},
      el("td", {}, o.name), el("td", {}, `${o.size} B`),
      el("td", {}, el("button", { onclick: () => download(o.name) }, "Download")),
      el("td", {}, el("button", { class: "danger", onclick: () => removeObject(o.name) }, "Delete"))));
  }
}

async function download(name) {
  try {
    const path = `/api/function-objects/${encodeURIComponent(ui.selected.id)}/${encodeURIComponent(name)}`;
    const res = await fetch(path, { headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN) } });
    if (!res.ok) throw new Error(`download failed: ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    showError("app-error", e);
  }
}

async function removeObject(name) {
  if (!confirm(`Delete ${name}?`)) return;
  try {
    await api("DELETE", `/api/function-objects/${encodeURIComponent(ui.selected.id)}/${encodeURIComponent(name)}`);
    await loadObjects();
  } catch (e) {
    showError("app-error", e);
  }
}

async function uploadObject(ev) {
  ev.preventDefault();
  const file = $("object-file").files[0];
  if (!file) return;
  try {
    const form = new FormData();
    form.append("file", file, file.name);
    const path = `/api/function-objects/${encodeURIComponent(ui.selected.id)}/${encodeURIComponent(file.name)}`;
    await upload("POST", path, form, $("object-progress"));
    $("object-form").reset();
    await loadObjects();
  } catch (e) {
    showError("app-error", e);
  }
}

// --- executions and the chart -------------------------------------------------

async function loadExecutions() {
  const q = new URLSearchParams({ limit: "50" });
  if ($("filter-function").value) q.set("function_id", $("filter-function").value);
  if ($("filter-status").value) q.set("status", $("filter-status").value);
  const res = await api("GET", "/api/executions?" + q);
  const names = new Map(ui.functions.map((f) => [f.id, f.name]));
  const rows = $("execution-rows");
  rows.replaceChildren();
  for (const e of res.executions) {
    const cancel = FINAL.includes(e.status) ? "" : el("button", { class: "danger", onclick: (ev) => { ev.stopPropagation(); cancelExecution(e.id); } }, "Cancel");
    rows.append(el("tr", { "data-testid": "execution-row", onclick: () => detail(e.id) },
      el("td", {}, new Date(e.created_at).toLocaleTimeString()),
      el("td", {}, names.get(e.function_id) || e.function_id.slice(0, 8)),
      el("td", { class: "status-" + e.status }, e.status),
      el("td", {}, e.duration_ms ?? ""), el("td", {}, cancel)));
  }
  await chart();
}

async function detail(id) {
  try {
    const e = await api("GET", `/api/executions/${id}`);
    $("execution-detail").hidden = false;
    $("execution-detail").textContent = JSON.stringify(e, null, 2);
  } catch (err) {
    showError("app-error", err);
  }
}

async function cancelExecution(id) {
  try {
    await api("POST", `/api/executions/${id}/cancel`, {});
    await loadExecutions();
  } catch (e) {
    showError("app-error", e);
  }
}

// Executions of the last hour (at most 1,000, newest first), per minute.
async function lastHour() {
  const since = Date.now() - 3600 * 1000;
  const all = [];
  let cursor = null;
  for (let page = 0; page < 5; page++) {
    const q = new URLSearchParams({ limit: "200" });
    if (cursor) q.set("cursor", cursor);
    const res = await api("GET", "/api/executions?" + q);
    for (const e of res.executions) if (Date.parse(e.created_at) >= since) all.push(e);
    cursor = res.next_cursor;
    const oldest = res.executions[res.executions.length - 1];
    if (!cursor || !oldest || Date.parse(oldest.created_at) < since) break;
  }
  const minutes = Array.from({ length: 60 }, () => ({ counts: {}, durations: [] }));
  for (const e of all) {
    const slot = 59 - Math.min(59, Math.floor((Date.now() - Date.parse(e.created_at)) / 60000));
    minutes[slot].counts[e.status] = (minutes[slot].counts[e.status] || 0) + 1;
    if (e.duration_ms != null) minutes[slot].durations.push(e.duration_ms);
  }
  return minutes;
}

function quantile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.round((sorted.length - 1) * q)];
}

async function chart() {
  const minutes = await lastHour();
  const box = $("chart");
  box.replaceChildren();
  const W = 640, H = 200, pad = 24, bw = (W - 2 * pad) / 60;
  const maxCount = Math.max(1, ...minutes.map((m) => Object.values(m.counts).reduce((a, b) => a + b, 0)));
  const p = minutes.map((m) => [quantile(m.durations, 0.5), quantile(m.durations, 0.99)]);
  const maxMs = Math.max(1, ...p.flat().filter((v) => v != null));
  minutes.forEach((m, i) => {
    let y = H - pad;
    for (const status of Object.keys(COLORS)) {
      const n = m.counts[status] || 0;
      if (!n) continue;
      const h = ((H - 2 * pad) * n) / maxCount;
      y -= h;
      box.append(svg("rect", { x: pad + i * bw, y, width: Math.max(1, bw - 1), height: h, fill: COLORS[status] }));
    }
  });
  for (const [k, color] of [[0, "#1d2330"], [1, "#b04ad0"]]) {
    const pts = p.map((v, i) => (v[k] == null ? null : `${pad + i * bw + bw / 2},${H - pad - ((H - 2 * pad) * v[k]) / maxMs}`)).filter(Boolean);
    if (pts.length > 1) box.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }));
  }
  box.append(svg("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: "#999" }));
  const total = minutes.reduce((a, m) => a + Object.values(m.counts).reduce((x, y) => x + y, 0), 0);
  const all = minutes.flatMap((m) => m.durations);
  $("chart-legend").replaceChildren(
    ...Object.entries(COLORS).map(([s, c]) => { const sp = el("span", {}, "\u25A0 " + s); sp.style.color = c; return sp; }),
    el("span", {}, `total ${total}, peak ${maxCount}/min`),
    el("span", {}, `p50 ${quantile(all, 0.5) ?? "-"} ms (black line), p99 ${quantile(all, 0.99) ?? "-"} ms (purple), scale ${maxMs} ms`));
}

// --- secrets ------------------------------------------------------------------

async function loadSecrets() {
  const res = await api("GET", "/api/secrets");
  const rows = $("secret-rows");
  rows.replaceChildren();
  for (const s of res.secrets || res) {
    const value = el("input", { type: "password", placeholder: "new value", autocomplete: "off" });
    rows.append(el("tr", {},
      el("td", {}, s.name), el("td", {}, s.updated_at ? new Date(s.updated_at).toLocaleString() : ""),
      el("td", {}, value, el("button", { onclick: () => rotate(s.id, value) }, "Rotate")),
      el("td", {}, el("button", { class: "danger", onclick: () => removeSecret(s) }, "Delete"))));
  }
}

async function createSecret(ev) {
  ev.preventDefault();
  try {
    await api("POST", "/api/secrets", { name: $("secret-name").value.trim(), value: $("secret-value").value });
    $("secret-form").reset();
    await loadSecrets();
  } catch (e) {
    showError("app-error", e);
  }
}

async function rotate(id, input) {
  try {
    await api("PUT", `/api/secrets/${encodeURIComponent(id)}`, { value: input.value });
    input.value = "";
    await loadSecrets();
  } catch (e) {
    showError("app-error", e);
  }
}

async function removeSecret(s) {
  if (!confirm(`Delete the secret ${s.name}?`)) return;
  try {
    await api("DELETE", `/api/secrets/${encodeURIComponent(s.id)}`);
    await loadSecrets();
  } catch (e) {
    showError("app-error", e);
  }
}

// --- admin --------------------------------------------------------------------

async function loadAdmin() {
  const users = await api("GET", "/api/users");
  $("user-rows").replaceChildren(...(users.users || users).map((u) =>
    el("tr", {}, el("td", {}, u.username), el("td", {}, u.role), el("td", {}, new Date(u.created_at).toLocaleDateString()))));
  const workers = await api("GET", "/api/workers");
  $("worker-rows").replaceChildren(...(workers.workers || []).map((w) =>
    el("tr", {}, el("td", {}, w.worker_id.slice(0, 12)), el("td", {}, `${w.running}/${w.max_concurrent} busy`),
      el("td", {}, (w.runtimes || []).join(", ")), el("td", {}, new Date(w.last_seen).toLocaleTimeString()))));
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(""));
  for (const b of document.querySelectorAll("button.tab")) b.addEventListener("click", () => show(b.dataset.tab));
  $("deploy-form").addEventListener("submit", deploy);
  $("invoke-form").addEventListener("submit", invoke);
  $("object-form").addEventListener("submit", uploadObject);
  $("delete-function").addEventListener("click", deleteFunction);
  $("secret-form").addEventListener("submit", createSecret);
  for (const id of ["filter-function", "filter-status"]) $(id).addEventListener("change", () => loadExecutions().catch((e) => showError("app-error", e)));
  if (sessionStorage.getItem(TOKEN)) start(); else logout("");
});
