// SPDX-License-Identifier: GPL-2.0
// A static function outside .text (which libbpf refuses; bpfload opens it, as aya and
// cilium/ebpf do, and models it as a program of its own) called from a program of its section.
// It reads a field through CO-RE: the copy appended to `caller` must carry the same CO-RE
// relocation as `helper`'s own code (the field's offset in the running kernel, not the local 4).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

static __noinline __attribute__((section("kprobe/do_nanosleep"))) int
helper(struct task_struct *t)
{
	int v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &t->tgid);
	return v;
}

SEC("kprobe/do_nanosleep")
int caller(void *ctx)
{
	return helper((struct task_struct *)bpf_get_current_task());
}

char LICENSE[] SEC("license") = "GPL";
