/* rapl_powercap.c — RAPL energy counters through powercap sysfs (see rapl.h).
 *
 * Probe: list <sysfs>/class/powercap, keep the entries that name RAPL zones
 * (intel-rapl:N, intel-rapl:N:M, intel-rapl-mmio:N[:M]), read each zone's
 * `name` and `max_energy_range_uj`, open its `energy_uj` once and read it once
 * to classify the zone (ok / absent / forbidden / error). Then sort, label and
 * decide which zones are summed into a device total so that overlapping
 * domains (package ⊃ core, uncore; the MMIO copy of a package) count once.
 *
 * Reads after the probe are one pread on the kept fd and a strict parse: no
 * path lookups, no allocation, safe to call from the sampler thread.
 *
 * We never change permissions ourselves: a forbidden counter comes back as
 * WM_SRC_FORBIDDEN with the fix for the administrator.
 */
#include "sources/rapl.h"
#include "sources/source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

#define POWERCAP_DIR "class/powercap"
#define PFX_MSR "intel-rapl:"
#define PFX_MMIO "intel-rapl-mmio:"

static const char FIX_ABSENT[] =
	"No RAPL counters: this machine (often a VM) exposes no /sys/class/powercap/intel-rapl. "
	"On bare metal load the driver: `sudo modprobe intel_rapl_msr` (Intel and AMD Zen). "
	"wattmeter will model CPU power instead.";

static const char FIX_NO_ENERGY[] =
	"RAPL zones are listed under /sys/class/powercap but none of the package, dram or psys "
	"zones exposes a readable energy_uj (often a VM or an unsupported CPU). On bare metal "
	"load the driver: `sudo modprobe intel_rapl_msr` (Intel and AMD Zen). "
	"wattmeter will model CPU power instead.";

/* energy_uj is mode 0400 since Linux 5.10 (CVE-2020-8694, "Platypus": the
 * counter's fine resolution leaks secrets through power side channels). The
 * rule runs at every powercap "add" event, so it survives reboots and driver
 * reloads. %p is udev's device path: this string is never a format. */
static const char FIX_FORBIDDEN[] =
	"RAPL energy counters are present but not readable: energy_uj is root-only since "
	"Linux 5.10 (CVE-2020-8694, Platypus). To let a group read them without running as "
	"root, create /etc/udev/rules.d/60-powercap.rules containing:\n"
	"  SUBSYSTEM==\"powercap\", ACTION==\"add\", "
	"RUN+=\"/bin/chgrp powercap /sys%p/energy_uj\", "
	"RUN+=\"/bin/chmod g+r /sys%p/energy_uj\"\n"
	"then run:\n"
	"  sudo groupadd -f powercap && sudo usermod -aG powercap $USER && "
	"sudo udevadm trigger --subsystem-match=powercap --action=add\n"
	"and log in again. Or run wattmeter as root.";

_Static_assert(sizeof FIX_ABSENT <= sizeof(((wm_rapl *)0)->fix), "fix text too long");
_Static_assert(sizeof FIX_NO_ENERGY <= sizeof(((wm_rapl *)0)->fix), "fix text too long");
_Static_assert(sizeof FIX_FORBIDDEN <= sizeof(((wm_rapl *)0)->fix), "fix text too long");

/* Where a zone sits in the powercap hierarchy, parsed from its id. */
typedef struct zone_key {
	int mmio;       /* 1 for intel-rapl-mmio */
	unsigned top;   /* N in intel-rapl:N */
	long sub;       /* M in intel-rapl:N:M, -1 for a top-level zone */
} zone_key;

/* Parses 1..9 decimal digits (no sign, no overflow possible). */
static int parse_small_uint(const char **p, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0;
	int n = 0;
	while (*s >= '0' && *s <= '9') {
		if (++n > 9)
			return -ERANGE;
		v = v * 10u + (unsigned)(*s - '0');
		s++;
	}
	if (n == 0)
		return -EINVAL;
	*out = v;
	*p = s;
	return 0;
}

/* "intel-rapl:0" / "intel-rapl:0:2" / "intel-rapl-mmio:0". Anything else (the
 * control types "intel-rapl" and "intel-rapl-mmio", other powercap drivers
 * such as dtpm, deeper nesting, trailing junk) is -EINVAL: not a RAPL zone. */
static int parse_zone_id(const char *id, zone_key *k)
{
	const char *p;
	unsigned v;
	if (strncmp(id, PFX_MMIO, strlen(PFX_MMIO)) == 0) {
		k->mmio = 1;
		p = id + strlen(PFX_MMIO);
	} else if (strncmp(id, PFX_MSR, strlen(PFX_MSR)) == 0) {
		k->mmio = 0;
		p = id + strlen(PFX_MSR);
	} else {
		return -EINVAL;
	}
	if (parse_small_uint(&p, &k->top))
		return -EINVAL;
	k->sub = -1;
	if (*p == ':') {
		p++;
		if (parse_small_uint(&p, &v))
			return -EINVAL;
		k->sub = (long)v;
	}
	return *p ? -EINVAL : 0;
}

/* Natural numeric order: intel-rapl before intel-rapl-mmio, then by N, a
 * zone before its subzones, subzones by M (so intel-rapl:2 < intel-rapl:10). */
static int cmp_zone(const void *a, const void *b)
{
	const wm_rapl_zone *za = a, *zb = b;
	zone_key ka, kb;
	/* ids were validated when collected */
	(void)parse_zone_id(za->id, &ka);
	(void)parse_zone_id(zb->id, &kb);
	if (ka.mmio != kb.mmio)
		return ka.mmio < kb.mmio ? -1 : 1;
	if (ka.top != kb.top)
		return ka.top < kb.top ? -1 : 1;
	if (ka.sub != kb.sub)
		return ka.sub < kb.sub ? -1 : 1;
	return strcmp(za->id, zb->id);
}

/* ENOENT/ENODEV/EOPNOTSUPP: not on this machine ("no data");
 * EACCES/EPERM: present but forbidden (comes with the fix);
 * anything else (EIO, a malformed value): present but failing. */
static wm_source_state classify_errno(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return WM_SRC_FORBIDDEN;
	case ENOENT:
	case ENODEV:
	case EOPNOTSUPP:
		return WM_SRC_ABSENT;
	default:
		return WM_SRC_ERROR;
	}
}

/* Strict parse of a counter file on a kept fd. An empty file (a zone being
 * torn down, a truncated fixture) is -ENODATA, junk is -EINVAL, a file too big
 * for a u64 counter is -EOVERFLOW: all mean "no sample this time". */
static int read_counter_fd(int fd, uint64_t *out)
{
	char buf[64];
	ssize_t n = wm_pread_all(fd, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ENODATA;
	/* parse into a local: *out is left alone on failure */
	uint64_t v;
	int rc = wm_parse_u64_full(buf, &v);
	if (rc)
		return rc;
	*out = v;
	return 0;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* "package-N" or "package-N-die-M", whole string. */
static int parse_package_name(const char *name, int *pkg, int *die)
{
	const char *p = name;
	unsigned v;
	if (strncmp(p, "package-", 8) != 0)
		return -EINVAL;
	p += 8;
	if (parse_small_uint(&p, &v))
		return -EINVAL;
	*pkg = (int)v;
	*die = -1;
	if (*p == '\0')
		return 0;
	if (strncmp(p, "-die-", 5) != 0)
		return -EINVAL;
	p += 5;
	if (parse_small_uint(&p, &v) || *p)
		return -EINVAL;
	*die = (int)v;
	return 0;
}

static wm_rapl_domain domain_of(const char *name, int *pkg, int *die)
{
	*pkg = -1;
	*die = -1;
	if (parse_package_name(name, pkg, die) == 0)
		return WM_RAPL_PACKAGE;
	*pkg = -1;
	*die = -1;
	if (strcmp(name, "core") == 0)
		return WM_RAPL_CORE;
	if (strcmp(name, "uncore") == 0)
		return WM_RAPL_UNCORE;
	if (strcmp(name, "dram") == 0)
		return WM_RAPL_DRAM;
	if (strcmp(name, "psys") == 0)
		return WM_RAPL_PSYS;
	return WM_RAPL_OTHER;
}

/* Reads one zone's files below the class/powercap dirfd. Never fails: a zone
 * that cannot be read is kept with its state and errno so the caller can say
 * why. z->id is already set; everything else is filled here. */
static void probe_zone(int cdir, wm_rapl_zone *z)
{
	char path[160], buf[64];
	zone_key k;
	ssize_t n;
	int rc;

	(void)parse_zone_id(z->id, &k);
	z->mmio = k.mmio;
	z->top_level = k.sub < 0;
	z->fd = -1;
	z->package = -1;
	z->die = -1;
	z->domain = WM_RAPL_OTHER;

	/* ids are < 64 bytes, so these paths always fit; checked all the same */
	rc = snprintf(path, sizeof path, "%s/name", z->id);
	if (rc < 0 || (size_t)rc >= sizeof path) {
		z->state = WM_SRC_ERROR;
		z->err = ENAMETOOLONG;
		return;
	}
	n = wm_read_file_at(cdir, path, z->name, sizeof z->name);
	if (n < 0 && n != -EOVERFLOW) {
		/* A zone without a name is not one the kernel made: no data. */
		z->name[0] = '\0';
		z->state = classify_errno((int)-n);
		z->err = (int)-n;
		return;
	}
	/* -EOVERFLOW: a name longer than 63 bytes, kept truncated; it is no
	 * domain we know, so it ends up OTHER and uncounted. */
	rstrip(z->name);
	z->domain = domain_of(z->name, &z->package, &z->die);

	/* max_energy_range_uj missing or malformed: keep the zone with range 0,
	 * so a counter going backwards is taken as a reset rather than a wrap
	 * (the total then misses up to one range of energy at that point). */
	z->max_energy_range_uj = 0;
	rc = snprintf(path, sizeof path, "%s/max_energy_range_uj", z->id);
	if (rc > 0 && (size_t)rc < sizeof path) {
		uint64_t range;
		n = wm_read_file_at(cdir, path, buf, sizeof buf);
		if (n > 0 && wm_parse_u64_full(buf, &range) == 0)
			z->max_energy_range_uj = range;
	}

	/* A bound on what the zone can draw: the largest of its power limits
	 * (constraint_N_power_limit_uw: long term, short term, peak) and of
	 * their ceilings (constraint_N_max_power_uw). Both, as firmware may
	 * give a ceiling below the short-term limit the package runs at, or 0. */
	z->max_power_uw = 0;
	for (int ci = 0; ci < 8; ci++) {
		static const char *const files[] = {"max_power_uw", "power_limit_uw"};
		int any = 0;
		for (size_t f = 0; f < 2; f++) {
			rc = snprintf(path, sizeof path, "%s/constraint_%d_%s", z->id, ci, files[f]);
			if (rc < 0 || (size_t)rc >= sizeof path)
				continue;
			uint64_t p;
			n = wm_read_file_at(cdir, path, buf, sizeof buf);
			any |= n != -ENOENT;
			if (n > 0 && wm_parse_u64_full(buf, &p) == 0 && p > z->max_power_uw)
				z->max_power_uw = p;
		}
		if (!any)
			break;
	}

	rc = snprintf(path, sizeof path, "%s/energy_uj", z->id);
	if (rc < 0 || (size_t)rc >= sizeof path) {
		z->state = WM_SRC_ERROR;
		z->err = ENAMETOOLONG;
		return;
	}
	int fd;
	do
		fd = openat(cdir, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		z->err = errno;
		z->state = classify_errno(z->err);
		return;
	}
	/* One read now: some drivers allow the open and refuse the read (EACCES
	 * under an LSM, ENODATA/EIO on a dead domain). */
	uint64_t v;
	rc = read_counter_fd(fd, &v);
	if (rc < 0) {
		close(fd);
		z->err = -rc;
		z->state = classify_errno(z->err);
		return;
	}
	z->fd = fd;
	z->state = WM_SRC_OK;
	z->err = 0;
}

/* Index of the top-level zone a subzone belongs to, or -1. */
static long find_parent(const wm_rapl *r, size_t i)
{
	zone_key ki, kj;
	(void)parse_zone_id(r->zones[i].id, &ki);
	for (size_t j = 0; j < r->n_zones; j++) {
		(void)parse_zone_id(r->zones[j].id, &kj);
		if (kj.sub < 0 && kj.mmio == ki.mmio && kj.top == ki.top)
			return (long)j;
	}
	return -1;
}

/* label = a "/" b, or fallback (an id, always < 64 bytes) if it cannot fit. */
static void set_label2(wm_rapl_zone *z, const char *a, const char *b)
{
	int n = snprintf(z->label, sizeof z->label, "%s/%s", a, b);
	if (n < 0 || (size_t)n >= sizeof z->label) {
		n = snprintf(z->label, sizeof z->label, "%s", z->id);
		if (n < 0 || (size_t)n >= sizeof z->label)
			z->label[0] = '\0';
	}
}

static void set_label1(wm_rapl_zone *z, const char *prefix, const char *s)
{
	int n = snprintf(z->label, sizeof z->label, "%s%s", prefix, s);
	if (n < 0 || (size_t)n >= sizeof z->label) {
		n = snprintf(z->label, sizeof z->label, "%s", z->id);
		if (n < 0 || (size_t)n >= sizeof z->label)
			z->label[0] = '\0';
	}
}

/* Labels, package index of subzones, device and counted (rapl.h's rules). */
static void assign_roles(wm_rapl *r)
{
	for (size_t i = 0; i < r->n_zones; i++) {
		wm_rapl_zone *z = &r->zones[i];
		const char *own = z->name[0] ? z->name : z->id;
		if (!z->top_level) {
			long p = find_parent(r, i);
			if (p >= 0) {
				const wm_rapl_zone *pz = &r->zones[p];
				if (z->package < 0)
					z->package = pz->package;
				set_label2(z, pz->name[0] ? pz->name : pz->id, own);
			} else {
				set_label2(z, z->id, own);
			}
		} else {
			set_label1(z, "", own);
		}
		switch (z->domain) {
		case WM_RAPL_PACKAGE:
			/* a package-named subzone would overlap its parent */
			z->device = z->top_level ? "cpu" : NULL;
			break;
		case WM_RAPL_DRAM:
			z->device = "dram";
			break;
		case WM_RAPL_PSYS:
			z->device = "psys";
			break;
		default:
			z->device = NULL;
			break;
		}
		z->counted = z->device != NULL;
	}

	/* The MMIO interface reports the same package energy as the MSR one:
	 * count the pair once. The MSR zone is preferred; its MMIO twin takes
	 * over only when the MSR one cannot be read and the twin can. */
	for (size_t i = 0; i < r->n_zones; i++) {
		wm_rapl_zone *z = &r->zones[i];
		if (!z->mmio)
			continue;
		wm_rapl_zone *twin = NULL;
		for (size_t j = 0; j < r->n_zones; j++) {
			if (!r->zones[j].mmio && strcmp(r->zones[j].label, z->label) == 0) {
				twin = &r->zones[j];
				break;
			}
		}
		if (!twin)
			continue;   /* MMIO-only: counted under its own name */
		char base[sizeof z->label];
		memcpy(base, z->label, sizeof base);
		set_label1(z, "mmio:", base);
		if (z->counted && twin->counted && twin->state != WM_SRC_OK && z->state == WM_SRC_OK)
			twin->counted = 0;
		else
			z->counted = 0;
	}

	/* Labels are series names: make them unique whatever the firmware says
	 * (e.g. two zones both called "package-0"), by appending the id. */
	for (size_t i = 1; i < r->n_zones; i++) {
		wm_rapl_zone *z = &r->zones[i];
		for (size_t j = 0; j < i; j++) {
			if (strcmp(r->zones[j].label, z->label) == 0) {
				char base[sizeof z->label];
				memcpy(base, z->label, sizeof base);
				int n = snprintf(z->label, sizeof z->label, "%s@%s", base, z->id);
				if (n < 0 || (size_t)n >= sizeof z->label)
					set_label1(z, "", z->id);
				break;
			}
		}
	}
}

/* Appends ", "-separated pieces to a fixed line. Returns -ENOSPC once the
 * line is full (it stays terminated; the detail is informative only). */
static int detail_add(char *d, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int detail_add(char *d, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(d);
	if (len + 1 >= cap)
		return -ENOSPC;
	if (len) {
		int n = snprintf(d + len, cap - len, ", ");
		if (n < 0 || (size_t)n >= cap - len) {
			d[len] = '\0';
			return -ENOSPC;
		}
		len += (size_t)n;
	}
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(d + len, cap - len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - len)
		return -ENOSPC;
	return 0;
}

static void set_fix(wm_rapl *r, const char *text)
{
	size_t n = strlen(text);
	if (n >= sizeof r->fix)
		n = sizeof r->fix - 1;   /* cannot happen: static asserts above */
	memcpy(r->fix, text, n);
	r->fix[n] = '\0';
}

static void summarize(wm_rapl *r)
{
	size_t pkgs = 0, dies = 0, drams = 0, psys = 0, dups = 0;
	size_t forbidden = 0, absent = 0, failing = 0, no_range = 0, counted_ok = 0;
	int pkg_seen[64] = {0};   /* distinct package indices (< 64; larger counted as new) */

	r->detail[0] = '\0';
	r->fix[0] = '\0';
	for (size_t i = 0; i < r->n_zones; i++) {
		const wm_rapl_zone *z = &r->zones[i];
		if (z->state == WM_SRC_FORBIDDEN)
			forbidden++;
		else if (z->state == WM_SRC_ABSENT)
			absent++;
		else if (z->state != WM_SRC_OK)
			failing++;
		if (z->mmio && !z->counted && z->device && strncmp(z->label, "mmio:", 5) == 0)
			dups++;
		if (!z->counted || z->state != WM_SRC_OK)
			continue;
		counted_ok++;
		if (z->max_energy_range_uj == 0)
			no_range++;
		if (z->domain == WM_RAPL_PACKAGE) {
			if (z->die >= 0)
				dies++;
			if (z->package >= 0 && z->package < 64) {
				if (!pkg_seen[z->package]) {
					pkg_seen[z->package] = 1;
					pkgs++;
				}
			} else {
				pkgs++;
			}
		} else if (z->domain == WM_RAPL_DRAM) {
			drams++;
		} else if (z->domain == WM_RAPL_PSYS) {
			psys++;
		}
	}

	if (r->n_zones == 0) {
		r->state = WM_SRC_ABSENT;
		(void)detail_add(r->detail, sizeof r->detail, "no RAPL zones under class/powercap");
		set_fix(r, FIX_ABSENT);
		return;
	}

	char *d = r->detail;
	size_t cap = sizeof r->detail;
	if (counted_ok == 0)
		(void)detail_add(d, cap, "%zu RAPL zone%s, none of package/dram/psys readable",
				 r->n_zones, r->n_zones == 1 ? "" : "s");
	if (pkgs) {
		if (dies)
			(void)detail_add(d, cap, "%zu package%s (%zu dies)", pkgs, pkgs == 1 ? "" : "s", dies);
		else
			(void)detail_add(d, cap, "%zu package%s", pkgs, pkgs == 1 ? "" : "s");
	}
	if (drams)
		(void)detail_add(d, cap, "%zu dram zone%s", drams, drams == 1 ? "" : "s");
	if (psys == 1)
		(void)detail_add(d, cap, "psys");
	else if (psys > 1)
		(void)detail_add(d, cap, "%zu psys zones", psys);
	if (dups == 1)
		(void)detail_add(d, cap, "mmio duplicate skipped");
	else if (dups > 1)
		(void)detail_add(d, cap, "%zu mmio duplicates skipped", dups);
	if (forbidden)
		(void)detail_add(d, cap, "%zu zone%s permission denied", forbidden, forbidden == 1 ? "" : "s");
	if (absent)
		(void)detail_add(d, cap, "%zu zone%s without energy_uj", absent, absent == 1 ? "" : "s");
	if (failing)
		(void)detail_add(d, cap, "%zu zone%s failing", failing, failing == 1 ? "" : "s");
	if (no_range)
		(void)detail_add(d, cap, "max_energy_range_uj unreadable on %zu zone%s (wraps count as resets)",
				 no_range, no_range == 1 ? "" : "s");

	if (counted_ok) {
		r->state = WM_SRC_OK;
	} else if (forbidden) {
		r->state = WM_SRC_FORBIDDEN;
		set_fix(r, FIX_FORBIDDEN);
	} else if (failing) {
		r->state = WM_SRC_ERROR;
	} else {
		r->state = WM_SRC_ABSENT;
		set_fix(r, FIX_NO_ENERGY);
	}
}

/* Lists class/powercap and appends one zone per RAPL entry (id only). */
static int collect_ids(int cdir, wm_rapl *r, char *err, size_t errlen)
{
	size_t cap = 0;
	int dfd = fcntl(cdir, F_DUPFD_CLOEXEC, 0);   /* fdopendir owns the dup */
	if (dfd < 0)
		return wm_err(err, errlen, -errno, "rapl: dup: %s", strerror(errno));
	DIR *dir = fdopendir(dfd);
	if (!dir) {
		int e = errno;
		close(dfd);
		return wm_err(err, errlen, -e, "rapl: fdopendir %s: %s", POWERCAP_DIR, strerror(e));
	}
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dir);
		if (!de) {
			if (errno) {
				rc = wm_err(err, errlen, -errno, "rapl: readdir %s: %s", POWERCAP_DIR,
					    strerror(errno));
			}
			break;
		}
		zone_key k;
		if (parse_zone_id(de->d_name, &k) < 0)
			continue;   /* ".", "..", control types, other powercap drivers */
		size_t idlen = strlen(de->d_name);
		if (idlen >= sizeof r->zones[0].id)
			continue;   /* cannot happen: parse bounds each number to 9 digits */
		if (r->n_zones == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			if (ncap > SIZE_MAX / sizeof *r->zones) {
				rc = wm_err(err, errlen, -ENOMEM, "rapl: too many zones");
				break;
			}
			wm_rapl_zone *nz = realloc(r->zones, ncap * sizeof *nz);
			if (!nz) {
				rc = wm_err(err, errlen, -ENOMEM, "rapl: out of memory");
				break;
			}
			r->zones = nz;
			cap = ncap;
		}
		wm_rapl_zone *z = &r->zones[r->n_zones++];
		memset(z, 0, sizeof *z);
		z->fd = -1;
		memcpy(z->id, de->d_name, idlen + 1);
	}
	closedir(dir);
	return rc;
}

int wm_rapl_probe(int sysfs_dirfd, wm_rapl **out, char *err, size_t errlen)
{
	*out = NULL;
	wm_rapl *r = calloc(1, sizeof *r);
	if (!r)
		return wm_err(err, errlen, -ENOMEM, "rapl: out of memory");

	int cdir;
	do
		cdir = openat(sysfs_dirfd, POWERCAP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (cdir < 0 && errno == EINTR);
	if (cdir < 0) {
		int e = errno;
		if (e == EACCES || e == EPERM) {
			/* cannot even list the zones: a hardened or odd /sys mount */
			r->state = WM_SRC_FORBIDDEN;
			(void)detail_add(r->detail, sizeof r->detail, "class/powercap: %s", strerror(e));
			set_fix(r, FIX_FORBIDDEN);
		} else {
			r->state = WM_SRC_ABSENT;
			(void)detail_add(r->detail, sizeof r->detail, "no class/powercap (%s)", strerror(e));
			set_fix(r, FIX_ABSENT);
		}
		*out = r;
		return 0;
	}

	int rc = collect_ids(cdir, r, err, errlen);
	if (rc < 0) {
		close(cdir);
		wm_rapl_free(r);
		return rc;
	}
	for (size_t i = 0; i < r->n_zones; i++)
		probe_zone(cdir, &r->zones[i]);
	close(cdir);

	if (r->n_zones)
		qsort(r->zones, r->n_zones, sizeof *r->zones, cmp_zone);
	assign_roles(r);
	summarize(r);
	*out = r;
	return 0;
}

int wm_rapl_read_uj(const wm_rapl *r, size_t i, uint64_t *energy_uj)
{
	if (!r || i >= r->n_zones || !energy_uj)
		return -EINVAL;
	const wm_rapl_zone *z = &r->zones[i];
	if (z->fd < 0)
		return -(z->err ? z->err : EBADF);
	return read_counter_fd(z->fd, energy_uj);
}

double wm_rapl_zone_bound_w(const wm_rapl_zone *z, const char **basis)
{
	if (z->max_power_uw > 0) {
		*basis = "2 x largest power limit";
		return WM_RAPL_CONSTRAINT_FACTOR * (double)z->max_power_uw / 1e6;
	}
	switch (z->domain) {
	case WM_RAPL_DRAM:
		*basis = "ceiling for DRAM";
		return WM_RAPL_CEILING_DRAM_W;
	case WM_RAPL_PSYS:
		*basis = "ceiling for the platform";
		return WM_RAPL_CEILING_PSYS_W;
	case WM_RAPL_PACKAGE:
	case WM_RAPL_CORE:
	case WM_RAPL_UNCORE:
	case WM_RAPL_OTHER:
		break;
	}
	*basis = "ceiling for a CPU package";
	return WM_RAPL_CEILING_PACKAGE_W;
}

/* Why a read failed, for the recording's gap causes (static strings). */
static const char *read_error_name(int e)
{
	switch (e) {
	case EIO: return "EIO";
	case ENODEV: return "ENODEV (zone vanished)";
	case ENOENT: return "ENOENT (zone vanished)";
	case EACCES:
	case EPERM: return "permission denied";
	case ENODATA: return "empty value";
	case EINVAL:
	case ERANGE:
	case EOVERFLOW: return "malformed value";
	case EAGAIN:
	case EINTR: return "interrupted";
	default: return "read error";
	}
}

double wm_rapl_min_wrap_s(const wm_rapl *r, double max_w)
{
	if (!r || !(max_w > 0) || !isfinite(max_w))
		return 0;
	double best = 0;
	for (size_t i = 0; i < r->n_zones; i++) {
		const wm_rapl_zone *z = &r->zones[i];
		if (!z->counted || z->state != WM_SRC_OK || z->max_energy_range_uj == 0)
			continue;
		/* uJ -> J, then J / W = s at a sustained max_w */
		double s = (double)z->max_energy_range_uj / 1e6 / max_w;
		if (best == 0 || s < best)
			best = s;
	}
	return best;
}

const char *wm_rapl_domain_name(wm_rapl_domain d)
{
	switch (d) {
	case WM_RAPL_PACKAGE: return "package";
	case WM_RAPL_CORE: return "core";
	case WM_RAPL_UNCORE: return "uncore";
	case WM_RAPL_DRAM: return "dram";
	case WM_RAPL_PSYS: return "psys";
	case WM_RAPL_OTHER: return "other";
	}
	return "?";
}

void wm_rapl_free(wm_rapl *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_zones; i++) {
		if (r->zones[i].fd >= 0)
			close(r->zones[i].fd);
	}
	free(r->zones);
	free(r);
}

/* ---- the source interface (source.h) ------------------------------------------
 * Devices: cpu (package zones, attributed by CPU ticks), dram (by memory
 * share), psys (not attributed: the platform as a whole), each only where a
 * counted zone is readable. Channels: every zone, counted or not, so
 * core/uncore and mmio duplicates are recorded beside the totals. */

/* The bound applies over at least this long: a read sees the counter as
 * the hardware last updated it (~1 ms), but a loaded machine reads late and
 * a fixture's writer runs late too, so a step may hold a few periods' worth.
 * At 2 kW that still leaves 500 J: a 10 kJ jump or a 262 kJ "wrap" stand out. */
#define RAPL_BOUND_WINDOW_S 0.25


static int src_probe(wm_source *s, const wm_source_ctx *ctx, char *err, size_t errlen)
{
	wm_rapl *r = NULL;
	int rc = wm_rapl_probe(ctx->sysfs_dirfd, &r, err, errlen);
	if (rc < 0)
		return rc;
	s->priv = r;
	s->state = r->state;
	(void)snprintf(s->detail, sizeof s->detail, "%s", r->detail);
	(void)snprintf(s->fix, sizeof s->fix, "%s", r->state == WM_SRC_OK ? "" : r->fix);

	static const struct { const char *name; wm_attr_rule rule; } devs[] = {
		{"cpu", WM_ATTR_CPU_TICKS}, {"dram", WM_ATTR_MEMORY}, {"psys", WM_ATTR_NONE},
	};
	int dev_of[WM_ARRAY_LEN(devs)];
	for (size_t d = 0; d < WM_ARRAY_LEN(devs); d++) {
		dev_of[d] = -1;
		for (size_t i = 0; i < r->n_zones && dev_of[d] < 0; i++) {
			const wm_rapl_zone *z = &r->zones[i];
			if (z->counted && z->fd >= 0 && z->device && strcmp(z->device, devs[d].name) == 0) {
				wm_device_decl *dd = wm_source_add_device(s, devs[d].name, devs[d].name);
				if (!dd)
					return wm_err(err, errlen, -ENOMEM, "rapl: out of memory");
				dd->rule = devs[d].rule;
				(void)snprintf(dd->source_detail, sizeof dd->source_detail, "energy-counter");
				dev_of[d] = (int)(s->n_devices - 1);
			}
		}
	}
	for (size_t i = 0; i < r->n_zones; i++) {
		const wm_rapl_zone *z = &r->zones[i];
		int dev = -1;
		for (size_t d = 0; d < WM_ARRAY_LEN(devs) && z->counted && z->device; d++)
			if (strcmp(z->device, devs[d].name) == 0)
				dev = dev_of[d];
		wm_channel *c = wm_source_add_channel(s, z->label, dev);
		if (!c)
			return wm_err(err, errlen, -ENOMEM, "rapl: out of memory");
		c->range = z->max_energy_range_uj;
		c->joules_per_unit = 1e-6;
		c->readable = z->fd >= 0;
		const char *basis = "";
		c->max_power_w = wm_rapl_zone_bound_w(z, &basis);
		c->bound_window_s = RAPL_BOUND_WINDOW_S;
		(void)snprintf(c->bound_basis, sizeof c->bound_basis, "%s", basis);
	}
	return 0;
}

static void src_read(wm_source *s, const wm_tick *tick, uint64_t *raw, unsigned char *ok, double *gauges)
{
	(void)tick;
	(void)gauges;
	const wm_rapl *r = s->priv;
	/* Channels are the zones, in order. A zone that cannot be read now
	 * (vanished, malformed) is a gap; its counter resumes from the last
	 * raw value when it comes back, so no energy is lost across the gap. */
	for (size_t i = 0; i < r->n_zones; i++) {
		/* Every zone, counted or not, every tick: the exporter serves
		 * per-zone counters, and AIPowerMeter's core power, from every
		 * sample. (Reading core/uncore only on process ticks saves a pread
		 * per tick, but made their exported power spiky: not done.) */
		int rc = r->zones[i].fd >= 0 ? read_counter_fd(r->zones[i].fd, &raw[i]) : -EBADF;
		ok[i] = rc == 0;
		if (i < s->n_channels)
			s->channels[i].read_error = rc ? read_error_name(-rc) : NULL;
	}
}

static int src_describe_json(const wm_source *s, wm_buf *b)
{
	const wm_rapl *r = s->priv;
	wm_buf_puts(b, ",\"zones\":[");
	for (size_t i = 0; r && i < r->n_zones; i++) {
		const wm_rapl_zone *z = &r->zones[i];
		wm_buf_puts(b, i ? ",{\"label\":" : "{\"label\":");
		wm_buf_json_str(b, z->label);
		wm_buf_puts(b, ",\"id\":");
		wm_buf_json_str(b, z->id);
		wm_buf_puts(b, ",\"name\":");
		wm_buf_json_str(b, z->name);
		wm_buf_printf(b,
			      ",\"domain\":\"%s\",\"device\":%s%s%s,\"counted\":%s,\"mmio\":%s,"
			      "\"max_energy_range_uj\":%llu,\"state\":\"%s\"",
			      wm_rapl_domain_name(z->domain), z->device ? "\"" : "", z->device ? z->device : "null",
			      z->device ? "\"" : "", z->counted ? "true" : "false", z->mmio ? "true" : "false",
			      (unsigned long long)z->max_energy_range_uj, wm_source_state_name(z->state));
		const char *basis = "";
		double bw = wm_rapl_zone_bound_w(z, &basis);
		wm_buf_puts(b, ",\"max_power_w\":");
		wm_buf_json_fixed(b, bw, 3);
		wm_buf_puts(b, ",\"max_power_basis\":");
		wm_buf_json_str(b, basis);
		wm_buf_puts(b, "}");
	}
	wm_buf_puts(b, "]");
	return wm_buf_error(b);
}

static int src_describe_text(const wm_source *s, wm_buf *b)
{
	const wm_rapl *r = s->priv;
	if (!r || !r->n_zones)
		return wm_buf_error(b);
	/* DEVICE is as wide as its longest value, "(in package)" */
	wm_buf_printf(b, "\nRAPL zones:\n  %-22s %-20s %-8s %-18s %-12s %s\n", "LABEL", "ID", "DOMAIN", "STATE",
		      "DEVICE", "WRAPS AT");
	for (size_t i = 0; i < r->n_zones; i++) {
		const wm_rapl_zone *z = &r->zones[i];
		const char *dev = z->counted && z->device ? z->device : z->mmio ? "(duplicate)" : "(in package)";
		wm_buf_printf(b, "  %-22s %-20s %-8s %-18s %-12s %.1f J\n", z->label, z->id,
			      wm_rapl_domain_name(z->domain), wm_source_state_name(z->state), dev,
			      (double)z->max_energy_range_uj / 1e6);
	}
	return wm_buf_error(b);
}

static void src_check_period(const wm_source *s, double period_s, char *warn, size_t warnlen)
{
	const wm_rapl *r = s->priv;
	/* The shortest wrap at each zone's own bound: a read later than that is
	 * a gap whose energy is missing (docs/recording.md "Gaps"). */
	double wrap_s = 0, bound_w = 0;
	for (size_t i = 0; r && r->state == WM_SRC_OK && i < r->n_zones; i++) {
		const wm_rapl_zone *z = &r->zones[i];
		if (!z->counted || z->state != WM_SRC_OK || z->max_energy_range_uj == 0)
			continue;
		const char *basis;
		double w = wm_rapl_zone_bound_w(z, &basis);
		double t = (double)z->max_energy_range_uj / 1e6 / w;
		if (wrap_s == 0 || t < wrap_s) {
			wrap_s = t;
			bound_w = w;
		}
	}
	if (wrap_s > 0 && period_s > wrap_s / 2)
		(void)snprintf(warn, warnlen,
			       "period %.3g s is not well inside the RAPL wrap time (%.3g s at %.0f W): "
			       "a sample later than that is a gap whose energy is missing; use a shorter --period",
			       period_s, wrap_s, bound_w);
}

static void src_close(wm_source *s)
{
	wm_rapl_free(s->priv);
	s->priv = NULL;
}

const wm_source_ops wm_source_rapl_powercap = {
	.name = "rapl-powercap",
	.probe = src_probe,
	.read = src_read,
	.describe_json = src_describe_json,
	.describe_text = src_describe_text,
	.check_period = src_check_period,
	.close = src_close,
};
