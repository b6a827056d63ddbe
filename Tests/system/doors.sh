#!/usr/bin/env bash
# Doors, with curl over loopback: bearer tokens and scopes, HTTPS with a certificate made here
# by openssl, the Host allow-list, and CORS (preflight and simple requests).
# Usage: Tests/system/doors.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-$(swift build --show-bin-path)/lstm-serve}
. Tests/system/lib/server.sh
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
fails=0
passes=0
expect() {  # name, wanted, got
  if [ "$2" = "$3" ]; then echo "ok   $1 ($3)"; passes=$((passes + 1)); else echo "FAIL $1: got '$3', want '$2'"; fails=$((fails + 1)); fi
}
status() { curl -sk -o /dev/null -w '%{http_code}' "$@" || true; }

# Tokens: one that may infer, one admin; a comment and a blank line
printf '# tokens for the doors test\ninfer-token-0123456789 infer\n\nadmin-token-0123456789\n' >"$work/tokens"
start_server "$bin" --log-level warning --auth-token-file "$work/tokens"
pids+=("$pid")
expect "no token: 401" 401 "$(status "$base/v1/models")"
expect "no token: challenge" 'WWW-Authenticate: Bearer realm="lstm-serve"' "$(curl -s -D - -o /dev/null "$base/v1/models" | tr -d '\r' | grep -i '^www-authenticate')"
expect "wrong token: 401" 401 "$(status -H 'Authorization: Bearer infer-token-0123456780' "$base/v1/models")"
expect "a prefix of a token: 401" 401 "$(status -H 'Authorization: Bearer infer-token' "$base/v1/models")"
expect "infer token: predict 200" 200 "$(status -H 'Authorization: Bearer infer-token-0123456789' --json @examples/week.json "$base/v1/predict")"
expect "admin token: 200" 200 "$(status -H 'Authorization: bearer admin-token-0123456789' "$base/v1/models")"
expect "infer token: reload 403 (admin scope)" 403 "$(status -X POST -H 'Authorization: Bearer infer-token-0123456789' "$base/v1/models/temperature/reload")"
expect "admin token: reload 200" 200 "$(status -X POST -H 'Authorization: Bearer admin-token-0123456789' "$base/v1/models/temperature/reload")"
expect "health stays open" 200 "$(status "$base/healthz")"
expect "metrics stay open" 200 "$(status "$base/metrics")"
kill "$pid"
start_server "$bin" --log-level warning --auth-token-file "$work/tokens" --auth-health-and-metrics
pids+=("$pid")
expect "guarded metrics: 401" 401 "$(status "$base/metrics")"
expect "guarded metrics with a token: 200" 200 "$(status -H 'Authorization: Bearer infer-token-0123456789' "$base/metrics")"
kill "$pid"
printf 'short\n' >"$work/bad-tokens"
set +e; msg=$("$bin" serve --port 0 --auth-token-file "$work/bad-tokens" 2>&1); code=$?; set -e
expect "a short token stops start-up" "1 lstm-serve: auth_token_file: line 1: a token is at least 16 visible ASCII characters" "$code $msg"

# HTTPS with a self-signed certificate for localhost
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
start_server "$bin" --log-level warning --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
pids+=("$pid")
expect "https url printed" "https" "${base%%:*}"
expect "https with the CA: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" "${base/127.0.0.1/localhost}/v1/predict" --json @examples/week.json)"
expect "plain http to the TLS port is not served" 000 "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "${base/https/http}/healthz" || true)"
kill "$pid"
set +e; msg=$("$bin" serve --port 0 --tls-cert "$work/cert.pem" 2>&1); code=$?; set -e
expect "a certificate without its key stops start-up" "1 lstm-serve: tls_cert and tls_key go together: set both for HTTPS" "$code $msg"

# IPv6 and names for --host
start_server "$bin" --log-level warning --host ::1
pids+=("$pid")
expect "listens on [::1]" "http://[::1]" "${base%:*}"
expect "IPv6 loopback: 200" 200 "$(status -g "$base/healthz")"
kill "$pid"
start_server "$bin" --log-level warning --host localhost
pids+=("$pid")
expect "a name resolves: 200" 200 "$(status "$base/healthz")"
kill "$pid"
set +e; msg=$("$bin" serve --port 0 --host no-such-host.invalid 2>&1); code=$?; set -e
expect "a name that does not resolve stops start-up" 1 "$code"

# Host allow-list and CORS
start_server "$bin" --log-level warning --allowed-hosts localhost,127.0.0.1 --allowed-origins https://app.example
pids+=("$pid")
expect "allowed host" 200 "$(status "$base/healthz")"
expect "other host: 421" 421 "$(status -H 'Host: rebound.example' "$base/healthz")"
expect "allowed origin preflight: 204" 204 "$(status -X OPTIONS -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' "$base/v1/predict")"
expect "preflight allows the route's methods" "Access-Control-Allow-Methods: POST" \
  "$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: https://app.example' "$base/v1/predict" | tr -d '\r' | grep -i '^access-control-allow-methods')"
expect "other origin preflight: 403" 403 "$(status -X OPTIONS -H 'Origin: https://evil.example' "$base/v1/predict")"
expect "other origin request: 403" 403 "$(status -H 'Origin: https://evil.example' --json @examples/week.json "$base/v1/predict")"
expect "allowed origin gets Access-Control-Allow-Origin" "Access-Control-Allow-Origin: https://app.example" \
  "$(curl -s -D - -o /dev/null -H 'Origin: https://app.example' --json @examples/week.json "$base/v1/predict" | tr -d '\r' | grep -i '^access-control-allow-origin')"
kill "$pid"
echo "doors: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
