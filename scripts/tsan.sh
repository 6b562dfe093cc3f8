#!/usr/bin/env bash
# Runs the tests that exercise bpfload's threads under ThreadSanitizer: the loading pipeline
# (parallel verification, loader unit tests), concurrent loads that share the kernel's BTF and the
# probe caches (tests/tests/concurrency.rs), concurrent lookups across the kernel BTF's index
# build (btf/tests/kernel.rs), and the probe and syscall-count tests that run on several threads.
# std is rebuilt with the sanitizer (-Zbuild-std), so a report is about this code, not about an
# uninstrumented std. Needs the nightly toolchain and its rust-src component (installed here if
# rustup can fetch it); without them it says so and exits 0, like scripts/fuzz-smoke.sh. Any report
# fails the run: TSan exits non-zero from a process that reported, and this script also refuses
# output that contains one.
#
#   bash scripts/tsan.sh          # as root, so the kernel-facing tests load for real
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "tsan: skipped: needs the nightly toolchain"
    exit 0
fi
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
    if ! rustup component add rust-src --toolchain nightly; then
        echo "tsan: skipped: the nightly rust-src component (for -Zbuild-std) cannot be installed"
        exit 0
    fi
fi
target=x86_64-unknown-linux-gnu
export RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread"
export CARGO_TARGET_DIR=${TSAN_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/tsan}
# Child test processes (concurrency.rs re-runs itself) inherit these: a report makes any process
# exit with 66.
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 ${TSAN_OPTIONS:-}"
# "cargo arguments | test-binary arguments". The user-namespace scenarios are left out: TSan runs a
# thread of its own in every process, and the kernel refuses unshare(CLONE_NEWUSER) to a
# multithreaded process (EINVAL), so their helper cannot start under the sanitizer.
tests=(
    "-p bpfload --lib |"
    "-p bpfload-btf --test kernel |"
    "-p bpfload-tests --test concurrency |"
    "-p bpfload-tests --test probe | --skip userns"
    "-p bpfload-syscall --test fault_plan |"
)
status=0
for t in "${tests[@]}"; do
    echo "== tsan: ${t/ |/}"
    log=$(mktemp)
    cargo_args=${t%%|*}
    test_args=${t#*|}
    # shellcheck disable=SC2086 # several arguments each
    if cargo +nightly test -Zbuild-std --target "$target" $cargo_args -- --test-threads=4 $test_args >"$log" 2>&1 &&
        ! grep -q "WARNING: ThreadSanitizer" "$log"; then
        grep -E "^test result" "$log" || true
    else
        grep -E -A40 "WARNING: ThreadSanitizer|panicked|^error" "$log" | head -120 || tail -60 "$log"
        echo "tsan: ${t/ |/} FAILED"
        status=1
    fi
    rm -f "$log"
done
exit $status
