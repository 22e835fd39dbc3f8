/* registry.c — the list of energy sources, and the one probe that the
 * meter, `wattmeter sensors` and meta.json all use.
 *
 * To add a source, add its ops to this table (order matters: a fallback
 * such as the CPU model comes after the sources that measure what it
 * models). See source.h for the rest.
 */
#include "sources/source.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wattmeter.h"

extern const wm_source_ops wm_source_rapl_powercap;
extern const wm_source_ops wm_source_cpu_model;
extern const wm_source_ops wm_source_nvml;

const wm_source_ops *const wm_source_registry[] = {
	&wm_source_rapl_powercap,
	&wm_source_cpu_model,
	&wm_source_nvml,
};
const size_t wm_source_registry_len = WM_ARRAY_LEN(wm_source_registry);

/* Sources registered at run time (tests define a fake one; an embedding
 * program could add its own), probed after the built-in ones. */
#define WM_MAX_EXTRA_SOURCES 8
static const wm_source_ops *extra_sources[WM_MAX_EXTRA_SOURCES];
static size_t n_extra_sources;

int wm_source_register(const wm_source_ops *ops)
{
	if (!ops || !ops->name || !ops->probe || !ops->read)
		return -EINVAL;
	if (n_extra_sources == WM_MAX_EXTRA_SOURCES)
		return -ENOSPC;
	extra_sources[n_extra_sources++] = ops;
	return 0;
}

static const wm_source_ops *registry_at(size_t i)
{
	return i < wm_source_registry_len ? wm_source_registry[i] : extra_sources[i - wm_source_registry_len];
}

static int provides_measured(const wm_source *s, const char *dev)
{
	for (size_t d = 0; d < s->n_devices; d++)
		if (strcmp(s->devices[d].name, dev) == 0 && !s->devices[d].modeled)
			return 1;
	return 0;
}

int wm_sources_probe(wm_sources *all, const wm_source_ctx *ctx, char *err, size_t errlen)
{
	memset(all, 0, sizeof *all);
	size_t n = wm_source_registry_len + n_extra_sources;
	all->v = calloc(n, sizeof *all->v);
	if (!all->v)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		wm_source *s = &all->v[i];
		s->ops = registry_at(i);
		all->n = i + 1;
		int rc = s->ops->probe(s, ctx, err, errlen);
		if (rc < 0) {
			wm_sources_close(all);
			return rc;
		}
		if (!s->ops->fallback_for) {
			s->active = s->state == WM_SRC_OK && s->n_devices > 0;
			continue;
		}
		/* A fallback: used where nothing earlier measures its device,
		 * or where the user asks for it (--force-model). */
		const char *dev = s->ops->fallback_for;
		int measured = 0;
		for (size_t j = 0; j < i; j++)
			measured |= all->v[j].active && provides_measured(&all->v[j], dev);
		int forced = ctx->cfg && ctx->cfg->force_model && strcmp(dev, "cpu") == 0;
		s->active = s->state == WM_SRC_MODELED && s->n_devices > 0 && (!measured || forced);
		if (!s->active && s->state == WM_SRC_MODELED) {
			(void)snprintf(s->detail, sizeof s->detail,
				       "not needed: %s energy is measured (--force-model to compare)", dev);
			s->fix[0] = '\0';
		}
	}
	return 0;
}

void wm_sources_close(wm_sources *all)
{
	if (!all || !all->v)
		return;
	for (size_t i = 0; i < all->n; i++) {
		wm_source *s = &all->v[i];
		if (s->ops && s->ops->close)
			s->ops->close(s);
		wm_source_release(s);
	}
	free(all->v);
	all->v = NULL;
	all->n = 0;
}

const char *wm_source_state_label(const wm_source *s)
{
	if (!s->active && (s->state == WM_SRC_OK || s->state == WM_SRC_MODELED))
		return "unused";
	return wm_source_state_name(s->state);
}

const wm_source *wm_sources_find_device(const wm_sources *all, const char *name, size_t *dev)
{
	for (size_t i = 0; i < all->n; i++) {
		const wm_source *s = &all->v[i];
		if (!s->active)
			continue;
		for (size_t d = 0; d < s->n_devices; d++) {
			if (strcmp(s->devices[d].name, name) == 0) {
				if (dev)
					*dev = d;
				return s;
			}
		}
	}
	return NULL;
}

static void sensor_json(wm_buf *b, int first, const char *name, const char *state, const char *detail,
			const char *fix)
{
	wm_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
	wm_buf_json_str(b, name);
	wm_buf_puts(b, ",\"state\":");
	wm_buf_json_str(b, state);
	wm_buf_puts(b, ",\"detail\":");
	wm_buf_json_str(b, detail);
	wm_buf_puts(b, ",\"fix\":");
	wm_buf_json_str(b, fix);
	wm_buf_puts(b, "}");
}

int wm_sources_json(const wm_sources *all, wm_buf *b)
{
	wm_buf_puts(b, "\"sensors\":[");
	for (size_t i = 0; i < all->n; i++) {
		const wm_source *s = &all->v[i];
		sensor_json(b, i == 0, s->ops->name, wm_source_state_label(s), s->detail, s->fix);
	}
	sensor_json(b, all->n == 0, "procfs", all->procfs_ok ? "ok" : "error", all->procfs_detail,
		    all->procfs_fix);
	wm_buf_puts(b, "]");
	for (size_t i = 0; i < all->n; i++)
		if (all->v[i].ops->describe_json)
			(void)all->v[i].ops->describe_json(&all->v[i], b);
	return wm_buf_error(b);
}

int wm_sources_text(const wm_sources *all, wm_buf *b)
{
	wm_buf_printf(b, "%-15s %-18s %s\n", "SOURCE", "STATE", "DETAIL");
	for (size_t i = 0; i < all->n; i++) {
		const wm_source *s = &all->v[i];
		wm_buf_printf(b, "%-15s %-18s %s\n", s->ops->name, wm_source_state_label(s), s->detail);
		if (s->fix[0])
			wm_buf_printf(b, "  fix: %s\n", s->fix);
	}
	wm_buf_printf(b, "%-15s %-18s %s\n", "procfs", all->procfs_ok ? "ok" : "error", all->procfs_detail);
	if (all->procfs_fix[0])
		wm_buf_printf(b, "  fix: %s\n", all->procfs_fix);
	for (size_t i = 0; i < all->n; i++)
		if (all->v[i].ops->describe_text)
			(void)all->v[i].ops->describe_text(&all->v[i], b);
	return wm_buf_error(b);
}
