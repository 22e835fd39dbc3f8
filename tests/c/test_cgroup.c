/* test_cgroup.c — naming a process's container from /proc/<pid>/cgroup, on
 * the paths docker, containerd (Kubernetes), podman, CRI-O and LXC write,
 * and on a fixture procfs tree for the read. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "procs/cgroup.h"
#include "fixture.h"

#define ID64 "4f1e2a9b7c3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"

static void name_is(const char *text, const char *want)
{
	char out[64] = "junk";
	int rc = wm_cgroup_container_name(text, out, sizeof out);
	if (want) {
		if (rc != 1 || strcmp(out, want) != 0)
			fail_msg("%s: got %d '%s', want '%s'", text, rc, out, want);
	} else if (rc != 0 || out[0]) {
		fail_msg("%s: got %d '%s', want no container", text, rc, out);
	}
}

static void test_runtimes(void **state)
{
	(void)state;
	name_is("0::/system.slice/docker-" ID64 ".scope\n", "docker:4f1e2a9b7c3d");
	name_is("12:memory:/docker/" ID64 "\n11:cpu,cpuacct:/docker/" ID64 "\n", "docker:4f1e2a9b7c3d");
	name_is("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/"
		"cri-containerd-" ID64 ".scope\n", "containerd:4f1e2a9b7c3d");
	name_is("0::/kubepods/burstable/pod0d5e7c4a-1111-2222-3333-444455556666/" ID64 "\n",
		"kubepods:4f1e2a9b7c3d");
	name_is("0::/machine.slice/libpod-" ID64 ".scope/container\n", "podman:4f1e2a9b7c3d");
	name_is("0::/system.slice/crio-" ID64 ".scope\n", "cri-o:4f1e2a9b7c3d");
	name_is("0::/lxc.payload.web1/system.slice/ssh.service\n", "lxc:web1");
	name_is("4:memory:/lxc/db2\n", "lxc:db2");
	/* the path may hold ':' (cgroup v1 named hierarchies) */
	name_is("1:name=systemd:/docker/" ID64 "\n", "docker:4f1e2a9b7c3d");
}

static void test_no_container(void **state)
{
	(void)state;
	name_is("0::/user.slice/user-1000.slice/session-3.scope\n", NULL);
	name_is("0::/system.slice/docker.service\n", NULL);   /* the daemon itself */
	name_is("0::/\n", NULL);
	name_is("", NULL);
	name_is("no colons at all", NULL);
	name_is("0::/system.slice/docker-.scope\n", NULL);    /* empty id */
	name_is("12:memory:/docker/not-a-container-id\n", NULL);
	char out[8];
	assert_int_equal(wm_cgroup_container_name(NULL, out, sizeof out), -EINVAL);
	assert_int_equal(wm_cgroup_container_name("", NULL, 8), -EINVAL);
	/* too small for the name: none, never a truncated one */
	assert_int_equal(wm_cgroup_container_name("0::/system.slice/docker-" ID64 ".scope\n", out, sizeof out), 0);
	assert_string_equal(out, "");
}

static void test_read_from_fixture_procfs(void **state)
{
	(void)state;
	char root[4096], out[64];
	fx_mkdtemp(root, sizeof root);
	fx_write(root, "4242/cgroup", "0::/system.slice/docker-" ID64 ".scope\n");
	fx_write(root, "4243/cgroup", "0::/user.slice\n");
	int fd = fx_open_root(root);
	assert_int_equal(wm_read_pid_container(fd, 4242, out, sizeof out), 1);
	assert_string_equal(out, "docker:4f1e2a9b7c3d");
	assert_int_equal(wm_read_pid_container(fd, 4243, out, sizeof out), 0);
	assert_int_equal(wm_read_pid_container(fd, 4244, out, sizeof out), -ENOENT);
	close(fd);
	fx_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtimes),
		cmocka_unit_test(test_no_container),
		cmocka_unit_test(test_read_from_fixture_procfs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
