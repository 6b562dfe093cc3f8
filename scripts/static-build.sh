#!/usr/bin/env bash
# Builds bpfload as a fully static binary on the gnu target with nothing but cargo, checks that
# `file` calls it statically linked, reports its size, and (as root) loads the built-in demo with it.
#
#   scripts/static-build.sh            # build, check, run the demo when root
#   CI=true scripts/static-build.sh    # as above; not being root is an error instead of a skip
#
# Size (issue 8: smaller than the aya and libbpf-rs minimal loaders, 1.63 and 1.50 MiB fully static
# on glibc with their stated settings: LTO, stripped). Every step is a cargo/rustc/linker flag, no
# other tool:
#   - the `release-small` profile: the release settings (fat LTO, one codegen unit, panic=abort,
#     stripped) with opt-level "z";
#   - a non-PIE static executable (`-C relocation-model=static`): `file` then says "statically
#     linked" (a static-pie binary says "static-pie linked"), and the code is smaller;
#   - the linker's identical code folding (`--icf=all`) and string tail merging (`-O2`);
#   - no unwind tables (scripts/static-no-unwind.ld): with panic=abort nothing unwinds.
# Not used: LLVM's machine outliner (-enable-machine-outliner), ~25 KB smaller, but off by default
# for x86 in LLVM and with a history of miscompiles; we do not ship a loader built with it.
# loader/examples/minimal-load (open + load, nothing else) is built the same way and measured: the
# counterpart of the anchors' minimal loaders. These settings would shrink the anchors too: for the
# like-for-like comparison (all three loaders rebuilt here with identical settings) see
# scripts/anchor-sizes.sh. Afterwards the CLI's end-to-end tests (loader/tests/cli.rs) run against this binary
# (BPFLOAD_BIN), as root; they need no C toolchain.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=x86_64-unknown-linux-gnu
profile=release-small
cd "$root"

static_flags="-C target-feature=+crt-static -C relocation-model=static \
 -C link-arg=-Wl,--icf=all -C link-arg=-Wl,-O2 -C link-arg=-Wl,-T,$root/scripts/static-no-unwind.ld"
RUSTFLAGS="${RUSTFLAGS:-} $static_flags" \
    cargo build --profile "$profile" --target "$target" -p bpfload --bin bpfload --example minimal-load

dir=${CARGO_TARGET_DIR:-$root/target}
bin=$dir/$target/$profile/bpfload
desc=$(file -b "$bin")
echo "file: $desc"
case "$desc" in
    *"statically linked"*) ;;
    *) echo "static-build: $bin is not statically linked" >&2; exit 1 ;;
esac
if command -v readelf >/dev/null && readelf -SW "$bin" | grep -q ' \.eh_frame '; then
    echo "static-build: $bin still has unwind tables (.eh_frame)" >&2
    exit 1
fi
size=$(stat -c %s "$bin")
awk -v s="$size" 'BEGIN { m = s / 1048576; printf "size: %d bytes (%.2f MiB); the anchors as stated (their settings, not ours): aya 1.63 MiB (%.1f%%), libbpf-rs 1.50 MiB (%.1f%%); like for like: scripts/anchor-sizes.sh\n", s, m, 100 * m / 1.63, 100 * m / 1.50 }'
# The like-for-like counterpart of the anchors ("a minimal tool that loads every program").
min=$dir/$target/$profile/examples/minimal-load
awk -v s="$(stat -c %s "$min")" 'BEGIN { m = s / 1048576; printf "minimal-load (loader only, no CLI): %d bytes (%.2f MiB; %.1f%% of aya, %.1f%% of libbpf-rs as stated)\n", s, m, 100 * m / 1.63, 100 * m / 1.50 }'
# A regression guard, not the target: the binary must stay below aya's stated 1.63 MiB. Issue 8's
# target (smaller than both anchors) is judged like for like by scripts/anchor-sizes.sh, and is not
# met (README, Performance).
if [ "$size" -ge $((163 * 1048576 / 100)) ]; then
    echo "static-build: $size bytes is not smaller than the aya anchor (1.63 MiB)" >&2
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    if [ "${CI:-}" = true ]; then
        echo "static-build: CI=true but not root: cannot run the demo load" >&2
        exit 1
    fi
    echo "static-build: not root, skipping the demo load"
    exit 0
fi
echo "running: $bin load (built-in demo)"
"$bin" load
"$min" tests/bpf/demo.bpf.o
echo "running: the CLI's end-to-end tests against $bin"
BPFLOAD_BIN=$bin cargo test -p bpfload --test cli
