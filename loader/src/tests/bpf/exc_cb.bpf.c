// Exception callback fixture for the loader unit tests. Rebuild with:
//   clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -I/usr/include/bpf -c exc_cb.bpf.c -o exc_cb.bpf.o
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#define __exception_cb(name) __attribute__((btf_decl_tag("exception_callback:" #name)))

__noinline int exception_cb1(__u64 cookie) { return cookie + 1; }
static __noinline int helper(int x) { return x * 2; }

SEC("tc") __exception_cb(exception_cb1)
int with_cb(struct __sk_buff *ctx) { return helper(ctx->len) & 1; }

SEC("tc")
int without_cb(struct __sk_buff *ctx) { return helper(ctx->len) & 3; }

char LICENSE[] SEC("license") = "GPL";
