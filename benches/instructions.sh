#!/usr/bin/env bash
# Instructions per request of the bench servers, counted by callgrind: a figure that does not
# depend on how busy the machine is, unlike requests/s.
#
# For each server (by default the hand-written axum handler and the same route behind
# VerifyLayer, both with the ring backend) this starts examples/bench_server.rs under
# `valgrind --tool=callgrind`, warms it up with wrk, zeroes the counters, loads it with signed
# 1 KiB deliveries for a few seconds, dumps the counters and divides the user-space instructions
# by the requests wrk completed. The difference between the two is what the crate executes per
# delivery beyond a minimal receiver. valgrind's CPU has no SHA extensions, so the HMAC runs the
# same portable-assembly path in every server and cancels out of the difference.
#
# Usage: benches/instructions.sh   (as root if valgrind or wrk must be installed)
# Environment (defaults in brackets):
#   SERVERS ["handwritten layered-axum"]   modes of bench_server to count
#   FEATURES [actix-web,ring]              features the server is built with
#   MEASURE_SECONDS [4]                    measured wrk duration per server
#   SIZE [1024]                            body bytes
#   PORT [38200]                           port on 127.0.0.1
# The last line is `layered-axum - handwritten = <n> instructions/request` when both ran.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVERS=${SERVERS:-handwritten layered-axum}
FEATURES=${FEATURES:-actix-web,ring}
MEASURE_SECONDS=${MEASURE_SECONDS:-4}
SIZE=${SIZE:-1024}
PORT=${PORT:-38200}
export BENCH_SECRET=${BENCH_SECRET:-pO1_webhook_bench_7f3KqV9xLm2R}

# shellcheck source=benches/common.sh
. benches/common.sh
need valgrind valgrind
need callgrind_control valgrind
need wrk wrk
need openssl openssl

work=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

log "== building the bench server (features $FEATURES)"
cargo build --release --quiet --example bench_server --features "$FEATURES"
server=${CARGO_TARGET_DIR:-target}/release/examples/bench_server

head -c "$SIZE" /dev/zero | tr '\0' 'x' >"$work/body"
signature=$(openssl dgst -sha256 -hmac "$BENCH_SECRET" -binary "$work/body" | base64 -w0)

# load SECONDS: runs wrk against the server, prints the completed requests; fails on non-2xx.
load() {
  local out
  out=$(BENCH_BODY_FILE="$work/body" BENCH_SIGNATURE="$signature" wrk -t1 -c8 -d"$1s" \
    -s benches/wrk_post.lua "http://127.0.0.1:$PORT/webhooks/printone")
  if grep -q "Non-2xx" <<<"$out"; then
    log "non-2xx answers:"
    log "$out"
    exit 1
  fi
  awk '/requests in/ { print $1 }' <<<"$out"
}

# count MODE: instructions per request of one server mode.
count() {
  local mode=$1 out=$work/callgrind-$1 requests total
  valgrind --tool=callgrind --callgrind-out-file="$out" "$server" "$mode" "127.0.0.1:$PORT" \
    2>"$work/valgrind-$mode.log" &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { log "$mode did not start:"; cat "$work/valgrind-$mode.log" >&2; exit 1; }
    sleep 0.2
  done
  load 2 >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1 || { log "callgrind_control -z failed"; exit 1; }
  requests=$(load "$MEASURE_SECONDS")
  callgrind_control -d "$pid" >/dev/null 2>&1 || { log "callgrind_control -d failed"; exit 1; }
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  total=$(awk '/^totals:/ { print $2 }' "$out".1)
  [[ $requests -gt 0 && -n $total ]] || { log "no measurement for $mode"; exit 1; }
  echo $((total / requests))
}

declare -A per_request
for mode in $SERVERS; do
  per_request[$mode]=$(count "$mode")
  echo "$mode: ${per_request[$mode]} instructions/request (${SIZE} B bodies)"
done
if [[ -n ${per_request[handwritten]:-} && -n ${per_request[layered-axum]:-} ]]; then
  echo "layered-axum - handwritten = $((per_request[layered-axum] - per_request[handwritten])) instructions/request"
fi
