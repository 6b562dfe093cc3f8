// SPDX-License-Identifier: GPL-2.0
// .ksyms variables: a typed one resolved through vmlinux BTF (BPF_PSEUDO_BTF_ID), a typeless one
// resolved through /proc/kallsyms (a plain address), and weak ones that no kernel has.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern const int bpf_prog_active __ksym;
extern const void _stext __ksym;
extern const int bpfload_no_such_var __ksym __weak;
extern const void bpfload_no_such_sym __ksym __weak;

SEC("socket")
int ksym_typed(void *ctx)
{
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	/* Running a program counts as active on this CPU only for tracing; any value is fine. */
	return *active >= 0 ? 1 : 2;
}

SEC("socket")
int ksym_typeless(void *ctx)
{
	/* The low 32 bits of the address, compared by the test with /proc/kallsyms. */
	return (__u32)(unsigned long)&_stext;
}

SEC("socket")
int ksym_weak_missing(void *ctx)
{
	return (&bpfload_no_such_var == 0 ? 1 : 0) | (&bpfload_no_such_sym == 0 ? 2 : 0);
}

char LICENSE[] SEC("license") = "GPL";
