// SPDX-License-Identifier: GPL-2.0
// A TCP congestion control as struct_ops: the kernel type bpf_struct_ops_tcp_congestion_ops
// exists on every kernel with CONFIG_BPF_JIT and INET. Only the members used are declared.
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

SEC("struct_ops/bpfload_ssthresh")
__u32 BPF_PROG(bpfload_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops/bpfload_cong_avoid")
void BPF_PROG(bpfload_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC("struct_ops/bpfload_undo_cwnd")
__u32 BPF_PROG(bpfload_undo_cwnd, struct sock *sk)
{
	return 10;
}

/* Not used by any map: not autoloaded. */
SEC("struct_ops/bpfload_unused")
__u32 BPF_PROG(bpfload_unused, struct sock *sk)
{
	return 1;
}

SEC(".struct_ops")
struct tcp_congestion_ops bpfload_cc = {
	.ssthresh = (void *)bpfload_ssthresh,
	.cong_avoid = (void *)bpfload_cong_avoid,
	.undo_cwnd = (void *)bpfload_undo_cwnd,
	.name = "bpfload_cc",
};

SEC("?.struct_ops.link")
struct tcp_congestion_ops bpfload_cc_link = {
	.ssthresh = (void *)bpfload_ssthresh,
	.cong_avoid = (void *)bpfload_cong_avoid,
	.undo_cwnd = (void *)bpfload_undo_cwnd,
	.name = "bpfload_cc_l",
};

char LICENSE[] SEC("license") = "GPL";
