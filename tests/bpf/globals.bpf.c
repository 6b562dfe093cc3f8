// SPDX-License-Identifier: GPL-2.0
// Global data in every kind of section, observable through the kernel.
//
// `read_globals` is a socket filter meant for BPF_PROG_TEST_RUN. Each run writes
// values derived from the global variables into the `results` hash map, so a
// test can check through MAP_LOOKUP_ELEM that the loader put the right initial
// images (and any value the user set before load) into the internal maps.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* .rodata: `const volatile` config, the way real tools are configured. */
const volatile __u32 cfg_magic = 0xC0FFEE;
const volatile __u64 cfg_mult = 3;

/* .data */
__u64 data_counter = 100;

/* .bss */
__u64 bss_counter;

/* Custom global data sections become their own internal maps. */
__u32 custom_data SEC(".data.custom") = 7;
const volatile __u32 custom_ro SEC(".rodata.custom") = 9;

/* Result slots written by read_globals. */
#define RES_MAGIC 0      /* cfg_magic */
#define RES_SCALED 1     /* cfg_mult * data_counter (before this run's increment) */
#define RES_BSS 2        /* bss_counter after increment: number of runs so far */
#define RES_CUSTOM 3     /* custom_data */
#define RES_CUSTOM_RO 4  /* custom_ro */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

static __always_inline void put(__u32 key, __u64 val)
{
	bpf_map_update_elem(&results, &key, &val, BPF_ANY);
}

SEC("socket")
int read_globals(struct __sk_buff *skb)
{
	put(RES_MAGIC, cfg_magic);
	put(RES_SCALED, cfg_mult * data_counter);
	data_counter += 1;
	bss_counter += 1;
	put(RES_BSS, bss_counter);
	put(RES_CUSTOM, custom_data);
	put(RES_CUSTOM_RO, custom_ro);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
