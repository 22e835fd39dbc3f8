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
typedef struct wm_recorder {
	int dir_fd;        /* O_PATH|O_DIRECTORY|O_CLOEXEC on the recording folder */
	int samples_fd;    /* samples.jsonl, O_WRONLY|O_APPEND|O_CLOEXEC */
	char dir[4096];
} wm_recorder;

/* Creates dir (mkdir -p), refuses a folder that already holds a recording
 * (-EEXIST) or that cannot be written (-EACCES, -EROFS ...), and creates
 * samples.jsonl. All with a message that names the folder and the fix. */
int wm_recorder_open(wm_recorder *r, const char *dir, char *err, size_t errlen);
/* Writes meta.json atomically (meta.json.tmp, fsync, rename). */
int wm_recorder_write_meta(wm_recorder *r, const char *json, size_t n);
/* Appends line (without newline) plus '\n' in one write. */
int wm_recorder_append(wm_recorder *r, const char *line, size_t n);
void wm_recorder_close(wm_recorder *r);   /* harmless twice */

/* The recording as a sink of the meter (record_sink.c, meter/meter.h):
 * opens dir at begin (refusing an existing recording), writes meta.json at
 * begin and end and one samples.jsonl line per sample. 0 or -ENOMEM. */
struct wm_sink;
int wm_record_sink_new(const char *dir, struct wm_sink *out);

/* ---- reader ---------------------------------------------------------------- */
typedef struct wm_recording wm_recording;

/* Reads DIR/meta.json and DIR/samples.jsonl. Returns 0 or -errno with a
 * message naming the file, the line and what to do: -ENOENT for a missing
 * folder, meta.json or samples.jsonl; -ENOTSUP for a newer schema version;
 * -EBADMSG for damaged data (a malformed line other than a cut last one). */
int wm_recording_open(const char *dir, wm_recording **out, char *err, size_t errlen);
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

#endif
