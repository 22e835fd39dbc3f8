/* fixture.c — see fixture.h. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* FX_FAIL() longjmps out of the test; abort() tells the compiler it does not return. */
#define FX_FAIL(...) do { fail_msg(__VA_ARGS__); abort(); } while (0)

static void join(char *out, size_t outlen, const char *root, const char *rel)
{
	int n = snprintf(out, outlen, "%s/%s", root, rel);
	if (n < 0 || (size_t)n >= outlen)
		FX_FAIL("fixture path too long: %s/%s", root, rel);
}

void fx_mkdtemp(char *out, size_t outlen)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(out, outlen, "%s/wmtest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= outlen)
		FX_FAIL("TMPDIR too long");
	if (!mkdtemp(out))
		FX_FAIL("mkdtemp: %s", strerror(errno));
	chmod(out, 0755);
}

static void mkdirs(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);
	if (n >= sizeof tmp)
		FX_FAIL("path too long");
	memcpy(tmp, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] == '/' || tmp[i] == '\0') {
			char c = tmp[i];
			tmp[i] = '\0';
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				FX_FAIL("mkdir %s: %s", tmp, strerror(errno));
			tmp[i] = c;
		}
	}
}

void fx_mkdir(const char *root, const char *relpath)
{
	char p[4096];
	join(p, sizeof p, root, relpath);
	mkdirs(p);
}

void fx_write(const char *root, const char *relpath, const char *content)
{
	char p[4096];
	join(p, sizeof p, root, relpath);
	char *slash = strrchr(p, '/');
	if (slash) {
		*slash = '\0';
		mkdirs(p);
		*slash = '/';
	}
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		FX_FAIL("open %s: %s", p, strerror(errno));
	size_t len = strlen(content);
	if (write(fd, content, len) != (ssize_t)len)
		FX_FAIL("write %s", p);
	close(fd);
}

void fx_writef(const char *root, const char *relpath, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		FX_FAIL("vasprintf");
	fx_write(root, relpath, s);
	free(s);
}

void fx_symlink(const char *root, const char *linkrel, const char *target)
{
	char p[4096];
	join(p, sizeof p, root, linkrel);
	char *slash = strrchr(p, '/');
	if (slash) {
		*slash = '\0';
		mkdirs(p);
		*slash = '/';
	}
	if (symlink(target, p) < 0)
		FX_FAIL("symlink %s -> %s: %s", p, target, strerror(errno));
}

void fx_chmod(const char *root, const char *relpath, unsigned mode)
{
	char p[4096];
	join(p, sizeof p, root, relpath);
	if (chmod(p, mode) < 0)
		FX_FAIL("chmod %s: %s", p, strerror(errno));
}

void fx_unlink(const char *root, const char *relpath)
{
	char p[4096];
	join(p, sizeof p, root, relpath);
	if (unlink(p) < 0)
		FX_FAIL("unlink %s: %s", p, strerror(errno));
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

void fx_rmtree(const char *root)
{
	if (root && *root)
		(void)nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int fx_open_root(const char *root)
{
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		FX_FAIL("open root %s: %s", root, strerror(errno));
	return fd;
}

/* "intel-rapl:0:1" -> parent "intel-rapl:0" (returns 1), top level returns 0 */
static int parent_id(const char *id, char *out, size_t outlen)
{
	const char *first = strchr(id, ':');
	const char *last = strrchr(id, ':');
	if (!first || first == last)
		return 0;
	size_t n = (size_t)(last - id);
	if (n >= outlen)
		FX_FAIL("id too long");
	memcpy(out, id, n);
	out[n] = '\0';
	return 1;
}

static void zone_dir(const char *type, const char *id, char *out, size_t outlen)
{
	char parent[128];
	int n;
	if (parent_id(id, parent, sizeof parent))
		n = snprintf(out, outlen, "devices/virtual/powercap/%s/%s/%s", type, parent, id);
	else
		n = snprintf(out, outlen, "devices/virtual/powercap/%s/%s", type, id);
	if (n < 0 || (size_t)n >= outlen)
		FX_FAIL("zone path too long");
}

void fx_rapl_zone(const char *sysroot, const char *type, const char *id, const char *name,
		  long long energy_uj, long long max_range_uj)
{
	char dir[1024], rel[1200], target[1400];
	zone_dir(type, id, dir, sizeof dir);
	fx_mkdir(sysroot, dir);
	snprintf(rel, sizeof rel, "%s/name", dir);
	fx_writef(sysroot, rel, "%s\n", name);
	if (energy_uj >= 0) {
		snprintf(rel, sizeof rel, "%s/energy_uj", dir);
		/* zero-padded to a fixed width so in-place rewrites never leave a tail */
		fx_writef(sysroot, rel, "%020lld\n", energy_uj);
	}
	if (max_range_uj >= 0) {
		snprintf(rel, sizeof rel, "%s/max_energy_range_uj", dir);
		fx_writef(sysroot, rel, "%lld\n", max_range_uj);
	}
	/* the control type directory itself, as the kernel has it */
	snprintf(rel, sizeof rel, "devices/virtual/powercap/%s/enabled", type);
	fx_write(sysroot, rel, "1\n");
	snprintf(rel, sizeof rel, "class/powercap/%s", id);
	snprintf(target, sizeof target, "../../%s", dir);
	fx_symlink(sysroot, rel, target);
	snprintf(rel, sizeof rel, "class/powercap/%s", type);
	char ctl[8192];
	snprintf(ctl, sizeof ctl, "%s/%s", sysroot, rel);
	struct stat st;
	if (lstat(ctl, &st) < 0) {
		snprintf(target, sizeof target, "../../devices/virtual/powercap/%s", type);
		fx_symlink(sysroot, rel, target);
	}
}

void fx_rapl_limit(const char *sysroot, const char *type, const char *id, unsigned long long max_power_uw)
{
	char dir[1024], rel[1200];
	zone_dir(type, id, dir, sizeof dir);
	snprintf(rel, sizeof rel, "%s/constraint_0_max_power_uw", dir);
	fx_writef(sysroot, rel, "%llu\n", max_power_uw);
}

void fx_rapl_set(const char *sysroot, const char *id, unsigned long long energy_uj)
{
	char p[4096];
	int n = snprintf(p, sizeof p, "%s/class/powercap/%s/energy_uj", sysroot, id);
	if (n < 0 || (size_t)n >= sizeof p)
		FX_FAIL("path too long");
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		FX_FAIL("open %s: %s", p, strerror(errno));
	char s[32];
	int len = snprintf(s, sizeof s, "%020llu\n", energy_uj);
	if (pwrite(fd, s, (size_t)len, 0) != len)
		FX_FAIL("pwrite %s", p);
	close(fd);
}
