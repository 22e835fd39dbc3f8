/* include.h — processes outside the command's tree, added to the measured
 * set for the run (issue 18: `run --include-pid/--include-name/
 * --include-cgroup/--include-unit`, Python include_*=).
 *
 * An included process is a root of the tree with wm_proc.included set; its
 * descendants inherit the label. They are attributed like any measured
 * process (CPU ticks, memory, the GPU's SM share) and every output shows
 * them apart, labelled "included", and in the total.
 *
 * Polled on the process tier, under the meter's lock, before the scan:
 *   --include-cgroup/--include-unit: cgroup.procs is read again (one read);
 *   --include-name: the pids listed in procfs that were not there at the
 *     last poll have their command line read and matched (POSIX extended
 *     regex, NULs as spaces); a pid is checked once while it stays listed.
 * Never included: this process and its own children (the wattmeter CLI,
 * whose command line holds the pattern, and the command before it execs). */
#ifndef WM_METER_INCLUDE_H
#define WM_METER_INCLUDE_H

#include <stddef.h>

#include "base/util.h"
#include "procs/proctree.h"
#include "wattmeter.h"

typedef struct wm_include wm_include;

/* NULL in *out when the config includes nothing. Checks the regex, finds
 * the unit's cgroup and opens the cgroup: -EINVAL/-ENOENT with a message
 * naming the fix. */
int wm_include_new(const wm_meter_config *c, int procfs_dirfd, wm_include **out, char *err, size_t errlen);
void wm_include_free(wm_include *inc);

/* Adds the included processes found now (first call: --include-pid ones
 * too, -ESRCH with err when one is not running). Marks descendants of
 * included processes. Returns how many roots it added, or -errno. */
int wm_include_poll(wm_include *inc, wm_proctree *t, char *err, size_t errlen);

/* Marks every unmarked process whose parent is marked (after a scan). */
void wm_include_propagate(wm_proctree *t);

/* meta.json "included": {"pids":[...],"name":...,"cgroup":...,"unit":...}. */
void wm_include_json(const wm_include *inc, wm_buf *b);

#endif
