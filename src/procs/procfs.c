/* procfs.c — see procfs.h.
 *
 * Parsers work on NUL-terminated text and never do I/O. They are strict:
 * a field we use that is not a complete decimal number (or that overflows
 * 64 bits) rejects the whole input, because a half-parsed line would feed a
 * wrong counter into the energy attribution. Lines we do not use are skipped
 * without being looked at, so new kernel fields never break us.
 *
 * Readers open files relative to a procfs root dirfd (root.h) with
 * O_RDONLY|O_CLOEXEC and read them into fixed buffers with wm_pread_all
 * (EINTR retried, truncation reported as -EOVERFLOW). No static buffers: the
 * per-pid readers keep their buffers on the stack so any thread may call them.
 */
#include "procs/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

/* ---- small text helpers ----------------------------------------------------- */

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static const char *next_line(const char *p)
{
	const char *nl = strchr(p, '\n');
	return nl ? nl + 1 : NULL;
}

/* An integer token of /proc/<pid>/stat: optional '-', then digits, ended by a
 * space, a newline or the end of the text. Negative values are parsed with
 * strtoll, others with strtoull, so both the full u64 range (e.g. rsslim) and
 * the signed fields (cutime, tty_nr, nice) parse; anything beyond either range
 * is -ERANGE. *neg tells which of *u / *s holds the value. */
static int stat_token(const char **pp, int *neg, uint64_t *u, int64_t *s)
{
	const char *p = *pp;
	const char *e = NULL;
	int rc;
	if (*p == '-') {
		if (p[1] < '0' || p[1] > '9')
			return -EINVAL;
		rc = wm_parse_i64(p, s, &e);
		*neg = 1;
		*u = 0;
	} else {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		rc = wm_parse_u64(p, u, &e);
		*neg = 0;
		*s = 0;
	}
	if (rc)
		return rc;
	if (*e != ' ' && *e != '\n' && *e != '\0')
		return -EINVAL;
	*pp = e;
	return 0;
}

/* ---- /proc/<pid>/stat ------------------------------------------------------- */

/* Last field we need: rss is field 24 (1-based, as in proc(5)). */
#define STAT_LAST_FIELD 24

int wm_parse_pid_stat(const char *text, wm_pid_stat *out)
{
	if (!text || !out)
		return -EINVAL;
	memset(out, 0, sizeof *out);

	/* Field 1: pid, then " (". */
	const char *e = NULL;
	uint64_t pid;
	if (text[0] < '0' || text[0] > '9' || wm_parse_u64(text, &pid, &e) || pid > INT_MAX ||
	    e[0] != ' ' || e[1] != '(')
		return -EINVAL;
	out->pid = (int)pid;

	/* Field 2: comm runs from the first '(' to the LAST ')': the name itself
	 * may hold spaces, '(' and ')' ("(a) b)"), while no later field can hold
	 * a ')'. fscanf("%d (%s)") gets this wrong, which is why we do not use it. */
	const char *open = e + 1;
	const char *close = strrchr(open, ')');
	if (!close)
		return -EINVAL;
	size_t clen = (size_t)(close - open - 1);
	if (clen >= sizeof out->comm)
		clen = sizeof out->comm - 1;   /* truncated name; documented in procfs.h */
	memcpy(out->comm, open + 1, clen);
	out->comm[clen] = '\0';

	/* Field 3: state, one character. */
	const char *p = close + 1;
	if (p[0] != ' ' || p[1] == '\0' || p[1] == ' ' || p[1] == '\n' || p[2] != ' ')
		return -EINVAL;
	out->state = p[1];
	p += 2;

	/* Fields 4..24, each preceded by exactly one space. */
	for (int field = 4; field <= STAT_LAST_FIELD; field++) {
		if (*p != ' ')
			return -EINVAL;   /* line ends early: a truncated read */
		p++;
		int neg;
		uint64_t u;
		int64_t s;
		int rc = stat_token(&p, &neg, &u, &s);
		if (rc)
			return -EINVAL;   /* not a number, or beyond 64 bits (-ERANGE) */
		switch (field) {
		case 4:  /* ppid: 0 for init and kthreadd */
			if (neg || u > INT_MAX)
				return -EINVAL;
			out->ppid = (int)u;
			break;
		case 10: /* minflt, unsigned long */
		case 12: /* majflt */
			if (neg)
				return -EINVAL;
			out->faults += u;
			break;
		case 14: /* utime, unsigned in the kernel */
			if (neg)
				return -EINVAL;
			out->utime_ticks = u;
			break;
		case 15: /* stime */
			if (neg)
				return -EINVAL;
			out->stime_ticks = u;
			break;
		case 16: /* cutime: printed signed (long); clamp a negative to 0 */
			out->cutime_ticks = neg ? 0 : u;
			break;
		case 17: /* cstime */
			out->cstime_ticks = neg ? 0 : u;
			break;
		case 20: /* num_threads */
			if (neg || u > INT_MAX)
				return -EINVAL;
			out->num_threads = (int)u;
			break;
		case 22: /* starttime, ticks after boot */
			if (neg)
				return -EINVAL;
			out->starttime_ticks = u;
			break;
		case 24: /* rss in pages, printed signed (get_mm_rss can dip below 0 transiently) */
			out->rss_pages = neg ? 0 : u;
			break;
		default:
			break;
		}
	}
	/* Later fields (vsize's successors, up to 52 today) are not needed. */
	return 0;
}

/* ---- /proc/stat ------------------------------------------------------------- */

int wm_parse_proc_stat(const char *text, wm_cpu_times *out, int *n_cpus)
{
	if (!text || !out || !n_cpus)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	int have_agg = 0;
	long count = 0;

	for (const char *line = text; line && *line; line = next_line(line)) {
		if (strncmp(line, "cpu", 3) != 0)
			continue;
		if (line[3] >= '0' && line[3] <= '9') {
			/* "cpuN": one per online CPU. Fields are not checked; a
			 * truncated read may cut the last such line. */
			if (count < INT_MAX)
				count++;
			continue;
		}
		if (line[3] != ' ' || have_agg)
			continue;
		/* "cpu  user nice system idle [iowait irq softirq steal guest guest_nice]".
		 * The first four exist on every kernel we could meet; the rest are
		 * taken when present. guest and guest_nice are already inside user
		 * and nice, so they are read past but never added. */
		uint64_t v[10] = {0};
		int n = 0;
		const char *p = line + 3;
		for (;;) {
			p = skip_blanks(p);
			if (*p == '\n' || *p == '\0')
				break;
			if (*p < '0' || *p > '9')
				return -EINVAL;
			uint64_t x;
			const char *e;
			int rc = wm_parse_u64(p, &x, &e);
			if (rc)
				return rc;
			if (*e != ' ' && *e != '\t' && *e != '\n' && *e != '\0')
				return -EINVAL;
			if (n < 10)
				v[n] = x;
			n++;
			p = e;
		}
		if (n < 4)
			return -EINVAL;
		out->user = v[0];
		out->nice = v[1];
		out->system = v[2];
		out->idle = v[3];
		out->iowait = v[4];
		out->irq = v[5];
		out->softirq = v[6];
		out->steal = v[7];
		/* Unsigned sums: wrap is defined; real counters are far from 2^64. */
		out->busy_ticks = out->user + out->nice + out->system + out->irq + out->softirq +
				  out->steal;
		out->total_ticks = out->busy_ticks + out->idle + out->iowait;
		have_agg = 1;
	}
	if (!have_agg)
		return -EINVAL;
	/* A /proc/stat without per-CPU lines (some containers' lxcfs views) still
	 * means at least one CPU. */
	*n_cpus = count > 0 ? (int)count : 1;
	return 0;
}

/* ---- "Key:   123 kB" files (smaps_rollup, meminfo) ----------------------------- */

struct kb_key {
	const char *name;
	uint64_t bytes;
	int found;
};

/* Scans every line "Name: <n> kB" and fills the keys asked for, converting kB
 * (KiB, as the kernel means it) to bytes. The first occurrence of a key wins.
 * A line whose key we want but whose value is not "<digits> kB" gives
 * -EINVAL, overflow -ERANGE; other lines (the smaps_rollup header, counts
 * without a unit such as HugePages_Total) are skipped unread. */
static int parse_kb_lines(const char *text, struct kb_key *keys, size_t nkeys)
{
	for (const char *line = text; line && *line; line = next_line(line)) {
		const char *colon = line;
		while (*colon && *colon != ':' && *colon != '\n')
			colon++;
		if (*colon != ':')
			continue;
		size_t klen = (size_t)(colon - line);
		struct kb_key *k = NULL;
		for (size_t i = 0; i < nkeys; i++) {
			if (strlen(keys[i].name) == klen && memcmp(keys[i].name, line, klen) == 0) {
				k = &keys[i];
				break;
			}
		}
		if (!k || k->found)
			continue;
		const char *p = skip_blanks(colon + 1);
		if (*p < '0' || *p > '9')
			return -EINVAL;
		uint64_t kb;
		const char *e;
		int rc = wm_parse_u64(p, &kb, &e);
		if (rc)
			return rc;
		p = skip_blanks(e);
		if (p == e || p[0] != 'k' || p[1] != 'B')
			return -EINVAL;
		p = skip_blanks(p + 2);
		if (*p != '\n' && *p != '\0')
			return -EINVAL;
		if (kb > UINT64_MAX / 1024)
			return -ERANGE;
		k->bytes = kb * 1024;
		k->found = 1;
	}
	return 0;
}

static int add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	if (a > UINT64_MAX - b)
		return -ERANGE;
	*out = a + b;
	return 0;
}

int wm_parse_smaps_rollup(const char *text, uint64_t *rss_bytes, uint64_t *pss_bytes,
			  uint64_t *uss_bytes)
{
	if (!text)
		return -EINVAL;
	enum { RSS, PSS, PCLEAN, PDIRTY, PHUGE };
	struct kb_key k[] = {
		[RSS] = { "Rss", 0, 0 },
		[PSS] = { "Pss", 0, 0 },
		[PCLEAN] = { "Private_Clean", 0, 0 },
		[PDIRTY] = { "Private_Dirty", 0, 0 },
		/* Private_Hugetlb exists since Linux 4.4 (hugetlbfs pages are
		 * not in Private_Clean/Dirty); absent means 0. */
		[PHUGE] = { "Private_Hugetlb", 0, 0 },
	};
	int rc = parse_kb_lines(text, k, WM_ARRAY_LEN(k));
	if (rc)
		return rc;
	if (!k[RSS].found || !k[PSS].found)
		return -EINVAL;   /* e.g. a zombie: the file is empty */
	uint64_t uss;
	if (add_u64(k[PCLEAN].bytes, k[PDIRTY].bytes, &uss) || add_u64(uss, k[PHUGE].bytes, &uss))
		return -ERANGE;
	if (rss_bytes)
		*rss_bytes = k[RSS].bytes;
	if (pss_bytes)
		*pss_bytes = k[PSS].bytes;
	if (uss_bytes)
		*uss_bytes = uss;
	return 0;
}

int wm_parse_meminfo(const char *text, uint64_t *total_bytes, uint64_t *available_bytes)
{
	if (!text)
		return -EINVAL;
	enum { TOTAL, AVAIL, FREE, BUFFERS, CACHED };
	struct kb_key k[] = {
		[TOTAL] = { "MemTotal", 0, 0 },
		[AVAIL] = { "MemAvailable", 0, 0 },
		[FREE] = { "MemFree", 0, 0 },
		[BUFFERS] = { "Buffers", 0, 0 },
		[CACHED] = { "Cached", 0, 0 },
	};
	int rc = parse_kb_lines(text, k, WM_ARRAY_LEN(k));
	if (rc)
		return rc;
	if (!k[TOTAL].found)
		return -EINVAL;
	uint64_t avail = k[AVAIL].bytes;
	if (!k[AVAIL].found) {
		/* Kernels before 3.14: the usual estimate. It overstates what is
		 * available (not all cache is reclaimable) but is what free(1) did. */
		if (add_u64(k[FREE].bytes, k[BUFFERS].bytes, &avail) ||
		    add_u64(avail, k[CACHED].bytes, &avail))
			return -ERANGE;
		if (avail > k[TOTAL].bytes)
			avail = k[TOTAL].bytes;
	}
	if (total_bytes)
		*total_bytes = k[TOTAL].bytes;
	if (available_bytes)
		*available_bytes = avail;
	return 0;
}

/* ---- /proc/<pid>/cmdline ------------------------------------------------------ */

/* Largest length <= w that does not end inside a UTF-8 sequence. Only bytes
 * that look like a sequence are considered; other bytes are left as they are. */
static size_t utf8_cut(const char *s, size_t w)
{
	size_t j = w;
	while (j > 0 && w - j < 3 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
		j--;
	if (j == 0)
		return w;
	unsigned char lead = (unsigned char)s[j - 1];
	size_t len;
	if (lead >= 0xF0 && lead <= 0xF4)
		len = 4;
	else if (lead >= 0xE0 && lead <= 0xEF)
		len = 3;
	else if (lead >= 0xC2 && lead <= 0xDF)
		len = 2;
	else
		return w;
	return (j - 1) + len > w ? j - 1 : w;
}

/* more: the raw bytes were themselves cut short (the read hit its buffer), so
 * the output ends with "..." even if everything read fits. */
static size_t format_cmdline(const char *raw, size_t n, int more, char *out, size_t outlen)
{
	if (!out || outlen == 0)
		return 0;
	if (!raw)
		n = 0;
	/* argv strings end in NUL; the last one's NUL (and any padding a
	 * process that rewrote its argv left behind) is not a separator. */
	while (n > 0 && raw[n - 1] == '\0')
		n--;
	size_t w = 0;
	size_t i = 0;
	for (; i < n && w + 1 < outlen; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c == '\0')
			c = ' ';
		else if (c < 0x20 || c == 0x7f)
			c = '?';   /* control bytes: keep logs and terminals sane */
		/* Bytes >= 0x80 are kept: UTF-8 file names are common; the JSON
		 * writer escapes whatever is not valid UTF-8. */
		out[w++] = (char)c;
	}
	if (i < n || more) {
		/* Truncated: make room for "..." and do not leave half a UTF-8
		 * sequence before it. */
		const size_t dots = 3;
		if (outlen < dots + 1) {
			out[w] = '\0';
			return w;
		}
		if (w > outlen - 1 - dots)
			w = outlen - 1 - dots;
		w = utf8_cut(out, w);
		memcpy(out + w, "...", dots);
		w += dots;
	}
	out[w] = '\0';
	return w;
}

size_t wm_format_cmdline(const char *raw, size_t n, char *out, size_t outlen)
{
	return format_cmdline(raw, n, 0, out, outlen);
}

/* ---- /proc/cpuinfo ---------------------------------------------------------- */

/* x86 and most others; arm64 kernels before 5.x have no such line ("" then). */
#define CPUINFO_MODEL_KEY "model name"

void wm_parse_cpuinfo_model(const char *text, char *out, size_t outlen)
{
	if (!out || outlen == 0)
		return;
	out[0] = '\0';
	if (!text)
		return;
	const size_t klen = strlen(CPUINFO_MODEL_KEY);
	for (const char *line = text; line && *line; line = next_line(line)) {
		if (strncmp(line, CPUINFO_MODEL_KEY, klen) != 0)
			continue;
		const char *p = skip_blanks(line + klen);
		if (*p != ':')
			continue;
		p = skip_blanks(p + 1);
		const char *end = p;
		while (*end && *end != '\n')
			end++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		size_t len = (size_t)(end - p);
		if (len >= outlen)
			len = outlen - 1;   /* a long model name is cut, still terminated */
		memcpy(out, p, len);
		out[len] = '\0';
		return;
	}
}

/* ---- readers ------------------------------------------------------------------ */

static int open_ro(int dirfd, const char *path)
{
	int fd;
	do
		fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

/* Counts the CPUs from the whole of /proc/stat, for machines where it does not
 * fit s->buf (the "intr" line alone grows with the interrupt count). */
static int count_cpus_whole(int procfs_dirfd, int *n_cpus)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc = wm_read_file_buf_at(procfs_dirfd, "stat", &b);
	if (!rc) {
		wm_cpu_times ct;
		rc = b.data ? wm_parse_proc_stat(b.data, &ct, n_cpus) : -EINVAL;
	}
	wm_buf_free(&b);
	return rc;
}

int wm_sysstat_open(wm_sysstat *s, int procfs_dirfd, char *err, size_t errlen)
{
	s->stat_fd = -1;
	s->meminfo_fd = -1;
	s->n_cpus = 0;
	s->buf[0] = '\0';

	int fd = open_ro(procfs_dirfd, "stat");
	if (fd < 0)
		return wm_err(err, errlen, fd, "cannot open <procfs>/stat: %s", strerror(-fd));
	s->stat_fd = fd;

	/* meminfo is optional: without it memory is "no data", not a failure. */
	fd = open_ro(procfs_dirfd, "meminfo");
	if (fd >= 0)
		s->meminfo_fd = fd;
	else if (fd != -ENOENT) {
		int rc = fd;
		wm_sysstat_close(s);
		return wm_err(err, errlen, rc, "cannot open <procfs>/meminfo: %s", strerror(-rc));
	}

	ssize_t n = wm_pread_all(s->stat_fd, s->buf, sizeof s->buf);
	wm_cpu_times ct;
	int rc;
	if (n == -EOVERFLOW) {
		/* The aggregate line is first and fits, but the per-CPU lines may
		 * not: count them once from the whole file. */
		rc = wm_parse_proc_stat(s->buf, &ct, &s->n_cpus);
		if (!rc)
			rc = count_cpus_whole(procfs_dirfd, &s->n_cpus);
	} else if (n < 0) {
		rc = (int)n;
	} else {
		rc = wm_parse_proc_stat(s->buf, &ct, &s->n_cpus);
	}
	if (rc) {
		wm_sysstat_close(s);
		return wm_err(err, errlen, rc, "cannot read the cpu line of <procfs>/stat: %s",
			      strerror(-rc));
	}
	return 0;
}

int wm_sysstat_read_cpu(wm_sysstat *s, wm_cpu_times *out)
{
	if (s->stat_fd < 0)
		return -EBADF;
	ssize_t n = wm_pread_all(s->stat_fd, s->buf, sizeof s->buf);
	if (n < 0 && n != -EOVERFLOW)
		return (int)n;
	int cpus;
	int rc = wm_parse_proc_stat(s->buf, out, &cpus);
	if (rc)
		return rc;
	/* Only a complete read counts the CPUs (hotplug changes the number);
	 * a truncated one keeps the count taken at open. */
	if (n >= 0)
		s->n_cpus = cpus;
	return 0;
}

int wm_sysstat_read_mem(wm_sysstat *s, uint64_t *total_bytes, uint64_t *available_bytes)
{
	if (s->meminfo_fd < 0)
		return -ENOENT;
	ssize_t n = wm_pread_all(s->meminfo_fd, s->buf, sizeof s->buf);
	/* meminfo is ~1.5 KiB; a truncated read still holds MemTotal and
	 * MemAvailable at its head, and its cut last line is never one we use
	 * unless the file is absurd, in which case the parser rejects it. */
	if (n < 0 && n != -EOVERFLOW)
		return (int)n;
	return wm_parse_meminfo(s->buf, total_bytes, available_bytes);
}

void wm_sysstat_close(wm_sysstat *s)
{
	if (!s)
		return;
	if (s->stat_fd >= 0)
		close(s->stat_fd);
	if (s->meminfo_fd >= 0)
		close(s->meminfo_fd);
	s->stat_fd = -1;
	s->meminfo_fd = -1;
}

/* "<pid>/<name>" into path; -EINVAL for a pid that cannot be one. */
static int pid_path(char *path, size_t len, int pid, const char *name)
{
	if (pid <= 0)
		return -EINVAL;
	int n = snprintf(path, len, "%d/%s", pid, name);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* A process that exited between readdir and open gives ENOENT; one that
 * exits between open and read gives ESRCH. Both mean "gone". */
int wm_read_pid_stat(int procfs_dirfd, int pid, wm_pid_stat *out)
{
	char path[32];
	int rc = pid_path(path, sizeof path, pid, "stat");
	if (rc)
		return rc;
	/* A stat line is under 1 KiB (52 numbers and a name of at most 64
	 * bytes); 4 KiB cannot truncate, and if it ever did the line would be
	 * rejected rather than parsed from a cut field. */
	char buf[4096];
	ssize_t n = wm_read_file_at(procfs_dirfd, path, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	return wm_parse_pid_stat(buf, out);
}

int wm_read_pid_cmdline(int procfs_dirfd, int pid, char *out, size_t outlen)
{
	if (!out || outlen == 0)
		return -EINVAL;
	out[0] = '\0';
	char path[32];
	int rc = pid_path(path, sizeof path, pid, "cmdline");
	if (rc)
		return rc;
	/* Only as much as we keep: a command line can be megabytes. */
	char raw[4096];
	ssize_t n = wm_read_file_at(procfs_dirfd, path, raw, sizeof raw);
	int more = 0;
	if (n == -EOVERFLOW) {
		n = (ssize_t)sizeof raw - 1;   /* wm_pread_all kept all but the last byte */
		more = 1;
	}
	if (n < 0)
		return (int)n;
	format_cmdline(raw, (size_t)n, more, out, outlen);
	return 0;
}

int wm_read_pid_smaps_rollup(int procfs_dirfd, int pid, uint64_t *rss_bytes,
			     uint64_t *pss_bytes, uint64_t *uss_bytes)
{
	char path[32];
	int rc = pid_path(path, sizeof path, pid, "smaps_rollup");
	if (rc)
		return rc;
	/* About 1 KiB today (25 lines); room for many more fields. */
	char buf[4096];
	ssize_t n = wm_read_file_at(procfs_dirfd, path, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	return wm_parse_smaps_rollup(buf, rss_bytes, pss_bytes, uss_bytes);
}
