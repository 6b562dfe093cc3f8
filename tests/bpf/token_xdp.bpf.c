// SPDX-License-Identifier: GPL-2.0
// Token scenario "xdp program" (libbpf selftest obj_priv_prog, progs/priv_prog.c):
// one XDP program, no maps and no global data. Under a token it needs
// delegate_cmds=prog_load, delegate_progs=xdp and the xdp bit of delegate_attachs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_prog1(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
