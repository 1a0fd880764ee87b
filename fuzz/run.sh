#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints how many inputs each executed.
#
#   fuzz/run.sh 600          # ten minutes per target
#   fuzz/run.sh 5 event      # one target only
#
# The committed seeds in fuzz/corpus/<target>/ are read, never written: what libFuzzer finds is
# kept in fuzz/work/<target>/ (ignored by git) and reused by the next run. A crash, a hang over
# 10 s per input or more than 1 GiB of memory stops the run and leaves the input in
# fuzz/artifacts/<target>/; replay it with `cargo +nightly fuzz run TARGET ARTIFACT`. A failed
# oracle assertion says in words which request broke it; that message is printed last.
#
# First, `cargo test` checks that the committed seeds are the inputs their names describe.
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

cargo +nightly fuzz build -O

for target in "${targets[@]}"; do
  mkdir -p "work/$target"
  log="work/$target.log"
  if ! cargo +nightly fuzz run -O "$target" "work/$target" "corpus/$target" -- \
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
  echo "fuzz target $target: ${runs:-?} executions in ${seconds} s, peak RSS ${peak:-?} MB, no crash, hang or leak"
done
