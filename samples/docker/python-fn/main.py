"""An image function as users write it: input in argv[1], secrets in env, objects
over $API_BASE_URL with no auth header, JSON on stdout, logs on stderr."""
import json
import os
import sys

import requests


def main() -> None:
    data = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    base = os.environ["API_BASE_URL"]
    words = {}
    for alias, key in data.get("object_inputs", {}).items():
        resp = requests.get(f"{base}/{key}", timeout=10)
        if resp.status_code != 200:
            print(json.dumps({"error": f"cannot read {alias}: HTTP {resp.status_code}"}))
            return
        words[alias] = len(resp.text.split())
    token = os.environ.get("API_TOKEN", "")
    print(f"read {len(words)} objects", file=sys.stderr)
    print(json.dumps({"word_counts": words, "has_api_token": bool(token)}))


if __name__ == "__main__":
    main()
