/* jsonl_read.h — reading a recording's append-only JSON-lines files
 * (windows.jsonl, requests.jsonl) the one way (not installed).
 *
 * The files are written whole line by whole line (base/jsonl.h): a last
 * line without '\n' or that does not parse (a killed run) is dropped and
 * reported truncated; a bad line before the last is damage (EBADMSG naming
 * its number). The first line is the header {"<version_key>": N, ...}; a
 * higher N than the reader knows is ENOTSUP (update wattmeter).
 */
#ifndef WM_RECORDING_JSONL_READ_H
#define WM_RECORDING_JSONL_READ_H

#include <jansson.h>
#include <stddef.h>

/* Called with each line after the header (borrowed: incref to keep). A
 * negative return stops the read and is returned. */
typedef int (*wm_jsonl_line_fn)(void *ctx, json_t *line);

/* Reads name in the folder dfd (dir: for messages). *found = 0 and 0
 * returned when the file does not exist. *header: a new reference to the
 * header line, or NULL. 0 or -errno with the fix in err. */
int wm_jsonl_read(int dfd, const char *dir, const char *name, const char *version_key, int max_version,
		  json_t **header, wm_jsonl_line_fn fn, void *ctx, int *found, int *truncated, char *err,
		  size_t errlen);

/* The last complete line of samples.jsonl that parses and has energy_j
 * (NULL if none): read from the end, 1 MiB at most. */
json_t *wm_last_sample_line(int dfd);

/* {"total","mean","p50","p99"} of v[n] (nearest-rank percentiles; v is
 * sorted in place); zeros for n = 0. */
json_t *wm_stats_json(double *v, size_t n);

#endif
