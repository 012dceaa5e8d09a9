// A small JSON API as a wasi:http/proxy component built with componentize-js
// (StarlingMonkey's `fetch` event: the component exports wasi:http/incoming-handler).
// Served per request at /fn/<username>/<function>/... (or by `wasmtime serve -Scli`):
//
// - GET /: what the API offers, and `requests_served`, the number of requests this
//   instance has handled (always 1: every request gets a fresh instance);
// - GET /greet?name=<name>: {"greeting": "hello, <name>", "lang": "js"};
// - POST /sum with {"numbers": [..]}: {"sum": n, "count": n, "lang": "js"};
// - anything else: a JSON 404; a malformed or oversized body: a JSON 400.

const MAX_BODY = 1 << 20; // largest request body read (bytes)

let requestsServed = 0; // requests handled by this instance

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  requestsServed += 1;
  const url = new URL(request.url);
  const route = `${request.method} ${url.pathname}`;
  if (route === "GET /") {
    const routes = ["GET /greet?name=", "POST /sum"];
    return json(200, { routes, lang: "js", requests_served: requestsServed });
  }
  if (route === "GET /greet") {
    const name = url.searchParams.get("name") || "world";
    return json(200, { greeting: `hello, ${name}`, lang: "js" });
  }
  if (route === "POST /sum") {
    return sum(request);
  }
  return json(404, { error: "not_found", message: `no route ${url.pathname}` });
}

async function sum(request) {
  const bad = (message) => json(400, { error: "bad_request", message });
  const body = await request.arrayBuffer();
  if (body.byteLength > MAX_BODY) {
    return bad("the body is larger than 1 MiB");
  }
  let numbers;
  try {
    numbers = JSON.parse(new TextDecoder().decode(body)).numbers;
  } catch {
    return bad('expected {"numbers": [...]}');
  }
  if (!Array.isArray(numbers)) {
    return bad('expected {"numbers": [...]}');
  }
  if (!numbers.every((n) => typeof n === "number" && Number.isFinite(n))) {
    return bad("numbers must be numbers");
  }
  const total = numbers.reduce((a, b) => a + b, 0);
  return json(200, { sum: total, count: numbers.length, lang: "js" });
}

function json(status, value) {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}
