// SPDX-License-Identifier: GPL-2.0
// Two struct_ops variables in one section. clang leaves every DATASEC offset at 0; libbpf
// reads struct_ops maps after its DATASEC fix-up, so the second variable's image and member
// relocations come from its symbol's offset (a review found bpfload read the raw offset: the
// open failed with "cannot find struct_ops map for relo at offset 48"). `.struct_ops.link`:
// creating and filling the maps registers nothing (that happens when a link is made).
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct sock;

struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	__u32 flags;
	char name[16];
};

SEC("struct_ops/pair_a_ssthresh")
__u32 BPF_PROG(pair_a_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops/pair_b_ssthresh")
__u32 BPF_PROG(pair_b_ssthresh, struct sock *sk)
{
	return 3;
}

SEC("struct_ops/pair_cong_avoid")
void BPF_PROG(pair_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC("struct_ops/pair_b_undo_cwnd")
__u32 BPF_PROG(pair_b_undo_cwnd, struct sock *sk)
{
	return 10;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops pair_first = {
	.ssthresh = (void *)pair_a_ssthresh,
	.cong_avoid = (void *)pair_cong_avoid,
	.name = "bpfload_pa",
};

SEC(".struct_ops.link")
struct tcp_congestion_ops pair_second = {
	.ssthresh = (void *)pair_b_ssthresh,
	.cong_avoid = (void *)pair_cong_avoid,
	.undo_cwnd = (void *)pair_b_undo_cwnd,
	.name = "bpfload_pb",
};

char LICENSE[] SEC("license") = "GPL";
