// SPDX-License-Identifier: GPL-2.0
// Token scenario "struct_ops" (libbpf selftests obj_priv_btf_fail / obj_priv_btf_success,
// which use bpf_dummy_ops; tcp_congestion_ops exists on every kernel with INET and a JIT).
// Under a token it needs map_create, prog_load and btf_load (a struct_ops map cannot exist
// without BTF), the struct_ops map and program types, and in delegate_attachs the bit of each
// member's *index* in the kernel struct: the kernel checks the member index as the expected
// attach type.
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

SEC("struct_ops/tok_ssthresh")
__u32 BPF_PROG(tok_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops/tok_cong_avoid")
void BPF_PROG(tok_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC("struct_ops/tok_undo_cwnd")
__u32 BPF_PROG(tok_undo_cwnd, struct sock *sk)
{
	return 10;
}

SEC(".struct_ops")
struct tcp_congestion_ops tok_cc = {
	.ssthresh = (void *)tok_ssthresh,
	.cong_avoid = (void *)tok_cong_avoid,
	.undo_cwnd = (void *)tok_undo_cwnd,
	.name = "bpfload_tok_cc",
};

char LICENSE[] SEC("license") = "GPL";
