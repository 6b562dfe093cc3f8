// SPDX-License-Identifier: GPL-2.0
// Programs that need a BPF trampoline (fentry, fexit, fmod_ret, lsm) and a section without a
// target. Their attach_btf_id must resolve; this kernel refuses trampolines (EPERM).
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("fentry/bpf_fentry_test1")
int BPF_PROG(on_entry, int a)
{
	return 0;
}

SEC("fexit/bpf_fentry_test1")
int BPF_PROG(on_exit, int a, int ret)
{
	return 0;
}

SEC("fmod_ret/bpf_modify_return_test")
int BPF_PROG(mod_ret, int a, int *b, int ret)
{
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(lsm_open, void *file)
{
	return 0;
}

SEC("fentry")
int BPF_PROG(no_target, int a)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
