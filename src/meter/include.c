/* include.c — see include.h. */
#include "meter/include.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procs/cgroup.h"
#include "procs/procfs.h"

struct wm_include {
	int procfs_dirfd;            /* not owned */
	int *pids;                   /* --include-pid, added at the first poll */
	size_t n_pids;
	int polled;
	char *name;                  /* the pattern, for meta.json */
	regex_t re;
	int have_re;
	char *cgroup;                /* the cgroup folder (absolute) */
	char *unit;
	int cg_fd;                   /* -1 none */
	int member_fd;               /* --cgroup: its processes join unlabelled; -1 none */
	int *checked;                /* sorted pids listed at the last name poll */
	size_t n_checked;
	pid_t self;
};

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

void wm_include_free(wm_include *inc)
{
	if (!inc)
		return;
	if (inc->have_re)
		regfree(&inc->re);
	if (inc->cg_fd >= 0)
		close(inc->cg_fd);
	if (inc->member_fd >= 0)
		close(inc->member_fd);
	free(inc->pids);
	free(inc->name);
	free(inc->cgroup);
	free(inc->unit);
	free(inc->checked);
	free(inc);
}

/* An absolute cgroup folder as given, else relative to the v2 mount. */
static int cgroup_path(const char *given, char *out, size_t outlen, char *err, size_t errlen)
{
	if (given[0] == '/') {
		int n = snprintf(out, outlen, "%s", given);
		if (n < 0 || (size_t)n >= outlen)
			return wm_err(err, errlen, -ENAMETOOLONG, "--include-cgroup: path too long");
		if (access(out, F_OK) == 0)
			return 0;
	}
	char mnt[4096];
	int rc = wm_cgroup_mount(NULL, mnt, sizeof mnt);
	if (rc < 0)
		return wm_err(err, errlen, -ENOENT,
			      "cgroup %s does not exist and there is no cgroup v2 hierarchy to look in "
			      "(give the cgroup's folder, e.g. /sys/fs/cgroup/system.slice/ollama.service)", given);
	while (given[0] == '/')
		given++;
	int n = snprintf(out, outlen, "%s/%s", mnt, given);
	if (n < 0 || (size_t)n >= outlen)
		return wm_err(err, errlen, -ENAMETOOLONG, "--include-cgroup: path too long");
	return 0;
}

int wm_include_new(const wm_meter_config *c, int procfs_dirfd, wm_include **out, char *err, size_t errlen)
{
	*out = NULL;
	int any = c->n_include_pids || (c->include_name && *c->include_name) ||
		  (c->include_cgroup && *c->include_cgroup) || (c->include_unit && *c->include_unit) ||
		  (c->cgroup && *c->cgroup);
	if (!any)
		return 0;
	wm_include *inc = calloc(1, sizeof *inc);
	if (!inc)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	inc->cg_fd = inc->member_fd = -1;
	inc->procfs_dirfd = procfs_dirfd;
	inc->self = getpid();
	int rc = 0;
	if (c->n_include_pids) {
		inc->pids = malloc(c->n_include_pids * sizeof *inc->pids);
		if (!inc->pids) {
			rc = wm_err(err, errlen, -ENOMEM, "out of memory");
			goto fail;
		}
		memcpy(inc->pids, c->include_pids, c->n_include_pids * sizeof *inc->pids);
		inc->n_pids = c->n_include_pids;
	}
	if (c->include_name && *c->include_name) {
		inc->name = strdup(c->include_name);
		int r = regcomp(&inc->re, c->include_name, REG_EXTENDED | REG_NOSUB);
		if (!inc->name || r != 0) {
			char why[256] = "out of memory";
			if (r)
				regerror(r, &inc->re, why, sizeof why);
			else
				regfree(&inc->re);
			rc = wm_err(err, errlen, -EINVAL,
				    "--include-name '%s' is not a POSIX extended regular expression: %s "
				    "(example: --include-name 'ollama serve')", c->include_name, why);
			goto fail;
		}
		inc->have_re = 1;
	}
	char path[4096] = "";
	if (c->include_unit && *c->include_unit) {
		inc->unit = strdup(c->include_unit);
		char mnt[4096];
		if (!inc->unit) {
			rc = wm_err(err, errlen, -ENOMEM, "out of memory");
			goto fail;
		}
		if (wm_cgroup_mount(NULL, mnt, sizeof mnt) < 0 && wm_cgroup_mount("name=systemd", mnt, sizeof mnt) < 0) {
			rc = wm_err(err, errlen, -ENOENT, "--include-unit %s: no cgroup hierarchy is mounted to find it in",
				    c->include_unit);
			goto fail;
		}
		if ((rc = wm_cgroup_find_unit(mnt, c->include_unit, path, sizeof path)) < 0) {
			rc = wm_err(err, errlen, rc,
				    "--include-unit %s: no cgroup of that unit below %s (is it running? "
				    "`systemctl status %s`; or give its cgroup with --include-cgroup)",
				    c->include_unit, mnt, c->include_unit);
			goto fail;
		}
	} else if (c->include_cgroup && *c->include_cgroup) {
		if ((rc = cgroup_path(c->include_cgroup, path, sizeof path, err, errlen)) < 0)
			goto fail;
	}
	if (path[0]) {
		inc->cgroup = strdup(path);
		inc->cg_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (!inc->cgroup || inc->cg_fd < 0 || faccessat(inc->cg_fd, "cgroup.procs", R_OK, 0) < 0) {
			rc = wm_err(err, errlen, inc->cgroup ? -errno : -ENOMEM,
				    "cannot read the cgroup %s/cgroup.procs: %s (is it a cgroup folder? "
				    "example: --include-cgroup /sys/fs/cgroup/system.slice/ollama.service)",
				    path, strerror(errno));
			goto fail;
		}
	}
	if (c->cgroup && *c->cgroup) {
		inc->member_fd = open(c->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (inc->member_fd < 0 || faccessat(inc->member_fd, "cgroup.procs", R_OK, 0) < 0) {
			rc = wm_err(err, errlen, -errno, "cannot read the cgroup %s/cgroup.procs: %s (is it a cgroup folder?)",
				    c->cgroup, strerror(errno));
			goto fail;
		}
	}
	*out = inc;
	return 0;
fail:
	wm_include_free(inc);
	return rc < 0 ? rc : -EINVAL;
}

static wm_proc *find_pid(wm_proctree *t, int pid)
{
	size_t n = wm_proctree_count(t);
	for (size_t i = 0; i < n; i++) {
		wm_proc *p = wm_proctree_get(t, i);
		if (p->pid == pid && (p->alive || !p->vanished))
			return p;
	}
	return NULL;
}

/* Adds pid as a root of the measured set, unlabelled (--cgroup), unless
 * measured already or this process or a child of it (the CLI adds its
 * command once exec'd). 1 added, 0 not, -errno. */
static int add_member(wm_include *inc, wm_proctree *t, int pid, int ppid)
{
	if (pid == inc->self || ppid == inc->self || find_pid(t, pid))
		return 0;
	int rc = wm_proctree_add_root(t, pid, 1);
	return rc < 0 ? rc : 1;
}

/* Adds pid as an included root unless it is measured already (the
 * command's tree) or is this process or a child of it. 1 added, 0 not,
 * -errno (-ESRCH: not running). */
static int add_included(wm_include *inc, wm_proctree *t, int pid, int ppid)
{
	if (pid == inc->self || ppid == inc->self)
		return 0;
	if (find_pid(t, pid))
		return 0;
	int rc = wm_proctree_add_root(t, pid, 1);
	if (rc < 0)
		return rc;
	wm_proc *p = find_pid(t, pid);
	if (p)
		p->included = 1;
	return 1;
}

static int ppid_of(int procfs_dirfd, int pid)
{
	wm_pid_stat st;
	return wm_read_pid_stat(procfs_dirfd, pid, &st) == 0 ? st.ppid : -1;
}

/* The pids of the tree's live processes, sorted (NULL when empty or on ENOMEM:
 * then every candidate is checked against the tree one by one). */
static int *tree_pids(wm_proctree *t, size_t *n)
{
	size_t k = wm_proctree_count(t);
	*n = 0;
	int *v = k ? malloc(k * sizeof *v) : NULL;
	if (!v)
		return NULL;
	for (size_t i = 0; i < k; i++) {
		wm_proc *p = wm_proctree_get(t, i);
		if (p->alive || !p->vanished)
			v[(*n)++] = p->pid;
	}
	qsort(v, *n, sizeof *v, cmp_int);
	return v;
}

static int poll_cgroup(wm_include *inc, wm_proctree *t, int fd, int label)
{
	int *pids = NULL;
	size_t n = 0;
	int rc = wm_cgroup_read_procs(fd, &pids, &n);
	if (rc < 0)
		return rc; /* the cgroup went away: nothing more joins */
	int added = 0;
	size_t nk = 0;
	int *known = tree_pids(t, &nk);
	for (size_t i = 0; i < n; i++) {
		if (known && bsearch(&pids[i], known, nk, sizeof *known, cmp_int))
			continue; /* measured already: no read */
		int ppid = ppid_of(inc->procfs_dirfd, pids[i]);
		int r = label ? add_included(inc, t, pids[i], ppid) : add_member(inc, t, pids[i], ppid);
		if (r > 0)
			added++;
	}
	free(known);
	free(pids);
	return added;
}

static int poll_name(wm_include *inc, wm_proctree *t)
{
	int fd = openat(inc->procfs_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	int *now = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint64_t v;
		if (e->d_name[0] < '1' || e->d_name[0] > '9' || wm_parse_u64_full(e->d_name, &v) < 0 || v > INT32_MAX)
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 512;
			int *p = realloc(now, nc * sizeof *p);
			if (!p) {
				free(now);
				closedir(d);
				return -ENOMEM;
			}
			now = p;
			cap = nc;
		}
		now[n++] = (int)v;
	}
	closedir(d);
	if (n)
		qsort(now, n, sizeof *now, cmp_int);
	int added = 0;
	for (size_t i = 0; i < n; i++) {
		if (inc->checked && bsearch(&now[i], inc->checked, inc->n_checked, sizeof *now, cmp_int))
			continue; /* listed at the last poll: checked then */
		char cmd[4096];
		if (wm_read_pid_cmdline(inc->procfs_dirfd, now[i], cmd, sizeof cmd) != 0 || !cmd[0])
			continue; /* gone, or a kernel thread */
		if (regexec(&inc->re, cmd, 0, NULL, 0) != 0)
			continue;
		if (add_included(inc, t, now[i], ppid_of(inc->procfs_dirfd, now[i])) > 0)
			added++;
	}
	free(inc->checked);
	inc->checked = now;
	inc->n_checked = n;
	return added;
}

int wm_include_poll(wm_include *inc, wm_proctree *t, char *err, size_t errlen)
{
	if (!inc || !t)
		return 0;
	int added = 0;
	if (!inc->polled) {
		inc->polled = 1;
		for (size_t i = 0; i < inc->n_pids; i++) {
			if (inc->pids[i] == inc->self || find_pid(t, inc->pids[i]))
				continue; /* measured already: the command's own */
			int rc = wm_proctree_add_root(t, inc->pids[i], 1);
			if (rc < 0)
				return wm_err(err, errlen, rc, "cannot include pid %d: %s (is it running?)", inc->pids[i],
					      strerror(-rc));
			wm_proc *p = find_pid(t, inc->pids[i]);
			if (p)
				p->included = 1;
			added++;
		}
	}
	if (inc->cg_fd >= 0) {
		int r = poll_cgroup(inc, t, inc->cg_fd, 1);
		if (r > 0)
			added += r;
	}
	if (inc->member_fd >= 0) {
		int r = poll_cgroup(inc, t, inc->member_fd, 0);
		if (r > 0)
			added += r;
	}
	if (inc->have_re) {
		int r = poll_name(inc, t);
		if (r > 0)
			added += r;
	}
	wm_include_propagate(t);
	return added;
}

struct pid_idx {
	int pid;
	size_t idx;
};

static int cmp_pid_idx(const void *a, const void *b)
{
	int x = ((const struct pid_idx *)a)->pid, y = ((const struct pid_idx *)b)->pid;
	return (x > y) - (x < y);
}

void wm_include_propagate(wm_proctree *t)
{
	size_t n = wm_proctree_count(t);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		wm_proc *p = wm_proctree_get(t, i);
		k += (p->included || p->has_rank) ? 1 : 0;
	}
	if (!k)
		return;
	for (int pass = 0; pass < 64; pass++) {
		struct pid_idx *marked = malloc(n * sizeof *marked);
		if (!marked)
			return;
		k = 0;
		for (size_t i = 0; i < n; i++) {
			wm_proc *p = wm_proctree_get(t, i);
			if (p->included || p->has_rank)
				marked[k++] = (struct pid_idx){p->pid, i};
		}
		qsort(marked, k, sizeof *marked, cmp_pid_idx);
		int changed = 0;
		for (size_t i = 0; i < n; i++) {
			wm_proc *p = wm_proctree_get(t, i);
			if (p->is_root)
				continue; /* a root keeps its own labels */
			struct pid_idx key = {p->ppid, 0};
			struct pid_idx *f = bsearch(&key, marked, k, sizeof *marked, cmp_pid_idx);
			if (!f)
				continue;
			wm_proc *par = wm_proctree_get(t, f->idx);
			if (par->included && !p->included) {
				p->included = 1;
				changed = 1;
			}
			if (par->has_rank && !p->has_rank) {
				p->has_rank = 1;
				p->rank = par->rank;
				changed = 1;
			}
		}
		free(marked);
		if (!changed)
			return;
	}
}

void wm_include_json(const wm_include *inc, wm_buf *b)
{
	wm_buf_puts(b, "{\"pids\":[");
	for (size_t i = 0; inc && i < inc->n_pids; i++)
		wm_buf_printf(b, "%s%d", i ? "," : "", inc->pids[i]);
	wm_buf_puts(b, "],\"name\":");
	if (inc && inc->name)
		wm_buf_json_str(b, inc->name);
	else
		wm_buf_puts(b, "null");
	wm_buf_puts(b, ",\"cgroup\":");
	if (inc && inc->cgroup)
		wm_buf_json_str(b, inc->cgroup);
	else
		wm_buf_puts(b, "null");
	wm_buf_puts(b, ",\"unit\":");
	if (inc && inc->unit)
		wm_buf_json_str(b, inc->unit);
	else
		wm_buf_puts(b, "null");
	wm_buf_puts(b, "}");
}
