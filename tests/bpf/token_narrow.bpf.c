// SPDX-License-Identifier: GPL-2.0
// Token scenario "narrow delegation": global data (.rodata, .data, .bss), a hash
// map and an xdp program. Exactly what it needs: delegate_cmds=map_create:
// prog_load:btf_load, delegate_maps=array:hash, delegate_progs=xdp,
// delegate_attachs=xdp. No socket_filter program type, so libbpf's global-data
// and BTF probes (socket_filter + array) cannot run under such a token.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 verdict = XDP_PASS;	/* .rodata */
__u64 packets_seen = 1;				/* .data */
__u64 bytes_seen;				/* .bss */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} by_len SEC(".maps");

SEC("xdp")
int handle_xdp(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u64 one = 1, *cnt;

	packets_seen++;
	bytes_seen += len;
	cnt = bpf_map_lookup_elem(&by_len, &len);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&by_len, &len, &one, BPF_NOEXIST);
	return verdict;
}

char _license[] SEC("license") = "GPL";
