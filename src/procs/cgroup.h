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
#include <stdint.h>

/* Parses the text of /proc/<pid>/cgroup. Returns 1 and the name in out when
 * a line names a container, 0 when none does (out = ""), -EINVAL for bad
 * arguments. Pure: no I/O; fuzzed. */
int wm_cgroup_container_name(const char *text, char *out, size_t outlen);

/* Reads <procfs>/<pid>/cgroup and parses it: 1 named, 0 none, or -errno
 * (ENOENT: the process is gone or not in this pid namespace). */
int wm_read_pid_container(int procfs_dirfd, int pid, char *out, size_t outlen);

/* The Kubernetes pod UID in a /proc/<pid>/cgroup text: the component
 * "pod<uid>" (cgroupfs driver) or "...-pod<uid>.slice" (systemd driver,
 * '_' for '-'), as written ('_' turned back into '-'). 1 found, 0 none.
 * Pure. */
int wm_cgroup_pod_uid(const char *text, char *out, size_t outlen);

/* The SLURM job id in a cgroup path: the component "job_<id>" (slurm's
 * cgroup plugin, v1 and v2: /slurm/uid_U/job_J/step_S,
 * /system.slice/slurmstepd.scope/job_J/step_S). 1 found, 0 none. Pure. */
int wm_cgroup_slurm_job(const char *path, char *out, size_t outlen);

/* The innermost pid of a /proc/<pid>/status text's NSpid line (the pid a
 * process has inside its own pid namespace, as a container shows it), or
 * -1 when the line is missing or names one namespace only. Pure. */
int wm_parse_status_nspid(const char *text);

/* Reads both for a pid: pod ("" none) and nspid (-1 none). 0 or -errno. */
int wm_read_pid_pod_nspid(int procfs_dirfd, int pid, char *pod, size_t podlen, int *nspid);

/* Inside a container, NVML names processes by their host pid, which this
 * pid namespace's /proc does not show. Given a procfs of the host's pid
 * namespace (host_dirfd: the host's /proc mounted into the container,
 * --host-procfs), maps host_pid to the pid it has here: > 0 when the
 * process is in the caller's own pid namespace (its ns/pid is the caller's,
 * the kernel's answer rather than a guess; the pid is the last NSpid
 * entry), 0 when it is in another one (another container's), -errno when
 * that cannot be told (-ENOENT gone or not in that procfs, -EACCES its ns
 * link is not readable: ptrace rules). */
int wm_host_pid_local(int host_dirfd, int host_pid);

/* ---- cgroups as a measured set (issue 18) ---------------------------------- */

/* From the text of /proc/self/mountinfo: the mount point of the cgroup v2
 * hierarchy (fstype "cgroup2"; on hybrid machines /sys/fs/cgroup/unified),
 * or with v1_controller set, of the v1 hierarchy whose super options name
 * that controller ("cpuacct"). 0 and the path in out, -ENOENT if none.
 * Pure; mount points with escapes (\040) are taken as written. */
int wm_parse_mountinfo_cgroup(const char *text, const char *v1_controller, char *out, size_t outlen);

/* The same, reading /proc/self/mountinfo. */
int wm_cgroup_mount(const char *v1_controller, char *out, size_t outlen);

/* Parses cgroup.procs (one pid a line) into a malloc'd array (*pids, freed
 * by the caller; NULL when empty). 0 or -ENOMEM/-EINVAL. Pure. */
int wm_parse_cgroup_procs(const char *text, int **pids, size_t *n);

/* Reads <dirfd>/cgroup.procs: 0 or -errno. */
int wm_cgroup_read_procs(int cg_dirfd, int **pids, size_t *n);

/* CPU time of a cgroup, in microseconds, exited processes included: v2
 * cpu.stat "usage_usec", or (v1 != 0) cpuacct.usage (nanoseconds) / 1000.
 * 0 or -errno (-EPROTO: the file has no such field). */
int wm_parse_cpu_stat_usage_usec(const char *text, uint64_t *usec);
int wm_cgroup_read_usage_usec(int cg_dirfd, int v1, uint64_t *usec);

/* Finds a systemd unit's cgroup below the v2 mount (or any cgroup
 * hierarchy root): the first folder named `unit` (".service" added when
 * it has no suffix), breadth first, at most 6 levels down. 0 and the
 * absolute path in out, -ENOENT if none. */
int wm_cgroup_find_unit(const char *mount, const char *unit, char *out, size_t outlen);

#endif
