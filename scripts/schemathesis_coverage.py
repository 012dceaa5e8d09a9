#!/usr/bin/env python3
"""Which documented statuses the schema fuzzer reached: reads the OpenAPI document and
schemathesis's HAR reports, prints per operation the statuses seen and those never seen.

    scripts/schemathesis_coverage.py openapi.json report.har [report.har ...]
"""
import json
import re
import sys
import urllib.parse


def main(doc_path: str, har_paths: list[str]) -> None:
    doc = json.load(open(doc_path))
    entries = [e for p in har_paths for e in json.load(open(p))["log"]["entries"]]
    ops = {}
    for path, item in doc["paths"].items():
        rx = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]*", re.escape(path)) + "$")
        for method, op in item.items():
            ops[(method.upper(), path)] = (rx, set(op["responses"]), set())
    for entry in entries:
        url = urllib.parse.urlsplit(entry["request"]["url"]).path
        method = entry["request"]["method"].upper()
        # The most specific template (fewest parameters) that matches.
        matches = [k for k, (rx, _, _) in ops.items() if k[0] == method and rx.match(url)]
        if matches:
            best = min(matches, key=lambda k: k[1].count("{"))
            ops[best][2].add(str(entry["response"]["status"]))
    documented = unreached = 0
    for (method, path), (_, doc_statuses, seen) in sorted(ops.items(), key=lambda kv: kv[0][1]):
        unseen = sorted(doc_statuses - seen)
        documented += len(doc_statuses)
        unreached += len(unseen)
        print(f"  {method:6} {path:48} seen {','.join(sorted(seen)) or '-':26} not reached {','.join(unseen) or '-'}")
    print(f"  documented statuses: {documented}, reached: {documented - unreached}, not reached: {unreached}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
