// SPDX-License-Identifier: GPL-2.0
// Direct (BTF pointer) loads of CO-RE-relocated fields whose size differs
// between the local declaration and the kernel: the load width is adjusted
// when zero-extension keeps the value (unsigned integers, pointers) and the
// instruction is poisoned otherwise (signed integers), as libbpf does.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	/* the kernel's is `unsigned int`: the 8-byte load becomes a 4-byte one */
	unsigned long flags;
	/* the kernel's is `pid_t` (int): a signed value cannot be narrowed */
	long pid;
} __attribute__((preserve_access_index));

char LICENSE[] SEC("license") = "GPL";

__u64 out[2];

SEC("tp_btf/task_newtask")
int BPF_PROG(narrowed_load, struct task_struct *task, __u64 clone_flags)
{
	out[0] = task->flags;
	return 0;
}

SEC("tp_btf/task_newtask")
int BPF_PROG(signed_load_poisoned, struct task_struct *task, __u64 clone_flags)
{
	out[1] = task->pid;
	return 0;
}
