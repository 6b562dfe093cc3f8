// SPDX-License-Identifier: GPL-2.0
// Token scenario "an object that needs BTF": the map value holds a bpf_spin_lock,
// which the kernel only knows about from the map's BTF. Without BTF_LOAD delegated
// the object BTF cannot be loaded, the map is created without BTF and the verifier
// refuses the program ("map 'locked' has to have BTF in order to use bpf_spin_lock").
// With delegate_cmds including btf_load it loads.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct locked_val {
	struct bpf_spin_lock lock;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked_val);
} locked SEC(".maps");

SEC("xdp")
int xdp_locked(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct locked_val *v = bpf_map_lookup_elem(&locked, &zero);

	if (!v)
		return XDP_PASS;
	bpf_spin_lock(&v->lock);
	v->count++;
	bpf_spin_unlock(&v->lock);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
