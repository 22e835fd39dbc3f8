/* rapl.h — CPU, DRAM and platform energy from RAPL through powercap sysfs.
 *
 * Discovery walks <sysfs-root>/class/powercap, where the kernel lays out one
 * entry per zone as a symlink into devices/virtual/powercap/<type>/<zone>:
 *   intel-rapl:0       name "package-0" (or "package-0-die-1" on multi-die parts)
 *   intel-rapl:0:0     subzone of package 0: "core", "uncore" or "dram"
 *   intel-rapl:1       "psys" on client parts (platform: covers more than the package)
 *   intel-rapl-mmio:0  the same package again through MMIO: counted once
 * AMD Zen machines expose their package under the same intel-rapl names.
 * The control-type entries themselves ("intel-rapl", "intel-rapl-mmio") have
 * no energy_uj and are skipped.
 *
 * Each zone's energy_uj is opened once and re-read with pread. Units are never
 * hard-coded: the counter is in microjoules and wraps at max_energy_range_uj.
 *
 * Overlap rules (which zones are summed into a device total, `counted`):
 *   cpu  = sum of top-level package zones (package-N and package-N-die-M);
 *   dram = sum of dram zones (sub- or top-level);
 *   psys = sum of psys zones;
 *   core and uncore are recorded per zone but never added: package holds them;
 *   an mmio zone whose name duplicates an intel-rapl zone is not counted.
 */
#ifndef WM_SENSORS_RAPL_H
#define WM_SENSORS_RAPL_H

#include <stddef.h>
#include <stdint.h>

#include "sources/source_state.h"

typedef enum wm_rapl_domain {
	WM_RAPL_PACKAGE = 0,
	WM_RAPL_CORE,
	WM_RAPL_UNCORE,
	WM_RAPL_DRAM,
	WM_RAPL_PSYS,
	WM_RAPL_OTHER,
} wm_rapl_domain;

typedef struct wm_rapl_zone {
	char id[64];       /* directory name, e.g. "intel-rapl:0:1" */
	char name[64];     /* content of `name`, e.g. "package-0", "dram" */
	char label[128];   /* unique series label: "package-0", "package-0/dram",
	                      "psys", "mmio:package-0" for an uncounted duplicate */
	wm_rapl_domain domain;
	int package;       /* package index (from the name or the parent zone), -1 unknown */
	int die;           /* die index for package-N-die-M, else -1 */
	int top_level;     /* 1 for intel-rapl:N, 0 for subzones */
	int mmio;          /* 1 if from intel-rapl-mmio */
	int counted;       /* 1 if summed into its device total (see overlap rules) */
	const char *device;/* "cpu", "dram", "psys" or NULL (core, uncore, other) */
	uint64_t max_energy_range_uj; /* 0 if unreadable: wraps then count as resets */
	uint64_t max_power_uw; /* largest constraint_N_max_power_uw / _power_limit_uw
	                          (the zone's power limits), 0 if none is readable */
	int fd;            /* energy_uj, O_RDONLY|O_CLOEXEC, -1 when not readable */
	wm_source_state state;
	int err;           /* positive errno of the probe failure, 0 if ok */
} wm_rapl_zone;

typedef struct wm_rapl {
	wm_rapl_zone *zones;
	size_t n_zones;
	/* Overall state: OK if at least one counted zone is readable; FORBIDDEN if
	 * zones exist but energy_uj cannot be opened (EACCES/EPERM); ABSENT if
	 * there is no powercap class or no RAPL zone. */
	wm_source_state state;
	char detail[256];  /* one line saying what was found */
	char fix[1024];    /* for FORBIDDEN/ABSENT: what the user can do ("" if ok) */
} wm_rapl;

/* Probes the tree under sysfs_dirfd (a root opened on e.g. "/sys").
 * Returns 0 and a new wm_rapl (possibly with zero zones and state ABSENT or
 * FORBIDDEN: not an error), or -errno (ENOMEM) with a message. */
int wm_rapl_probe(int sysfs_dirfd, wm_rapl **out, char *err, size_t errlen);

/* Reads zone i's raw counter in microjoules. Returns 0, or -errno when the
 * zone cannot be read right now (the device vanished, an empty or malformed
 * file): the caller records a gap and tries again next time. */
int wm_rapl_read_uj(const wm_rapl *r, size_t i, uint64_t *energy_uj);

/* Plausibility bound of zone i (W) and where it comes from: twice the zone's
 * largest power limit or limit ceiling (power may exceed a limit briefly), else
 * a ceiling per kind (WM_RAPL_CEILING_*_W). */
#define WM_RAPL_CEILING_PACKAGE_W 2000.0  /* a CPU package, core or uncore */
#define WM_RAPL_CEILING_DRAM_W 1000.0     /* the DRAM of one socket */
#define WM_RAPL_CEILING_PSYS_W 5000.0     /* the platform */
#define WM_RAPL_CONSTRAINT_FACTOR 2.0
double wm_rapl_zone_bound_w(const wm_rapl_zone *z, const char **basis);

/* Worst-case seconds before the counted zone with the smallest range wraps at
 * max_w watts (used to check that the sampling period is well inside it). */
double wm_rapl_min_wrap_s(const wm_rapl *r, double max_w);

const char *wm_rapl_domain_name(wm_rapl_domain d); /* "package", "core", ... */

void wm_rapl_free(wm_rapl *r);   /* closes fds; NULL harmless */

#endif
