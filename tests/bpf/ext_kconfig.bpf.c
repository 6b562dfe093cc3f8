// SPDX-License-Identifier: GPL-2.0
// .kconfig externs: a tristate, an integer, a bool, a char array, the virtual LINUX_* externs and a
// weak CONFIG_ that no kernel has. Each program returns one value so a test can compare it with
// the kernel's own kconfig (/proc/config.gz) and uname.
#include <linux/types.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

extern enum libbpf_tristate CONFIG_BPF __kconfig;
extern int CONFIG_HZ __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern char CONFIG_LOCALVERSION[32] __kconfig __weak;
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig;
extern int CONFIG_BPFLOAD_NO_SUCH_OPTION __kconfig __weak;

SEC("socket")
int kconfig_tristate(void *ctx)
{
	return CONFIG_BPF;
}

SEC("socket")
int kconfig_hz(void *ctx)
{
	return CONFIG_HZ;
}

SEC("socket")
int kconfig_bool(void *ctx)
{
	return CONFIG_BPF_SYSCALL;
}

SEC("socket")
int kconfig_version(void *ctx)
{
	return LINUX_KERNEL_VERSION;
}

SEC("socket")
int kconfig_virtual(void *ctx)
{
	return (LINUX_HAS_BPF_COOKIE ? 1 : 0) | (LINUX_HAS_SYSCALL_WRAPPER ? 2 : 0);
}

SEC("socket")
int kconfig_weak_missing(void *ctx)
{
	return CONFIG_BPFLOAD_NO_SUCH_OPTION + 7;
}

SEC("socket")
int kconfig_string(void *ctx)
{
	return CONFIG_LOCALVERSION[0];
}

char LICENSE[] SEC("license") = "GPL";
