// SPDX-License-Identifier: GPL-2.0
// A USDT program (libbpf's SEC("usdt"): a kprobe program). Where the kernel has multi-uprobe
// links, libbpf loads it with expected_attach_type BPF_TRACE_UPROBE_MULTI, so it can be
// attached through a uprobe_multi link; elsewhere with 0.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("usdt")
int usdt_probe(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
