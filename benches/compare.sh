#!/usr/bin/env bash
# Side-by-side speed of Print.one webhook receivers on loopback, in one run:
#
#   - requests/s of a bare axum route, the same route behind VerifyLayer (RustCrypto and ring),
#     a hand-written axum handler verifying with the same backend without this crate (the floor
#     any receiver pays), the actix-web extractor (both backends) and a plain Node.js http server
#     verifying with crypto.createHmac(...).digest('base64') and timingSafeEqual, each loaded by
#     wrk with a signed 1 KiB and 64 KiB body, in interleaved rounds; medians and ratios to bare
#     axum, to the hand-written handler and to Node;
#   - verification MB/s of this crate (both backends) beside `openssl speed -hmac sha256`.
#
# The servers are examples/bench_server.rs and benches/node_server.js; the wrk script is
# benches/wrk_post.lua. Results and the machine they came from: benches/RESULTS.md.
#
# Usage: benches/compare.sh   (as root if wrk must be installed; Debian's package is used)
# Environment (defaults in brackets):
#   ROUNDS [3]            interleaved rounds; medians are taken over them
#   ROUND_SECONDS [5]     wrk duration of each measurement
#   SPEED_SECONDS [2]     duration of each verification-speed measurement
#   CONNECTIONS [32]      wrk connections;  WRK_THREADS [1]  wrk threads
#   SERVER_CPUS [0]       CPUs the servers (and the speed probes) are pinned to, "" for none
#   CLIENT_CPUS [1]       CPUs wrk is pinned to, "" for none
#   BASE_PORT [38100]     first of eight consecutive ports on 127.0.0.1
#   SHA_EXTENSIONS [native]
#                         "off" measures every contender as it runs on a CPU without the SHA
#                         extensions, on a CPU that has them: OpenSSL (openssl speed, and Node's
#                         bundled copy) through its documented OPENSSL_ia32cap mask, RustCrypto's
#                         sha2 built with its portable backend (the code its run-time detection
#                         falls back to), and ring built from a copy of its source whose CPU
#                         detection clears the SHA bit (CPUID leaf 7, EBX bit 29). These builds
#                         go to target/bench-no-sha; the working tree is not touched.
#   - the background mode (verify, de-duplicate, store, 200, then a worker runs a handler that does
#     nothing) of axum and actix over the memory and the SQLite store, beside the route that answers
#     itself and a naive receiver that commits every write in its own transaction: deliveries that
#     got a 200 and were handled within the run, per second, from examples/bench_background.rs's
#     load generator (distinct deliveries, 32 connections, 1 KiB; 503s are refusals, deliveries
#     still waiting at the end do not count), with p50/p99 time to the 200, rows per commit and peak
#     memory, and the fsync cost of the disk the SQLite files are on. Every contender runs on the
#     same server core, so each run ends only once its worker has finished what it accepted: a
#     backlog left behind would take time from the next contender's run.
# BACKGROUND_ONLY=1 measures the background mode only; its SQLite files go to BENCH_DB_DIR
# [target/bench-db], on the disk whose fsync cost is reported.
# The last line is exactly `ratio layered/bare 1KiB = <x.xx>` (layered = axum + VerifyLayer with
# the ring backend).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
ROUND_SECONDS=${ROUND_SECONDS:-5}
SPEED_SECONDS=${SPEED_SECONDS:-2}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
SERVER_CPUS=${SERVER_CPUS-0}
CLIENT_CPUS=${CLIENT_CPUS-1}
BASE_PORT=${BASE_PORT:-38100}
SHA_EXTENSIONS=${SHA_EXTENSIONS:-native}
BACKGROUND_ONLY=${BACKGROUND_ONLY:-0}
BENCH_DB_DIR=${BENCH_DB_DIR:-target/bench-db}
export BENCH_SECRET=${BENCH_SECRET:-pO1_webhook_bench_7f3KqV9xLm2R}
export CARGO_TERM_COLOR=never

SERVERS=(bare-axum handwritten-rustcrypto handwritten-ring layered-rustcrypto layered-ring
  actix-rustcrypto actix-ring node)
SIZES=(1024 65536)

# shellcheck source=benches/common.sh
. benches/common.sh

# Command prefixes that pin to the given CPUs (empty when none are given or taskset is missing).
server_pin=()
client_pin=()
if command -v taskset >/dev/null 2>&1; then
  [[ -n $SERVER_CPUS ]] && server_pin=(taskset -c "$SERVER_CPUS")
  [[ -n $CLIENT_CPUS ]] && client_pin=(taskset -c "$CLIENT_CPUS")
fi

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.7g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

case $SHA_EXTENSIONS in
  native | off) ;;
  *) log "SHA_EXTENSIONS must be native or off, not '$SHA_EXTENSIONS'"; exit 2 ;;
esac

need wrk wrk
need node nodejs
need openssl openssl

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# build FEATURES OUTPUT [CARGO_ARGS...]: the release bench server with the given features.
build() {
  local features=$1 output=$2
  shift 2
  cargo build --release --quiet --example bench_server --features "$features" "$@"
  cp "${CARGO_TARGET_DIR:-target}/release/examples/bench_server" "$output"
}

# The source of the ring release the lock file pins.
ring_source() {
  cargo metadata --format-version 1 --features ring | node -e '
    let json = "";
    process.stdin.on("data", (chunk) => (json += chunk)).on("end", () => {
      const ring = JSON.parse(json).packages.find((p) => p.name === "ring");
      console.log(require("path").dirname(ring.manifest_path));
    });'
}

if [[ $SHA_EXTENSIONS == native ]]; then
  log "== building release servers (RustCrypto, then ring)"
  build actix-web "$work/server-rustcrypto"
  build actix-web,ring "$work/server-ring"
else
  log "== building release servers as on a CPU without SHA extensions (target/bench-no-sha)"
  no_sha=$PWD/target/bench-no-sha
  mkdir -p "$no_sha"
  ring_src=$(ring_source)
  ring_copy=$no_sha/$(basename "$ring_src")  # kept between runs, so ring is built once per release
  cpu_intel=$ring_copy/crypto/cpu_intel.c
  if ! grep -q 'SHA extensions masked' "$cpu_intel" 2>/dev/null; then
    rm -rf "$ring_copy"
    cp -r "$ring_src" "$ring_copy"
    sed -i 's|^\( *\)extended_features\[0\] = ebx;|&\n\1extended_features[0] \&= ~(1u << 29);  /* SHA extensions masked */|' "$cpu_intel"
  fi
  grep -q 'SHA extensions masked' "$cpu_intel" || { log "could not mask SHA in $cpu_intel"; exit 1; }
  # A copy of the crate, so that patching ring does not rewrite this tree's Cargo.lock.
  rm -rf "$no_sha/crate"
  mkdir "$no_sha/crate"
  tar --exclude=./target --exclude=./.git --exclude=./fuzz -cf - . | tar -xf - -C "$no_sha/crate"
  (
    cd "$no_sha/crate"
    export CARGO_TARGET_DIR=$no_sha/target
    # (--cap-lints: the patched ring is a path dependency, whose warnings cargo would print)
    export RUSTFLAGS="${RUSTFLAGS:-} --cfg sha2_backend=\"soft\" --cap-lints allow"
    patch=(--config "patch.crates-io.ring.path=\"$ring_copy\"")
    build actix-web "$work/server-rustcrypto" "${patch[@]}"
    build actix-web,ring "$work/server-ring" "${patch[@]}"
  )
  # OpenSSL's documented capability mask, read by `openssl` and by Node's bundled OpenSSL.
  export OPENSSL_ia32cap=":~0x20000000"
fi

log "== bodies and signatures"
for size in "${SIZES[@]}"; do
  node -e '
    const size = Number(process.argv[1]);
    const head = "{\"data\":{\"id\":\"ord_1\",\"note\":\"";
    const tail = "\"},\"event\":\"order_status_update\",\"created_at\":\"2024-06-03T13:14:46.501Z\"}";
    process.stdout.write(head + "x".repeat(size - head.length - tail.length) + tail);
  ' "$size" >"$work/body-$size"
  openssl dgst -sha256 -hmac "$BENCH_SECRET" -binary "$work/body-$size" | base64 -w0 >"$work/sig-$size"
  [[ $(stat -c %s "$work/body-$size") == "$size" ]] || { log "body of $size bytes has the wrong size"; exit 1; }
done

port_of() {
  local i
  for i in "${!SERVERS[@]}"; do
    [[ ${SERVERS[$i]} == "$1" ]] && { echo $((BASE_PORT + i)); return; }
  done
}

start() {
  local name=$1 port
  port=$(port_of "$name")
  case $name in
    bare-axum) "${server_pin[@]}" "$work/server-rustcrypto" bare-axum "127.0.0.1:$port" & ;;
    handwritten-rustcrypto) "${server_pin[@]}" "$work/server-rustcrypto" handwritten "127.0.0.1:$port" & ;;
    handwritten-ring) "${server_pin[@]}" "$work/server-ring" handwritten "127.0.0.1:$port" & ;;
    layered-rustcrypto) "${server_pin[@]}" "$work/server-rustcrypto" layered-axum "127.0.0.1:$port" & ;;
    layered-ring) "${server_pin[@]}" "$work/server-ring" layered-axum "127.0.0.1:$port" & ;;
    actix-rustcrypto) "${server_pin[@]}" "$work/server-rustcrypto" actix "127.0.0.1:$port" & ;;
    actix-ring) "${server_pin[@]}" "$work/server-ring" actix "127.0.0.1:$port" & ;;
    node) "${server_pin[@]}" node benches/node_server.js "$port" & ;;
  esac
  pids+=($!)
}

# status PORT BODY_FILE SIGNATURE: the HTTP status of one POST.
status() {
  node -e '
    const [port, file, signature] = process.argv.slice(1);
    const body = require("fs").readFileSync(file);
    const req = require("http").request({ host: "127.0.0.1", port, method: "POST",
      path: "/webhooks/printone", headers: { "x-webhook-hmac-sha256": signature,
      "content-type": "application/json", "content-length": body.length } },
      (res) => { res.resume(); console.log(res.statusCode); });
    req.on("error", () => console.log(0));
    req.end(body);
  ' "$@"
}

if [[ $BACKGROUND_ONLY != 1 ]]; then
log "== starting servers on 127.0.0.1:$BASE_PORT.. (pinned to CPUs '${SERVER_CPUS}')"
for name in "${SERVERS[@]}"; do start "$name"; done
for name in "${SERVERS[@]}"; do
  port=$(port_of "$name")
  for _ in $(seq 100); do
    [[ $(status "$port" "$work/body-1024" "$(cat "$work/sig-1024")") == 200 ]] && break
    sleep 0.1
  done
  [[ $(status "$port" "$work/body-1024" "$(cat "$work/sig-1024")") == 200 ]] \
    || { log "$name does not answer 200 to a signed delivery"; exit 1; }
  if [[ $name != bare-axum ]]; then
    [[ $(status "$port" "$work/body-1024" "$(cat "$work/sig-65536")") == 401 ]] \
      || { log "$name does not refuse a wrong signature"; exit 1; }
  fi
done

# load NAME SIZE: requests/s of one wrk run, appended to the results.
load() {
  local name=$1 size=$2 port out rps
  port=$(port_of "$name")
  out=$(BENCH_BODY_FILE="$work/body-$size" BENCH_SIGNATURE="$(cat "$work/sig-$size")" \
    timeout $((ROUND_SECONDS + 30)) "${client_pin[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" \
    -d"${ROUND_SECONDS}s" -s benches/wrk_post.lua "http://127.0.0.1:$port/webhooks/printone")
  if grep -q "Non-2xx" <<<"$out"; then
    log "$name answered non-2xx statuses at $size bytes:"
    log "$out"
    exit 1
  fi
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  echo "$rps" >>"$work/rps-$name-$size"
  log "   $name $size B: $rps req/s"
}

# speed WHO SIZE: verification MB/s of openssl or this crate, appended to the results.
speed() {
  local who=$1 size=$2 mbs
  if [[ $who == openssl ]]; then
    mbs=$("${server_pin[@]}" openssl speed -elapsed -seconds "$SPEED_SECONDS" -bytes "$size" -hmac sha256 2>/dev/null \
      | awk '/^hmac\(sha256\)/ { sub(/k$/, "", $2); printf "%.1f\n", $2 / 1000 }')
  else
    mbs=$("${server_pin[@]}" "$work/server-$who" hmac-speed "$size" "$SPEED_SECONDS" | awk '{ print $1 }')
  fi
  echo "$mbs" >>"$work/speed-$who-$size"
  log "   $who $size B: $mbs MB/s"
}

log "== $ROUNDS interleaved rounds: wrk -t$WRK_THREADS -c$CONNECTIONS -d${ROUND_SECONDS}s (CPUs '${CLIENT_CPUS}'), then verification speed"
for round in $(seq "$ROUNDS"); do
  log "-- round $round ($(uptime | sed 's/.*load/load/'))"
  count=${#SERVERS[@]}
  for size in "${SIZES[@]}"; do
    for offset in $(seq 0 $((count - 1))); do
      load "${SERVERS[$(((offset + round - 1) % count))]}" "$size"
    done
  done
  for size in "${SIZES[@]}"; do
    for who in openssl rustcrypto ring; do speed "$who" "$size"; done
  done
done

fi

# ---- The background mode: deliveries that got a 200 and were handled, per second ----
BACKGROUND=(layered-answer background-memory-axum background-memory-actix background-sqlite-axum
  background-sqlite-actix naive-sqlite)
# The PostgreSQL contenders need a server: BENCH_POSTGRES_URL (or PRINTONE_TEST_POSTGRES_URL). One
# receiver, and three replicas of one store (each a process of its own, on the same server core,
# sharing one schema; the load spreads its connections over them), each in a schema of its own
# there, dropped before the run.
BENCH_POSTGRES_URL=${BENCH_POSTGRES_URL:-${PRINTONE_TEST_POSTGRES_URL:-}}
if [[ -n $BENCH_POSTGRES_URL ]]; then
  BACKGROUND+=(background-postgres-axum background-postgres-3-replicas)
fi
# The three replicas of background-postgres-3-replicas share a schema of their own, on the
# same server core as every contender; the load spreads its connections over them.
REPLICA_PORTS=($((BASE_PORT + 40)) $((BASE_PORT + 41)) $((BASE_PORT + 42)))
log "== building the background-mode contenders (ring backend)"
cargo build --release --quiet --example bench_background --features actix-web,sqlite,postgres,ring
cp "${CARGO_TARGET_DIR:-target}/release/examples/bench_background" "$work/background"
rm -rf "$BENCH_DB_DIR"
mkdir -p "$BENCH_DB_DIR"
fsync_us=$("$work/background" fsync-probe "$BENCH_DB_DIR" 500 | sed 's/fsync_us=//')
bg_port_of() {
  local i
  for i in "${!BACKGROUND[@]}"; do
    [[ ${BACKGROUND[$i]} == "$1" ]] && { echo $((BASE_PORT + 20 + i)); return; }
  done
}
bg_start() {
  local name=$1 addr
  addr="127.0.0.1:$(bg_port_of "$name")"
  case $name in
    layered-answer) "${server_pin[@]}" "$work/background" layered-axum "$addr" & ;;
    background-memory-axum) "${server_pin[@]}" "$work/background" background-axum memory "$addr" & ;;
    background-memory-actix) "${server_pin[@]}" "$work/background" background-actix memory "$addr" & ;;
    background-sqlite-axum) "${server_pin[@]}" "$work/background" background-axum "sqlite:$BENCH_DB_DIR/axum.db" "$addr" & ;;
    background-sqlite-actix) "${server_pin[@]}" "$work/background" background-actix "sqlite:$BENCH_DB_DIR/actix.db" "$addr" & ;;
    naive-sqlite) "${server_pin[@]}" "$work/background" naive-sqlite "$BENCH_DB_DIR/naive.db" "$addr" & ;;
    background-postgres-axum) "${server_pin[@]}" "$work/background" background-axum "$BENCH_POSTGRES_URL" "$addr" & ;;
    background-postgres-3-replicas)
      for port in "${REPLICA_PORTS[@]}"; do
        BENCH_POSTGRES_SCHEMA=printone_webhooks_bench_3 "${server_pin[@]}" "$work/background" \
          background-axum "$BENCH_POSTGRES_URL" "127.0.0.1:$port" &
        pids+=($!)
      done
      return ;;
  esac
  pids+=($!)
}
# bg_ports NAME: the ports of a contender's receivers.
bg_ports() {
  if [[ $1 == background-postgres-3-replicas ]]; then echo "${REPLICA_PORTS[@]}"; else bg_port_of "$1"; fi
}
# bg_urls NAME: the webhook URLs of a contender's receivers, comma-separated.
bg_urls() {
  local port urls=()
  for port in $(bg_ports "$1"); do urls+=("http://127.0.0.1:$port/webhooks/printone"); done
  (IFS=,; echo "${urls[*]}")
}
if [[ -n $BENCH_POSTGRES_URL ]]; then
  need psql postgresql-client
  for schema in printone_webhooks_bench printone_webhooks_bench_3; do
    psql -q "$BENCH_POSTGRES_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null
  done
fi
for name in "${BACKGROUND[@]}"; do bg_start "$name"; done
for name in "${BACKGROUND[@]}"; do
  for port in $(bg_ports "$name"); do
  for _ in $(seq 100); do
    [[ $(status "$port" "$work/body-1024" "$(cat "$work/sig-1024")") == 200 ]] && break
    sleep 0.1
  done
  [[ $(status "$port" "$work/body-1024" "$(cat "$work/sig-1024")") == 200 ]] \
    || { log "$name does not answer 200 to a signed delivery"; exit 1; }
  [[ $(status "$port" "$work/body-1024" "$(cat "$work/sig-65536")") == 401 ]] \
    || { log "$name does not refuse a wrong signature"; exit 1; }
  done
done
# bg_load NAME: one run of the load generator, its line appended to the results.
bg_load() {
  local name=$1 line
  line=$(timeout $((ROUND_SECONDS + 150)) "${client_pin[@]}" "$work/background" load \
    "$(bg_urls "$name")" "$ROUND_SECONDS" "$CONNECTIONS" 1024)
  echo "$line" >>"$work/bg-$name"
  log "   $name: $line"
}
log "== $ROUNDS interleaved rounds of the background mode: ${ROUND_SECONDS}s, $CONNECTIONS connections, 1 KiB"
for round in $(seq "$ROUNDS"); do
  log "-- round $round ($(uptime | sed 's/.*load/load/'))"
  count=${#BACKGROUND[@]}
  for offset in $(seq 0 $((count - 1))); do
    bg_load "${BACKGROUND[$(((offset + round - 1) % count))]}"
  done
done
# bg FIELD NAME: the median of one field of a contender's lines.
bg() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" "$work/bg-$2" | median; }
# bg_ratio A B: the median over rounds of A's rate divided by B's in the same round.
bg_ratio() {
  paste <(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' "$work/bg-$1") \
    <(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' "$work/bg-$2") \
    | awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' | median | awk '{ printf "%.2f", $1 }'
}

rps() { median <"$work/rps-$1-$2"; }
mbs() { median <"$work/speed-$1-$2"; }
# per_round A B NAME SIZE: the median over rounds of A's figure divided by B's in the same round,
# so that a change of the machine's speed between rounds does not skew the ratio.
per_round() {
  paste "$work/$1-$3-$4" "$work/$2-$4" | awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' | median \
    | awk '{ printf "%.2f", $1 }'
}
to_bare() { per_round rps rps-bare-axum "$1" "$2"; }
to_node() { per_round rps rps-node "$1" "$2"; }
to_handwritten() { per_round rps "rps-handwritten-$3" "$1" "$2"; }
to_openssl() { per_round speed speed-openssl "$1" "$2"; }

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, sha_ni: $(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no)"
if [[ $SHA_EXTENSIONS == off ]]; then
  echo "SHA extensions: off (OPENSSL_ia32cap=$OPENSSL_ia32cap; sha2_backend=\"soft\"; ring's CPU detection masked)"
else
  echo "SHA extensions: as the CPU reports them"
fi
echo "versions: $(rustc -V | cut -d' ' -f1-2), node $(node -v), $(openssl version | cut -d' ' -f1-2), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "requests/s, median of $ROUNDS rounds of ${ROUND_SECONDS}s, wrk -t$WRK_THREADS -c$CONNECTIONS on CPUs '${CLIENT_CPUS}', servers on CPUs '${SERVER_CPUS}':"
echo "(ratios are medians of the ratios within each round)"
if [[ $BACKGROUND_ONLY != 1 ]]; then
printf '%-24s %12s %12s %14s %14s\n' server "1KiB req/s" "64KiB req/s" "1KiB /bare" "64KiB /bare"
for name in "${SERVERS[@]}"; do
  printf '%-24s %12s %12s %14s %14s\n' "$name" "$(rps "$name" 1024)" "$(rps "$name" 65536)" \
    "$(to_bare "$name" 1024)" "$(to_bare "$name" 65536)"
done
echo
echo "verification MB/s, median of $ROUNDS rounds of ${SPEED_SECONDS}s (openssl speed -elapsed -hmac sha256):"
printf '%-8s %10s %12s %10s %20s %14s\n' size openssl rustcrypto ring "rustcrypto/openssl" "ring/openssl"
for size in "${SIZES[@]}"; do
  printf '%-8s %10s %12s %10s %20s %14s\n' "$size" "$(mbs openssl "$size")" "$(mbs rustcrypto "$size")" "$(mbs ring "$size")" \
    "$(to_openssl rustcrypto "$size")" "$(to_openssl ring "$size")"
done
fi
echo
echo "background mode, 1 KiB, $CONNECTIONS connections, median of $ROUNDS rounds of ${ROUND_SECONDS}s; rate = deliveries that got a 200 and were handled within the run, per second"
echo "(SQLite files in $BENCH_DB_DIR: fsync of a 4 KiB write there takes ${fsync_us} us)"
printf '%-32s %9s %9s %9s %9s %9s %9s %12s\n' contender rate/s "200s" "503s" p50_us p99_us rows/commit peak_rss_kb
for name in "${BACKGROUND[@]}"; do
  printf '%-32s %9s %9s %9s %9s %9s %9s %12s\n' "$name" "$(bg rate "$name")" "$(bg ok "$name")" \
    "$(bg refused "$name")" "$(bg p50_us "$name")" "$(bg p99_us "$name")" \
    "$(bg rows_per_commit "$name")" "$(bg peak_rss_kb "$name")"
done
echo
echo "ratio background-memory-actix/layered 1KiB = $(bg_ratio background-memory-actix layered-answer)"
echo "ratio background-sqlite-actix/background-memory-actix 1KiB = $(bg_ratio background-sqlite-actix background-memory-actix)"
echo "ratio background-memory/layered 1KiB = $(bg_ratio background-memory-axum layered-answer)"
echo "ratio background-sqlite/background-memory 1KiB = $(bg_ratio background-sqlite-axum background-memory-axum)"
echo "ratio background-sqlite/naive-sqlite 1KiB = $(bg_ratio background-sqlite-axum naive-sqlite)"
if [[ -n $BENCH_POSTGRES_URL ]]; then
  echo "ratio background-postgres/background-memory 1KiB = $(bg_ratio background-postgres-axum background-memory-axum)"
  echo "ratio background-postgres-3-replicas/background-postgres 1KiB = $(bg_ratio background-postgres-3-replicas background-postgres-axum)"
fi
[[ $BACKGROUND_ONLY == 1 ]] && exit 0
echo
for size in "${SIZES[@]}"; do
  label=$([[ $size == 1024 ]] && echo 1KiB || echo 64KiB)
  for name in handwritten-ring layered-rustcrypto layered-ring actix-rustcrypto actix-ring; do
    echo "ratio $name/node $label = $(to_node "$name" "$size")"
  done
done
for size in "${SIZES[@]}"; do
  label=$([[ $size == 1024 ]] && echo 1KiB || echo 64KiB)
  for backend in rustcrypto ring; do
    echo "ratio layered-$backend/handwritten-$backend $label = $(to_handwritten "layered-$backend" "$size" "$backend")"
  done
done
echo "ratio layered-rustcrypto/bare 1KiB = $(to_bare layered-rustcrypto 1024)"
echo "ratio layered/bare 1KiB = $(to_bare layered-ring 1024)"
