/* cgroup.c — see cgroup.h. */
#include "procs/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"

#define ID_CHARS 12

static int is_id_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

/* Writes "<runtime>:<id>" with id cut at ID_CHARS and at the first character
 * that cannot be in an id (".scope" ends it). 1 written, 0 if id is empty. */
static int put_name(const char *runtime, const char *id, size_t idlen, char *out, size_t outlen)
{
	size_t n = 0;
	while (n < idlen && n < ID_CHARS && is_id_char(id[n]))
		n++;
	if (n == 0)
		return 0;
	int w = snprintf(out, outlen, "%s:%.*s", runtime, (int)n, id);
	if (w < 0 || (size_t)w >= outlen) {
		out[0] = '\0';
		return 0;
	}
	return 1;
}

/* The id after `prefix` in one path component [c, c + len), or NULL. */
static const char *after(const char *c, size_t len, const char *prefix, size_t *idlen)
{
	size_t pl = strlen(prefix);
	if (len <= pl || strncmp(c, prefix, pl) != 0)
		return NULL;
	*idlen = len - pl;
	return c + pl;
}

/* True for a 64-hex container id (cgroupfs layouts name the directory by it). */
static int is_hex64(const char *c, size_t len)
{
	if (len != 64)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f')))
			return 0;
	return 1;
}

/* One cgroup path (no newline): walks its components, the innermost match wins. */
static int path_name(const char *p, size_t plen, char *out, size_t outlen)
{
	static const struct {
		const char *prefix, *runtime;
	} scoped[] = {
		{"docker-", "docker"},         {"cri-containerd-", "containerd"}, {"containerd-", "containerd"},
		{"libpod-", "podman"},         {"crio-", "cri-o"},                {"lxc.payload.", "lxc"},
	};
	int found = 0;
	const char *prev = NULL;
	size_t prevlen = 0;
	size_t i = 0;
	while (i < plen) {
		while (i < plen && p[i] == '/')
			i++;
		size_t s = i;
		while (i < plen && p[i] != '/')
			i++;
		const char *c = p + s;
		size_t len = i - s;
		if (!len)
			continue;
		size_t idlen;
		const char *id;
		for (size_t k = 0; k < WM_ARRAY_LEN(scoped); k++) {
			if ((id = after(c, len, scoped[k].prefix, &idlen)) != NULL &&
			    put_name(scoped[k].runtime, id, idlen, out, outlen))
				found = 1;
		}
		if (prev && is_hex64(c, len)) {
			if (prevlen == 6 && strncmp(prev, "docker", 6) == 0)
				found = put_name("docker", c, len, out, outlen) || found;
			else if (prevlen > 3 && strncmp(prev, "pod", 3) == 0)
				found = put_name("kubepods", c, len, out, outlen) || found;
		}
		if (prev && prevlen == 3 && strncmp(prev, "lxc", 3) == 0)
			found = put_name("lxc", c, len, out, outlen) || found;
		prev = c;
		prevlen = len;
	}
	return found;
}

int wm_cgroup_container_name(const char *text, char *out, size_t outlen)
{
	if (!text || !out || outlen == 0)
		return -EINVAL;
	out[0] = '\0';
	/* lines "hierarchy-ID:controllers:path"; the path may hold ':' */
	const char *line = text;
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2) {
			const char *path = c2 + 1;
			if (path_name(path, len - (size_t)(path - line), out, outlen) == 1)
				return 1;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	out[0] = '\0';
	return 0;
}

int wm_read_pid_container(int procfs_dirfd, int pid, char *out, size_t outlen)
{
	if (!out || outlen == 0 || pid <= 0)
		return -EINVAL;
	out[0] = '\0';
	char path[32], text[4096];
	int n = snprintf(path, sizeof path, "%d/cgroup", pid);
	if (n < 0 || (size_t)n >= sizeof path)
		return -EINVAL;
	ssize_t r = wm_read_file_at(procfs_dirfd, path, text, sizeof text);
	if (r < 0 && r != -EOVERFLOW)
		return (int)r;
	return wm_cgroup_container_name(text, out, outlen);
}

/* ---- cgroups as a measured set ------------------------------------------------- */

int wm_parse_mountinfo_cgroup(const char *text, const char *v1_controller, char *out, size_t outlen)
{
	if (!text || !out || outlen == 0)
		return -EINVAL;
	out[0] = '\0';
	/* "36 25 0:31 / /sys/fs/cgroup/cpuacct rw,relatime shared:1 - cgroup cgroup rw,cpuacct" */
	const char *line = text;
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char l[1024];
		if (len < sizeof l) {
			memcpy(l, line, len);
			l[len] = '\0';
			char *sep = strstr(l, " - ");
			char *f[5] = {0};
			size_t nf = 0;
			char *save = NULL;
			if (sep) {
				*sep = '\0';
				for (char *tok = strtok_r(l, " ", &save); tok && nf < 5; tok = strtok_r(NULL, " ", &save))
					f[nf++] = tok;
				char *fstype = strtok_r(sep + 3, " ", &save);
				(void)strtok_r(NULL, " ", &save); /* source */
				char *sopts = strtok_r(NULL, " ", &save);
				int hit = 0;
				if (nf == 5 && fstype) {
					if (!v1_controller)
						hit = strcmp(fstype, "cgroup2") == 0;
					else if (strcmp(fstype, "cgroup") == 0 && sopts) {
						char *s2 = NULL;
						for (char *o = strtok_r(sopts, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
							if (strcmp(o, v1_controller) == 0)
								hit = 1;
					}
				}
				if (hit) {
					int w = snprintf(out, outlen, "%s", f[4]);
					if (w < 0 || (size_t)w >= outlen) {
						out[0] = '\0';
						return -ENAMETOOLONG;
					}
					return 0;
				}
			}
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return -ENOENT;
}

int wm_cgroup_mount(const char *v1_controller, char *out, size_t outlen)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc = wm_read_file_buf_at(AT_FDCWD, "/proc/self/mountinfo", &b);
	if (rc == 0)
		rc = wm_parse_mountinfo_cgroup(b.len ? b.data : "", v1_controller, out, outlen);
	wm_buf_free(&b);
	return rc;
}

int wm_parse_cgroup_procs(const char *text, int **pids, size_t *n)
{
	if (!text || !pids || !n)
		return -EINVAL;
	*pids = NULL;
	*n = 0;
	size_t cap = 0;
	const char *s = text;
	while (*s) {
		uint64_t v;
		const char *end;
		if (wm_parse_u64(s, &v, &end) == 0 && end > s && v > 0 && v <= INT32_MAX) {
			if (*n == cap) {
				size_t nc = cap ? 2 * cap : 64;
				int *p = realloc(*pids, nc * sizeof *p);
				if (!p) {
					free(*pids);
					*pids = NULL;
					*n = 0;
					return -ENOMEM;
				}
				*pids = p;
				cap = nc;
			}
			(*pids)[(*n)++] = (int)v;
			s = end;
		}
		const char *nl = strchr(s, '\n');
		if (!nl)
			break;
		s = nl + 1;
	}
	return 0;
}

int wm_cgroup_read_procs(int cg_dirfd, int **pids, size_t *n)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc = wm_read_file_buf_at(cg_dirfd, "cgroup.procs", &b);
	if (rc == 0)
		rc = wm_parse_cgroup_procs(b.len ? b.data : "", pids, n);
	wm_buf_free(&b);
	return rc;
}

int wm_parse_cpu_stat_usage_usec(const char *text, uint64_t *usec)
{
	if (!text || !usec)
		return -EINVAL;
	const char *s = text;
	while (*s) {
		if (strncmp(s, "usage_usec ", 11) == 0) {
			const char *end;
			if (wm_parse_u64(s + 11, usec, &end) == 0 && end > s + 11)
				return 0;
			return -EPROTO;
		}
		const char *nl = strchr(s, '\n');
		if (!nl)
			break;
		s = nl + 1;
	}
	return -EPROTO;
}

int wm_cgroup_read_usage_usec(int cg_dirfd, int v1, uint64_t *usec)
{
	char text[2048];
	ssize_t r = wm_read_file_at(cg_dirfd, v1 ? "cpuacct.usage" : "cpu.stat", text, sizeof text);
	if (r < 0 && r != -EOVERFLOW)
		return (int)r;
	if (!v1)
		return wm_parse_cpu_stat_usage_usec(text, usec);
	uint64_t ns;
	const char *end;
	if (wm_parse_u64(text, &ns, &end) != 0 || end == text)
		return -EPROTO;
	*usec = ns / 1000;
	return 0;
}

int wm_cgroup_find_unit(const char *mount, const char *unit, char *out, size_t outlen)
{
	if (!mount || !unit || !*unit || strchr(unit, '/') || !out || outlen == 0)
		return -EINVAL;
	char want[256];
	int w = snprintf(want, sizeof want, "%s%s", unit, strchr(unit, '.') ? "" : ".service");
	if (w < 0 || (size_t)w >= sizeof want)
		return -ENAMETOOLONG;
	/* breadth first over a queue of paths, bounded in depth and count */
	enum { MAX_DIRS = 4096, MAX_DEPTH = 6 };
	char **q = calloc(MAX_DIRS, sizeof *q);
	int *depth = calloc(MAX_DIRS, sizeof *depth);
	if (!q || !depth) {
		free(q);
		free(depth);
		return -ENOMEM;
	}
	size_t head = 0, tail = 0;
	int rc = -ENOENT;
	q[tail] = strdup(mount);
	depth[tail++] = 0;
	while (head < tail && rc == -ENOENT) {
		char *dir = q[head];
		int dd = depth[head++];
		if (!dir)
			continue;
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_type != DT_DIR || e->d_name[0] == '.')
				continue;
			char path[4096];
			int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			if (n < 0 || (size_t)n >= sizeof path)
				continue;
			if (strcmp(e->d_name, want) == 0) {
				n = snprintf(out, outlen, "%s", path);
				rc = (n < 0 || (size_t)n >= outlen) ? -ENAMETOOLONG : 0;
				break;
			}
			if (dd + 1 < MAX_DEPTH && tail < MAX_DIRS) {
				q[tail] = strdup(path);
				depth[tail++] = dd + 1;
			}
		}
		closedir(d);
	}
	for (size_t i = 0; i < tail; i++)
		free(q[i]);
	free(q);
	free(depth);
	return rc;
}

int wm_cgroup_pod_uid(const char *text, char *out, size_t outlen)
{
	if (!text || !out || outlen == 0)
		return 0;
	out[0] = '\0';
	const char *s = text;
	int found = 0;
	while ((s = strstr(s, "pod")) != NULL) {
		/* at a component start, or after "-" (kubepods-burstable-pod...) */
		if (s != text && s[-1] != '/' && s[-1] != '-') {
			s += 3;
			continue;
		}
		const char *u = s + 3;
		size_t n = 0;
		while (u[n] && (is_id_char(u[n])) && n + 1 < outlen)
			n++;
		if (n >= 32) { /* a UID: 32 hex digits and 4 dashes */
			for (size_t i = 0; i < n; i++)
				out[i] = u[i] == '_' ? '-' : u[i];
			out[n] = '\0';
			found = 1;
		}
		s = u;
	}
	return found;
}

int wm_parse_status_nspid(const char *text)
{
	if (!text)
		return -1;
	const char *s = strstr(text, "\nNSpid:");
	if (!s && strncmp(text, "NSpid:", 6) == 0)
		s = text - 1;
	if (!s)
		return -1;
	s += 7;
	long last = -1;
	int count = 0;
	while (*s && *s != '\n') {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s < '0' || *s > '9')
			break;
		char *end;
		last = strtol(s, &end, 10);
		count++;
		s = end;
	}
	return count > 1 && last > 0 && last <= INT32_MAX ? (int)last : -1;
}

int wm_read_pid_pod_nspid(int procfs_dirfd, int pid, char *pod, size_t podlen, int *nspid)
{
	char path[32], text[4096];
	*nspid = -1;
	if (podlen)
		pod[0] = '\0';
	snprintf(path, sizeof path, "%d/cgroup", pid);
	ssize_t r = wm_read_file_at(procfs_dirfd, path, text, sizeof text);
	if (r >= 0 || r == -EOVERFLOW)
		(void)wm_cgroup_pod_uid(text, pod, podlen);
	snprintf(path, sizeof path, "%d/status", pid);
	r = wm_read_file_at(procfs_dirfd, path, text, sizeof text);
	if (r < 0 && r != -EOVERFLOW)
		return (int)r;
	*nspid = wm_parse_status_nspid(text);
	return 0;
}

int wm_host_pid_local(int host_dirfd, int host_pid)
{
	char path[48], text[4096];
	struct stat mine, its;
	/* "self" in the host's procfs is this process as that namespace sees it */
	if (fstatat(host_dirfd, "self/ns/pid", &mine, 0) < 0)
		return -errno;
	(void)snprintf(path, sizeof path, "%d/ns/pid", host_pid);
	if (fstatat(host_dirfd, path, &its, 0) < 0)
		return -errno;
	if (its.st_dev != mine.st_dev || its.st_ino != mine.st_ino)
		return 0;
	(void)snprintf(path, sizeof path, "%d/status", host_pid);
	ssize_t r = wm_read_file_at(host_dirfd, path, text, sizeof text);
	if (r < 0 && r != -EOVERFLOW)
		return (int)r;
	int local = wm_parse_status_nspid(text);
	/* one NSpid entry: the host's own namespace is ours, and the pid is
	 * the one NVML gave */
	return local > 0 ? local : host_pid;
}

int wm_cgroup_slurm_job(const char *path, char *out, size_t outlen)
{
	if (!path || !out || outlen == 0)
		return 0;
	out[0] = '\0';
	int found = 0;
	const char *s = path;
	while ((s = strstr(s, "job_")) != NULL) {
		if (s == path || s[-1] == '/') {
			const char *u = s + 4;
			size_t n = 0;
			while (u[n] >= '0' && u[n] <= '9' && n + 1 < outlen)
				n++;
			if (n && (u[n] == '\0' || u[n] == '/' || u[n] == '\n')) {
				memcpy(out, u, n);
				out[n] = '\0';
				found = 1;
			}
		}
		s += 4;
	}
	return found;
}
