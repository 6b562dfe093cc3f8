#!/usr/bin/env bash
# Rebuild bpf/xdp_counter.bpf.o (committed, so building the example needs no clang).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"${CLANG:-clang}" -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu \
	-fdebug-prefix-map="$here"=. -fdebug-compilation-dir=. \
	-c "$here/xdp_counter.bpf.c" -o "$here/xdp_counter.bpf.o"
