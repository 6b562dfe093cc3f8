// SPDX-License-Identifier: GPL-2.0
// Token scenario "freplace" (libbpf selftest obj_priv_freplace_prog, progs/priv_freplace_prog.c):
// an extension of token_xdp.bpf.o's xdp_prog1. Resolving the target needs the target
// program's BTF through BPF_BTF_GET_FD_BY_ID, which under a token needs btf_get_fd_by_id
// in delegate_cmds (kernel 6.15+).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("freplace/xdp_prog1")
int new_xdp_prog2(struct xdp_md *xdp)
{
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
