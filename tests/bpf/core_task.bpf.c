// SPDX-License-Identifier: GPL-2.0
// CO-RE reads of real kernel types, relocated against the running kernel's BTF.
// No vmlinux.h: the kernel types are declared locally with only the members we
// use, which is exactly what CO-RE is for (offsets come from the kernel's BTF).
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
	unsigned int flags;
	char comm[16];
	struct task_struct *real_parent;
	/* bitfields in the kernel's task_struct */
	unsigned int sched_reset_on_fork : 1;
	unsigned int in_execve : 1;
} __attribute__((preserve_access_index));

/* A flavor: matched to the kernel's task_struct by essential name. */
struct task_struct___flavor {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

/* A flavor with a member that no kernel has. */
struct task_struct___old {
	int pid;
	long state_that_never_existed;
} __attribute__((preserve_access_index));

/* A type that no kernel has. */
struct bpfload_no_such_type {
	int x;
} __attribute__((preserve_access_index));

enum pid_type {
	PIDTYPE_PID,
	PIDTYPE_TGID,
	PIDTYPE_PGID,
	PIDTYPE_SID,
	PIDTYPE_BPFLOAD_MISSING,
};

/* ENUM64 in the kernel: values need the full 64 bits (ld_imm64). */
enum perf_callchain_context {
	PERF_CONTEXT_HV = (__u64)-32,
	PERF_CONTEXT_MAX = (__u64)-4095,
};

/* A type that matches the kernel's. clang 14 cannot emit TYPE_MATCHES
 * (bpf_core_type_matches needs clang 15), so the program asks TYPE_EXISTS and
 * tests/tests/core.rs re-asks the same local types as TYPE_MATCHES. */
struct list_head {
	struct list_head *next;
	struct list_head *prev;
};

/* Same name, a shape that does not match the kernel's (TYPE_MATCHES = 0). */
struct rb_node {
	char nope;
	int __rb_parent_color;
};

char LICENSE[] SEC("license") = "GPL";

__u64 out[32];

SEC("raw_tracepoint/sched_process_exec")
int task_fields(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();

	out[0] = BPF_CORE_READ(t, pid);
	out[1] = BPF_CORE_READ(t, tgid);
	out[2] = BPF_CORE_READ(t, real_parent, pid);
	out[3] = BPF_CORE_READ(t, flags);
	out[4] = BPF_CORE_READ(t, comm[1]);
	out[5] = bpf_core_field_size(t->comm);
	out[6] = bpf_core_field_offset(t->comm);
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int task_bitfields(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();

	out[7] = BPF_CORE_READ_BITFIELD_PROBED(t, sched_reset_on_fork);
	out[8] = BPF_CORE_READ_BITFIELD_PROBED(t, in_execve);
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int task_exists(void *ctx)
{
	struct task_struct___old *old = (void *)bpf_get_current_task();
	struct task_struct___flavor *fl = (void *)bpf_get_current_task();

	out[9] = bpf_core_field_exists(old->pid);
	out[10] = bpf_core_field_exists(old->state_that_never_existed);
	if (bpf_core_field_exists(old->state_that_never_existed))
		/* dead code after relocation: the read is poisoned */
		out[11] = BPF_CORE_READ(old, state_that_never_existed);
	out[12] = bpf_core_type_exists(struct task_struct);
	out[13] = bpf_core_type_exists(struct bpfload_no_such_type);
	out[14] = BPF_CORE_READ(fl, tgid);
	out[15] = bpf_core_type_size(struct task_struct);
	out[16] = bpf_core_type_id_kernel(struct task_struct);
	out[17] = bpf_core_type_exists(struct list_head);
	out[18] = bpf_core_type_exists(struct rb_node);
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int task_enums(void *ctx)
{
	out[19] = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_SID);
	out[20] = bpf_core_enum_value(enum pid_type, PIDTYPE_SID);
	out[21] = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_BPFLOAD_MISSING);
	if (bpf_core_enum_value_exists(enum pid_type, PIDTYPE_BPFLOAD_MISSING))
		out[22] = bpf_core_enum_value(enum pid_type, PIDTYPE_BPFLOAD_MISSING);
	out[23] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_MAX);
	out[24] = bpf_core_enum_value_exists(enum perf_callchain_context, PERF_CONTEXT_HV);
	return 0;
}
