// SPDX-License-Identifier: GPL-2.0
// Map-in-map: an ARRAY_OF_MAPS and a HASH_OF_MAPS, each with an inner map
// definition and a slot filled from a static initialiser.
//
// `lookup_inner` reads inner_a[0] through outer_arr[0] and inner_b[0] through
// outer_hash[5], and copies them into `results`: it only finds them if the
// loader created the inner maps, filled the slots and wrote nothing else.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [5] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

SEC("socket")
int lookup_inner(struct __sk_buff *skb)
{
	__u32 zero = 0, one = 1, five = 5;
	__u64 *v;
	void *inner;

	inner = bpf_map_lookup_elem(&outer_arr, &zero);
	if (inner) {
		v = bpf_map_lookup_elem(inner, &zero);
		if (v)
			bpf_map_update_elem(&results, &zero, v, BPF_ANY);
	}
	inner = bpf_map_lookup_elem(&outer_hash, &five);
	if (inner) {
		v = bpf_map_lookup_elem(inner, &zero);
		if (v)
			bpf_map_update_elem(&results, &one, v, BPF_ANY);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
