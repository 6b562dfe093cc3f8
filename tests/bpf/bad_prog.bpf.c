// SPDX-License-Identifier: GPL-2.0
// One good program and one the verifier rejects, to test that a failed load
// releases every fd it created (maps, BTF, the good program) and that the
// error carries the verifier log.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

__u64 seen;

SEC("socket")
int good(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&values, &key);

	if (v)
		seen = *v;
	return 0;
}

SEC("socket")
int bad(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&values, &key);

	/* No NULL check: the verifier refuses the dereference of a map_value_or_null
	 * (a hash map, since an in-range constant array lookup is known non-NULL). */
	return *v;
}

char LICENSE[] SEC("license") = "GPL";
