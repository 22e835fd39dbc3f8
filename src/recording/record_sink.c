/* record_sink.c — the recording (docs/recording.md) as a sink of the meter:
 * meta.json at begin and end, one samples.jsonl line per sample.
 *
 * A line that cannot be written (disk full, EIO) is not a lost recording:
 * the writer cuts the file back to its last complete line, the sampler keeps
 * sampling (energies are cumulative, so the next line written carries every
 * joule), and the span of lines not written is a gap the recording names:
 * the first line written after it carries "unwritten" {from_s, to_s,
 * samples, error}, and meta.json at the end lists every span. Command lines
 * of processes first seen on an unwritten line ride on the next line
 * written. Disk space for the last line and meta.json is set aside at the
 * start (an unnamed file) and freed at the end, so a disk still full when
 * the run ends still gets its totals and its end.
 *
 * Formatting is here, not in the sampler: the meter hands over a wm_sample
 * (numbers), this file turns it into one line and appends it with a single
 * write(2). It runs on the sampler thread without the meter's lock, so a
 * slow disk never blocks a snapshot or wm_meter_add_pid.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meter/meter.h"
#include "recording/record.h"

/* A span of sample lines that could not be written. */
struct unwritten {
	double from_s, to_s; /* t_s of its first and last line */
	unsigned long long samples;
	int err;             /* the errno of its first failure */
	bool resumed;        /* a later line was written */
};

/* Spans kept at most; later failures extend the last one. */
#define WM_MAX_UNWRITTEN 1024
/* new_procs entries kept for the next line written, at most (bytes). */
#define WM_MAX_PENDING_NEW (4u << 20)
/* Disk set aside for the end of the run, at least (bytes). */
#define WM_RESERVE_MIN (256u << 10)

struct rec_sink {
	wm_recorder rec;
	char *dir;
	wm_buf line;      /* reused for every sample line */
	wm_buf out;       /* the line as written: with the "unwritten" marker after a gap */
	wm_buf cur_new;   /* this line's new_procs entries (comma-separated objects) */
	wm_buf pend_new;  /* new_procs entries of lines not written */
	struct unwritten *gaps;
	size_t n_gaps;
	bool gap_open;    /* the last line was not written: gaps[n_gaps - 1] is open */
	bool have_line;   /* line holds the last sample's line */
	double prev_unwritten_t_s; /* t_s of the unwritten line before it, in the open gap */
};

/* Energies at microjoule resolution, powers at milliwatts: short on the wire. */
static void put_num(wm_buf *b, double v, int decimals)
{
	(void)wm_buf_json_fixed(b, v, decimals);
}

static void put_key(wm_buf *b, int *first, const char *key)
{
	if (!*first)
		wm_buf_puts(b, ",");
	*first = 0;
	wm_buf_json_str(b, key);
	wm_buf_puts(b, ":");
}

/* ---- meta.json ---------------------------------------------------------------- */

static void meta_devices(const wm_meter *m, wm_buf *b)
{
	wm_buf_puts(b, "[");
	size_t nd = wm_meter_n_devices(m), nc = wm_meter_n_channels(m);
	for (size_t d = 0; d < nd; d++) {
		const wm_device *dev = wm_meter_device(m, d);
		const wm_device_decl *x = dev->decl;
		wm_buf_puts(b, d ? ",{\"name\":" : "{\"name\":");
		wm_buf_json_str(b, x->name);
		wm_buf_puts(b, ",\"kind\":");
		wm_buf_json_str(b, x->kind);
		wm_buf_printf(b, ",\"method\":\"%s\",\"source\":", x->modeled ? "modeled" : "measured");
		wm_buf_json_str(b, dev->src->ops->name);
		wm_buf_puts(b, ",\"source_detail\":");
		wm_buf_json_str(b, x->source_detail);
		wm_buf_printf(b, ",\"attribution\":\"%s\"", wm_attr_rule_name(x->rule));
		if (x->used_by_run >= 0)
			wm_buf_printf(b, ",\"used_by_run\":%s", x->used_by_run ? "true" : "false");
		if (x->info_json[0]) {
			wm_buf_puts(b, ",\"info\":");
			wm_buf_puts(b, x->info_json);
		}
		wm_buf_puts(b, ",\"zones\":[");
		int first = 1;
		for (size_t c = 0; !x->modeled && c < nc; c++) {
			const wm_meter_channel *ch = wm_meter_channel_at(m, c);
			if (ch->device != (int)d)
				continue;
			if (!first)
				wm_buf_puts(b, ",");
			first = 0;
			wm_buf_json_str(b, ch->ch->label);
		}
		wm_buf_puts(b, "]}");
	}
	wm_buf_puts(b, "]");
}

static void json_unwritten(const struct unwritten *g, wm_buf *b)
{
	wm_buf_puts(b, "{\"from_s\":");
	put_num(b, g->from_s, 6);
	wm_buf_puts(b, ",\"to_s\":");
	put_num(b, g->to_s, 6);
	wm_buf_printf(b, ",\"samples\":%llu,\"error\":", g->samples);
	wm_buf_json_str(b, strerror(g->err));
	wm_buf_printf(b, ",\"resumed\":%s}", g->resumed ? "true" : "false");
}

static int build_meta(const struct rec_sink *k, const wm_meter *m, const wm_stop_info *st, wm_buf *b)
{
	char ts[40];
	wm_buf_printf(b, "{\"schema\":\"wattmeter.recording\",\"schema_version\":%d,"
		      "\"tool\":{\"name\":\"wattmeter\",\"version\":\"%s\"},\"host\":",
		      WM_SCHEMA_VERSION, WM_VERSION);
	wm_buf_puts(b, wm_meter_host_json(m));
	wm_buf_puts(b, ",\"command\":");
	const char *const *cmd = wm_meter_command(m);
	if (cmd) {
		wm_buf_puts(b, "[");
		for (size_t i = 0; cmd[i]; i++) {
			if (i)
				wm_buf_puts(b, ",");
			wm_buf_json_str(b, cmd[i]);
		}
		wm_buf_puts(b, "]");
	} else {
		wm_buf_puts(b, "null");
	}
	wm_buf_puts(b, ",\"pids\":[");
	int pids[64];
	size_t np = wm_meter_root_pids(m, pids, WM_ARRAY_LEN(pids));
	for (size_t i = 0; i < np && i < WM_ARRAY_LEN(pids); i++)
		wm_buf_printf(b, "%s%d", i ? "," : "", pids[i]);
	wm_buf_puts(b, "],\"included\":");
	wm_meter_included_json(m, b);
	wm_buf_puts(b, ",\"cgroup\":");
	wm_meter_cgroup_json(m, b);
	wm_meter_job_json(m, b);
	wm_buf_puts(b, ",\"period_s\":");
	put_num(b, wm_meter_period_s(m), 6);
	wm_buf_puts(b, ",\"proc_period_s\":");
	put_num(b, wm_meter_proc_period_s(m), 6);
	wm_buf_puts(b, ",\"mem_period_s\":");
	put_num(b, wm_meter_mem_period_s(m), 6);
	wm_format_utc(wm_meter_start_wall_s(m), ts, sizeof ts);
	wm_buf_printf(b, ",\"start_utc\":\"%s\",\"start_unix_s\":", ts);
	put_num(b, wm_meter_start_wall_s(m), 3);
	wm_buf_puts(b, ",\"devices\":");
	meta_devices(m, b);
	/* sensors, then what each source adds (zones, model, gpus ...) */
	wm_buf_puts(b, ",");
	(void)wm_sources_json(wm_meter_sources(m), b);
	wm_buf_puts(b, ",\"warnings\":[");
	const char *w = wm_meter_warnings(m);
	for (int first = 1; *w; first = 0) {
		const char *nl = strchr(w, '\n');
		size_t len = nl ? (size_t)(nl - w) : strlen(w);
		char one[1024];
		(void)snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), w);
		if (!first)
			wm_buf_puts(b, ",");
		wm_buf_json_str(b, one);
		w += len + (nl ? 1 : 0);
	}
	wm_buf_puts(b, "]");
	if (st) {
		wm_format_utc(st->end_wall_s, ts, sizeof ts);
		wm_buf_printf(b, ",\"end_utc\":\"%s\",\"end_unix_s\":", ts);
		put_num(b, st->end_wall_s, 3);
		wm_buf_puts(b, ",\"duration_s\":");
		put_num(b, st->duration_s, 6);
		if (st->exit_status >= 0)
			wm_buf_printf(b, ",\"exit_status\":%d", st->exit_status);
		else
			wm_buf_puts(b, ",\"exit_status\":null");
		wm_buf_puts(b, ",\"complete\":true,\"self\":{\"cpu_s\":");
		put_num(b, st->self_cpu_s, 6);
		uint64_t mem_read, mem_reused;
		wm_meter_memory_rounds(m, &mem_read, &mem_reused);
		wm_buf_printf(b, ",\"samples\":%llu,\"memory_rounds_read\":%llu,\"memory_rounds_reused\":%llu}",
			      (unsigned long long)st->samples, (unsigned long long)mem_read,
			      (unsigned long long)mem_reused);
	} else {
		wm_buf_puts(b, ",\"complete\":false");
	}
	/* Who writes: readers say "still running (pid N)" while it holds the
	 * recording's lock. At the end, every span of lines not written. */
	wm_buf_printf(b, ",\"writer_pid\":%d", (int)getpid());
	if (st) {
		wm_buf_puts(b, ",\"unwritten\":[");
		for (size_t i = 0; i < k->n_gaps; i++) {
			if (i)
				wm_buf_puts(b, ",");
			json_unwritten(&k->gaps[i], b);
		}
		wm_buf_puts(b, "]");
	}
	wm_buf_puts(b, "}");
	return wm_buf_error(b);
}

static int write_meta(struct rec_sink *k, const wm_meter *m, const wm_stop_info *st)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc = build_meta(k, m, st, &b);
	if (!rc)
		rc = wm_recorder_write_meta(&k->rec, b.data, b.len);
	wm_buf_free(&b);
	return rc;
}

/* ---- samples.jsonl ------------------------------------------------------------- */

static void line_procs(const wm_meter *m, const wm_sample *s, wm_buf *b, wm_buf *new_procs)
{
	size_t nd = wm_meter_n_devices(m);
	wm_buf_puts(b, ",\"procs\":[");
	for (size_t i = 0; i < s->n_procs; i++) {
		const wm_sample_proc *p = &s->procs[i];
		wm_buf_printf(b, "%s{\"pid\":%d,\"ppid\":%d,\"comm\":", i ? "," : "", p->pid, p->ppid);
		wm_buf_json_str(b, p->comm);
		wm_buf_printf(b, ",\"alive\":%s,\"cpu_s\":", p->alive ? "true" : "false");
		put_num(b, p->cpu_s, 3);
		wm_buf_puts(b, ",\"cpu_share\":");
		put_num(b, p->cpu_share, 4);
		wm_buf_printf(b, ",\"rss_bytes\":%llu", (unsigned long long)p->rss_bytes);
		if (p->have_pss)
			wm_buf_printf(b, ",\"pss_bytes\":%llu,\"uss_bytes\":%llu", (unsigned long long)p->pss_bytes,
				      (unsigned long long)p->uss_bytes);
		wm_buf_puts(b, ",\"mem_pct\":");
		put_num(b, p->mem_pct, 4);
		wm_buf_puts(b, ",\"energy_j\":{");
		int f2 = 1;
		for (size_t d = 0; d < nd; d++) {
			const wm_device_decl *x = wm_meter_device(m, d)->decl;
			if (x->rule == WM_ATTR_NONE)
				continue;
			put_key(b, &f2, x->name);
			put_num(b, p->energy_j[d], 6);
		}
		wm_buf_puts(b, "}");
		int fm = 1;
		for (size_t d = 0; d < nd; d++) {
			if (!isfinite(p->dev_mem_bytes[d]))
				continue;
			if (fm)
				wm_buf_puts(b, ",\"dev_mem_bytes\":{");
			put_key(b, &fm, wm_meter_device(m, d)->decl->name);
			wm_buf_printf(b, "%.0f", p->dev_mem_bytes[d]);
		}
		if (!fm)
			wm_buf_puts(b, "}");
		wm_buf_puts(b, "}");
	}
	wm_buf_puts(b, "]");
	for (size_t i = 0; i < s->n_procs; i++) {
		const wm_sample_proc *p = &s->procs[i];
		if (!p->cmdline)
			continue;
		wm_buf_printf(new_procs, "%s{\"pid\":%d,\"ppid\":%d,\"starttime_ticks\":%llu,\"cmdline\":",
			      new_procs->len ? "," : "", p->pid, p->ppid, (unsigned long long)p->starttime_ticks);
		wm_buf_json_str(new_procs, p->cmdline);
		if (p->rank >= 0)
			wm_buf_printf(new_procs, ",\"rank\":%d", p->rank);
		if (p->container) {
			wm_buf_puts(new_procs, ",\"container\":");
			wm_buf_json_str(new_procs, p->container);
		}
		if (p->pod) {
			wm_buf_puts(new_procs, ",\"pod\":");
			wm_buf_json_str(new_procs, p->pod);
		}
		if (p->nspid > 0)
			wm_buf_printf(new_procs, ",\"nspid\":%d", p->nspid);
		wm_buf_puts(new_procs, p->included ? ",\"included\":true}" : "}");
	}
}

/* new_procs: those of lines not written first, then this line's. */
static void line_new_procs(wm_buf *b, const wm_buf *pend, const wm_buf *cur)
{
	if (!pend->len && !cur->len)
		return;
	wm_buf_puts(b, ",\"new_procs\":[");
	if (pend->len)
		wm_buf_append(b, pend->data, pend->len);
	if (pend->len && cur->len)
		wm_buf_puts(b, ",");
	if (cur->len)
		wm_buf_append(b, cur->data, cur->len);
	wm_buf_puts(b, "]");
}

/* Why each channel in "gaps" is one, and since when (docs/recording.md "Gaps"):
 * "gap_info":{"package-0":{"cause":"EIO","since_s":1.5}} */
static void line_gap_info(const wm_meter *m, const wm_sample *s, wm_buf *b)
{
	if (!s->channel_gap_cause || !s->channel_gap_since_s)
		return;
	int first = 1;
	for (size_t c = 0; c < wm_meter_n_channels(m); c++) {
		if (s->channel_ok[c])
			continue;
		if (first)
			wm_buf_puts(b, ",\"gap_info\":{");
		put_key(b, &first, wm_meter_channel_at(m, c)->ch->label);
		wm_buf_puts(b, "{\"cause\":");
		wm_buf_json_str(b, s->channel_gap_cause[c] ? s->channel_gap_cause[c] : "unreadable");
		wm_buf_puts(b, ",\"since_s\":");
		put_num(b, isfinite(s->channel_gap_since_s[c]) ? s->channel_gap_since_s[c] : s->t_s, 6);
		wm_buf_puts(b, "}");
	}
	if (!first)
		wm_buf_puts(b, "}");
}

/* Gaps that ended at this sample, with what became of their energy:
 * "gaps_closed":[{"zone":..,"from_s":..,"to_s":..,"cause":..,"energy":"measured"|"missing"}] */
static void line_gaps_closed(const wm_meter *m, const wm_sample *s, wm_buf *b)
{
	for (size_t i = 0; i < s->n_gap_ends; i++) {
		const wm_gap_end *g = &s->gap_ends[i];
		wm_buf_puts(b, i ? ",{\"zone\":" : ",\"gaps_closed\":[{\"zone\":");
		wm_buf_json_str(b, wm_meter_channel_at(m, g->channel)->ch->label);
		wm_buf_puts(b, ",\"from_s\":");
		put_num(b, g->from_s, 6);
		wm_buf_puts(b, ",\"to_s\":");
		put_num(b, g->to_s, 6);
		wm_buf_puts(b, ",\"cause\":");
		wm_buf_json_str(b, g->cause ? g->cause : "unreadable");
		wm_buf_printf(b, ",\"energy\":\"%s\"}", g->energy_measured ? "measured" : "missing");
	}
	if (s->n_gap_ends)
		wm_buf_puts(b, "]");
}

static void format_line(struct rec_sink *k, const wm_meter *m, const wm_sample *s, wm_buf *b)
{
	size_t nd = wm_meter_n_devices(m), nc = wm_meter_n_channels(m);
	wm_buf_puts(b, "{\"t_s\":");
	put_num(b, s->t_s, 6);
	wm_buf_puts(b, ",\"energy_j\":{");
	int first = 1;
	for (size_t d = 0; d < nd; d++) {
		put_key(b, &first, wm_meter_device(m, d)->decl->name);
		put_num(b, s->devices[d].energy_j, 6);
	}
	wm_buf_puts(b, "}");
	if (!s->baseline) { /* the baseline closes no interval: it has no power */
		wm_buf_puts(b, ",\"power_w\":{");
		first = 1;
		for (size_t d = 0; d < nd; d++) {
			put_key(b, &first, wm_meter_device(m, d)->decl->name);
			put_num(b, s->devices[d].power_w, 3);
		}
		wm_buf_puts(b, "}");
	}
	/* Every channel (core, uncore, duplicates too) on process-tier lines
	 * only: device totals are on every line; this keeps the recording
	 * small at high counter rates. A modelled channel is the device itself. */
	int any_gap = 0, any_chan = 0;
	for (size_t c = 0; c < nc; c++) {
		const wm_meter_channel *ch = wm_meter_channel_at(m, c);
		int model = ch->device >= 0 && wm_meter_device(m, (size_t)ch->device)->decl->modeled;
		any_gap |= !s->channel_ok[c];
		any_chan |= ch->ch->readable && !model;
	}
	if (any_chan && (s->proc_tier || s->baseline)) {
		wm_buf_puts(b, ",\"zones_energy_j\":{");
		first = 1;
		for (size_t c = 0; c < nc; c++) {
			const wm_meter_channel *ch = wm_meter_channel_at(m, c);
			if (!ch->ch->readable || (ch->device >= 0 && wm_meter_device(m, (size_t)ch->device)->decl->modeled))
				continue;
			put_key(b, &first, ch->ch->label);
			put_num(b, s->channel_energy_j[c], 6);
		}
		wm_buf_puts(b, "}");
	}
	if (any_gap) {
		wm_buf_puts(b, ",\"gaps\":[");
		first = 1;
		for (size_t c = 0; c < nc; c++) {
			if (s->channel_ok[c])
				continue;
			if (!first)
				wm_buf_puts(b, ",");
			first = 0;
			wm_buf_json_str(b, wm_meter_channel_at(m, c)->ch->label);
		}
		wm_buf_puts(b, "]");
		line_gap_info(m, s, b);
	}
	line_gaps_closed(m, s, b);
	/* Device gauges (GPU utilisation, memory, temperature ...). */
	int fg = 1;
	for (size_t d = 0; d < nd; d++) {
		int any = 0;
		for (int g = 0; g < WM_GAUGE_N; g++)
			any |= isfinite(s->devices[d].gauge[g]);
		if (!any)
			continue;
		wm_buf_puts(b, fg ? ",\"gauges\":{" : ",");
		fg = 0;
		wm_buf_json_str(b, wm_meter_device(m, d)->decl->name);
		wm_buf_puts(b, ":{");
		int fd = 1;
		for (int g = 0; g < WM_GAUGE_N; g++) {
			if (!isfinite(s->devices[d].gauge[g]))
				continue;
			put_key(b, &fd, wm_gauge_name((wm_gauge)g));
			put_num(b, s->devices[d].gauge[g], 3);
		}
		wm_buf_puts(b, "}");
	}
	if (!fg)
		wm_buf_puts(b, "}");
	if (isfinite(s->cpu_util)) {
		wm_buf_puts(b, ",\"cpu_util\":");
		put_num(b, s->cpu_util, 4);
	}
	if (s->proc_tier) {
		wm_buf_puts(b, ",\"attributed_j\":{");
		first = 1;
		for (size_t d = 0; d < nd; d++) {
			if (wm_meter_device(m, d)->decl->rule == WM_ATTR_NONE)
				continue;
			put_key(b, &first, wm_meter_device(m, d)->decl->name);
			put_num(b, s->devices[d].attributed_j, 6);
		}
		wm_buf_printf(b, "},\"mem_used_bytes\":%llu", (unsigned long long)s->mem_used_bytes);
		line_procs(m, s, b, &k->cur_new);
	}
	line_new_procs(b, &k->pend_new, &k->cur_new);
	if (isfinite(s->cgroup_cpu_s)) {
		wm_buf_puts(b, ",\"cgroup_cpu_s\":");
		put_num(b, s->cgroup_cpu_s, 6);
	}
	wm_buf_puts(b, ",\"self_cpu_s\":");
	put_num(b, s->self_cpu_s, 6);
	wm_buf_puts(b, "}");
}

/* ---- the sink -------------------------------------------------------------------- */

static int rs_begin(void *ctx, const wm_meter *m, char *err, size_t errlen)
{
	struct rec_sink *k = ctx;
	int rc = wm_recorder_open(&k->rec, k->dir, err, errlen);
	if (rc < 0)
		return rc;
	wm_buf b;
	wm_buf_init(&b);
	rc = build_meta(k, m, NULL, &b);
	if (!rc)
		rc = wm_recorder_write_meta(&k->rec, b.data, b.len);
	size_t meta_len = b.len;
	wm_buf_free(&b);
	if (rc < 0)
		return wm_err(err, errlen, rc, "cannot write %s/meta.json: %s", k->dir, strerror(-rc));
	/* Room for the last line and the last meta.json (twice its size, for
	 * the end fields and the unwritten spans). Without it (no O_TMPFILE
	 * here, or no room already) the run goes on: a full disk at the end
	 * then keeps the meta.json of the start. */
	size_t want = 2 * meta_len + (64u << 10);
	(void)wm_recorder_reserve(&k->rec, want > WM_RESERVE_MIN ? want : WM_RESERVE_MIN);
	return 0;
}

/* Writes k->line, with the "unwritten" marker of the open gap, if any, and
 * closes that gap. 0 or -errno. */
static int write_line(struct rec_sink *k)
{
	if (!k->gap_open)
		return wm_recorder_append(&k->rec, k->line.data, k->line.len);
	const struct unwritten *g = &k->gaps[k->n_gaps - 1];
	wm_buf_reset(&k->out);
	/* the line is one object: the marker goes before its closing brace */
	wm_buf_append(&k->out, k->line.data, k->line.len - 1);
	wm_buf_puts(&k->out, ",\"unwritten\":");
	json_unwritten(g, &k->out);
	wm_buf_puts(&k->out, "}");
	int rc = wm_buf_error(&k->out);
	if (!rc)
		rc = wm_recorder_append(&k->rec, k->out.data, k->out.len);
	if (!rc) {
		k->gaps[k->n_gaps - 1].resumed = true;
		k->gap_open = false;
	}
	return rc;
}

/* The line for t_s was not written (error e): it opens or extends a gap. */
static void note_unwritten(struct rec_sink *k, double t_s, int e)
{
	if (k->gap_open || k->n_gaps == WM_MAX_UNWRITTEN) {
		struct unwritten *g = &k->gaps[k->n_gaps - 1];
		k->prev_unwritten_t_s = g->to_s;
		g->to_s = t_s;
		g->samples++;
		g->resumed = false;
	} else {
		if (!k->gaps) {
			k->gaps = calloc(WM_MAX_UNWRITTEN, sizeof *k->gaps);
			if (!k->gaps)
				return; /* out of memory: the span is not named, the totals stay whole */
		}
		k->gaps[k->n_gaps++] = (struct unwritten){.from_s = t_s, .to_s = t_s, .samples = 1, .err = e};
		k->prev_unwritten_t_s = NAN;
	}
	k->gap_open = true;
	/* processes first seen on this line: named on the next line written */
	if (k->cur_new.len && k->pend_new.len + k->cur_new.len < WM_MAX_PENDING_NEW) {
		if (k->pend_new.len)
			wm_buf_puts(&k->pend_new, ",");
		wm_buf_append(&k->pend_new, k->cur_new.data, k->cur_new.len);
	}
}

static int rs_sample(void *ctx, const wm_meter *m, const wm_sample *s)
{
	struct rec_sink *k = ctx;
	wm_buf_reset(&k->line);
	wm_buf_reset(&k->cur_new);
	format_line(k, m, s, &k->line);
	int rc = wm_buf_error(&k->line);
	if (!rc && !k->line.len)
		rc = -EINVAL;
	if (!rc)
		rc = write_line(k);
	k->have_line = rc != -ENOMEM && k->line.len;
	if (rc < 0 && s->baseline) {
		/* not even the first line: the meter does not start */
		return rc;
	}
	if (rc < 0) {
		note_unwritten(k, s->t_s, -rc);
		return 0; /* handled: the recording names the span */
	}
	wm_buf_reset(&k->pend_new);
	return 0;
}

static int rs_end(void *ctx, const wm_meter *m, const wm_stop_info *st, char *err, size_t errlen)
{
	struct rec_sink *k = ctx;
	/* The reserve is free for the end: first the last line, which holds the
	 * final totals, if it was not written; then meta.json. */
	wm_recorder_release_reserve(&k->rec);
	if (k->gap_open && k->have_line && k->n_gaps) {
		struct unwritten *g = &k->gaps[k->n_gaps - 1];
		struct unwritten saved = *g;
		size_t saved_n = k->n_gaps;
		/* the span, without the line tried now */
		if (g->samples == 1) {
			k->n_gaps--;
			k->gap_open = false;
		} else {
			g->samples--;
			g->to_s = isnan(k->prev_unwritten_t_s) ? g->from_s : k->prev_unwritten_t_s;
		}
		if (write_line(k) < 0) {
			k->n_gaps = saved_n;
			k->gaps[k->n_gaps - 1] = saved;
			k->gap_open = true;
		}
	}
	int mrc = write_meta(k, m, st);
	wm_recorder_close(&k->rec);
	if (k->gap_open) {
		const struct unwritten *g = &k->gaps[k->n_gaps - 1];
		int e = g->err;
		return wm_err(err, errlen, -e,
			      "samples from %.2f s to the end (%.2f s) could not be written to %s/samples.jsonl: %s%s",
			      g->from_s, g->to_s, k->dir, strerror(e),
			      e == ENOSPC || e == EDQUOT ? " (the disk is full: free space or record elsewhere with -o)" : "");
	}
	if (mrc < 0)
		return wm_err(err, errlen, mrc, "cannot complete %s/meta.json: %s%s", k->dir, strerror(-mrc),
			      mrc == -ENOSPC || mrc == -EDQUOT ? " (the disk is full; the meta.json of the start is kept)"
							       : "");
	return 0;
}

static void rs_free(void *ctx)
{
	struct rec_sink *k = ctx;
	if (!k)
		return;
	wm_recorder_close(&k->rec);
	wm_buf_free(&k->line);
	wm_buf_free(&k->out);
	wm_buf_free(&k->cur_new);
	wm_buf_free(&k->pend_new);
	free(k->gaps);
	free(k->dir);
	free(k);
}

static const wm_sink_ops record_sink_ops = {
	.name = "recording",
	.begin = rs_begin,
	.sample = rs_sample,
	.end = rs_end,
	.free = rs_free,
};

int wm_record_sink_new(const char *dir, wm_sink *out)
{
	struct rec_sink *k = calloc(1, sizeof *k);
	if (!k || !(k->dir = strdup(dir))) {
		free(k);
		return -ENOMEM;
	}
	k->rec.dir_fd = k->rec.samples_fd = k->rec.reserve_fd = -1;
	wm_buf_init(&k->line);
	wm_buf_init(&k->out);
	wm_buf_init(&k->cur_new);
	wm_buf_init(&k->pend_new);
	out->ops = &record_sink_ops;
	out->ctx = k;
	return 0;
}
