// SPDX-License-Identifier: GPL-2.0
// Hostile input: two weak .kconfig arrays of 3 GiB each. Their offsets in the .kconfig image
// overflow u32, so opening this object must fail with an error naming the extern (it once
// panicked with "attempt to add with overflow"). Kept out of tests/bpf/ proper so the tests that
// load every fixture do not see it.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern char CONFIG_A[0xC0000000] __kconfig __weak;
extern char CONFIG_B[0xC0000000] __kconfig __weak;

SEC("socket")
int hostile_kconfig(void *ctx)
{
	return CONFIG_A[0] + CONFIG_B[0];
}

char LICENSE[] SEC("license") = "GPL";
