/* util.c — see util.h. */
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void wm_buf_init(wm_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
}

void wm_buf_free(wm_buf *b)
{
	if (!b)
		return;
	free(b->data);
	wm_buf_init(b);
}

void wm_buf_reset(wm_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

int wm_buf_reserve(wm_buf *b, size_t extra)
{
	if (b->err)
		return b->err;
	if (extra > SIZE_MAX - b->len - 1)
		return b->err = -ENOMEM;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return b->err = -ENOMEM;
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (!p)
		return b->err = -ENOMEM;
	if (!b->data)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
	return 0;
}

int wm_buf_append(wm_buf *b, const char *s, size_t n)
{
	int rc = wm_buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int wm_buf_puts(wm_buf *b, const char *s)
{
	return wm_buf_append(b, s, strlen(s));
}

int wm_buf_printf(wm_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return b->err ? b->err : (b->err = -EINVAL);
	int rc = wm_buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	int m = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (m != n)
		return b->err = -EINVAL;
	b->len += (size_t)n;
	return 0;
}

/* Length of a valid UTF-8 sequence starting at s, or 0 if invalid. */
size_t wm_utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4;
	else
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	/* reject overlongs and surrogates */
	if (n == 3 && c == 0xE0 && s[1] < 0xA0)
		return 0;
	if (n == 3 && c == 0xED && s[1] >= 0xA0)
		return 0;
	if (n == 4 && c == 0xF0 && s[1] < 0x90)
		return 0;
	if (n == 4 && c == 0xF4 && s[1] >= 0x90)
		return 0;
	return n;
}

int wm_buf_json_str(wm_buf *b, const char *s)
{
	wm_buf_append(b, "\"", 1);
	const unsigned char *p = (const unsigned char *)s;
	while (!wm_buf_error(b) && *p) {
		unsigned char c = *p;
		char esc[8];
		/* Runs of printable ASCII, the common case, are copied in one go. */
		size_t run = 0;
		while (p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
			run++;
		if (run) {
			wm_buf_append(b, (const char *)p, run);
			p += run;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			wm_buf_append(b, esc, 2);
			p++;
		} else if (c < 0x20 || c == 0x7f) {
			const char *named = NULL;
			switch (c) {
			case '\n': named = "\\n"; break;
			case '\t': named = "\\t"; break;
			case '\r': named = "\\r"; break;
			default: break;
			}
			if (named)
				wm_buf_puts(b, named);
			else
				wm_buf_printf(b, "\\u%04x", c);
			p++;
		} else {
			size_t n = wm_utf8_seq_len(p);
			if (n == 0) {
				/* Not UTF-8 (e.g. a Latin-1 argv): keep the byte visible. */
				wm_buf_printf(b, "\\u%04x", c);
				p++;
			} else {
				wm_buf_append(b, (const char *)p, n);
				p += n;
			}
		}
	}
	wm_buf_append(b, "\"", 1);
	return wm_buf_error(b);
}

int wm_buf_json_double(wm_buf *b, double v)
{
	if (!isfinite(v))
		return wm_buf_puts(b, "null");
	char tmp[40];
	/* Shortest precision that round-trips: try 9..17 significant digits. */
	for (int prec = 9; prec <= 17; prec++) {
		int n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (n < 0 || (size_t)n >= sizeof tmp)
			return -EINVAL;
		if (strtod(tmp, NULL) == v)
			break;
	}
	return wm_buf_puts(b, tmp);
}

/* Integer formatting, not printf: this runs a dozen times per sample and
 * printf's float path dominated the sampler's profile. */
int wm_buf_json_fixed(wm_buf *b, double v, int decimals)
{
	static const uint64_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
	if (!isfinite(v))
		return wm_buf_puts(b, "null");
	if (decimals < 0 || decimals > 6 || fabs(v) >= 9e12) {
		char tmp[64];
		int n = snprintf(tmp, sizeof tmp, "%.*f", decimals < 0 ? 0 : decimals, v);
		if (n < 0 || (size_t)n >= sizeof tmp)
			return wm_buf_json_double(b, v);
		return wm_buf_append(b, tmp, (size_t)n);
	}
	uint64_t q = (uint64_t)llround(fabs(v) * (double)pow10[decimals]);
	uint64_t ip = q / pow10[decimals], fp = q % pow10[decimals];
	char tmp[48];
	char *end = tmp + sizeof tmp, *p = end;
	int nd = decimals;
	while (nd > 0 && fp % 10 == 0) {
		fp /= 10;
		nd--;
	}
	if (nd > 0) {
		for (int i = 0; i < nd; i++) {
			*--p = (char)('0' + fp % 10);
			fp /= 10;
		}
		*--p = '.';
	}
	do {
		*--p = (char)('0' + ip % 10);
		ip /= 10;
	} while (ip);
	if (v < 0 && q != 0)
		*--p = '-';
	return wm_buf_append(b, p, (size_t)(end - p));
}

int wm_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		/* truncation of an error message is acceptable; it stays terminated */
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

ssize_t wm_pread_all(int fd, char *buf, size_t size)
{
	if (size == 0)
		return -EINVAL;
	/* One pread of size-1 bytes: sysfs attributes and procfs seq files hand
	 * over everything they have in one read when the buffer is large enough,
	 * and so do regular files, so a short read is the end of the file. This
	 * halves the system calls of the hot path (a second read only to see 0).
	 * A read that fills the buffer may have been cut: -EOVERFLOW. */
	ssize_t n;
	do
		n = pread(fd, buf, size - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if ((size_t)n == size - 1 && size > 1) {
		char probe;
		ssize_t more;
		do
			more = pread(fd, &probe, 1, (off_t)n);
		while (more < 0 && errno == EINTR);
		if (more != 0)
			return -EOVERFLOW;
	}
	return n;
}

ssize_t wm_read_file_at(int dirfd, const char *path, char *buf, size_t size)
{
	int fd;
	do
		fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	ssize_t n = wm_pread_all(fd, buf, size);
	close(fd);
	return n;
}

int wm_read_file_buf_at(int dirfd, const char *path, wm_buf *b)
{
	int fd;
	do
		fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	int rc = 0;
	for (;;) {
		rc = wm_buf_reserve(b, 4096);
		if (rc)
			break;
		ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
	close(fd);
	return rc;
}

int wm_write_all(int fd, const void *data, size_t n)
{
	const char *p = data;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int wm_mkdir_p(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);
	if (n == 0)
		return -EINVAL;
	if (n >= sizeof tmp)
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] == '/' || tmp[i] == '\0') {
			char save = tmp[i];
			tmp[i] = '\0';
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				return -errno;
			tmp[i] = save;
		}
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

int wm_parse_u64(const char *s, uint64_t *out, const char **end)
{
	s = skip_ws(s);
	if (*s < '0' || *s > '9')
		return -EINVAL;
	/* A digit loop with an exact overflow check: strtoull's generality
	 * (locale, bases, signs) was the top of the sampler's profile. */
	uint64_t v = 0;
	const char *p = s;
	/* 19 digits cannot overflow (10^19 - 1 < 2^64): no check for them,
	 * then the exact check for a 20th and beyond. */
	for (int i = 0; i < 19 && *p >= '0' && *p <= '9'; i++, p++)
		v = v * 10 + (unsigned)(*p - '0');
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	if (end)
		*end = p;
	return 0;
}

int wm_parse_i64(const char *s, int64_t *out, const char **end)
{
	s = skip_ws(s);
	const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
	if (*d < '0' || *d > '9')
		return -EINVAL;
	errno = 0;
	char *e;
	long long v = strtoll(s, &e, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (e == s)
		return -EINVAL;
	*out = (int64_t)v;
	if (end)
		*end = e;
	return 0;
}

int wm_parse_u64_full(const char *s, uint64_t *out)
{
	const char *e;
	int rc = wm_parse_u64(s, out, &e);
	if (rc)
		return rc;
	return *skip_ws(e) ? -EINVAL : 0;
}

int wm_parse_double_full(const char *s, double *out)
{
	s = skip_ws(s);
	if (!*s)
		return -EINVAL;
	errno = 0;
	char *e;
	double v = strtod(s, &e);
	if (e == s || errno == ERANGE || !isfinite(v))
		return errno == ERANGE ? -ERANGE : -EINVAL;
	if (*skip_ws(e))
		return -EINVAL;
	*out = v;
	return 0;
}

uint64_t wm_now_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double wm_now_wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void wm_format_utc(double wall_s, char *out, size_t outlen)
{
	time_t sec = (time_t)wall_s;
	int ms = (int)((wall_s - (double)sec) * 1000.0);
	if (ms < 0)
		ms = 0;
	if (ms > 999)
		ms = 999;
	struct tm tm;
	gmtime_r(&sec, &tm);
	char base[24];
	if (strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		base[0] = '\0';
	(void)snprintf(out, outlen, "%s.%03dZ", base, ms);
}
