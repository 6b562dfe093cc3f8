// SPDX-License-Identifier: GPL-2.0
// Hidden functions and BTF linkage, as libbpf sets it before loading the object's BTF: a hidden
// global *subprogram* becomes static (so the verifier checks it with its caller's context), a
// hidden *entry program* keeps its global FUNC (a review found bpfload made both static).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__attribute__((visibility("hidden"))) __attribute__((noinline)) int hidden_sub(int x)
{
	return x + 1;
}

__attribute__((noinline)) int global_sub(int x)
{
	return x * 2;
}

__attribute__((visibility("hidden"))) SEC("xdp") int hidden_main(struct xdp_md *ctx)
{
	return hidden_sub(ctx->ingress_ifindex) > 0 && global_sub(1) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
