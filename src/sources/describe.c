/* sensors_describe.c — the table `wattmeter sensors` prints: every source,
 * its state, and for each problem the fix. Probes exactly as the meter does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procs/procfs.h"
#include "base/root.h"
#include "sources/rapl.h"
#include "base/util.h"
#include "wattmeter.h"

struct row {
	const char *name;
	const char *state;
	char detail[512];
	char fix[1024];
};

static int rows_text(wm_buf *b, const struct row *rows, size_t n, const wm_rapl *r)
{
	int rc = wm_buf_printf(b, "%-15s %-18s %s\n", "SOURCE", "STATE", "DETAIL");
	for (size_t i = 0; i < n && !rc; i++) {
		rc = wm_buf_printf(b, "%-15s %-18s %s\n", rows[i].name, rows[i].state, rows[i].detail);
		if (!rc && rows[i].fix[0])
			rc = wm_buf_printf(b, "  fix: %s\n", rows[i].fix);
	}
	if (!rc && r && r->n_zones) {
		rc = wm_buf_printf(b, "\nRAPL zones:\n  %-22s %-20s %-8s %-18s %-10s %s\n", "LABEL", "ID", "DOMAIN",
				   "STATE", "DEVICE", "WRAPS AT");
		for (size_t i = 0; i < r->n_zones && !rc; i++) {
			const wm_rapl_zone *z = &r->zones[i];
			char dev[32];
			if (z->counted && z->device)
				(void)snprintf(dev, sizeof dev, "%s", z->device);
			else
				(void)snprintf(dev, sizeof dev, "%s",
					       z->mmio ? "(duplicate)" : "(in package)");
			rc = wm_buf_printf(b, "  %-22s %-20s %-8s %-18s %-10s %.1f J\n", z->label, z->id,
					   wm_rapl_domain_name(z->domain), wm_source_state_name(z->state), dev,
					   (double)z->max_energy_range_uj / 1e6);
		}
	}
	return rc;
}

static int rows_json(wm_buf *b, const struct row *rows, size_t n, const wm_rapl *r)
{
	int rc = wm_buf_puts(b, "{\"sensors\":[");
	for (size_t i = 0; i < n && !rc; i++) {
		rc = wm_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		rc = rc ? rc : wm_buf_json_str(b, rows[i].name);
		rc = rc ? rc : wm_buf_puts(b, ",\"state\":");
		rc = rc ? rc : wm_buf_json_str(b, rows[i].state);
		rc = rc ? rc : wm_buf_puts(b, ",\"detail\":");
		rc = rc ? rc : wm_buf_json_str(b, rows[i].detail);
		rc = rc ? rc : wm_buf_puts(b, ",\"fix\":");
		rc = rc ? rc : wm_buf_json_str(b, rows[i].fix);
		rc = rc ? rc : wm_buf_puts(b, "}");
	}
	rc = rc ? rc : wm_buf_puts(b, "],\"zones\":[");
	for (size_t i = 0; r && i < r->n_zones && !rc; i++) {
		const wm_rapl_zone *z = &r->zones[i];
		rc = wm_buf_puts(b, i ? ",{\"label\":" : "{\"label\":");
		rc = rc ? rc : wm_buf_json_str(b, z->label);
		rc = rc ? rc : wm_buf_puts(b, ",\"id\":");
		rc = rc ? rc : wm_buf_json_str(b, z->id);
		rc = rc ? rc : wm_buf_printf(b,
			",\"domain\":\"%s\",\"state\":\"%s\",\"counted\":%s,\"device\":%s%s%s,"
			"\"max_energy_range_uj\":%llu}",
			wm_rapl_domain_name(z->domain), wm_source_state_name(z->state),
			z->counted ? "true" : "false", z->device ? "\"" : "", z->device ? z->device : "null",
			z->device ? "\"" : "", (unsigned long long)z->max_energy_range_uj);
	}
	return rc ? rc : wm_buf_puts(b, "]}\n");
}

char *wm_sensors_describe(const char *sysfs_root, const char *procfs_root, int as_json, char *err,
			  size_t errlen)
{
	wm_root sys = {.dirfd = -1}, proc = {.dirfd = -1};
	wm_rapl *r = NULL;
	wm_sysstat st;
	int have_st = 0;
	char *result = NULL;
	wm_buf b;
	wm_buf_init(&b);
	struct row rows[3];
	memset(rows, 0, sizeof rows);

	int rc = wm_root_open(&sys, sysfs_root, err, errlen);
	if (rc >= 0)
		rc = wm_root_open(&proc, procfs_root, err, errlen);
	if (rc >= 0)
		rc = wm_rapl_probe(sys.dirfd, &r, err, errlen);
	if (rc < 0) {
		errno = -rc;
		goto out;
	}
	char serr[256] = "";
	have_st = wm_sysstat_open(&st, proc.dirfd, serr, sizeof serr) == 0;

	rows[0].name = "rapl-powercap";
	rows[0].state = wm_source_state_name(r->state);
	(void)snprintf(rows[0].detail, sizeof rows[0].detail, "%s", r->detail);
	(void)snprintf(rows[0].fix, sizeof rows[0].fix, "%s", r->state == WM_SRC_OK ? "" : r->fix);

	int n_cpus = have_st ? st.n_cpus : 0;
	rows[1].name = "cpu-model";
	if (r->state == WM_SRC_OK) {
		rows[1].state = "unused";
		(void)snprintf(rows[1].detail, sizeof rows[1].detail,
			       "not needed: CPU energy is measured (--force-model to compare)");
	} else {
		rows[1].state = "modeled";
		(void)snprintf(rows[1].detail, sizeof rows[1].detail,
			       "CPU power ESTIMATED as %d CPUs x (%.2f W idle .. %.2f W busy) by utilisation "
			       "(Cloud Carbon Footprint); DRAM and platform are not measured",
			       n_cpus, WM_DEFAULT_MODEL_MIN_W, WM_DEFAULT_MODEL_MAX_W);
		(void)snprintf(rows[1].fix, sizeof rows[1].fix,
			       "get real counters (see rapl-powercap above); tune the model with "
			       "--model-min-w/--model-max-w to your CPU's per-core idle and busy watts");
	}

	rows[2].name = "procfs";
	if (have_st) {
		uint64_t total = 0, avail = 0;
		(void)wm_sysstat_read_mem(&st, &total, &avail);
		rows[2].state = "ok";
		(void)snprintf(rows[2].detail, sizeof rows[2].detail, "%s: %d CPUs, %.1f GiB memory", procfs_root,
			       n_cpus, (double)total / (1024.0 * 1024.0 * 1024.0));
	} else {
		rows[2].state = "error";
		(void)snprintf(rows[2].detail, sizeof rows[2].detail, "%s", serr);
		(void)snprintf(rows[2].fix, sizeof rows[2].fix,
			       "point --procfs-root at a mounted procfs (in a container: mount the host's /proc)");
	}

	rc = as_json ? rows_json(&b, rows, 3, r) : rows_text(&b, rows, 3, r);
	if (rc < 0 || !b.data) {
		errno = ENOMEM;
		wm_err(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	result = b.data;
	wm_buf_init(&b);
out:
	wm_buf_free(&b);
	if (have_st)
		wm_sysstat_close(&st);
	wm_rapl_free(r);
	wm_root_close(&proc);
	wm_root_close(&sys);
	return result;
}
