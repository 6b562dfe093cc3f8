// SPDX-License-Identifier: GPL-2.0
// A struct_ops map one of whose member programs the verifier refuses. Under keep_going the map
// is still created and its value image still built: the refused member's slot must hold what
// libbpf's bpf_map_prepare_vdata writes for a program without an fd (-ENOENT), so registering
// fails with EBADF; fd 0 would be skipped by the kernel as "no program".
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

SEC("struct_ops/bad_ssthresh")
__u32 BPF_PROG(bad_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops/bad_cong_avoid")
void BPF_PROG(bad_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	/* A store through a constant: the verifier refuses it (R1 invalid mem access 'scalar'). */
	*(volatile __u32 *)8 = ack;
}

SEC("struct_ops/bad_undo_cwnd")
__u32 BPF_PROG(bad_undo_cwnd, struct sock *sk)
{
	return 10;
}

SEC(".struct_ops")
struct tcp_congestion_ops bad_ops = {
	.ssthresh = (void *)bad_ssthresh,
	.cong_avoid = (void *)bad_cong_avoid,
	.undo_cwnd = (void *)bad_undo_cwnd,
	.name = "bpfload_bad",
};

char LICENSE[] SEC("license") = "GPL";
