/* test_rapl.c — RAPL discovery, overlap rules, permissions and reads, on
 * powercap trees laid out like the kernel's (fixture.h), never the real /sys.
 *
 * Each test gets a fresh temp sysfs root (setup) that teardown removes, with
 * the probed wm_rapl freed and the root fd closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "base/counter.h"
#include "sources/rapl.h"
#include "fixture.h"

#define MSR "intel-rapl"
#define MMIO "intel-rapl-mmio"
/* a real Skylake-SP package range (2^32 energy units of 61.035 uJ) */
#define PKG_RANGE 262143328850LL
#define DRAM_RANGE 65712999613LL

typedef struct tstate {
	char root[4096];
	int fd;
	wm_rapl *r;
} tstate;

static int setup(void **state)
{
	tstate *t = calloc(1, sizeof *t);
	if (!t)
		return -1;
	t->fd = -1;
	fx_mkdtemp(t->root, sizeof t->root);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	tstate *t = *state;
	wm_rapl_free(t->r);
	if (t->fd >= 0)
		close(t->fd);
	fx_rmtree(t->root);
	free(t);
	return 0;
}

/* Probes the fixture tree; the probe itself must succeed whatever it finds. */
static wm_rapl *probe(tstate *t)
{
	char err[256] = "";
	if (t->fd < 0)
		t->fd = fx_open_root(t->root);
	wm_rapl_free(t->r);
	t->r = NULL;
	int rc = wm_rapl_probe(t->fd, &t->r, err, sizeof err);
	if (rc != 0)
		fail_msg("wm_rapl_probe: %d %s", rc, err);
	assert_non_null(t->r);
	return t->r;
}

static const wm_rapl_zone *zone(const wm_rapl *r, const char *label)
{
	for (size_t i = 0; i < r->n_zones; i++)
		if (strcmp(r->zones[i].label, label) == 0)
			return &r->zones[i];
	fail_msg("no zone labelled %s", label);
	return NULL;
}

static size_t zone_index(const wm_rapl *r, const char *label)
{
	return (size_t)(zone(r, label) - r->zones);
}

static uint64_t read_uj(const wm_rapl *r, const char *label)
{
	uint64_t v = 0;
	int rc = wm_rapl_read_uj(r, zone_index(r, label), &v);
	if (rc)
		fail_msg("read %s: %d", label, rc);
	return v;
}

static size_t n_counted(const wm_rapl *r, const char *device)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_zones; i++)
		if (r->zones[i].counted && r->zones[i].device && strcmp(r->zones[i].device, device) == 0)
			n++;
	return n;
}

static void assert_zone(const wm_rapl *r, const char *label, wm_rapl_domain dom, int pkg,
			int counted, const char *device)
{
	const wm_rapl_zone *z = zone(r, label);
	assert_int_equal(z->domain, dom);
	assert_int_equal(z->package, pkg);
	assert_int_equal(z->counted, counted);
	if (device)
		assert_string_equal(z->device, device);
	else
		assert_null(z->device);
}

/* ---- layouts ---------------------------------------------------------------- */

static void single_intel_package_counts_package_as_cpu_and_dram_as_dram_never_core_or_uncore(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1000, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "core", 400, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:1", "uncore", 100, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:2", "dram", 300, DRAM_RANGE);
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	assert_string_equal(r->fix, "");
	assert_int_equal(r->n_zones, 4);
	/* sorted by id: the package first, then its subzones in order */
	assert_string_equal(r->zones[0].label, "package-0");
	assert_string_equal(r->zones[1].label, "package-0/core");
	assert_string_equal(r->zones[2].label, "package-0/uncore");
	assert_string_equal(r->zones[3].label, "package-0/dram");
	assert_string_equal(r->zones[3].id, "intel-rapl:0:2");
	assert_string_equal(r->zones[3].name, "dram");

	assert_zone(r, "package-0", WM_RAPL_PACKAGE, 0, 1, "cpu");
	assert_zone(r, "package-0/core", WM_RAPL_CORE, 0, 0, NULL);
	assert_zone(r, "package-0/uncore", WM_RAPL_UNCORE, 0, 0, NULL);
	assert_zone(r, "package-0/dram", WM_RAPL_DRAM, 0, 1, "dram");
	assert_true(zone(r, "package-0")->top_level);
	assert_false(zone(r, "package-0/core")->top_level);
	assert_int_equal(zone(r, "package-0")->die, -1);

	assert_int_equal(zone(r, "package-0")->max_energy_range_uj, PKG_RANGE);
	assert_int_equal(zone(r, "package-0/dram")->max_energy_range_uj, DRAM_RANGE);
	for (size_t i = 0; i < r->n_zones; i++) {
		assert_int_equal(r->zones[i].state, WM_SRC_OK);
		assert_true(r->zones[i].fd >= 0);
		assert_false(r->zones[i].mmio);
		/* the kept fd must not leak into workloads we exec */
		assert_true(fcntl(r->zones[i].fd, F_GETFD) & FD_CLOEXEC);
	}
	assert_int_equal(read_uj(r, "package-0"), 1000);
	assert_int_equal(read_uj(r, "package-0/dram"), 300);
	assert_non_null(strstr(r->detail, "1 package"));
	assert_non_null(strstr(r->detail, "1 dram zone"));
}

static void two_packages_each_counted_with_subzones_taking_their_parents_package(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 10, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "dram", 20, DRAM_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "package-1", 30, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1:0", "dram", 40, DRAM_RANGE);
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	assert_int_equal(r->n_zones, 4);
	assert_zone(r, "package-0", WM_RAPL_PACKAGE, 0, 1, "cpu");
	assert_zone(r, "package-1", WM_RAPL_PACKAGE, 1, 1, "cpu");
	assert_zone(r, "package-0/dram", WM_RAPL_DRAM, 0, 1, "dram");
	assert_zone(r, "package-1/dram", WM_RAPL_DRAM, 1, 1, "dram");
	assert_int_equal(n_counted(r, "cpu"), 2);
	assert_int_equal(n_counted(r, "dram"), 2);
	assert_int_equal(read_uj(r, "package-1/dram"), 40);
	assert_non_null(strstr(r->detail, "2 packages"));
	assert_non_null(strstr(r->detail, "2 dram zones"));
}

static void multi_die_package_counts_every_die(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0-die-0", 5, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "package-0-die-1", 6, PKG_RANGE);
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	assert_zone(r, "package-0-die-0", WM_RAPL_PACKAGE, 0, 1, "cpu");
	assert_zone(r, "package-0-die-1", WM_RAPL_PACKAGE, 0, 1, "cpu");
	assert_int_equal(zone(r, "package-0-die-0")->die, 0);
	assert_int_equal(zone(r, "package-0-die-1")->die, 1);
	assert_int_equal(n_counted(r, "cpu"), 2);
	assert_non_null(strstr(r->detail, "1 package (2 dies)"));
}

static void psys_is_its_own_device_and_never_added_to_cpu(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 5, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "psys", 9, PKG_RANGE);
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	assert_zone(r, "psys", WM_RAPL_PSYS, -1, 1, "psys");
	assert_int_equal(n_counted(r, "cpu"), 1);
	assert_int_equal(n_counted(r, "psys"), 1);
	assert_non_null(strstr(r->detail, "psys"));
}

static void top_level_dram_is_counted_as_dram(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 5, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "dram", 5, DRAM_RANGE);
	wm_rapl *r = probe(t);
	assert_zone(r, "dram", WM_RAPL_DRAM, -1, 1, "dram");
	assert_true(zone(r, "dram")->top_level);
}

static void mmio_duplicate_of_a_package_is_kept_but_counted_once(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 77, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "core", 50, PKG_RANGE);
	fx_rapl_zone(t->root, MMIO, "intel-rapl-mmio:0", "package-0", 77, PKG_RANGE);
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	assert_int_equal(r->n_zones, 3);
	/* intel-rapl zones sort before intel-rapl-mmio ones */
	assert_string_equal(r->zones[2].id, "intel-rapl-mmio:0");
	assert_zone(r, "package-0", WM_RAPL_PACKAGE, 0, 1, "cpu");
	assert_zone(r, "mmio:package-0", WM_RAPL_PACKAGE, 0, 0, "cpu");
	assert_true(zone(r, "mmio:package-0")->mmio);
	assert_int_equal(zone(r, "mmio:package-0")->state, WM_SRC_OK);
	assert_int_equal(read_uj(r, "mmio:package-0"), 77);
	assert_int_equal(n_counted(r, "cpu"), 1);
	assert_non_null(strstr(r->detail, "1 package"));
	assert_non_null(strstr(r->detail, "mmio duplicate skipped"));
}

static void mmio_only_package_is_counted_under_its_own_name(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MMIO, "intel-rapl-mmio:0", "package-0", 12, PKG_RANGE);
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	assert_int_equal(r->n_zones, 1);
	assert_zone(r, "package-0", WM_RAPL_PACKAGE, 0, 1, "cpu");
	assert_true(zone(r, "package-0")->mmio);
	assert_null(strstr(r->detail, "mmio duplicate"));
}

static void mmio_twin_is_counted_instead_when_the_msr_zone_has_no_energy(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", -1, PKG_RANGE);
	fx_rapl_zone(t->root, MMIO, "intel-rapl-mmio:0", "package-0", 12, PKG_RANGE);
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	assert_int_equal(zone(r, "package-0")->state, WM_SRC_ABSENT);
	assert_false(zone(r, "package-0")->counted);
	assert_true(zone(r, "mmio:package-0")->counted);
	assert_int_equal(n_counted(r, "cpu"), 1);
}

static void amd_zen_layout_counts_package_and_not_core_and_has_no_dram(void **state)
{
	tstate *t = *state;
	/* AMD exposes its package under the intel-rapl names; core is per-core
	 * summed into the package, and there is no dram domain */
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 123456, 65532610987LL);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "core", 23456, 65532610987LL);
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	assert_int_equal(r->n_zones, 2);
	assert_zone(r, "package-0", WM_RAPL_PACKAGE, 0, 1, "cpu");
	assert_zone(r, "package-0/core", WM_RAPL_CORE, 0, 0, NULL);
	assert_int_equal(n_counted(r, "dram"), 0);
	assert_null(strstr(r->detail, "dram"));
}

static void zones_sort_by_natural_numeric_id(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:10", "package-10", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:2", "package-2", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:2:10", "dram", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:2:9", "core", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MMIO, "intel-rapl-mmio:1", "package-1", 1, PKG_RANGE);
	wm_rapl *r = probe(t);

	const char *want[] = { "intel-rapl:2", "intel-rapl:2:9", "intel-rapl:2:10",
			       "intel-rapl:10", "intel-rapl-mmio:1" };
	assert_int_equal(r->n_zones, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(r->zones[i].id, want[i]);
	assert_int_equal(zone(r, "package-2/dram")->package, 2);
}

static void control_types_and_foreign_powercap_entries_are_skipped(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	/* fx_rapl_zone made class/powercap/intel-rapl (the control type) too */
	fx_mkdir(t->root, "devices/virtual/powercap/dtpm");
	fx_symlink(t->root, "class/powercap/dtpm", "../../devices/virtual/powercap/dtpm");
	fx_write(t->root, "devices/virtual/powercap/dtpm/x/energy_uj", "5\n");
	fx_symlink(t->root, "class/powercap/dtpm:0", "../../devices/virtual/powercap/dtpm/x");
	fx_symlink(t->root, "class/powercap/intel-rapl:0:1:2", "../../devices/virtual/powercap/dtpm/x");
	fx_symlink(t->root, "class/powercap/intel-rapl:x", "../../devices/virtual/powercap/dtpm/x");
	wm_rapl *r = probe(t);

	assert_int_equal(r->n_zones, 1);
	assert_string_equal(r->zones[0].id, "intel-rapl:0");
}

static void duplicate_names_still_get_unique_labels(void **state)
{
	tstate *t = *state;
	/* firmware that names two dies "package-0": both measured, both counted */
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "package-0", 2, PKG_RANGE);
	wm_rapl *r = probe(t);

	assert_string_equal(r->zones[0].label, "package-0");
	assert_string_equal(r->zones[1].label, "package-0@intel-rapl:1");
	assert_int_equal(n_counted(r, "cpu"), 2);
}

/* ---- absent and forbidden ------------------------------------------------------- */

static void no_powercap_class_is_absent_with_a_modprobe_fix(void **state)
{
	tstate *t = *state;
	fx_mkdir(t->root, "class");
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_ABSENT);
	assert_int_equal(r->n_zones, 0);
	assert_non_null(strstr(r->fix, "sudo modprobe intel_rapl_msr"));
	assert_non_null(strstr(r->fix, "model CPU power"));
	assert_true(r->detail[0] != '\0');
	assert_int_equal(wm_rapl_min_wrap_s(r, 100), 0);
}

static void powercap_without_rapl_zones_is_absent_with_a_modprobe_fix(void **state)
{
	tstate *t = *state;
	fx_mkdir(t->root, "class/powercap");
	fx_mkdir(t->root, "devices/virtual/powercap/intel-rapl");
	fx_symlink(t->root, "class/powercap/intel-rapl", "../../devices/virtual/powercap/intel-rapl");
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_ABSENT);
	assert_int_equal(r->n_zones, 0);
	assert_non_null(strstr(r->fix, "modprobe"));
}

static void missing_energy_uj_is_absent_not_forbidden(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", -1, PKG_RANGE);
	wm_rapl *r = probe(t);

	assert_int_equal(r->n_zones, 1);
	assert_int_equal(r->zones[0].state, WM_SRC_ABSENT);
	assert_int_equal(r->zones[0].err, ENOENT);
	assert_int_equal(r->zones[0].fd, -1);
	assert_int_equal(r->state, WM_SRC_ABSENT);
	assert_null(strstr(r->fix, "udev"));
	assert_non_null(strstr(r->fix, "modprobe"));
	uint64_t v;
	assert_int_equal(wm_rapl_read_uj(r, 0, &v), -ENOENT);
}

static void readable_core_alone_does_not_make_rapl_usable(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", -1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "core", 5, PKG_RANGE);
	wm_rapl *r = probe(t);
	assert_int_equal(zone(r, "package-0/core")->state, WM_SRC_OK);
	assert_int_equal(r->state, WM_SRC_ABSENT);
}

/* What a probe in another process found, passed back through a pipe. */
typedef struct probe_result {
	int status;          /* 0 probed, 1 skip (cannot drop privileges), 2 probe failed */
	int state;
	int n_zones;
	int z_state[4];
	int z_err[4];
	int z_fd_ok[4];
	char fix[1024];
	char detail[256];
} probe_result;

static void fill_result(const wm_rapl *r, probe_result *res)
{
	res->state = (int)r->state;
	res->n_zones = (int)r->n_zones;
	for (size_t i = 0; i < r->n_zones && i < 4; i++) {
		res->z_state[i] = (int)r->zones[i].state;
		res->z_err[i] = r->zones[i].err;
		res->z_fd_ok[i] = r->zones[i].fd >= 0;
	}
	memcpy(res->fix, r->fix, sizeof res->fix);
	memcpy(res->detail, r->detail, sizeof res->detail);
}

/* Probes root as user/group 65534 (nobody) in a child, the way an
 * unprivileged wattmeter sees a kernel >= 5.10 tree. Root bypasses file
 * modes, so this is the only way CI (which runs as root) can see EACCES. */
static void probe_as_nobody(const char *root, probe_result *res)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		fail_msg("pipe2: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		/* child: no cmocka here (its longjmp belongs to the parent); _exit
		 * so no atexit handler or leak checker runs twice */
		probe_result cr;
		memset(&cr, 0, sizeof cr);
		close(pfd[0]);
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0) {
			cr.status = 1;
		} else {
			char name[4200];
			int n = snprintf(name, sizeof name, "%s/class/powercap/intel-rapl:0/name", root);
			int nfd = (n > 0 && (size_t)n < sizeof name) ? open(name, O_RDONLY | O_CLOEXEC) : -1;
			if (nfd < 0) {
				cr.status = 1;   /* TMPDIR not reachable by nobody */
			} else {
				close(nfd);
				int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
				wm_rapl *r = NULL;
				if (rfd < 0 || wm_rapl_probe(rfd, &r, NULL, 0) != 0) {
					cr.status = 2;
				} else {
					fill_result(r, &cr);
				}
				wm_rapl_free(r);
				if (rfd >= 0)
					close(rfd);
			}
		}
		const char *p = (const char *)&cr;
		size_t left = sizeof cr;
		while (left) {
			ssize_t w = write(pfd[1], p, left);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				_exit(3);
			p += w;
			left -= (size_t)w;
		}
		_exit(0);
	}
	close(pfd[1]);
	char *p = (char *)res;
	size_t got = 0;
	while (got < sizeof *res) {
		ssize_t n = read(pfd[0], p + got, sizeof *res - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(pfd[0]);
	int wst;
	while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof *res || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
		fail_msg("probe child failed (got %zu bytes, status 0x%x)", got, wst);
}

/* Probes either as nobody (when we are root) or in-process after chmod 000. */
static void probe_unprivileged(tstate *t, const char **forbid, size_t n_forbid, probe_result *res)
{
	memset(res, 0, sizeof *res);
	for (size_t i = 0; i < n_forbid; i++) {
		char rel[256];
		int n = snprintf(rel, sizeof rel, "class/powercap/%s/energy_uj", forbid[i]);
		assert_true(n > 0 && (size_t)n < sizeof rel);
		/* 0400 root-owned is the kernel's mode; 000 stops a non-root owner */
		fx_chmod(t->root, rel, geteuid() == 0 ? 0400 : 0000);
	}
	if (geteuid() == 0) {
		probe_as_nobody(t->root, res);
		if (res->status == 1)
			skip();   /* cannot drop privileges here: not a pass */
		assert_int_equal(res->status, 0);
		return;
	}
	char p[4200];
	int n = snprintf(p, sizeof p, "%s/class/powercap/%s/energy_uj", t->root, forbid[0]);
	assert_true(n > 0 && (size_t)n < sizeof p);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		skip();   /* CAP_DAC_OVERRIDE without uid 0: modes do not bind us */
	}
	wm_rapl *r = probe(t);
	fill_result(r, res);
}

static void unreadable_energy_uj_is_forbidden_with_the_udev_fix(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "dram", 1, DRAM_RANGE);
	const char *forbid[] = { "intel-rapl:0", "intel-rapl:0:0" };
	probe_result res;
	probe_unprivileged(t, forbid, 2, &res);

	assert_int_equal(res.state, WM_SRC_FORBIDDEN);
	assert_int_equal(res.n_zones, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(res.z_state[i], WM_SRC_FORBIDDEN);
		assert_int_equal(res.z_err[i], EACCES);
		assert_false(res.z_fd_ok[i]);
	}
	/* the fix names the cause and gives the exact rule and commands */
	assert_non_null(strstr(res.fix, "CVE-2020-8694"));
	assert_non_null(strstr(res.fix, "/etc/udev/rules.d/60-powercap.rules"));
	assert_non_null(strstr(res.fix,
		"SUBSYSTEM==\"powercap\", ACTION==\"add\", "
		"RUN+=\"/bin/chgrp powercap /sys%p/energy_uj\", "
		"RUN+=\"/bin/chmod g+r /sys%p/energy_uj\""));
	assert_non_null(strstr(res.fix,
		"sudo groupadd -f powercap && sudo usermod -aG powercap $USER && "
		"sudo udevadm trigger --subsystem-match=powercap --action=add"));
	assert_non_null(strstr(res.fix, "log in again"));
	assert_non_null(strstr(res.fix, "as root"));
	assert_non_null(strstr(res.detail, "permission denied"));
}

static void readable_package_is_ok_even_if_another_zone_is_forbidden(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "dram", 1, DRAM_RANGE);
	const char *forbid[] = { "intel-rapl:0:0" };
	probe_result res;
	probe_unprivileged(t, forbid, 1, &res);

	assert_int_equal(res.state, WM_SRC_OK);
	assert_int_equal(res.z_state[0], WM_SRC_OK);
	assert_int_equal(res.z_state[1], WM_SRC_FORBIDDEN);
	assert_string_equal(res.fix, "");
	assert_non_null(strstr(res.detail, "1 zone permission denied"));
}

/* ---- reads ------------------------------------------------------------------ */

static void kept_fd_sees_in_place_rewrites(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 100, PKG_RANGE);
	wm_rapl *r = probe(t);
	assert_int_equal(read_uj(r, "package-0"), 100);
	fx_rapl_set(t->root, "intel-rapl:0", 250);
	assert_int_equal(read_uj(r, "package-0"), 250);
	fx_rapl_set(t->root, "intel-rapl:0", 18446744073709551615ULL);
	assert_int_equal(read_uj(r, "package-0"), UINT64_MAX);
	fx_rapl_set(t->root, "intel-rapl:0", 0);
	assert_int_equal(read_uj(r, "package-0"), 0);
}

static void zone_that_vanishes_mid_run_reads_as_error_then_recovers(void **state)
{
	tstate *t = *state;
	const char *file = "devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj";
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 100, PKG_RANGE);
	wm_rapl *r = probe(t);
	uint64_t v = 42;

	fx_write(t->root, file, "");              /* truncated in place */
	assert_int_equal(wm_rapl_read_uj(r, 0, &v), -ENODATA);
	assert_int_equal(v, 42);
	fx_rapl_set(t->root, "intel-rapl:0", 150);  /* back: same fd reads again */
	assert_int_equal(wm_rapl_read_uj(r, 0, &v), 0);
	assert_int_equal(v, 150);

	v = 42;
	fx_write(t->root, file, "garbage\n");
	assert_int_equal(wm_rapl_read_uj(r, 0, &v), -EINVAL);
	fx_write(t->root, file, "123abc\n");      /* partial numbers are rejected */
	assert_int_equal(wm_rapl_read_uj(r, 0, &v), -EINVAL);
	fx_write(t->root, file, "-5\n");
	assert_int_equal(wm_rapl_read_uj(r, 0, &v), -EINVAL);
	fx_write(t->root, file, "99999999999999999999999\n");
	assert_int_equal(wm_rapl_read_uj(r, 0, &v), -ERANGE);
	assert_int_equal(v, 42);                  /* failures leave the output alone */

	/* restored whole (O_TRUNC, same inode: the longer junk leaves no tail) */
	fx_write(t->root, file, "00000000000000000777\n");
	assert_int_equal(wm_rapl_read_uj(r, 0, &v), 0);
	assert_int_equal(v, 777);
}

static void read_rejects_an_index_out_of_range(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	wm_rapl *r = probe(t);
	uint64_t v;
	assert_int_equal(wm_rapl_read_uj(r, 1, &v), -EINVAL);
	assert_int_equal(wm_rapl_read_uj(NULL, 0, &v), -EINVAL);
}

static void malformed_content_at_probe_is_an_error_zone(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	fx_write(t->root, "devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj", "n/a\n");
	wm_rapl *r = probe(t);
	assert_int_equal(r->zones[0].state, WM_SRC_ERROR);
	assert_int_equal(r->zones[0].err, EINVAL);
	assert_int_equal(r->state, WM_SRC_ERROR);
	assert_non_null(strstr(r->detail, "failing"));
}

/* ---- counters on RAPL reads ---------------------------------------------------- */

static void counter_across_max_energy_range_gives_the_exact_total(void **state)
{
	tstate *t = *state;
	const uint64_t range = 1000000;   /* 1 J: wraps every 10 ms at 100 W */
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 900000, (long long)range);
	wm_rapl *r = probe(t);
	const wm_rapl_zone *z = zone(r, "package-0");
	assert_int_equal(z->max_energy_range_uj, range);

	wm_counter c;
	uint64_t d;
	wm_counter_init(&c, z->max_energy_range_uj);
	assert_int_equal(wm_counter_update(&c, read_uj(r, "package-0"), &d), WM_COUNTER_FIRST);

	fx_rapl_set(t->root, "intel-rapl:0", 990000);
	assert_int_equal(wm_counter_update(&c, read_uj(r, "package-0"), &d), WM_COUNTER_DELTA);
	assert_int_equal(d, 90000);
	/* wraps: 10000 to the top, then 5000 after it */
	fx_rapl_set(t->root, "intel-rapl:0", 5000);
	assert_int_equal(wm_counter_update(&c, read_uj(r, "package-0"), &d), WM_COUNTER_WRAPPED);
	assert_int_equal(d, 15000);
	fx_rapl_set(t->root, "intel-rapl:0", 999999);
	assert_int_equal(wm_counter_update(&c, read_uj(r, "package-0"), &d), WM_COUNTER_DELTA);
	fx_rapl_set(t->root, "intel-rapl:0", 0);
	assert_int_equal(wm_counter_update(&c, read_uj(r, "package-0"), &d), WM_COUNTER_WRAPPED);
	assert_int_equal(d, 1);

	assert_int_equal(c.total, 90000 + 15000 + 994999 + 1);
	assert_int_equal(c.wraps, 2);
	assert_int_equal(c.resets, 0);
}

static void unreadable_range_keeps_the_zone_and_backwards_counts_as_reset(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 500, PKG_RANGE);
	fx_write(t->root, "devices/virtual/powercap/intel-rapl/intel-rapl:0/max_energy_range_uj",
		 "lots\n");
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "package-1", 500, -1);   /* no file */
	wm_rapl *r = probe(t);

	assert_int_equal(r->state, WM_SRC_OK);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(r->zones[i].state, WM_SRC_OK);
		assert_int_equal(r->zones[i].max_energy_range_uj, 0);
		assert_true(r->zones[i].counted);
	}
	assert_non_null(strstr(r->detail, "max_energy_range_uj unreadable on 2 zones"));

	wm_counter c;
	uint64_t d;
	wm_counter_init(&c, r->zones[0].max_energy_range_uj);
	wm_counter_update(&c, read_uj(r, "package-0"), &d);
	fx_rapl_set(t->root, "intel-rapl:0", 800);
	wm_counter_update(&c, read_uj(r, "package-0"), &d);
	fx_rapl_set(t->root, "intel-rapl:0", 30);
	assert_int_equal(wm_counter_update(&c, read_uj(r, "package-0"), &d), WM_COUNTER_RESET);
	assert_int_equal(d, 30);
	assert_int_equal(c.total, 300 + 30);
	assert_int_equal(c.resets, 1);
	assert_int_equal(c.wraps, 0);
}

static void min_wrap_time_is_over_counted_readable_zones_only(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "core", 1, 1000000);      /* not counted */
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:1", "dram", 1, DRAM_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "package-1", -1, 2000000);  /* unreadable */
	wm_rapl *r = probe(t);

	/* dram: 65712.999613 J at 200 W */
	assert_float_equal(wm_rapl_min_wrap_s(r, 200.0), 65712.999613 / 200.0, 1e-9);
	assert_float_equal(wm_rapl_min_wrap_s(r, 0), 0, 0);
	assert_float_equal(wm_rapl_min_wrap_s(NULL, 100), 0, 0);
}

static int count_open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void probe_and_free_leave_no_fd_open(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "dram", 1, DRAM_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "package-1", -1, PKG_RANGE);
	t->fd = fx_open_root(t->root);
	int before = count_open_fds();
	wm_rapl *r = probe(t);
	/* one kept fd per readable zone, nothing else (the listing fds are closed) */
	assert_int_equal(count_open_fds(), before + 2);
	assert_int_equal(r->n_zones, 3);
	wm_rapl_free(r);
	t->r = NULL;
	assert_int_equal(count_open_fds(), before);
}

static void domain_names_and_free_null(void **state)
{
	(void)state;
	assert_string_equal(wm_rapl_domain_name(WM_RAPL_PACKAGE), "package");
	assert_string_equal(wm_rapl_domain_name(WM_RAPL_CORE), "core");
	assert_string_equal(wm_rapl_domain_name(WM_RAPL_UNCORE), "uncore");
	assert_string_equal(wm_rapl_domain_name(WM_RAPL_DRAM), "dram");
	assert_string_equal(wm_rapl_domain_name(WM_RAPL_PSYS), "psys");
	assert_string_equal(wm_rapl_domain_name(WM_RAPL_OTHER), "other");
	wm_rapl_free(NULL);
}

static void unknown_names_are_other_and_never_counted(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "gpu", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "package-x", 1, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:2", "package-1-die-", 1, PKG_RANGE);
	wm_rapl *r = probe(t);
	assert_zone(r, "package-0/gpu", WM_RAPL_OTHER, 0, 0, NULL);
	assert_zone(r, "package-x", WM_RAPL_OTHER, -1, 0, NULL);
	assert_zone(r, "package-1-die-", WM_RAPL_OTHER, -1, 0, NULL);
	assert_int_equal(n_counted(r, "cpu"), 1);
}

/* The plausibility bound: twice the zone's largest power limit or limit
 * ceiling (whichever constraint file says more), else a ceiling per kind. */
static void bound_is_twice_the_largest_power_limit_else_a_ceiling_per_kind(void **state)
{
	tstate *t = *state;
	fx_rapl_zone(t->root, MSR, "intel-rapl:0", "package-0", 5, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:0:0", "dram", 5, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:1", "psys", 9, PKG_RANGE);
	fx_rapl_zone(t->root, MSR, "intel-rapl:2", "package-1", 5, PKG_RANGE);
	fx_rapl_limit(t->root, MSR, "intel-rapl:0", 65000000);
	/* a short-term limit above the long-term ceiling (firmware does this) */
	fx_write(t->root, "devices/virtual/powercap/intel-rapl/intel-rapl:0/constraint_1_power_limit_uw", "120000000\n");
	fx_write(t->root, "devices/virtual/powercap/intel-rapl/intel-rapl:2/constraint_0_max_power_uw", "0\n");
	wm_rapl *r = probe(t);
	const char *basis = "";
	assert_float_equal(wm_rapl_zone_bound_w(zone(r, "package-0"), &basis), 240.0, 1e-9);
	assert_string_equal(basis, "2 x largest power limit");
	assert_float_equal(wm_rapl_zone_bound_w(zone(r, "package-0/dram"), &basis), WM_RAPL_CEILING_DRAM_W, 0);
	assert_float_equal(wm_rapl_zone_bound_w(zone(r, "psys"), &basis), WM_RAPL_CEILING_PSYS_W, 0);
	/* a limit of 0 says nothing: the package ceiling */
	assert_float_equal(wm_rapl_zone_bound_w(zone(r, "package-1"), &basis), WM_RAPL_CEILING_PACKAGE_W, 0);
	assert_string_equal(basis, "ceiling for a CPU package");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(single_intel_package_counts_package_as_cpu_and_dram_as_dram_never_core_or_uncore),
		T(two_packages_each_counted_with_subzones_taking_their_parents_package),
		T(multi_die_package_counts_every_die),
		T(psys_is_its_own_device_and_never_added_to_cpu),
		T(bound_is_twice_the_largest_power_limit_else_a_ceiling_per_kind),
		T(top_level_dram_is_counted_as_dram),
		T(mmio_duplicate_of_a_package_is_kept_but_counted_once),
		T(mmio_only_package_is_counted_under_its_own_name),
		T(mmio_twin_is_counted_instead_when_the_msr_zone_has_no_energy),
		T(amd_zen_layout_counts_package_and_not_core_and_has_no_dram),
		T(zones_sort_by_natural_numeric_id),
		T(control_types_and_foreign_powercap_entries_are_skipped),
		T(duplicate_names_still_get_unique_labels),
		T(unknown_names_are_other_and_never_counted),
		T(no_powercap_class_is_absent_with_a_modprobe_fix),
		T(powercap_without_rapl_zones_is_absent_with_a_modprobe_fix),
		T(missing_energy_uj_is_absent_not_forbidden),
		T(readable_core_alone_does_not_make_rapl_usable),
		T(unreadable_energy_uj_is_forbidden_with_the_udev_fix),
		T(readable_package_is_ok_even_if_another_zone_is_forbidden),
		T(kept_fd_sees_in_place_rewrites),
		T(zone_that_vanishes_mid_run_reads_as_error_then_recovers),
		T(read_rejects_an_index_out_of_range),
		T(malformed_content_at_probe_is_an_error_zone),
		T(counter_across_max_energy_range_gives_the_exact_total),
		T(unreadable_range_keeps_the_zone_and_backwards_counts_as_reset),
		T(min_wrap_time_is_over_counted_readable_zones_only),
		T(probe_and_free_leave_no_fd_open),
		T(domain_names_and_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
