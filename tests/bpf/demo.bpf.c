// SPDX-License-Identifier: GPL-2.0
// The demo object built into the `bpfload` binary: `bpfload load` with no
// OBJECT loads it. An xdp packet counter configured through `const volatile`
// globals, with a per-CPU counter map and a small stats hash.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 sample_every = 1;
const volatile int verdict = XDP_PASS;

__u64 seen_total;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} bytes_by_len SEC(".maps");

static __noinline __u32 len_bucket(__u32 len)
{
	return len >> 6;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 zero = 0, bucket;
	__u32 len = ctx->data_end - ctx->data;
	__u64 *cnt, one = 1;

	seen_total++;
	if (sample_every > 1 && seen_total % sample_every)
		return verdict;

	cnt = bpf_map_lookup_elem(&packets, &zero);
	if (cnt)
		*cnt += 1;

	bucket = len_bucket(len);
	cnt = bpf_map_lookup_elem(&bytes_by_len, &bucket);
	if (cnt)
		__sync_fetch_and_add(cnt, len);
	else
		bpf_map_update_elem(&bytes_by_len, &bucket, &one, BPF_NOEXIST);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
