// SPDX-License-Identifier: GPL-2.0
// A PROG_ARRAY whose slots are filled from a static initialiser.
//
// `entry` tail-calls slot 0; the slot holds `tail_0`, which returns TAIL_0_RET.
// If the loader did not fill the slot, the tail call falls through and `entry`
// returns NO_TAIL_RET. Slot 1 holds `tail_1`; slot 2 stays empty.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TAIL_0_RET 42
#define TAIL_1_RET 43
#define NO_TAIL_RET 1

SEC("socket")
int tail_0(struct __sk_buff *skb)
{
	return TAIL_0_RET;
}

SEC("socket")
int tail_1(struct __sk_buff *skb)
{
	return TAIL_1_RET;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, int(void *));
} jmp_table SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_0,
		[1] = (void *)&tail_1,
	},
};

SEC("socket")
int entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp_table, 0);
	return NO_TAIL_RET;
}

char LICENSE[] SEC("license") = "GPL";
