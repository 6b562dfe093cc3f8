// SPDX-License-Identifier: GPL-2.0
// bpf-to-bpf calls and a callback.
//
// `compute` calls a global subprogram (verified on its own, needs BTF func
// info), a static subprogram (inlined into the caller's verification), and
// bpf_loop with a static callback (a BPF_PSEUDO_FUNC ld_imm64). It writes each
// result into `results`, so a test can check the calls ran as written.
// `compute_again` shares the static subprogram: each main program gets its own
// appended copy.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

/* 0: global_add(20, 22) = 42; 1: static_mul(6, 7) = 42; 2: sum of 1..10 via bpf_loop = 55;
 * 3: written by compute_again: static_mul(3, 5) = 15. */

__noinline int global_add(int a, int b)
{
	return a + b;
}

static __noinline __u64 static_mul(__u64 a, __u64 b)
{
	return a * b;
}

struct loop_ctx {
	__u64 sum;
};

static int add_index(__u32 index, void *data)
{
	struct loop_ctx *c = data;

	c->sum += index + 1;
	return 0;
}

static __always_inline void put(__u32 key, __u64 val)
{
	bpf_map_update_elem(&results, &key, &val, BPF_ANY);
}

SEC("socket")
int compute(struct __sk_buff *skb)
{
	struct loop_ctx c = { .sum = 0 };

	put(0, global_add(20, 22));
	put(1, static_mul(6, 7));
	bpf_loop(10, add_index, &c, 0);
	put(2, c.sum);
	return 0;
}

SEC("socket")
int compute_again(struct __sk_buff *skb)
{
	put(3, static_mul(3, 5));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
