// SPDX-License-Identifier: GPL-2.0
// The running kernel's BTF has duplicate struct names: two `struct
// walk_control` (both with an int `stage`, at different offsets), two `struct
// irq_info` (only one has an int `irq`) and two `struct bpf_map_desc`.
// Relocations whose answer differs between matching candidates are an error
// ("relocation decision ambiguity"); candidates that do not match are
// skipped, and candidates that agree are fine.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct walk_control {
	int stage;
} __attribute__((preserve_access_index));

struct irq_info {
	int irq;
} __attribute__((preserve_access_index));

struct bpf_map_desc {
	int dummy;
};

char LICENSE[] SEC("license") = "GPL";

__u64 out[4];

/* Both candidates have an int `stage`, at different offsets: ambiguous. */
SEC("raw_tracepoint/sched_process_exec")
int ambiguous_field(void *ctx)
{
	struct walk_control *p = (void *)bpf_get_current_task();

	out[0] = bpf_core_field_offset(p->stage);
	return 0;
}

/* The two candidates have different type ids: ambiguous. */
SEC("raw_tracepoint/sched_process_exec")
int ambiguous_type_id(void *ctx)
{
	out[1] = bpf_core_type_id_kernel(struct walk_control);
	return 0;
}

/* Two candidates, but only one has a compatible `irq`: resolved. */
SEC("raw_tracepoint/sched_process_exec")
int one_candidate_matches(void *ctx)
{
	struct irq_info *p = (void *)bpf_get_current_task();

	out[2] = bpf_core_field_offset(p->irq);
	return 0;
}

/* Both `struct bpf_map_desc` exist: the candidates agree. */
SEC("raw_tracepoint/sched_process_exec")
int agreeing(void *ctx)
{
	out[3] = bpf_core_type_exists(struct bpf_map_desc);
	return 0;
}
