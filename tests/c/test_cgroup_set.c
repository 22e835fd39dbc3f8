/* test_cgroup_set.c — reading a cgroup as a measured set (issue 18): the
 * mount point from mountinfo (hybrid machines: v2 at /sys/fs/cgroup/unified
 * beside v1 controllers), cgroup.procs, cpu.stat usage_usec and v1
 * cpuacct.usage, and a unit's cgroup found by name. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "procs/cgroup.h"

/* From one of these machines (hybrid: v1 controllers and v2 "unified"). */
static const char *HYBRID =
	"23 1 0:21 / / rw,relatime - overlay overlay rw\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void test_mountinfo(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(wm_parse_mountinfo_cgroup(HYBRID, NULL, out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
	assert_int_equal(wm_parse_mountinfo_cgroup(HYBRID, "cpuacct", out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup/cpuacct");
	assert_int_equal(wm_parse_mountinfo_cgroup(HYBRID, "name=systemd", out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup/systemd");
	/* "cpu" is a whole option, not the prefix of "cpuacct" */
	assert_int_equal(wm_parse_mountinfo_cgroup(HYBRID, "cpu", out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup/cpu");
	/* a pure v2 machine; optional fields before " - " */
	assert_int_equal(wm_parse_mountinfo_cgroup("30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 "
						   "rw,nsdelegate\n", NULL, out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup");
	assert_int_equal(wm_parse_mountinfo_cgroup("23 1 0:21 / / rw - overlay overlay rw\n", NULL, out, sizeof out),
			 -ENOENT);
	assert_int_equal(wm_parse_mountinfo_cgroup(HYBRID, "cpuacct", out, 5), -ENAMETOOLONG);
	assert_int_equal(wm_parse_mountinfo_cgroup("garbage without a separator\n\n", NULL, out, sizeof out), -ENOENT);
}

static void test_procs_and_usage(void **state)
{
	(void)state;
	int *pids;
	size_t n;
	assert_int_equal(wm_parse_cgroup_procs("12\n345\n\n7\n", &pids, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(pids[0], 12);
	assert_int_equal(pids[1], 345);
	assert_int_equal(pids[2], 7);
	free(pids);
	assert_int_equal(wm_parse_cgroup_procs("", &pids, &n), 0);
	assert_int_equal(n, 0);
	assert_null(pids);

	uint64_t u = 0;
	assert_int_equal(wm_parse_cpu_stat_usage_usec("usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n", &u), 0);
	assert_int_equal(u, 1234567);
	assert_int_equal(wm_parse_cpu_stat_usage_usec("user_usec 5\nusage_usec 9\n", &u), 0);
	assert_int_equal(u, 9);
	assert_int_equal(wm_parse_cpu_stat_usage_usec("user_usec 5\n", &u), -EPROTO);
	assert_int_equal(wm_parse_cpu_stat_usage_usec("usage_usec x\n", &u), -EPROTO);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A fixture folder shaped as cgroups (the readers take a folder fd). */
static void test_reads_and_unit(void **state)
{
	(void)state;
	char root[] = "/tmp/wm-cgset-XXXXXX";
	assert_non_null(mkdtemp(root));
	char a[600], b[600], c[600];
	snprintf(a, sizeof a, "%s/system.slice", root);
	snprintf(b, sizeof b, "%s/system.slice/ollama.service", root);
	snprintf(c, sizeof c, "%s/user.slice", root);
	assert_int_equal(mkdir(a, 0755), 0);
	assert_int_equal(mkdir(b, 0755), 0);
	assert_int_equal(mkdir(c, 0755), 0);
	write_file(b, "cgroup.procs", "101\n202\n");
	write_file(b, "cpu.stat", "usage_usec 4200\nuser_usec 4000\n");
	write_file(b, "cpuacct.usage", "4200999\n");

	char out[600];
	assert_int_equal(wm_cgroup_find_unit(root, "ollama", out, sizeof out), 0);
	assert_string_equal(out, b);
	assert_int_equal(wm_cgroup_find_unit(root, "ollama.service", out, sizeof out), 0);
	assert_int_equal(wm_cgroup_find_unit(root, "vllm", out, sizeof out), -ENOENT);
	assert_int_equal(wm_cgroup_find_unit(root, "../etc", out, sizeof out), -EINVAL);

	int fd = open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	int *pids;
	size_t n;
	assert_int_equal(wm_cgroup_read_procs(fd, &pids, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(pids[1], 202);
	free(pids);
	uint64_t u;
	assert_int_equal(wm_cgroup_read_usage_usec(fd, 0, &u), 0);
	assert_int_equal(u, 4200);
	assert_int_equal(wm_cgroup_read_usage_usec(fd, 1, &u), 0);
	assert_int_equal(u, 4200); /* ns / 1000 */
	close(fd);

	static const char *const files[] = {"cgroup.procs", "cpu.stat", "cpuacct.usage"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char p[700];
		snprintf(p, sizeof p, "%s/%s", b, files[i]);
		assert_int_equal(unlink(p), 0);
	}
	assert_int_equal(rmdir(b), 0);
	assert_int_equal(rmdir(a), 0);
	assert_int_equal(rmdir(c), 0);
	assert_int_equal(rmdir(root), 0);
}

static void test_pod_and_nspid(void **state)
{
	(void)state;
	char pod[64];
	assert_int_equal(wm_cgroup_pod_uid("0::/kubepods/burstable/pod0d5e7c4a-1111-2222-3333-444455556666/abc\n",
					   pod, sizeof pod), 1);
	assert_string_equal(pod, "0d5e7c4a-1111-2222-3333-444455556666");
	assert_int_equal(wm_cgroup_pod_uid("0::/kubepods.slice/kubepods-burstable.slice/"
					   "kubepods-burstable-pod0d5e7c4a_1111_2222_3333_444455556666.slice/x\n",
					   pod, sizeof pod), 1);
	assert_string_equal(pod, "0d5e7c4a-1111-2222-3333-444455556666");
	assert_int_equal(wm_cgroup_pod_uid("0::/system.slice/podman.service\n", pod, sizeof pod), 0);
	assert_int_equal(wm_parse_status_nspid("Name:\tpython3\nNSpid:\t4321\t1\nNSpgid:\t4321\t1\n"), 1);
	assert_int_equal(wm_parse_status_nspid("Name:\tx\nNSpid:\t4321\n"), -1);
	assert_int_equal(wm_parse_status_nspid("Name:\tx\n"), -1);
	assert_int_equal(wm_parse_status_nspid("NSpid:\t9\t8\t7\n"), 7);
}

/* The real /proc as the "host's": a process of this namespace maps to
 * itself; a pid that does not exist cannot be told (-ENOENT); a folder that
 * is not a procfs has no ns links (-ENOENT). The cross-namespace cases run
 * with real pid namespaces in tests/python/test_containers.py. */
static void test_host_pid_local(void **state)
{
	(void)state;
	int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(proc >= 0);
	struct stat st;
	if (fstatat(proc, "self/ns/pid", &st, 0) < 0) {
		close(proc);
		skip(); /* no ns links readable here */
	}
	assert_int_equal(wm_host_pid_local(proc, (int)getpid()), (int)getpid());
	assert_int_equal(wm_host_pid_local(proc, 4194304 + 1), -ENOENT);
	close(proc);
	char dir[] = "/tmp/wm-hostproc-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(wm_host_pid_local(fd, (int)getpid()), -ENOENT);
	close(fd);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mountinfo),
		cmocka_unit_test(test_procs_and_usage),
		cmocka_unit_test(test_reads_and_unit),
		cmocka_unit_test(test_pod_and_nspid),
		cmocka_unit_test(test_host_pid_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
