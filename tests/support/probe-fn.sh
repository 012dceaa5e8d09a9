# The probe function of tests/compose_local.rs (run by busybox sh in a FROM-scratch
# image): what a function container reaches on the functions' network. Plain HTTP over
# busybox `nc`, names resolved by busybox `nslookup` (static glibc's resolver, which
# busybox `wget` uses, crashes in a FROM-scratch image). Prints one JSON object.
#
# $1 is the input: direct_inputs name what must stay out of reach -- "neighbour"
# (ip:port of another container on this network, listening), "api_ip" (the API
# container's address), "api_port" and "nats_port" (host ports published on loopback).
b=/bin/busybox
ip() {
  case $1 in *[!0-9.]*) ;; *) echo "$1"; return ;; esac
  $b nslookup "$1" 2>/dev/null | $b awk '/^Address: /{print $2; exit}'
}
input() { echo "$1" | $b sed -n "s/.*\"$2\" *: *\"\([^\"]*\)\".*/\1/p"; }
# http METHOD URL [BODY]: the raw answer, or "unresolved HOST" / "unreachable ADDR:PORT".
http() {
  rest=${2#http://}; hostport=${rest%%/*}; path=/${rest#*/}
  host=${hostport%:*}; port=${hostport##*:}
  addr=$(ip "$host")
  [ -n "$addr" ] || { echo "unresolved $host"; return; }
  # stdin stays open a while: on its EOF nc half-closes, and hyper drops the request.
  { printf "$1 $path HTTP/1.0\r\nHost: $hostport\r\nContent-Type: application/json\r\nContent-Length: ${#3}\r\n\r\n$3"; $b sleep 2; } |
    $b nc -w 4 "$addr" "$port" 2>/dev/null || echo "unreachable $addr:$port"
}
clean() { $b tr -d '"\\\r\n'; }
status() { echo "$1" | $b head -n1 | clean; }
body() { echo "$1" | $b sed '1,/^\r*$/d' | clean; }
object=$(http GET "$API_BASE_URL/$FAAS_FUNCTION_ID/granted.txt")
other=$(http GET "$API_BASE_URL/$FAAS_FUNCTION_ID/other.txt")
host=${API_BASE_URL%%/api/*}
gw=${host#http://}; gw=${gw%:*}
cap=$(http POST "$host/auth/login" '{}')
api=$(http POST http://api:8080/auth/login '{}')
main=$(http POST "http://$gw:8080/auth/login" '{}')
api_ip=$(http POST "http://$(input "$1" api_ip):8080/auth/login" '{}')
api_pub=$(http POST "http://$gw:$(input "$1" api_port)/auth/login" '{}')
nats=$(http GET "http://$gw:$(input "$1" nats_port)/" '')
neighbour=$(http GET "http://$(input "$1" neighbour)/" '')
echo "probe: object=[$object] other=[$other] cap=[$cap] api=[$api] main=[$main] api_ip=[$api_ip] api_pub=[$api_pub] nats=[$nats] neighbour=[$neighbour]" >&2
printf '{"host":"%s","object":"%s","object_status":"%s","other":"%s","cap_login":"%s","api_login":"%s","main_port_login":"%s","api_ip_login":"%s","api_published_login":"%s","nats":"%s","neighbour":"%s"}\n' \
  "$host" "$(body "$object")" "$(status "$object")" "$(status "$other")" \
  "$(status "$cap")" "$(status "$api")" "$(status "$main")" "$(status "$api_ip")" \
  "$(status "$api_pub")" "$(status "$nats")" "$(status "$neighbour")"
