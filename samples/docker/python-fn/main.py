"""An image function as users write it, with nothing but the standard library.

The contract (docs/contract.md): INPUT, a JSON object, is the last argument (and on
stdin); each requested secret is an upper-cased environment variable; each object of
`object_inputs` is read with a plain `GET $API_BASE_URL/<function_id>/<name>` (the URL
is a capability valid for this execution only, no header needed); the result is JSON on
stdout, logs go to stderr. A top-level "error" key in the result fails the execution.

Prints {"hello", "objects": {alias: {bytes, words, text}}, "api_token": {present,
length, sha256_12}, "execution_id", "python"}: never a secret's value, only what shows it
arrived intact.
"""
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

TEXT_PREVIEW = 200


def read_input() -> dict:
    raw = sys.argv[-1] if len(sys.argv) > 1 else sys.stdin.read()
    data = json.loads(raw or "{}")
    return data if isinstance(data, dict) else {}


def fetch(base: str, key: str) -> bytes:
    with urllib.request.urlopen(f"{base}/{key}", timeout=10) as resp:
        return resp.read()


def describe_secret(name: str) -> dict:
    value = os.environ.get(name)
    if value is None:
        return {"present": False}
    digest = hashlib.sha256(value.encode()).hexdigest()
    return {"present": True, "length": len(value), "sha256_12": digest[:12]}


def main() -> None:
    data = read_input()
    base = os.environ.get("API_BASE_URL", "")
    name = data.get("direct_inputs", {}).get("name", "world")
    objects = {}
    for alias, key in data.get("object_inputs", {}).items():
        try:
            body = fetch(base, key)
        except (urllib.error.URLError, OSError) as err:
            print(json.dumps({"error": f"cannot read object {alias}: {err}"}))
            return
        text = body.decode("utf-8", errors="replace")
        objects[alias] = {
            "bytes": len(body),
            "words": len(text.split()),
            "text": text[:TEXT_PREVIEW],
        }
        print(f"python-fn: read {alias} ({len(body)} bytes)", file=sys.stderr)
    print(f"python-fn: done, {len(objects)} objects", file=sys.stderr)
    print(json.dumps({
        "hello": name,
        "objects": objects,
        "api_token": describe_secret("API_TOKEN"),
        "execution_id": os.environ.get("FAAS_EXECUTION_ID"),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
