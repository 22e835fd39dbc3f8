/* gaps.c — the gaps of a recording, read back (docs/recording.md "Gaps").
 *
 * The meter writes, per sample line, "gaps" (the channels with no good read
 * at that sample), "gap_info" (why, and since the last good read) and
 * "gaps_closed" (a gap that ended at that sample: from, to, cause, and
 * whether the counter's step across it was counted: "measured", or not:
 * "missing"). Here each channel (zone) is mapped to its device through
 * meta.json devices[].zones, and each device gets how long it could not be
 * read, why, and what became of the energy over that time. A gap still open
 * at the last line (a zone that vanished for good, a lost GPU) has its energy
 * missing up to the end. Lines in a gap, or ending one, carry no power of
 * their own: they never make the peak.
 *
 * Recordings from before "gaps_closed" existed carry only "gaps": a gap then
 * ends at the first line without it, and its energy is taken as measured
 * (those meters resumed the counter).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recording/record_priv.h"

#define MAX_CAUSES 8

struct wm_rec_gaps {
	char **zones;          /* meta.json devices[].zones */
	size_t n_zones;
	bool in_gap;           /* this line is in a gap or ends one: no power of its own */
	bool gap_now;          /* a zone of it is in "gaps" on this line */
	bool was_gap;          /* ... on the previous line */
	bool closed_now;       /* a gaps_closed record for it on this line */
	double open_since_s;   /* an open gap: the last good read before it; NaN none */
	double covered_until_s;/* gaps already counted up to here (zones overlap) */
	double measured_s, missing_s;
	size_t n_gaps;
	bool open_at_end;
	char *causes[MAX_CAUSES];
	size_t n_causes;
};

static struct wm_rec_gaps *gaps_of(struct wm_rec_dev *d)
{
	if (!d->gaps) {
		d->gaps = calloc(1, sizeof *d->gaps);
		if (d->gaps)
			d->gaps->open_since_s = NAN;
	}
	return d->gaps;
}

void wm_rec_gaps_free(struct wm_rec_dev *d)
{
	struct wm_rec_gaps *g = d->gaps;
	if (!g)
		return;
	for (size_t i = 0; i < g->n_zones; i++)
		free(g->zones[i]);
	free(g->zones);
	for (size_t i = 0; i < g->n_causes; i++)
		free(g->causes[i]);
	free(g);
	d->gaps = NULL;
}

int wm_rec_gaps_meta_device(struct wm_rec_dev *d, const json_t *dev)
{
	const json_t *zones = json_object_get(dev, "zones");
	size_t n = json_is_array(zones) ? json_array_size(zones) : 0;
	struct wm_rec_gaps *g = gaps_of(d);
	if (!g)
		return -ENOMEM;
	if (n == 0)
		return 0;
	g->zones = calloc(n, sizeof *g->zones);
	if (!g->zones)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *z = json_string_value(json_array_get(zones, i));
		if (!z)
			continue;
		if (!(g->zones[g->n_zones] = strdup(z)))
			return -ENOMEM;
		g->n_zones++;
	}
	return 0;
}

/* The device a zone label counts in: meta.json zones, else a device of that
 * name (a GPU's channel is the GPU). */
static struct wm_rec_dev *device_of(struct wm_recording *r, const char *zone)
{
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_gaps *g = r->devs[k].gaps;
		for (size_t i = 0; g && i < g->n_zones; i++)
			if (strcmp(g->zones[i], zone) == 0)
				return &r->devs[k];
	}
	for (size_t k = 0; k < r->n_devs; k++)
		if (strcmp(r->devs[k].name, zone) == 0)
			return &r->devs[k];
	return NULL;
}

static void add_cause(struct wm_rec_gaps *g, const char *cause)
{
	if (!cause || !*cause)
		cause = "unreadable";
	for (size_t i = 0; i < g->n_causes; i++)
		if (strcmp(g->causes[i], cause) == 0)
			return;
	if (g->n_causes < MAX_CAUSES && (g->causes[g->n_causes] = strndup(cause, 80)))
		g->n_causes++;
}

/* Counts [from, to] once per device, whatever zones overlap in it. */
static void count_span(struct wm_rec_gaps *g, double from, double to, bool measured)
{
	if (!(to > from))
		return;
	double start = from > g->covered_until_s ? from : g->covered_until_s;
	if (to > start) {
		if (measured)
			g->measured_s += to - start;
		else
			g->missing_s += to - start;
	}
	if (to > g->covered_until_s)
		g->covered_until_s = to;
	g->n_gaps++;
}

static bool get_double(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return false;
	double d = json_number_value(v);
	if (!isfinite(d))
		return false;
	*out = d;
	return true;
}

int wm_rec_gaps_take_line(struct wm_recording *r, const json_t *o, double t_s, double prev_t_s)
{
	for (size_t k = 0; k < r->n_devs; k++) {
		struct wm_rec_gaps *g = gaps_of(&r->devs[k]);
		if (!g)
			return -ENOMEM;
		g->was_gap = g->gap_now;
		g->gap_now = g->closed_now = false;
	}
	/* a scanned line (o NULL) has no gaps: the scanner leaves any line
	 * with them to jansson (jansson's json_object_get on NULL still pays a
	 * strlen per key) */
	const json_t *closed = o ? json_object_get(o, "gaps_closed") : NULL;
	size_t n = json_is_array(closed) ? json_array_size(closed) : 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *c = json_array_get(closed, i);
		const char *zone = json_string_value(json_object_get(c, "zone"));
		struct wm_rec_dev *d = zone ? device_of(r, zone) : NULL;
		double from, to;
		if (!d || !get_double(json_object_get(c, "from_s"), &from) || !get_double(json_object_get(c, "to_s"), &to))
			continue;
		const char *energy = json_string_value(json_object_get(c, "energy"));
		struct wm_rec_gaps *g = d->gaps;
		count_span(g, from, to, !energy || strcmp(energy, "missing") != 0);
		add_cause(g, json_string_value(json_object_get(c, "cause")));
		g->closed_now = true;
		g->open_since_s = NAN;
	}
	const json_t *gaps = o ? json_object_get(o, "gaps") : NULL;
	const json_t *info = o ? json_object_get(o, "gap_info") : NULL;
	n = json_is_array(gaps) ? json_array_size(gaps) : 0;
	for (size_t i = 0; i < n; i++) {
		const char *zone = json_string_value(json_array_get(gaps, i));
		struct wm_rec_dev *d = zone ? device_of(r, zone) : NULL;
		if (!d)
			continue; /* a zone counted in no device (core, an mmio twin) */
		struct wm_rec_gaps *g = d->gaps;
		g->gap_now = true;
		const json_t *zi = json_object_get(info, zone);
		double since;
		if (!get_double(json_object_get(zi, "since_s"), &since))
			since = isnan(prev_t_s) ? t_s : prev_t_s;
		if (isnan(g->open_since_s) || since < g->open_since_s)
			g->open_since_s = since;
		add_cause(g, json_string_value(json_object_get(zi, "cause")));
	}
	for (size_t k = 0; k < r->n_devs; k++) {
		struct wm_rec_gaps *g = r->devs[k].gaps;
		if (!g->gap_now && !g->closed_now && !isnan(g->open_since_s)) {
			/* an older recording: the gap ends at the first line without it */
			count_span(g, g->open_since_s, t_s, true);
			g->open_since_s = NAN;
			g->closed_now = true;
		}
		g->in_gap = g->gap_now || g->closed_now;
	}
	return 0;
}

bool wm_rec_gaps_in_gap(const struct wm_rec_dev *d)
{
	return d->gaps && d->gaps->in_gap;
}

void wm_rec_gaps_finish(struct wm_recording *r, double last_t_s)
{
	for (size_t k = 0; k < r->n_devs; k++) {
		struct wm_rec_gaps *g = r->devs[k].gaps;
		if (!g || isnan(g->open_since_s))
			continue;
		/* never read again: the energy since its last good read is not counted */
		count_span(g, g->open_since_s, last_t_s, false);
		g->open_at_end = true;
		g->open_since_s = NAN;
	}
}

static const char *energy_word(const struct wm_rec_gaps *g)
{
	if (g->missing_s > 0 && g->measured_s > 0)
		return "partly missing";
	return g->missing_s > 0 ? "missing" : "measured";
}

int wm_rec_gaps_json(const struct wm_recording *r, wm_buf *b)
{
	wm_buf_puts(b, ",\"gaps\":{");
	bool first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_gaps *g = r->devs[k].gaps;
		if (!g || g->n_gaps == 0)
			continue;
		if (!first)
			wm_buf_puts(b, ",");
		first = false;
		wm_buf_json_str(b, r->devs[k].name);
		wm_buf_puts(b, ":{\"unreadable_s\":");
		wm_buf_json_double(b, g->measured_s + g->missing_s);
		wm_buf_printf(b, ",\"count\":%zu,\"energy\":\"%s\",\"energy_measured_s\":", g->n_gaps, energy_word(g));
		wm_buf_json_double(b, g->measured_s);
		wm_buf_puts(b, ",\"energy_missing_s\":");
		wm_buf_json_double(b, g->missing_s);
		wm_buf_printf(b, ",\"open_at_end\":%s,\"causes\":[", g->open_at_end ? "true" : "false");
		for (size_t i = 0; i < g->n_causes; i++) {
			if (i)
				wm_buf_puts(b, ",");
			wm_buf_json_str(b, g->causes[i]);
		}
		wm_buf_puts(b, "]}");
	}
	wm_buf_puts(b, "}");
	return wm_buf_error(b);
}

/* One line per device with gaps, for the text and the HTML. */
int wm_rec_gaps_line(const struct wm_recording *r, size_t k, wm_buf *b)
{
	const struct wm_rec_gaps *g = r->devs[k].gaps;
	if (!g || g->n_gaps == 0)
		return 0;
	wm_buf_printf(b, "%s unreadable for %.2f s (%zu gap%s: ", r->devs[k].name, g->measured_s + g->missing_s,
		      g->n_gaps, g->n_gaps == 1 ? "" : "s");
	for (size_t i = 0; i < g->n_causes; i++) {
		if (i)
			wm_buf_puts(b, ", ");
		/* causes come from the recording: printable ASCII only */
		for (const char *c = g->causes[i]; *c; c++)
			wm_buf_append(b, *c >= 0x20 && *c < 0x7f ? c : "?", 1);
	}
	wm_buf_puts(b, "): ");
	if (g->missing_s > 0 && g->measured_s > 0)
		wm_buf_printf(b, "energy over %.2f s measured by the counter across the gap, over %.2f s missing "
			      "(not in the total)", g->measured_s, g->missing_s);
	else if (g->missing_s > 0)
		wm_buf_puts(b, "its energy is missing (not in the total)");
	else
		wm_buf_puts(b, "its energy was measured by the counter across the gap");
	if (g->open_at_end)
		wm_buf_puts(b, "; still unreadable at the end");
	return wm_buf_error(b);
}

int wm_rec_gaps_text(const struct wm_recording *r, wm_buf *b)
{
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!r->devs[k].gaps || r->devs[k].gaps->n_gaps == 0)
			continue;
		wm_buf_puts(b, "  gap: ");
		int rc = wm_rec_gaps_line(r, k, b);
		if (rc)
			return rc;
		wm_buf_puts(b, "; peak power leaves gaps out\n");
	}
	return wm_buf_error(b);
}
