// SPDX-License-Identifier: GPL-2.0
// Token scenario "EPERM despite a token": a map pinned by name. A pin may already
// exist and be reused without MAP_CREATE, so the pre-load delegation check only warns
// about its type; when the pin is absent the kernel answers MAP_CREATE with EPERM and
// the loader must say which delegation was missing.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} token_pinned_counts SEC(".maps");

SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&token_pinned_counts, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
