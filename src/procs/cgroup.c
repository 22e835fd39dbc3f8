/* cgroup.c — see cgroup.h. */
#include "procs/cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
