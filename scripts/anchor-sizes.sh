#!/usr/bin/env bash
# Issue 8's size anchors rebuilt here, side by side, with identical settings: the same minimal loader
# (open the object named on the command line, load every program) written against bpfload,
# libbpf-rs (C libbpf 1.7 with libelf and zlib, all linked statically) and aya 0.14
# (compat/anchors/). Each is built fully static on glibc twice:
#   - "stated": the anchors' stated settings (fat LTO, stripped; one codegen unit) plus
#     +crt-static, i.e. a static-pie binary with unwind tables, opt-level 3;
#   - "bpfload's": scripts/static-build.sh's settings (opt-level "z", panic=abort, non-PIE static,
#     identical-code folding, lld -O2, no unwind tables).
# It prints the sizes and bpfload's ratio to each anchor per column, and (as root) loads
# tests/bpf/demo.bpf.o with every binary, so each is a working loader, then prints each one's
# whole-process peak RSS. It reports; it does not fail on a ratio. libbpf-rs's static build needs
# libelf's and zlib's static archives (libelf-dev, zlib1g-dev) and `-L native=` for them; the
# script fails if the libbpf-rs anchor did not get libbpf 1.7 (a system libbpf.a can shadow it).
#
#   bash scripts/anchor-sizes.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=x86_64-unknown-linux-gnu
manifest=$root/compat/anchors/Cargo.toml
dir=${ANCHORS_TARGET_DIR:-$root/compat/anchors/target}
libdir=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
# libelf's and zlib's static archives, and nothing else: a search path of /usr/lib/$libdir itself
# also holds Debian's libbpf.a (libbpf-dev, 1.1.x), which the linker would then take instead of the
# libbpf 1.7 that libbpf-sys builds (its own search path comes after RUSTFLAGS' on the command line).
mkdir -p "$dir"
archives=$(cd "$dir" && pwd)/static-c-archives
mkdir -p "$archives"
for a in libelf.a libz.a; do
    [ -f "/usr/lib/$libdir/$a" ] || { echo "anchor-sizes: /usr/lib/$libdir/$a missing (libelf-dev, zlib1g-dev)" >&2; exit 1; }
    ln -sf "/usr/lib/$libdir/$a" "$archives/$a"
done
native="-L native=$archives"

stated="-C target-feature=+crt-static $native"
ours="$stated -C relocation-model=static -C link-arg=-Wl,--icf=all -C link-arg=-Wl,-O2 \
 -C link-arg=-Wl,-T,$root/scripts/static-no-unwind.ld"

build() { # build PROFILE RUSTFLAGS
    RUSTFLAGS="$2" CARGO_TARGET_DIR=$dir cargo build --manifest-path "$manifest" --locked \
        --profile "$1" --target "$target" --bins
}
build release "$stated"
build small "$ours"

bins=(anchor-bpfload anchor-libbpf-rs anchor-aya)
for p in release small; do
    for b in "${bins[@]}"; do
        f=$dir/$target/$p/$b
        case "$(file -b "$f")" in
            *"statically linked"* | *"static-pie linked"*) ;;
            *) echo "anchor-sizes: $f is not statically linked" >&2; exit 1 ;;
        esac
        # The libbpf-rs anchor must hold C libbpf 1.7 (the behaviour reference), not a system libbpf.
        if [ "$b" = anchor-libbpf-rs ] && ! grep -qa LIBBPF_BPF_TOKEN_PATH "$f"; then
            echo "anchor-sizes: $f does not contain libbpf 1.7 (no LIBBPF_BPF_TOKEN_PATH): a system libbpf.a was linked" >&2
            exit 1
        fi
        if [ "$(id -u)" -eq 0 ]; then
            "$f" "$root/tests/bpf/demo.bpf.o" >/dev/null || { echo "anchor-sizes: $f failed to load the demo" >&2; exit 1; }
        fi
    done
done

size() { stat -c %s "$dir/$target/$1/$2"; }
printf '\n%-22s %24s %24s\n' "minimal static loader" "stated settings" "bpfload's settings"
for b in "${bins[@]}"; do
    r=$(size release "$b")
    s=$(size small "$b")
    awk -v n="${b#anchor-}" -v r="$r" -v s="$s" \
        'BEGIN { printf "%-22s %12d (%.2f MiB) %12d (%.2f MiB)\n", n, r, r / 1048576, s, s / 1048576 }'
done
for a in libbpf-rs aya; do
    awk -v a="$a" -v br="$(size release anchor-bpfload)" -v bs="$(size small anchor-bpfload)" \
        -v ar="$(size release "anchor-$a")" -v as="$(size small "anchor-$a")" \
        'BEGIN { printf "%-22s %23.2fx %23.2fx\n", "bpfload / " a, br / ar, bs / as }'
done

# Whole-process peak RSS (the kernel's ru_maxrss of the child, through GNU time) of each minimal loader, bpfload's
# settings: what a static loader in a container costs in memory, code pages and the kernel's BTF
# included. Median of 5 runs. demo.bpf.o (maps, globals, no CO-RE) loads with all three;
# core_task.bpf.o (CO-RE against the kernel's BTF) with bpfload and libbpf, while aya 0.14 fails
# the verifier on it. As root only (it loads into the kernel).
if [ "$(id -u)" -eq 0 ]; then
    # GNU time: its own footprint before exec is ~1 MiB, below the loaders' peaks (a spawner
    # with a larger one, such as python, would be measured instead: the kernel's ru_maxrss
    # includes the child's memory before exec).
    [ -x /usr/bin/time ] || { echo "anchor-sizes: /usr/bin/time missing (Debian package time)" >&2; exit 1; }
    peak() { # peak BINARY OBJECT: median ru_maxrss (KiB) of 5 runs, or "-" if it fails to load
        local runs=() r
        for _ in 1 2 3 4 5; do
            r=$(/usr/bin/time -f %M "$1" "$2" 2>&1 >/dev/null | tail -1) || { echo -; return; }
            runs+=("$r")
        done
        printf '%s\n' "${runs[@]}" | sort -n | sed -n 3p
    }
    printf '\n%-22s %16s %16s\n' "peak RSS (KiB)" "demo.bpf.o" "core_task.bpf.o"
    declare -A kib
    for b in "${bins[@]}"; do
        for o in demo core_task; do
            kib[$b.$o]=$(peak "$dir/$target/small/$b" "$root/tests/bpf/$o.bpf.o")
        done
        printf '%-22s %16s %16s\n' "${b#anchor-}" "${kib[$b.demo]}" "${kib[$b.core_task]}"
    done
    [ "${kib[anchor-bpfload.demo]}" != - ] && [ "${kib[anchor-bpfload.core_task]}" != - ] ||
        { echo "anchor-sizes: the bpfload anchor failed to load a fixture" >&2; exit 1; }
    for a in libbpf-rs aya; do
        ratio() { [ "$2" = - ] && echo "-" || awk -v b="$1" -v o="$2" 'BEGIN { printf "%.2fx", b / o }'; }
        printf '%-22s %16s %16s\n' "bpfload / $a" "$(ratio "${kib[anchor-bpfload.demo]}" "${kib[anchor-$a.demo]}")" \
            "$(ratio "${kib[anchor-bpfload.core_task]}" "${kib[anchor-$a.core_task]}")"
    done
fi
