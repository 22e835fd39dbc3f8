/* util.h — small building blocks shared by every module.
 *
 * - wm_buf: a growable, always NUL-terminated byte buffer with checked growth,
 *   used for JSON and metrics text (never sprintf into fixed arrays).
 * - wm_err: fill a caller's error buffer (may be NULL) and return -errno.
 * - read helpers: bounded reads on kept file descriptors, EINTR retried,
 *   truncation detected.
 * - parse helpers: strict unsigned/signed/double parsing with end pointer and
 *   errno checks; partial parses are rejected.
 */
#ifndef WM_UTIL_H
#define WM_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- growable buffer ---------------------------------------------------- */
/* Errors are sticky, as in SQLite's sqlite3_str: the first failure (ENOMEM)
 * is remembered, every later append is a no-op returning it, and the writer
 * checks wm_buf_error() once at the end instead of chaining return codes:
 *
 *     wm_buf_puts(b, "{\"t_s\":");
 *     wm_buf_json_fixed(b, t_s, 6);
 *     ...
 *     return wm_buf_error(b);
 *
 * Every append still returns 0 or the error, for callers that stop early. */
typedef struct wm_buf {
	char *data;   /* NUL-terminated; NULL until first append */
	size_t len;   /* bytes used, excluding the NUL */
	size_t cap;   /* bytes allocated */
	int err;      /* first error (-ENOMEM), 0 if none; cleared by reset */
} wm_buf;

static inline int wm_buf_error(const wm_buf *b) { return b->err; }

void wm_buf_init(wm_buf *b);
void wm_buf_free(wm_buf *b);            /* harmless on an initialised empty buffer */
void wm_buf_reset(wm_buf *b);           /* len = 0, keeps the allocation */
int wm_buf_reserve(wm_buf *b, size_t extra);            /* 0 or -ENOMEM */
int wm_buf_append(wm_buf *b, const char *s, size_t n);  /* 0 or -ENOMEM */
int wm_buf_puts(wm_buf *b, const char *s);
int wm_buf_printf(wm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, escaping control
 * characters and invalid UTF-8 bytes (as \u00XX) so the output always parses. */
int wm_buf_json_str(wm_buf *b, const char *s);
/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid
 * (overlong forms, surrogates, code points above U+10FFFF, a cut sequence:
 * a NUL is never a continuation byte). Shared by every writer that repairs
 * or escapes text (JSON, Prometheus labels, HTML). */
size_t wm_utf8_seq_len(const unsigned char *s);
/* Appends a finite double in the shortest round-tripping form ("%.17g" trimmed
 * to what is needed); NaN and infinities become JSON null. */
int wm_buf_json_double(wm_buf *b, double v);

/* Appends v with `decimals` (0..6) fixed decimals, trailing zeros trimmed
 * ("1.5", "2", "-0.000001"); NaN and infinities become null; |v| >= 9e12 or
 * other decimals fall back to printf. */
int wm_buf_json_fixed(wm_buf *b, double v, int decimals);

/* ---- errors --------------------------------------------------------------- */
/* Formats into err (if err && errlen) and returns rc (a negative errno). */
int wm_err(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- I/O ----------------------------------------------------------------- */
/* pread the whole small file on fd from offset 0 into buf (size bytes incl. the
 * NUL) with one system call: a short read is the end of the file, as it is
 * for sysfs attributes, procfs seq files and regular files. Returns bytes
 * read (>= 0), -EOVERFLOW if the file did not fit, or -errno. buf is always
 * NUL-terminated. EINTR is retried. */
ssize_t wm_pread_all(int fd, char *buf, size_t size);
/* openat(dirfd, path, O_RDONLY|O_CLOEXEC) then wm_pread_all, then close. */
ssize_t wm_read_file_at(int dirfd, const char *path, char *buf, size_t size);
/* Reads a whole file of any size into b (appending). Returns 0 or -errno. */
int wm_read_file_buf_at(int dirfd, const char *path, wm_buf *b);
/* write all bytes, retrying EINTR and short writes. 0 or -errno. */
int wm_write_all(int fd, const void *data, size_t n);
/* mkdir -p with mode 0755 (umask applies); 0 or -errno. */
int wm_mkdir_p(const char *path);

/* ---- parsing ------------------------------------------------------------- */
/* Parse an unsigned decimal integer. Leading spaces allowed; trailing
 * whitespace allowed only if allow_trailing_ws; anything else fails with
 * -EINVAL, overflow with -ERANGE. *end (optional) gets the stop position. */
int wm_parse_u64(const char *s, uint64_t *out, const char **end);
int wm_parse_i64(const char *s, int64_t *out, const char **end);
/* Parses a whole string (surrounding whitespace allowed) as u64 / double. */
int wm_parse_u64_full(const char *s, uint64_t *out);
int wm_parse_double_full(const char *s, double *out);

/* ---- time ---------------------------------------------------------------- */
uint64_t wm_now_mono_ns(void);          /* CLOCK_MONOTONIC */
double wm_now_wall_s(void);             /* CLOCK_REALTIME as seconds since epoch */
/* ISO 8601 UTC with milliseconds, e.g. 2026-11-25T12:00:00.123Z; out >= 32 bytes */
void wm_format_utc(double wall_s, char *out, size_t outlen);

#define WM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
