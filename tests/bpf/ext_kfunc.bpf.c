// SPDX-License-Identifier: GPL-2.0
// kfunc calls into vmlinux (bpf_task_acquire/bpf_task_release) from a tp_btf program, a weak
// kfunc no kernel has (its call is poisoned and unreachable), and an iter/task program.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void bpfload_no_such_kfunc(struct task_struct *p) __ksym __weak;

SEC("tp_btf/task_newtask")
int BPF_PROG(kfunc_acquire, struct task_struct *task, __u64 clone_flags)
{
	struct task_struct *t = bpf_task_acquire(task);

	if (!t)
		return 0;
	bpf_task_release(t);
	return 0;
}

SEC("tp_btf/task_newtask")
int BPF_PROG(kfunc_weak_missing, struct task_struct *task, __u64 clone_flags)
{
	if (bpfload_no_such_kfunc)
		bpfload_no_such_kfunc(task);
	return 0;
}

SEC("iter/task")
int iter_task(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
