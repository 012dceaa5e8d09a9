# The probe function of tests/compose_local.rs (run by busybox sh in a FROM-scratch
# image): what a function container reaches on the functions' network. Plain HTTP over
# busybox `nc`, names resolved by busybox `nslookup` (static glibc's resolver, which
# busybox `wget` uses, crashes in a FROM-scratch image). Prints one JSON object.
b=/bin/busybox
ip() { $b nslookup "$1" 2>/dev/null | $b awk '/^Address: /{print $2; exit}'; }
# http METHOD URL [BODY]: the raw answer, or "unresolved HOST" / "unreachable ADDR:PORT".
http() {
  rest=${2#http://}; hostport=${rest%%/*}; path=/${rest#*/}
  host=${hostport%:*}; port=${hostport##*:}
  addr=$(ip "$host")
  [ -n "$addr" ] || { echo "unresolved $host"; return; }
  # stdin stays open a while: on its EOF nc half-closes, and hyper drops the request.
  { printf "$1 $path HTTP/1.0\r\nHost: $hostport\r\nContent-Type: application/json\r\nContent-Length: ${#3}\r\n\r\n$3"; $b sleep 2; } |
    $b nc -w 5 "$addr" "$port" 2>/dev/null || echo "unreachable $addr:$port"
}
clean() { $b tr -d '"\\\r\n'; }
status() { echo "$1" | $b head -n1 | clean; }
body() { echo "$1" | $b sed '1,/^\r*$/d' | clean; }
object=$(http GET "$API_BASE_URL/$FAAS_FUNCTION_ID/granted.txt")
other=$(http GET "$API_BASE_URL/$FAAS_FUNCTION_ID/other.txt")
host=${API_BASE_URL%%/api/*}
cap=$(http POST "$host/auth/login" '{}')
api=$(http POST http://api:8080/auth/login '{}')
main=$(http POST "${host%:*}:8080/auth/login" '{}')
echo "probe: object=[$object] other=[$other] cap=[$cap] api=[$api] main=[$main]" >&2
printf '{"host":"%s","object":"%s","object_status":"%s","other":"%s","cap_login":"%s","api_login":"%s","main_port_login":"%s"}\n' \
  "$host" "$(body "$object")" "$(status "$object")" "$(status "$other")" \
  "$(status "$cap")" "$(status "$api")" "$(status "$main")"
