// SPDX-License-Identifier: GPL-2.0
// A BPF arena with `__arena` globals that have initial values.
//
// clang 14 cannot compile accesses through address_space(1) pointers (that needs clang 18's
// addr_space_cast), so the globals are put in `.addr_space.1` with a section attribute, which is
// where clang 18 puts `__arena` variables; libbpf treats that section as arena data either way.
// The programs only take the globals' addresses: the verifier treats an arena address as a
// scalar, and a syscall program can return it (its low 32 bits) through BPF_PROG_TEST_RUN, which
// shows where the loader placed the globals in the arena mapping.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ARENA_MAP_TYPE 33 /* BPF_MAP_TYPE_ARENA; Debian's UAPI header predates it */
#define ARENA_SEC SEC(".addr_space.1")

struct {
	__uint(type, ARENA_MAP_TYPE);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4); /* pages */
} arena SEC(".maps");

__u64 arena_magic ARENA_SEC = 0x1122334455667788ULL;
__u32 arena_answer ARENA_SEC = 42;
char arena_name[12] ARENA_SEC = "bpfload";

extern void *bpf_arena_alloc_pages(void *map, void *addr, __u32 page_cnt, int node_id,
				   __u64 flags) __ksym;

/* Low 32 bits of the user address of `arena_answer`. */
SEC("syscall")
int answer_addr(void *ctx)
{
	return (int)(unsigned long)&arena_answer;
}

/* Low 32 bits of the user address of `arena_name` (a second relocation, another offset). */
SEC("syscall")
int name_addr(void *ctx)
{
	return (int)(unsigned long)arena_name;
}

/* Allocates one arena page; returns the low 32 bits of its user address (0 on failure). */
SEC("syscall")
int alloc_page(void *ctx)
{
	void *p = bpf_arena_alloc_pages(&arena, 0, 1, -1, 0);

	return (int)(unsigned long)p;
}

char _license[] SEC("license") = "GPL";
