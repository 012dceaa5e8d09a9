// The API reference page: renders /api/openapi.json (OpenAPI 3.1) as a list of
// operations grouped by tag, with a form to try each one against this server.
// No inline script, no asset from another host; the token lives in sessionStorage.
"use strict";

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};

let spec = null;

function resolve(schema) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return (spec.components && spec.components.schemas && spec.components.schemas[name]) || schema;
  }
  return schema;
}

// A short example value of a schema, for the request body editor.
function example(schema, depth = 0) {
  schema = resolve(schema) || {};
  if (depth > 4) return null;
  if (schema.example !== undefined) return schema.example;
  const types = [].concat(schema.type || []);
  if (schema.properties || types.includes("object")) {
    const out = {};
    for (const [k, v] of Object.entries(schema.properties || {})) {
      if ((schema.required || []).includes(k)) out[k] = example(v, depth + 1);
    }
    return out;
  }
  if (types.includes("array")) return [];
  if (types.includes("integer") || types.includes("number")) return 0;
  if (types.includes("boolean")) return false;
  if (types.includes("string")) return "";
  if (schema.oneOf || schema.anyOf) return example((schema.oneOf || schema.anyOf)[0], depth + 1);
  return null;
}

function paramsTable(params) {
  const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "description")));
  for (const p of params) {
    table.append(el("tr", {}, el("td", {}, el("code", {}, p.name + (p.required ? " *" : ""))), el("td", {}, p.in), el("td", {}, p.description || "")));
  }
  return table;
}

function responsesTable(responses) {
  const table = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "meaning")));
  for (const [code, r] of Object.entries(responses || {})) {
    table.append(el("tr", {}, el("td", {}, el("code", {}, code)), el("td", {}, r.description || "")));
  }
  return table;
}

function tryForm(method, path, op) {
  const form = el("form", { class: "try" });
  const params = (op.parameters || []).filter((p) => p.in === "path" || p.in === "query");
  const inputs = {};
  for (const p of params) {
    const input = el("input", { name: p.name, placeholder: `${p.name} (${p.in})` });
    inputs[p.name] = [p, input];
    form.append(input);
  }
  const json = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  let body = null;
  if (json) {
    body = el("textarea", { "aria-label": "request body (JSON)" });
    body.value = JSON.stringify(example(json.schema), null, 2);
    form.append(el("div", {}, body));
  }
  const out = el("pre", { hidden: "" });
  form.append(el("button", { type: "submit" }, "Send"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const [name, [p, input]] of Object.entries(inputs)) {
      if (p.in === "path") url = url.replace(`{${name}}`, encodeURIComponent(input.value));
      else if (input.value !== "") query.set(name, input.value);
    }
    if ([...query].length) url += "?" + query;
    const headers = {};
    const token = sessionStorage.getItem("faas-docs-token");
    if (token) headers.Authorization = "Bearer " + token;
    if (body) headers["Content-Type"] = "application/json";
    out.hidden = false;
    out.textContent = "...";
    try {
      const res = await fetch(url, { method: method.toUpperCase(), headers, body: body ? body.value : undefined });
      const text = await res.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
      out.textContent = `${res.status} ${res.statusText}\n\n${shown}`;
    } catch (e) {
      out.textContent = String(e);
    }
  });
  return form;
}

function operation(method, path, op) {
  const summary = el("summary", {}, el("span", { class: `method ${method}` }, method), el("code", {}, path), " ", op.summary || "");
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", {}, op.description));
  if ((op.parameters || []).length) body.append(paramsTable(op.parameters));
  body.append(el("h4", {}, "Responses"), responsesTable(op.responses), el("h4", {}, "Try it"), tryForm(method, path, op));
  const details = el("details", { class: "op", "data-search": `${method} ${path} ${(op.tags || []).join(" ")} ${op.summary || ""}`.toLowerCase() }, summary, body);
  return details;
}

function render() {
  const main = document.getElementById("operations");
  main.replaceChildren();
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(method, path, op));
    }
  }
  for (const [tag, ops] of [...byTag].sort((a, b) => a[0].localeCompare(b[0]))) {
    main.append(el("section", { "data-tag": tag }, el("h2", {}, tag), ...ops));
  }
  document.getElementById("version").textContent = (spec.info && spec.info.version) || "";
}

function filter(text) {
  const needle = text.trim().toLowerCase();
  for (const op of document.querySelectorAll("details.op")) {
    op.hidden = needle !== "" && !op.dataset.search.includes(needle);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const token = document.getElementById("token");
  token.value = sessionStorage.getItem("faas-docs-token") || "";
  token.addEventListener("input", () => sessionStorage.setItem("faas-docs-token", token.value.trim()));
  document.getElementById("filter").addEventListener("input", (e) => filter(e.target.value));
  try {
    const res = await fetch("/api/openapi.json");
    spec = await res.json();
    render();
  } catch (e) {
    document.getElementById("operations").textContent = "Cannot load /api/openapi.json: " + e;
  }
});
