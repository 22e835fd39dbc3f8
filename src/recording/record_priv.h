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
	char *method;        /* "measured" or "modeled" as meta.json says; "unknown" if absent */
	char *source;        /* e.g. "rapl-powercap", "cpu-model"; "" if absent */
	double energy_j;     /* last cumulative energy seen (0 before any) */
	double attributed_j; /* last cumulative attributed energy seen (0 before any) */
	double peak_w;       /* highest power_w seen; NAN if none */
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
	double self_cpu_s;   /* NAN if unknown */
	char *cgroup_path;   /* meta.json "cgroup".path (--cgroup), NULL if none */
	int cgroup_version;
	double cgroup_cpu_s; /* the last "cgroup_cpu_s" of a sample line, NAN if none */

	/* rows: n_rows x stride doubles, NAN where a line lacked the value */
	double *rows;
	size_t n_rows, cap_rows, stride;

	struct wm_rec_proc *procs;
	size_t n_procs, cap_procs;
	size_t *ptab;        /* open addressing on pid: index + 1, 0 = empty */
	size_t ptab_cap;     /* a power of two, or 0 */
};

/* gaps.c: the gaps of each device (docs/recording.md "Gaps"). */
struct json_t;
int wm_rec_gaps_meta_device(struct wm_rec_dev *d, const struct json_t *dev);
int wm_rec_gaps_take_line(struct wm_recording *r, const struct json_t *o, double t_s, double prev_t_s);
bool wm_rec_gaps_in_gap(const struct wm_rec_dev *d);
void wm_rec_gaps_finish(struct wm_recording *r, double last_t_s);
void wm_rec_gaps_free(struct wm_rec_dev *d);
int wm_rec_gaps_json(const struct wm_recording *r, wm_buf *b);  /* ,"gaps":{...} */
int wm_rec_gaps_text(const struct wm_recording *r, wm_buf *b);
int wm_rec_gaps_line(const struct wm_recording *r, size_t k, wm_buf *b);

static inline double wm_rec_cell(const struct wm_recording *r, size_t row, size_t col)
{
	return r->rows[row * r->stride + col];
}

static inline size_t wm_rec_dcol(size_t dev, int which)
{
	return WM_COL_FIXED + dev * WM_DCOL_N + (size_t)which;
}

#endif
