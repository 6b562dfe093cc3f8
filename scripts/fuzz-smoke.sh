#!/usr/bin/env bash
# Runs every cargo-fuzz target for a short while (FUZZ_SECONDS, default 30) from seeded corpora.
# Needs the nightly toolchain and cargo-fuzz; without them it says so and exits 0 (CI calls it only when both
# exist: installing cargo-fuzz took ~6 min on the project machine, too long to do on every CI run).
# A crash fails the script; libFuzzer leaves the input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}
if ! cargo +nightly --version >/dev/null 2>&1 || ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: skipped: needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz)"
    exit 0
fi
python3 scripts/fuzz-seed.py
cd fuzz
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -O
status=0
for t in $targets; do
    echo "== $t (${secs}s)"
    # -rss_limit_mb: a parser that allocates without bound on a small input shows up as an OOM crash.
    log=$(mktemp)
    if cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=1024 \
        -max_len=1048576 -print_final_stats=1 >"$log" 2>&1; then
        grep -E "DONE +cov|^stat::number_of_executed_units|^stat::average_exec_per_sec" "$log" || true
    else
        tail -40 "$log"
        echo "fuzz-smoke: $t FAILED"
        status=1
    fi
    rm -f "$log"
done
exit $status
