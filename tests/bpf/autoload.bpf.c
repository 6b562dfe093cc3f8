// SPDX-License-Identifier: GPL-2.0
// Autoload: `SEC("?socket")` programs are not loaded unless asked for.
// `always` returns 1 and `optional` returns 2 under BPF_PROG_TEST_RUN, so a test
// can tell which one it holds.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int always(struct __sk_buff *skb)
{
	return 1;
}

SEC("?socket")
int optional(struct __sk_buff *skb)
{
	return 2;
}

char LICENSE[] SEC("license") = "GPL";
