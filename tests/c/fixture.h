/* fixture.h — build throw-away file trees for tests (sysfs, procfs, recordings).
 * Every helper fails the test (cmocka fail_msg) on error, so tests stay short. */
#ifndef WM_TEST_FIXTURE_H
#define WM_TEST_FIXTURE_H

#include <stddef.h>

/* Creates a fresh directory under $TMPDIR (or /tmp), mode 0755; the path is
 * written to out (>= 4096 bytes). */
void fx_mkdtemp(char *out, size_t outlen);
/* Writes content to root/relpath, creating parent directories. */
void fx_write(const char *root, const char *relpath, const char *content);
void fx_writef(const char *root, const char *relpath, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void fx_mkdir(const char *root, const char *relpath);
/* Creates the symlink root/linkrel pointing at target (taken as is). */
void fx_symlink(const char *root, const char *linkrel, const char *target);
void fx_chmod(const char *root, const char *relpath, unsigned mode);
void fx_unlink(const char *root, const char *relpath);
/* rm -rf root (no shell). */
void fx_rmtree(const char *root);
/* Opens root as a directory fd (O_PATH|O_DIRECTORY|O_CLOEXEC). */
int fx_open_root(const char *root);

/* Adds a RAPL zone the way the kernel lays it out:
 * devices/virtual/powercap/<type>/<id>/{name,energy_uj,max_energy_range_uj}
 * and class/powercap/<id> -> ../../devices/virtual/powercap/<type>/<id>.
 * For a subzone (id with two colons) the directory nests inside its parent's.
 * energy_uj/max_range_uj < 0 leaves the file out. */
void fx_rapl_zone(const char *sysroot, const char *type, const char *id, const char *name,
		  long long energy_uj, long long max_range_uj);
/* Writes a zone's constraint_0_max_power_uw (its power limit's ceiling):
 * the meter takes twice that as the most the zone can draw, so a counter
 * step above it is a glitch and a read later than range / bound a stall. */
void fx_rapl_limit(const char *sysroot, const char *type, const char *id, unsigned long long max_power_uw);
/* Rewrites a zone's energy_uj in place (same inode, as sysfs updates it). */
void fx_rapl_set(const char *sysroot, const char *id, unsigned long long energy_uj);

#endif
