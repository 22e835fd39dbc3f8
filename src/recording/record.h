/* record.h — writing and reading recordings (docs/recording.md).
 *
 * The writer appends one line per sample with a single write(2), so a killed
 * run loses at most the line in flight. The reader parses meta.json and
 * samples.jsonl with jansson, tolerates a truncated last line, and computes
 * the summary that `wattmeter report`, `report --json` and Python's
 * wattmeter.load() all show: one computation, in C.
 */
#ifndef WM_RECORD_H
#define WM_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

#define WM_SCHEMA_VERSION 1

/* ---- writer ---------------------------------------------------------------- */
/* Every file is created relative to dir_fd with O_EXCL|O_NOFOLLOW (or as an
 * unnamed O_TMPFILE) and replaced by rename within the folder: a link planted
 * in the folder is never written through (base/safepath.h). */
typedef struct wm_recorder {
	int dir_fd;        /* O_PATH|O_DIRECTORY|O_CLOEXEC on the recording folder */
	int samples_fd;    /* samples.jsonl, O_WRONLY|O_APPEND|O_CLOEXEC; holds the write lock */
	int reserve_fd;    /* an unnamed file holding disk space for the last meta.json; -1 if none */
	long long good_off; /* bytes of samples.jsonl that are complete lines */
	int need_cut;       /* a failed append left a partial line that could not be cut yet */
	char dir[4096];
} wm_recorder;

/* Opens dir, creating it (mkdir -p; a symlink on the way is followed only by
 * the rule of docs/privileges.md), refuses a folder that already holds a
 * recording (-EEXIST) or that cannot be written (-EACCES, -EROFS ...),
 * creates samples.jsonl and takes the recording's lock: an open file
 * description lock (F_OFD_SETLK, F_WRLCK) on samples.jsonl, held until
 * wm_recorder_close, never inherited across exec (O_CLOEXEC). All with a
 * message that names the folder and the fix. */
int wm_recorder_open(wm_recorder *r, const char *dir, char *err, size_t errlen);
/* Writes meta.json atomically (a fresh temp file, fsync, rename): when the
 * new one cannot be written (ENOSPC ...) the old one stays. */
int wm_recorder_write_meta(wm_recorder *r, const char *json, size_t n);
/* Appends line (without newline) plus '\n' in one write. On a short write or
 * an error (ENOSPC, EIO ...) the file is cut back to its last complete line
 * (retried before the next append if the cut itself fails) and -errno
 * returned: samples.jsonl never holds a partial line followed by others. */
int wm_recorder_append(wm_recorder *r, const char *line, size_t n);
/* Sets aside bytes of disk (an unnamed file, fallocate) for the end of the
 * run; 0 or -errno (then there is no reserve). */
int wm_recorder_reserve(wm_recorder *r, size_t bytes);
void wm_recorder_release_reserve(wm_recorder *r);
void wm_recorder_close(wm_recorder *r);   /* harmless twice; releases the lock */
/* 1 if another open file description holds the recording's lock on the
 * samples.jsonl open as fd (a writer is still at work), 0 if not, -errno. */
int wm_recorder_lock_held(int fd);

/* The recording as a sink of the meter (record_sink.c, meter/meter.h):
 * opens dir at begin (refusing an existing recording), writes meta.json at
 * begin and end and one samples.jsonl line per sample. 0 or -ENOMEM. */
struct wm_sink;
int wm_record_sink_new(const char *dir, struct wm_sink *out);
/* A meter with the recording composed in (record_meter.c): the recording
 * sink first when c->output_dir is set, then sinks (the exporter's), handed
 * to wm_meter_start_sinks, which owns them all from then on, also on
 * failure. wm_meter_start (wattmeter.h) is this without extra sinks. */
struct wm_meter_config;
struct wm_meter;
int wm_meter_start_recorded(const struct wm_meter_config *c, const struct wm_sink *sinks, size_t n_sinks,
			    struct wm_meter **out, char *err, size_t errlen);

/* ---- reader ---------------------------------------------------------------- */
typedef struct wm_recording wm_recording;

/* Reads DIR/meta.json and DIR/samples.jsonl. Returns 0 or -errno with a
 * message naming the file, the line and what to do: -ENOENT for a missing
 * folder, meta.json or samples.jsonl; -ENOTSUP for a newer schema version;
 * -EBADMSG for damaged data (a malformed line other than a cut last one). */
int wm_recording_open(const char *dir, wm_recording **out, char *err, size_t errlen);
/* The same read, for the summaries only (summary JSON and text, compare,
 * carbon): one streaming pass that keeps the totals and no columns, so its
 * memory does not grow with the recording's length (a recording larger than
 * memory is reported). The columns, the details, windows and the HTML
 * report need wm_recording_open. */
int wm_recording_open_summary(const char *dir, wm_recording **out, char *err, size_t errlen);
/* The same reader on meta.json and samples.jsonl held in memory (the fuzz
 * harness; tests). label names the recording in messages. meta and samples
 * are read during the call only (everything is parsed into *out). */
int wm_recording_parse(const char *label, const char *meta, size_t meta_len, const char *samples,
		       size_t samples_len, wm_recording **out, char *err, size_t errlen);
/* The same with every line parsed by jansson, none by the reader's fast
 * path for the writer's own line shape: fuzz/fuzz_reader_diff.c checks that
 * both give the same recording and the same errors. */
int wm_recording_parse_jansson(const char *label, const char *meta, size_t meta_len, const char *samples,
			       size_t samples_len, wm_recording **out, char *err, size_t errlen);
/* The summary-only read (wm_recording_open_summary) on memory: the fuzz
 * harness checks that its summaries and errors are the full read's. */
int wm_recording_parse_summary(const char *label, const char *meta, size_t meta_len, const char *samples,
			       size_t samples_len, wm_recording **out, char *err, size_t errlen);
void wm_recording_free(wm_recording *r);

/* The machine-readable summary (the object `wattmeter report --json` prints),
 * appended to out as JSON. See docs/recording.md "Summary". */
int wm_recording_summary_json(const wm_recording *r, wm_buf *out);
/* The human summary (what `wattmeter report DIR` prints), appended to out.
 * top_n: how many processes to list. */
int wm_recording_summary_text(const wm_recording *r, int top_n, wm_buf *out);
/* Time series as JSON columns: {"t_s":[...], "energy_j.cpu":[...],
 * "power_w.cpu":[...], "cpu_util":[...], "attributed_j.cpu":[...], ...};
 * absent values are null. For DataFrames. */
int wm_recording_columns_json(const wm_recording *r, wm_buf *out);

/* ---- carbon, cost, comparison (summary.c; carbon.h for the options) ------- */
struct wm_carbon_opts;
/* The machine's energy: the sum of the devices that do not overlap (psys
 * holds cpu and dram, so they are left out where psys exists). basis, if
 * not NULL, gets their names joined by " + ". */
double wm_recording_total_j(const wm_recording *r, wm_buf *basis);
/* The energy attributed to the measured processes, summed over the devices
 * split among processes (cpu, dram, gpuN; never psys). */
double wm_recording_attributed_j(const wm_recording *r);
/* Device k's average power: its energy over the span its samples cover
 * (not meta's duration_s, which may be longer when samples were cut short);
 * NAN when that span is not positive (only the baseline line). */
double wm_recording_avg_w(const wm_recording *r, size_t k);
/* "12.35 kJ (3.43 Wh)" and "12.3 W", as the text summary shows them. */
int wm_recording_fmt_energy(char *out, size_t len, double energy_j);
int wm_recording_fmt_power(char *out, size_t len, double power_w);
/* "12.3 s", or "3725.0 s = 1:02:05" from a minute up */
int wm_recording_fmt_duration(char *out, size_t len, double s);
/* The "carbon" object of the summary (docs/recording.md "Carbon and cost"). */
int wm_recording_carbon_json(const wm_recording *r, const struct wm_carbon_opts *o, wm_buf *out);
/* The summary JSON with the "carbon" object added as its last key. */
int wm_recording_summary_json_carbon(const wm_recording *r, const struct wm_carbon_opts *o, wm_buf *out);
/* The lines of the text summary on kWh, CO2e and cost. */
int wm_recording_carbon_text(const wm_recording *r, const struct wm_carbon_opts *o, wm_buf *out);
/* One job's recordings across ranks and nodes merged (job_report.c):
 * energy per node (from each node's node meter), per device, per rank,
 * total and span; JSON or text appended to out. DIRs are recordings or
 * folders of them. 0 or -errno with err. */
int wm_job_report(const char *const *dirs, size_t n, int as_json, wm_buf *out, char *err, size_t errlen);
/* Several recordings side by side: {"devices":[...],"runs":[{"dir":..,"summary":{..}}]} */
int wm_recording_compare_json(const wm_recording *const *recs, size_t n, const struct wm_carbon_opts *o,
			      wm_buf *out);
int wm_recording_compare_text(const wm_recording *const *recs, size_t n, const struct wm_carbon_opts *o,
			      wm_buf *out);
/* The device names of all recordings, first appearance first (borrowed;
 * the caller frees the array). */
int wm_recording_union_devices(const wm_recording *const *recs, size_t n, const char ***out, size_t *n_out);
/* What the text, JSON and HTML say when no grid intensity was given. */
extern const char wm_carbon_hint[];
/* ---- queries (query.c) ----------------------------------------------------- */
/* The per-sample details the summary folds away, as JSON:
 * {"rows": {"t_s":[...], "zones_energy_j.<label>":[...], "gauges.<dev>.<name>":[...]},
 *  "procs": {"row":[...], "t_s":[...], "pid":[...], "cpu_s":[...], ..., "energy_j.<dev>":[...]}}
 * rows: one element per complete sample line; procs: one per process per
 * process-tier line (row = its line's index). Absent values are null. */
int wm_recording_detail_json(const wm_recording *r, wm_buf *out, char *err, size_t errlen);
/* The energy spent between start_s and end_s (seconds since the start of the
 * recording; NAN = open), cut at sample boundaries: from the first line at or
 * after start_s to the last at or before end_s, as differences of the
 * cumulative counters (exact). JSON: {"start_s","end_s","duration_s",
 * "first_row","last_row","energy_j":{<dev>, <dev>_attributed},
 * "processes":{"<pid>":{<dev>: J}}}. -EINVAL start > end, -ERANGE no line in
 * the window, -ENODATA no line at all; each with a message. */
int wm_recording_window_json(const wm_recording *r, double start_s, double end_s, wm_buf *out,
			     char *err, size_t errlen);

#endif
