// SPDX-License-Identifier: GPL-2.0
// Map kinds whose creation has loader-side rules: a hash map, a ring buffer,
// a PERF_EVENT_ARRAY with max_entries 0 (sized to the possible CPUs at load),
// and a map pinned by name (reused on the next load).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_stats SEC(".maps");

/* Counts calls in `counts[1]` and `pinned_stats[0]`, and emits one ringbuf record. */
SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	__u32 key = 1, zero = 0;
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(&counts, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);

	val = bpf_map_lookup_elem(&pinned_stats, &zero);
	if (val)
		__sync_fetch_and_add(val, 1);

	__u64 *rec = bpf_ringbuf_reserve(&events, sizeof(__u64), 0);
	if (rec) {
		*rec = 0xfeed;
		bpf_ringbuf_submit(rec, 0);
	}
	return XDP_PASS;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	__u32 key = 2;
	__u64 one = 1;

	bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &one, sizeof(one));
	return 0;
}

SEC("kprobe/do_nanosleep")
int on_nanosleep(void *ctx)
{
	__u32 key = 3;
	__u64 one = 1;

	bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
