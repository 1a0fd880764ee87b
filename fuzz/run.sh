#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints how many inputs each executed.
#
#   fuzz/run.sh 600          # ten minutes per target
#   fuzz/run.sh 5 event      # one target only
#
# The committed seeds in fuzz/corpus/<target>/ are read, never written: what libFuzzer finds is
# kept in fuzz/work/<target>/ (ignored by git) and reused by the next run. A crash, a hang over
# 10 s per input or more than 1 GiB of memory stops the run and leaves the input in
# fuzz/artifacts/<target>/; replay it with `cargo +nightly fuzz run TARGET ARTIFACT` (with the
# flags of flags_of below, to reuse the service target's build). A failed oracle assertion says
# in words which request broke it; that message is printed last.
#
# First, `cargo test` checks that the committed seeds are the inputs their names describe.
#
# The service target runs without AddressSanitizer unless SERVICE_SANITIZER=address: the crate
# forbids unsafe code and its harness has none, so there ASan only guards the dependencies'
# unsafe code (tokio, bytes, http), and it made each input about 7 times as costly (its checks
# also double the edges libFuzzer tracks). The parsing targets keep it. A run with no sanitizer
# finds no leaks; libFuzzer's -rss_limit_mb still bounds memory.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(signature event service)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The committed seeds are the inputs their names describe, and pass (src/service/seeds.rs).
cargo +nightly test --lib --quiet

# The sanitizer of a target, and the cargo flags that build it apart from the others.
sanitizer_of() {
  case "$1" in
    service) echo "${SERVICE_SANITIZER:-none}" ;;
    *) echo address ;;
  esac
}
flags_of() {
  local sanitizer
  sanitizer=$(sanitizer_of "$1")
  if [ "$sanitizer" = address ]; then
    echo "-O"
  else
    echo "-O -s $sanitizer --target-dir target/sanitizer-$sanitizer"
  fi
}

for target in "${targets[@]}"; do
  # shellcheck disable=SC2046 # the flags are words
  cargo +nightly fuzz build $(flags_of "$target") "$target"
done

for target in "${targets[@]}"; do
  mkdir -p "work/$target"
  log="work/$target.log"
  # shellcheck disable=SC2046
  if ! cargo +nightly fuzz run $(flags_of "$target") "$target" "work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=1024 \
      -max_len=8192 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    # The panic message names the request in words; the input's Debug dump may push it out of
    # the tail above.
    grep -A 4 "panicked at" "$log" | head -n 20 || true
    echo "fuzz target $target FAILED (log: fuzz/$log)"
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log")
  peak=$(awk '/stat::peak_rss_mb:/ {print $2}' "$log")
  if [ "$(sanitizer_of "$target")" = address ]; then
    found="no crash, hang or leak"
  else
    found="no crash or hang (no sanitizer)"
  fi
  echo "fuzz target $target: ${runs:-?} executions in ${seconds} s, peak RSS ${peak:-?} MB, $found"
done
