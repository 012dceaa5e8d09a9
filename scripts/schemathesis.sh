#!/usr/bin/env bash
# The schema fuzzer: runs schemathesis (all checks, every phase) against the OpenAPI
# document of a fresh `faas serve` and fails on any failure.
#
#   scripts/schemathesis.sh [path/to/faas]
#
# The binary defaults to $FAAS_BIN, else $CARGO_TARGET_DIR (or ./target)/{release,debug}/faas.
# It serves on a free loopback port with a temporary data dir and Docker off (the
# fuzzer must not pull images), as an admin user, with a sample wasm function, an
# object, a secret and an execution whose ids the fuzzer draws path parameters from.
# Settings: ST_MAX_EXAMPLES (examples per operation and phase, default 10), ST_SEED
# (default 1), ST_WORKERS (default 1: CPython 3.11's ast is not thread-safe, which
# hypothesis trips over with more), ST_REPORT_DIR (keep the JUnit report and the
# server log there). Needs python3, curl and schemathesis (scripts/test-deps.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${FAAS_BIN:-}}
if [ -z "$bin" ]; then
  for c in "${CARGO_TARGET_DIR:-$root/target}"/{release,debug}/faas; do
    if [ -x "$c" ]; then bin=$c; break; fi
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "schemathesis.sh: no faas binary (cargo build --bin faas, or pass its path)" >&2; exit 2; }
command -v schemathesis >/dev/null || { echo "schemathesis.sh: schemathesis is not installed (scripts/test-deps.sh)" >&2; exit 2; }

log() { printf '[schemathesis] %s\n' "$*" >&2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/faas-schemathesis.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ]; then kill -INT "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "${ST_REPORT_DIR:-}" ]; then mkdir -p "$ST_REPORT_DIR"; cp -r "$work/report" "$work/serve.log" "$ST_REPORT_DIR"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

admin_pw="fuzz-admin-password"
JWT_SECRET="schemathesis-jwt-secret-0123456789abcdef-0123456789" \
FAAS_SECRETS_KEY="00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" \
SERVER_ADDRESS=127.0.0.1:0 FAAS_DATA_DIR="$work/data" FAAS_DOCKER=off \
FAAS_ADMIN_USERNAME=fuzzadmin FAAS_ADMIN_PASSWORD="$admin_pw" \
MAX_CONCURRENT_EXECUTIONS=2 FAAS_INVOKE_MAX_WAIT_SECS=5 FAAS_REGISTER_MAX_PER_ADDRESS=0 FAAS_CALLBACK_DELIVERY=false RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
  "$bin" serve >"$work/serve.log" 2>&1 &
server=$!
addr=""
for _ in $(seq 1 240); do
  addr=$(grep -o 'addr=[0-9.:]*' "$work/serve.log" | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; log "faas serve exited"; exit 1; }
  sleep 0.25
done
[ -n "$addr" ] || { cat "$work/serve.log" >&2; log "faas serve did not listen"; exit 1; }
base="http://$addr"
log "faas serve ($bin) on $base"

# json <field> reads a field of the JSON on stdin.
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
req() { curl -fsS -H "Authorization: Bearer ${token:-}" "$@"; }

token=$(curl -fsS "$base/auth/login" -H 'Content-Type: application/json' \
  -d "{\"username\":\"fuzzadmin\",\"password\":\"$admin_pw\"}" | json token)
user_id=$(python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["sub"])' "$token")
function_id=$(req "$base/api/functions" -F name=fuzz-hello -F "module=@$root/samples/wasm/rust-hello.wasm" | json id)
req "$base/api/function-objects/$function_id/fuzz.txt" -H 'Content-Type: text/plain' --data-binary 'fuzz me' >/dev/null
# `fuzz_key` is what inputs name; its id is not given to the fuzzer, so it stays.
req "$base/api/secrets" -H 'Content-Type: application/json' -d '{"name":"fuzz_key","value":"v"}' >/dev/null
secret_id=$(req "$base/api/secrets" -H 'Content-Type: application/json' -d '{"name":"fuzz_other","value":"v"}' | json id)
execution_id=$(req "$base/api/executions" -H 'Content-Type: application/json' \
  -d "{\"function_id\":\"$function_id\",\"input\":{\"secrets\":[\"fuzz_key\"],\"object_inputs\":{\"doc\":\"$function_id/fuzz.txt\"}}}" | json id)
log "fixtures: user $user_id, function $function_id, secret $secret_id, execution $execution_id"

# Path parameters, `function_id` and secret names are drawn from these half the time,
# so existing resources (2xx) and missing ones (404) are both reached.
cat >"$work/schemathesis.toml" <<TOML
[dictionaries.ids]
values = ["$user_id", "$function_id", "$secret_id", "$execution_id"]
[dictionaries.function_ids]
values = ["$function_id"]
[dictionaries.object_names]
values = ["fuzz.txt"]
[dictionaries.secret_names]
values = ["fuzz_key"]

[parameters]
"path.id" = { dictionary = "ids", probability = 0.5 }
"path.function_id" = { dictionary = "function_ids", probability = 0.5 }
"path.name" = { dictionary = "object_names", probability = 0.3 }
"body.function_id" = { dictionary = "function_ids", probability = 0.5 }
"body.input.secrets[*]" = { dictionary = "secret_names", probability = 1.0 }

# A field over a size limit is refused with 413, which is a rejection too.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# A deploy's module must be valid wasm, which no schema can say: a generated module is
# refused with 400 invalid_module.
# A reused Idempotency-Key with another body is a 422 however valid the body is.
# A well-formed callback_url is a 400 when its host is an address the SSRF guard
# refuses (loopback, private, metadata ...) or it does not parse as a URL: no schema
# can say which. (The server delivers no callback here, FAAS_CALLBACK_DELIVERY=false:
# the fuzzer's URLs name hosts outside this machine.)
[[operations]]
include-name = "POST /api/executions"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx"]

[[operations]]
include-name = "POST /api/functions/{id}/invoke"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx"]

[[operations]]
include-name = "POST /api/functions"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

# A new version's module must be valid wasm too (400 invalid_module).
[[operations]]
include-name = "POST /api/functions/{id}/versions"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

# The alias latest matches the alias pattern but cannot be set or deleted (400).
[[operations]]
include-name = "PUT /api/functions/{id}/aliases/{alias}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]

[[operations]]
include-name = "DELETE /api/functions/{id}/aliases/{alias}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
TOML

# fuzz <report name> <token> [schemathesis options]: one schemathesis run.
fuzz() {
  local name=$1 bearer=$2
  shift 2
  schemathesis --config-file "$work/schemathesis.toml" run "$base/api/openapi.json" \
    -H "Authorization: Bearer $bearer" \
    --checks all \
    --max-examples "${ST_MAX_EXAMPLES:-10}" \
    --seed "${ST_SEED:-1}" \
    --workers "${ST_WORKERS:-1}" \
    --request-timeout 30 \
    --no-color \
    --report junit,har --report-dir "$work/report/$name" "$@"
}

log "schemathesis $(schemathesis --version | awk '{print $NF}'): max-examples ${ST_MAX_EXAMPLES:-10}, seed ${ST_SEED:-1}"
# From the temporary dir: schemathesis keeps a cache in the working directory.
cd "$work"
set +e
# Operations that end the caller's session (revoke its tokens) run last, as the plain user.
session_ending='^/(auth/logout-all|api/me/password)$'
log "every operation, as an admin"
fuzz admin "$token" --exclude-path-regex "$session_ending"
status=$?
# The admin-only operations again as a plain user (their 403s), then the session-ending ones.
curl -fsS "$base/auth/register" -H 'Content-Type: application/json' \
  -d '{"username":"fuzzuser","password":"fuzz-user-password"}' >/dev/null
user_token=$(curl -fsS "$base/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"fuzzuser","password":"fuzz-user-password"}' | json token)
log "the admin-only and session-ending operations, as a plain user"
fuzz user "$user_token" --include-path-regex "^/api/(users|workers)\$|$session_ending"
user_status=$?
[ "$status" = 0 ] && status=$user_status
set -e
# Documented statuses the runs reached (information: 503s need a backend down, the
# capability route's 200 a running execution's token, 413s bodies over the limits).
curl -fsS "$base/api/openapi.json" >"$work/openapi.json" &&
  log "documented statuses reached:" &&
  python3 "$root/scripts/schemathesis_coverage.py" "$work/openapi.json" "$work"/report/*/har-*.json >&2 || true
if [ "$status" != 0 ]; then
  log "failed (exit $status); server log tail:"
  tail -40 "$work/serve.log" >&2
fi
exit "$status"
