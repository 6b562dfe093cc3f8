// SPDX-License-Identifier: GPL-2.0
// A struct_ops member program using an extern this kernel lacks, plus an unrelated program.
// libbpf loads the member whenever its map is created, whatever its autoload was set to
// (bpf_object_adjust_struct_ops_autoload, after externs are resolved): lenient externs must
// count it as loaded while its map is created.
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

extern const void bpfload_missing_ksym __ksym;

SEC("struct_ops/ext_ssthresh")
__u32 BPF_PROG(ext_ssthresh, struct sock *sk)
{
	return (__u32)(long)&bpfload_missing_ksym;
}

SEC("struct_ops/ext_cong_avoid")
void BPF_PROG(ext_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC("struct_ops/ext_undo_cwnd")
__u32 BPF_PROG(ext_undo_cwnd, struct sock *sk)
{
	return 10;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops ext_ops = {
	.ssthresh = (void *)ext_ssthresh,
	.cong_avoid = (void *)ext_cong_avoid,
	.undo_cwnd = (void *)ext_undo_cwnd,
	.name = "bpfload_ext",
};

SEC("kprobe/do_nanosleep")
int other(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
