/* cgroup.h — the container a process runs in, named from its cgroup path.
 *
 * NVML reports host PIDs. When wattmeter runs on the host, a process on a
 * shared GPU that is not in the measured set may belong to a container; its
 * /proc/<pid>/cgroup path says which, in the shapes the runtimes use:
 *
 *   0::/system.slice/docker-<id>.scope                 docker (systemd driver)
 *   12:memory:/docker/<id>                             docker (cgroupfs driver, v1)
 *   0::/kubepods.slice/.../cri-containerd-<id>.scope   containerd (Kubernetes)
 *   0::/kubepods/burstable/pod<uid>/<id>               Kubernetes, cgroupfs driver
 *   0::/machine.slice/libpod-<id>.scope                podman
 *   0::/system.slice/crio-<id>.scope                   CRI-O
 *   0::/lxc.payload.<name>  or  /lxc/<name>            LXC
 *
 * The name is "<runtime>:<first 12 characters of the id>" ("docker:4f1e2a9b7c3d",
 * "lxc:web1"). A process in no container gives no name.
 */
#ifndef WM_PROCS_CGROUP_H
#define WM_PROCS_CGROUP_H

#include <stddef.h>

/* Parses the text of /proc/<pid>/cgroup. Returns 1 and the name in out when
 * a line names a container, 0 when none does (out = ""), -EINVAL for bad
 * arguments. Pure: no I/O; fuzzed. */
int wm_cgroup_container_name(const char *text, char *out, size_t outlen);

/* Reads <procfs>/<pid>/cgroup and parses it: 1 named, 0 none, or -errno
 * (ENOENT: the process is gone or not in this pid namespace). */
int wm_read_pid_container(int procfs_dirfd, int pid, char *out, size_t outlen);

#endif
