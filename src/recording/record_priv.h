/* record_priv.h — the reader's in-memory recording, shared by record_read.c
 * (which fills it from meta.json and samples.jsonl) and summary.c (which
 * renders the summary JSON, the human text and the columns). Not installed.
 *
 * Nothing here holds a parsed JSON tree: each sample line is reduced to one
 * row of doubles and to updates of the per-process and per-device totals, so
 * memory grows by a few dozen bytes per line, whatever the line held.
 */
#ifndef WM_RECORD_PRIV_H
#define WM_RECORD_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recording/record.h"

/* A device from meta.json "devices" (cpu, dram, psys, gpu0 ...). */
struct wm_rec_dev {
	char *name;
	size_t name_len;     /* strlen(name) */
	char *method;        /* "measured" or "modeled" as meta.json says; "unknown" if absent */
	char *source;        /* e.g. "rapl-powercap", "cpu-model"; "" if absent */
	double energy_j;     /* last cumulative energy seen (0 before any) */
	double attributed_j; /* last cumulative attributed energy seen (0 before any) */
	double peak_w;       /* highest power_w seen; NAN if none */
	double energy_t_s;   /* t_s of the line that gave energy_j (NAN before any) */
	bool proc_energy_seen; /* some process carried energy for this device */
	bool has_attr;       /* the summary reports <name>_attributed (cpu, dram, or seen) */
	/* GPUs (kind "gpu"): identity from meta.json "devices"[].info */
	char *kind;          /* "cpu", "gpu" ...; "" if absent */
	char *source_detail; /* "energy-counter", "power-integrated-instant" ...; "" if absent */
	int used_by_run;     /* 1, 0, or -1 when meta.json does not say */
	int64_t index;       /* info.index, -1 if absent */
	char *info_name;     /* info.name, "" if absent */
	char *info_uuid;     /* info.uuid, "" if absent */
	struct wm_rec_gaps *gaps; /* its gaps (gaps.c); NULL before meta is read */
};

/* A sensor from meta.json "sensors", for the human summary's notes. */
struct wm_rec_sensor {
	char *name;
	char *state;
	char *detail;
	char *fix;
};

/* A process seen in "procs" or "new_procs". */
struct wm_rec_proc {
	int64_t pid;
	char *cmdline;       /* from new_procs; NULL if never given */
	char *comm;          /* latest from procs; NULL if never given */
	double *energy_j;    /* [n_devs] last cumulative attributed energy seen */
	bool *energy_seen;   /* [n_devs] */
	double cpu_s;        /* sum of procs[].cpu_s */
	uint64_t peak_rss_bytes;
	bool included;       /* new_procs said "included": outside the command's tree */
	int64_t rank;        /* new_procs "rank" (a job's rank), -1 if none */
	char *container;     /* new_procs "container", NULL none */
	char *pod;           /* new_procs "pod", NULL none */
	int64_t nspid;       /* new_procs "nspid", -1 none */
};

/* A span of sample lines that could not be written (docs/recording.md). */
struct wm_rec_unwritten {
	double from_s, to_s;  /* t_s of its first and last line */
	double samples;       /* how many lines */
	char *error;          /* why ("No space left on device"), "" if not said */
	bool resumed;         /* lines were written after it */
};

/* Columns of one row (a sample line); then 3 per device. */
enum { WM_COL_T = 0, WM_COL_CPU_UTIL, WM_COL_SELF_CPU, WM_COL_MEM_USED, WM_COL_FIXED };
enum { WM_DCOL_ENERGY = 0, WM_DCOL_POWER, WM_DCOL_ATTR, WM_DCOL_N };

/* A set of equal-length named columns of doubles (NaN = absent), grown
 * while the lines are read: a name first seen on row k is NaN before. */
struct wm_rec_col {
	char *name;
	size_t nlen;    /* strlen(name) */
	double *v;
};
struct wm_rec_cols {
	struct wm_rec_col *c;
	size_t n, cap;  /* columns */
	size_t len;     /* rows in every column */
	size_t rcap;    /* rows allocated in every column */
	size_t hint;    /* where the next name is looked for first (lines repeat their keys' order) */
};
/* One process row of dprocs, for the sorted index. */
struct wm_rec_pidx {
	double pid, row;
	size_t idx;
};

struct wm_recording {
	char *dir;
	int64_t schema_version;

	struct wm_rec_dev *devs;
	size_t n_devs;
	struct wm_rec_sensor *sensors;
	size_t n_sensors;

	char **command;      /* meta "command" strings; has_command false if absent */
	size_t n_command;
	bool has_command;
	char **warnings;     /* meta "warnings" strings, shown in the text */
	size_t n_warnings;
	char *start_utc;     /* NULL if absent */
	char *model_name;    /* meta "model"."name", NULL if absent */
	bool has_exit;
	int64_t exit_status;
	bool complete;
	bool truncated;
	/* An incomplete recording whose writer still holds its lock: still
	 * running, not killed. writer_pid from meta.json (0 if absent). */
	bool running;
	int64_t writer_pid;
	/* Spans of sample lines the writer could not write (disk full ...):
	 * from meta.json "unwritten" when it has the list (the run ended),
	 * else from the lines' "unwritten" markers. */
	struct wm_rec_unwritten *unwritten;
	size_t n_unwritten, cap_unwritten;
	bool unwritten_from_meta;
	double duration_s;
	double period_s;     /* meta "period_s"; NAN if absent */
	/* The samples' own span: t_s of the last complete line (NAN if none).
	 * Averages are taken over it, not over meta's duration_s: samples cut
	 * short under a complete meta.json (disk full, a copy taken while the
	 * run wrote) cover less than the run. samples_short says so. */
	double samples_end_s;
	bool samples_short;
	double self_cpu_s;   /* NAN if unknown */
	char *cgroup_path;   /* meta.json "cgroup".path (--cgroup), NULL if none */
	int cgroup_version;
	double cgroup_cpu_s; /* the last "cgroup_cpu_s" of a sample line, NAN if none */

	/* rows: stride columns of n_rows doubles (column c at rows + c *
	 * cap_rows), NAN where a line lacked the value */
	double *rows;
	size_t n_rows, cap_rows, stride;

	struct wm_rec_proc *procs;
	size_t n_procs, cap_procs;
	size_t *ptab;        /* open addressing on pid: index + 1, 0 = empty */
	size_t ptab_cap;     /* a power of two, or 0 */

	/* What the summary folds away, taken in the same one pass over the
	 * lines (query.c): drows, one element per row (t_s, zones_energy_j.*,
	 * gauges.<dev>.*); dprocs, one per process per process-tier line (row,
	 * t_s, pid, cpu_s ..., energy_j.<dev>); pidx, dprocs' rows sorted by
	 * (pid, row) for the windows' per-process energies. Every query reads
	 * these and rows, never the file again. */
	struct wm_rec_cols drows, dprocs;
	struct wm_rec_pidx *pidx;
	/* every line through jansson, none through the fast path
	 * (wm_recording_parse_jansson: the differential fuzzer) */
	bool no_fast;
	/* read for the summary only (wm_recording_open_summary): rows holds
	 * the last line's row alone (n_rows still counts the lines), no
	 * details; the summaries read the totals above, nothing else */
	bool summary_only;
	double last_self_cpu_s; /* the last line's self_cpu_s that had one, NAN if none */
};

struct json_t;
/* query.c: the details of a line taken into drows/dprocs (after the line
 * was validated and its row added), the index built once all are read, and
 * the columns freed. 0 or -ENOMEM. */
int wm_rec_detail_take_line(struct wm_recording *r, const struct json_t *o, double t_s);
/* For a line scanned by the fast path (record_read.c takes its details in
 * the same order): a row of NaN added to every column of s (0 or -ENOMEM),
 * and the value of the column named a + b (al, bl bytes) on the last row,
 * the column created (NaN before) if new (0, -ENOMEM). */
int wm_rec_cols_row(struct wm_rec_cols *s);
int wm_rec_cols_set(struct wm_rec_cols *s, const char *a, size_t al, const char *b, size_t bl, double v);
int wm_rec_detail_finish(struct wm_recording *r);
void wm_rec_detail_free(struct wm_recording *r);
const struct wm_rec_col *wm_rec_cols_find(const struct wm_rec_cols *s, const char *name);
/* The first row whose t_s >= t (n_rows if none), the last whose t_s <= t
 * ((size_t)-1 if none): binary search, t_s never goes back. */
size_t wm_rec_row_at_or_after(const struct wm_recording *r, double t);
size_t wm_rec_row_at_or_before(const struct wm_recording *r, double t);

/* gaps.c: the gaps of each device (docs/recording.md "Gaps"). */
int wm_rec_gaps_meta_device(struct wm_rec_dev *d, const struct json_t *dev);
int wm_rec_gaps_take_line(struct wm_recording *r, const struct json_t *o, double t_s, double prev_t_s);
bool wm_rec_gaps_in_gap(const struct wm_rec_dev *d);
void wm_rec_gaps_finish(struct wm_recording *r, double last_t_s);
void wm_rec_gaps_free(struct wm_rec_dev *d);
int wm_rec_gaps_json(const struct wm_recording *r, wm_buf *b);  /* ,"gaps":{...} */
int wm_rec_gaps_text(const struct wm_recording *r, wm_buf *b);
int wm_rec_gaps_line(const struct wm_recording *r, size_t k, wm_buf *b);
/* ---- reading lines (record_read.c) ---- */

/* Bounds on what the reader holds, whatever the files are: a line longer
 * than this is damage (a sample line with 100,000 processes is about 25 MB;
 * parsing one costs about 12 times its size), and so is a meta.json larger
 * than WM_REC_MAX_META_BYTES (a real one is a few kB). */
#define WM_REC_MAX_LINE_BYTES ((size_t)32 << 20)
#define WM_REC_MAX_META_BYTES ((size_t)16 << 20)

/* The lines of samples.jsonl, from a file (read in chunks, never whole) or
 * from memory. */
struct wm_rec_lines {
	int fd;              /* -1 when reading mem */
	const char *mem;
	size_t mem_len, mem_pos;
	char *buf;           /* unread bytes are buf[beg, end) */
	size_t cap, beg, end, scanned;
	bool eof;
};

/* Opens dir_fd/name for reading if it is a regular file: a FIFO would block
 * and a character device (/dev/zero) never ends, so both are refused with
 * -EINVAL (opened O_NONBLOCK, so a FIFO without a writer does not hang
 * here). 0 with *fd_out, or -errno. */
int wm_rec_open_regular(int dir_fd, const char *name, int *fd_out);
void wm_rec_lines_fd(struct wm_rec_lines *l, int fd);   /* takes fd */
void wm_rec_lines_mem(struct wm_rec_lines *l, const char *data, size_t n);
/* The next line, with its '\n' if it has one (only the last may lack it):
 * 1 and *line, *n (valid until the next call); 0 at the end; -EFBIG for a
 * line over WM_REC_MAX_LINE_BYTES; -errno on a read error. */
int wm_rec_lines_next(struct wm_rec_lines *l, const char **line, size_t *n);
void wm_rec_lines_close(struct wm_rec_lines *l);        /* closes the fd */

static inline double wm_rec_cell(const struct wm_recording *r, size_t row, size_t col)
{
	return r->rows[col * r->cap_rows + row];
}

static inline size_t wm_rec_dcol(size_t dev, int which)
{
	return WM_COL_FIXED + dev * WM_DCOL_N + (size_t)which;
}

#endif
