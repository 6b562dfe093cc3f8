// SPDX-License-Identifier: GPL-2.0
// Token scenario "map-only object" (libbpf selftest obj_priv_map, progs/priv_map.c):
// a single QUEUE map and no program. Under a token it needs exactly
// delegate_cmds=map_create and delegate_maps=queue.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 1);
	__type(value, __u32);
} priv_map SEC(".maps");

char _license[] SEC("license") = "GPL";
