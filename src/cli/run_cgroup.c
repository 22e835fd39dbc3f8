/* run_cgroup.c — see run_cgroup.h. */
#include "run_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "procs/cgroup.h"

int run_cgroup_create(struct run_cgroup *cg, char *why, size_t whylen)
{
	cg->path[0] = '\0';
	cg->procs_fd = -1;
	char mnt[4096];
	int rc = wm_cgroup_mount(NULL, mnt, sizeof mnt);
	if (rc < 0)
		rc = wm_cgroup_mount("cpuacct", mnt, sizeof mnt);
	if (rc < 0) {
		snprintf(why, whylen, "no cgroup v2 hierarchy and no v1 cpuacct hierarchy is mounted");
		return -ENOENT;
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int n = snprintf(cg->path, sizeof cg->path, "%s/wattmeter-run-%d-%ld", mnt, (int)getpid(),
			 (long)(ts.tv_nsec % 1000000));
	if (n < 0 || (size_t)n >= sizeof cg->path) {
		snprintf(why, whylen, "the cgroup path below %s is too long", mnt);
		cg->path[0] = '\0';
		return -ENAMETOOLONG;
	}
	if (mkdir(cg->path, 0755) < 0) {
		int e = errno;
		snprintf(why, whylen, "cannot create the cgroup %s: %s (run as root, or in a delegated cgroup: "
			 "systemd-run --user --scope -p Delegate=yes, or give one with --cgroup PATH)",
			 cg->path, strerror(e));
		cg->path[0] = '\0';
		return -e;
	}
	char p[4200];
	snprintf(p, sizeof p, "%s/cgroup.procs", cg->path);
	cg->procs_fd = open(p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (cg->procs_fd < 0) {
		int e = errno;
		snprintf(why, whylen, "cannot open %s: %s", p, strerror(e));
		(void)rmdir(cg->path);
		cg->path[0] = '\0';
		return -e;
	}
	return 0;
}

void run_cgroup_enter(const struct run_cgroup *cg)
{
	if (cg->procs_fd >= 0) {
		ssize_t w = write(cg->procs_fd, "0", 1); /* "0": the writing process */
		(void)w;
	}
}

void run_cgroup_remove(struct run_cgroup *cg)
{
	if (cg->procs_fd >= 0)
		close(cg->procs_fd);
	cg->procs_fd = -1;
	if (!cg->path[0])
		return;
	/* The last processes may take a moment to leave after they are reaped. */
	for (int i = 0; i < 50; i++) {
		if (rmdir(cg->path) == 0 || errno == ENOENT) {
			cg->path[0] = '\0';
			return;
		}
		if (errno != EBUSY)
			break;
		struct timespec d = {0, 10000000};
		nanosleep(&d, NULL);
	}
	fprintf(stderr, "wattmeter run: warning: the cgroup %s was left in place: %s (processes the command "
			"left behind are still in it)\n", cg->path, strerror(errno));
}
