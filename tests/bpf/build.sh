#!/usr/bin/env bash
# Rebuild every BPF fixture object (tests/bpf/*.bpf.c -> *.bpf.o) with clang.
# tests/bpf/hostile/ holds objects that must fail to open, tests/bpf/lenient/ objects that
# load only with `Loader::lenient_externs` (a strong extern no kernel has); both are kept
# apart so tests that load every tests/bpf/*.bpf.o do not pick them up, and are built the
# same way.
#
# Needs Debian's `clang` and `libbpf-dev` (for <bpf/bpf_helpers.h>); no generated
# vmlinux.h. Objects are committed, so tests never need clang; CI runs this with
# `--check` to prove the committed objects are what the sources produce.
#
#   bash tests/bpf/build.sh           rebuild in place
#   bash tests/bpf/build.sh --check   rebuild into a temp dir, fail if any object differs
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLANG=${CLANG:-clang}
arch_inc=/usr/include/$(uname -m)-linux-gnu

check=0
[ "${1:-}" = "--check" ] && check=1

out=$here
if [ $check = 1 ]; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi

# Compile from inside the fixture directory with relative names: the DWARF and
# the BTF line info (which embeds each source line's text, read back through
# the recorded path) then do not depend on the checkout path or the caller's
# working directory, so the objects are reproducible byte for byte.
cd "$here"
status=0
for src in *.bpf.c hostile/*.bpf.c lenient/*.bpf.c; do
	name=${src%.c}
	mkdir -p "$out/$(dirname "$name")"
	"$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86 \
		-I"$arch_inc" -I. \
		-fdebug-prefix-map="$here"=. -fdebug-compilation-dir=. \
		-c "$src" -o "$out/$name.o"
	if [ $check = 1 ] && ! cmp -s "$out/$name.o" "$here/$name.o"; then
		echo "STALE: tests/bpf/$name.o differs from what $name.c builds to (run: bash tests/bpf/build.sh)" >&2
		status=1
	fi
done
if [ $check = 1 ] && [ $status = 0 ]; then
	echo "fixtures: every tests/bpf/*.bpf.o matches its source"
fi
exit $status
