"""A small JSON API as a `wasi:http/proxy` component built with componentize-py.

Served per request at `/fn/<username>/<function>/...` (or by `wasmtime serve -Scli`):

- `GET /`: what the API offers, and `requests_served`, the number of requests this
  instance has handled (always 1: every request gets a fresh instance);
- `GET /greet?name=<name>`: `{"greeting": "hello, <name>", "lang": "python"}`;
- `POST /sum` with `{"numbers": [..]}`: `{"sum": n, "count": n, "lang": "python"}`;
- anything else: a JSON 404; a malformed or oversized body: a JSON 400.

The handler is synchronous: it reads and writes the body streams with the blocking
calls of `wasi:io/streams`, which is enough for a request/response API.
"""

import json
from urllib.parse import parse_qs

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Get,
    Method_Post,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

MAX_BODY = 1 << 20
"""Largest request body read (bytes)."""

WRITE_CHUNK = 4096
"""`blocking-write-and-flush` takes at most 4096 bytes per call."""

requests_served = 0
"""Requests handled by this instance (module state lives as long as the instance)."""


class BadRequest(Exception):
    """The request body is not what the route expects."""


class IncomingHandler(exports.IncomingHandler):
    """The `wasi:http/incoming-handler` export."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        global requests_served
        requests_served += 1
        try:
            status, body = route(request)
        except BadRequest as e:
            status, body = 400, {"error": "bad_request", "message": str(e)}
        respond(response_out, status, body)


def route(request: IncomingRequest) -> tuple[int, dict]:
    target = request.path_with_query() or "/"
    path, _, query = target.partition("?")
    method = request.method()
    if isinstance(method, Method_Get) and path == "/":
        routes = ["GET /greet?name=", "POST /sum"]
        return 200, {"routes": routes, "lang": "python", "requests_served": requests_served}
    if isinstance(method, Method_Get) and path == "/greet":
        name = (parse_qs(query).get("name") or ["world"])[0]
        return 200, {"greeting": f"hello, {name}", "lang": "python"}
    if isinstance(method, Method_Post) and path == "/sum":
        return 200, total(read_body(request))
    return 404, {"error": "not_found", "message": f"no route {path}"}


def total(raw: bytes) -> dict:
    try:
        numbers = json.loads(raw)["numbers"]
    except (ValueError, TypeError, KeyError):
        raise BadRequest('expected {"numbers": [...]}')
    if not isinstance(numbers, list) or not all(
        isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers
    ):
        raise BadRequest("numbers must be numbers")
    return {"sum": sum(numbers), "count": len(numbers), "lang": "python"}


def read_body(request: IncomingRequest) -> bytes:
    data = bytearray()
    with request.consume() as body, body.stream() as stream:
        while True:
            try:
                data += stream.blocking_read(64 * 1024)
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    return bytes(data)
                raise BadRequest("the body is unreadable")
            if len(data) > MAX_BODY:
                raise BadRequest("the body is larger than 1 MiB")


def respond(response_out: ResponseOutparam, status: int, body: dict) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    response = OutgoingResponse(Fields.from_list([("content-type", b"application/json")]))
    response.set_status_code(status)
    outgoing = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with outgoing.write() as stream:
        for i in range(0, len(payload), WRITE_CHUNK):
            stream.blocking_write_and_flush(payload[i : i + WRITE_CHUNK])
    OutgoingBody.finish(outgoing, None)
