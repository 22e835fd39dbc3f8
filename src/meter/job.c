/* job.c — see job.h. */
#include "meter/job.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const LAUNCHER_VARS[] = {
	"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID", "MASTER_ADDR",
	"SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_NTASKS",
	"SLURM_JOB_NODELIST", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
	"PMI_RANK", "PMI_SIZE", "PMIX_RANK", "PMIX_NAMESPACE", "WATTMETER_JOB",
};

void wm_launcher_json(wm_buf *b)
{
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = '\0';
	host[sizeof host - 1] = '\0';
	wm_buf_puts(b, "{\"hostname\":");
	wm_buf_json_str(b, host);
	for (size_t i = 0; i < WM_ARRAY_LEN(LAUNCHER_VARS); i++) {
		const char *v = getenv(LAUNCHER_VARS[i]);
		if (!v)
			continue;
		wm_buf_printf(b, ",\"%s\":", LAUNCHER_VARS[i]);
		wm_buf_json_str(b, v);
	}
	wm_buf_puts(b, "}");
}

int wm_launcher_rank(void)
{
	static const char *const vars[] = {"RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
	for (size_t i = 0; i < WM_ARRAY_LEN(vars); i++) {
		const char *v = getenv(vars[i]);
		uint64_t r;
		if (v && wm_parse_u64_full(v, &r) == 0 && r < 1u << 30)
			return (int)r;
	}
	return -1;
}

struct wm_job {
	char key[128];
	char dir[4096];
	int dirfd;
	int lock_fd;
	int node_meter;
	int rank;
	int regs_fd;        /* job-<key>.d */
	int registered[64]; /* pids this (member) meter registered */
	size_t n_registered;
};

/* The job's name, from the launcher's variables, made safe for a file name. */
static int job_key(char *out, size_t outlen)
{
	char raw[256] = "";
	const char *w = getenv("WATTMETER_JOB"), *sj = getenv("SLURM_JOB_ID"), *ss = getenv("SLURM_STEP_ID");
	const char *te = getenv("TORCHELASTIC_RUN_ID"), *om = getenv("OMPI_MCA_ess_base_jobid");
	const char *px = getenv("PMIX_NAMESPACE");
	if (w && *w)
		snprintf(raw, sizeof raw, "%s", w);
	else if (sj && *sj)
		snprintf(raw, sizeof raw, "slurm-%s%s%s", sj, ss && *ss ? "." : "", ss && *ss ? ss : "");
	else if (te && *te)
		snprintf(raw, sizeof raw, "torch-%s", te);
	else if (om && *om)
		snprintf(raw, sizeof raw, "ompi-%s", om);
	else if (px && *px)
		snprintf(raw, sizeof raw, "pmix-%s", px);
	if (!raw[0])
		return 0;
	size_t n = 0;
	for (size_t i = 0; raw[i] && n + 1 < outlen; i++) {
		char c = raw[i];
		int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
			 c == '-' || c == '_';
		out[n++] = ok ? c : '_';
	}
	out[n] = '\0';
	return n > 0;
}

/* Opens (creating 0700) a lock folder we own and nobody else may write. */
static int open_lock_dir(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(fd);
		return wm_err(err, errlen, -EPERM,
			      "the job lock folder %s is not ours or is writable by others: remove it, or set "
			      "WATTMETER_NO_JOB=1 to measure each rank alone", path);
	}
	return fd;
}

int wm_job_join(wm_job **out, char *err, size_t errlen)
{
	*out = NULL;
	const char *no = getenv("WATTMETER_NO_JOB");
	char key[128];
	if ((no && *no && strcmp(no, "0") != 0) || !job_key(key, sizeof key))
		return 0;
	wm_job *j = calloc(1, sizeof *j);
	if (!j)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	j->dirfd = j->lock_fd = j->regs_fd = -1;
	j->rank = wm_launcher_rank();
	snprintf(j->key, sizeof j->key, "%s", key);
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	const char *lockdir = getenv("WATTMETER_LOCK_DIR");
	char cands[3][4096];
	size_t nc = 0;
	if (lockdir && *lockdir)
		snprintf(cands[nc++], sizeof cands[0], "%s", lockdir);
	else {
		if (geteuid() == 0)
			snprintf(cands[nc++], sizeof cands[0], "/run/wattmeter");
		if (xdg && *xdg == '/')
			snprintf(cands[nc++], sizeof cands[0], "%s/wattmeter", xdg);
		snprintf(cands[nc++], sizeof cands[0], "/tmp/wattmeter-%u", (unsigned)geteuid());
	}
	int rc = -ENOENT;
	for (size_t i = 0; i < nc && j->dirfd < 0; i++) {
		rc = open_lock_dir(cands[i], err, errlen);
		if (rc == -EPERM)
			break;
		if (rc >= 0) {
			j->dirfd = rc;
			memcpy(j->dir, cands[i], sizeof j->dir);
			j->dir[sizeof j->dir - 1] = '\0';
		}
	}
	if (j->dirfd < 0) {
		free(j);
		if (rc == -EPERM)
			return rc;
		return wm_err(err, errlen, rc, "cannot create a job lock folder (%s): %s (set WATTMETER_LOCK_DIR "
			      "to a node-local folder, or WATTMETER_NO_JOB=1)", cands[nc - 1], strerror(-rc));
	}
	char name[200];
	snprintf(name, sizeof name, "job-%s.lock", j->key);
	j->lock_fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	snprintf(name, sizeof name, "job-%s.d", j->key);
	if (mkdirat(j->dirfd, name, 0700) < 0 && errno != EEXIST)
		j->regs_fd = -1;
	else
		j->regs_fd = openat(j->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (j->lock_fd < 0 || j->regs_fd < 0) {
		rc = wm_err(err, errlen, -errno, "cannot open the job lock in %s: %s (set WATTMETER_NO_JOB=1 to "
			    "measure each rank alone)", j->dir, strerror(errno));
		wm_job_free(j);
		return rc;
	}
	j->node_meter = flock(j->lock_fd, LOCK_EX | LOCK_NB) == 0;
	*out = j;
	return 0;
}

void wm_job_free(wm_job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n_registered && j->regs_fd >= 0; i++) {
		char name[32];
		snprintf(name, sizeof name, "%d", j->registered[i]);
		(void)unlinkat(j->regs_fd, name, 0);
	}
	if (j->regs_fd >= 0)
		close(j->regs_fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd); /* releases the flock */
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j);
}

int wm_job_is_node_meter(const wm_job *j) { return j && j->node_meter; }

int wm_job_register(wm_job *j, int pid)
{
	if (!j || j->node_meter || pid <= 0)
		return 0;
	for (size_t i = 0; i < j->n_registered; i++)
		if (j->registered[i] == pid)
			return 0;
	char name[32], tmp[48], body[32];
	snprintf(name, sizeof name, "%d", pid);
	snprintf(tmp, sizeof tmp, ".%d.tmp", pid);
	int n = snprintf(body, sizeof body, "%d\n", j->rank);
	int fd = openat(j->regs_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = wm_write_all(fd, body, (size_t)n);
	close(fd);
	if (rc == 0 && renameat(j->regs_fd, tmp, j->regs_fd, name) < 0)
		rc = -errno;
	if (rc < 0) {
		(void)unlinkat(j->regs_fd, tmp, 0);
		return rc;
	}
	if (j->n_registered < WM_ARRAY_LEN(j->registered))
		j->registered[j->n_registered++] = pid;
	return 0;
}

int wm_job_poll(wm_job *j, wm_proctree *t)
{
	if (!j || !j->node_meter || j->regs_fd < 0 || !t)
		return 0;
	int fd = openat(j->regs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	int added = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint64_t pid;
		if (e->d_name[0] == '.' || wm_parse_u64_full(e->d_name, &pid) < 0 || pid == 0 || pid > INT32_MAX)
			continue;
		int known = 0;
		size_t n = wm_proctree_count(t);
		for (size_t i = 0; i < n && !known; i++) {
			wm_proc *p = wm_proctree_get(t, i);
			known = p->pid == (int)pid && (p->alive || !p->vanished);
		}
		if (known)
			continue;
		char body[32];
		ssize_t r = wm_read_file_at(j->regs_fd, e->d_name, body, sizeof body);
		uint64_t rank = 0;
		const char *end;
		int have_rank = r > 0 && body[0] != '-' && wm_parse_u64(body, &rank, &end) == 0;
		if (wm_proctree_add_root(t, (int)pid, 1) < 0) {
			(void)unlinkat(j->regs_fd, e->d_name, 0); /* gone: a stale registration */
			continue;
		}
		n = wm_proctree_count(t);
		for (size_t i = 0; i < n; i++) {
			wm_proc *p = wm_proctree_get(t, i);
			if (p->pid == (int)pid && p->alive) {
				p->has_rank = have_rank;
				p->rank = have_rank ? (int)rank : 0;
				/* Registered by its rank's meter right after its exec: all
				 * of its CPU so far is the job's (the next scan counts from
				 * zero, as for a process born in the tree). */
				if (p->is_root && p->count_own) {
					p->cpu_ticks = 0;
					p->child_ticks = 0;
				}
			}
		}
		added++;
	}
	closedir(d);
	return added;
}

void wm_job_json(const wm_job *j, wm_buf *b)
{
	if (!j) {
		wm_buf_puts(b, "null");
		return;
	}
	wm_buf_puts(b, "{\"key\":");
	wm_buf_json_str(b, j->key);
	wm_buf_printf(b, ",\"node_meter\":%s,\"lock_dir\":", j->node_meter ? "true" : "false");
	wm_buf_json_str(b, j->dir);
	if (j->rank >= 0)
		wm_buf_printf(b, ",\"rank\":%d}", j->rank);
	else
		wm_buf_puts(b, ",\"rank\":null}");
}
