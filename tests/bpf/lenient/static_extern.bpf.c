// SPDX-License-Identifier: GPL-2.0
// A static function outside .text (a program of its own in bpfload) that uses an extern this
// kernel lacks, called from a program of its section. With `helper`'s own autoload off, its
// code is still loaded (appended to `caller`): lenient externs must still require the extern.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const void bpfload_missing_ksym __ksym;

static __noinline __attribute__((section("kprobe/do_nanosleep"))) int
helper(long x)
{
	return (int)(x + (long)&bpfload_missing_ksym);
}

SEC("kprobe/do_nanosleep")
int caller(void *ctx)
{
	return helper((long)ctx);
}

char LICENSE[] SEC("license") = "GPL";
