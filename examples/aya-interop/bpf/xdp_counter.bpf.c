// SPDX-License-Identifier: GPL-2.0
// XDP packet counter for the aya interop example: bpfload loads it, aya attaches it.
//
// `count_packets` adds `increment` (a `const volatile` that the loader may set before load) to
// slot 0 of `packets` for every packet it sees, and passes the packet on.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

const volatile __u64 increment = 1;

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&packets, &key);

	if (v)
		__sync_fetch_and_add(v, increment);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
