/* run_cgroup.h — `wattmeter run --cgroup`: a new cgroup for the command.
 *
 * Made below the cgroup v2 hierarchy (found in /proc/self/mountinfo; on
 * hybrid machines /sys/fs/cgroup/unified), else below the v1 cpuacct
 * hierarchy, as "wattmeter-run-<pid>-<n>". The child moves itself into it
 * (writes "0" to its cgroup.procs) between fork and exec, so every process
 * the command starts is in it and its CPU time (cpu.stat usage_usec; v1
 * cpuacct.usage) is exact, exited processes included. Removed after the
 * run when empty; a cgroup that still holds processes (daemons the command
 * left) is left, and said so. */
#ifndef WM_CLI_RUN_CGROUP_H
#define WM_CLI_RUN_CGROUP_H

#include <stddef.h>

struct run_cgroup {
	char path[4096];
	int procs_fd;    /* cgroup.procs, O_WRONLY|O_CLOEXEC; -1 none */
};

/* 0 and cg filled, or -errno with why (names the fix: root or a delegated
 * cgroup). */
int run_cgroup_create(struct run_cgroup *cg, char *why, size_t whylen);
/* In the child, before exec: async-signal-safe. */
void run_cgroup_enter(const struct run_cgroup *cg);
/* After the command and the meter stopped: rmdir; a warning on stderr if busy. */
void run_cgroup_remove(struct run_cgroup *cg);

#endif
