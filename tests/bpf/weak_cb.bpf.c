// SPDX-License-Identifier: GPL-2.0
// bpf_loop callbacks relocated two ways.
//
// `uses_weak_cb` passes a weak, hidden function: its ld_imm64 is relocated against the
// function's own STB_WEAK symbol, which libbpf 1.7 accepts as a subprogram (sym_is_subprog:
// STB_GLOBAL or STB_WEAK). It returns the sum of the loop indexes, 0 + 1 + 2 = 3.
//
// `uses_static_cb` passes a static function placed after `cb_weak` in .text: its ld_imm64 is
// relocated against the .text section symbol with the function's offset in the instruction's
// imm (non-zero), the case where a hostile section symbol value must not overflow the target
// computation. It returns 2 * (0 + 1 + 2) = 6.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct loop_ctx {
	int sum;
};

__attribute__((weak, visibility("hidden"))) __noinline int cb_weak(__u32 i, void *data)
{
	struct loop_ctx *c = data;

	c->sum += i;
	return 0;
}

static int cb_static(__u32 i, void *data)
{
	struct loop_ctx *c = data;

	c->sum += 2 * i;
	return 0;
}

SEC("socket")
int uses_weak_cb(struct __sk_buff *skb)
{
	struct loop_ctx c = {};

	bpf_loop(3, cb_weak, &c, 0);
	return c.sum;
}

SEC("socket")
int uses_static_cb(struct __sk_buff *skb)
{
	struct loop_ctx c = {};

	bpf_loop(3, cb_static, &c, 0);
	return c.sum;
}

char LICENSE[] SEC("license") = "GPL";
