/* reader_floor.c — the parse floor of the recording reader: what reading
 * samples.jsonl and scanning every line with the reader's own scanner
 * (src/recording/record_scan.c) costs, with nothing else: no checks, no
 * columns, no totals. bench/reader.py builds it and sets load() and
 * `report` beside it.
 *
 *   cc -O2 -I src bench/reader_floor.c src/recording/record_scan.c -lm
 *   ./a.out FILE    -> one JSON line: wall_s, cpu_s (all of it), read_wall_s,
 *                      read_cpu_s (the read(2) calls alone), lines, scanned
 *                      (lines of the writer's shape), bytes
 *
 * The file is read in 1 MiB chunks (as the reader reads, never whole); a
 * line cut at a chunk's end is moved to the front and completed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "recording/record_scan.h"

static double clock_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s SAMPLES.JSONL\n", argv[0]);
		return 2;
	}
	double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", argv[0], argv[1], strerror(errno));
		return 1;
	}
	size_t cap = (size_t)1 << 20, len = 0;
	char *buf = malloc(cap);
	struct wm_scan s;
	memset(&s, 0, sizeof s);
	unsigned long long lines = 0, scanned = 0, bytes = 0;
	double read_w = 0, read_c = 0;
	for (;;) {
		if (len == cap) { /* a line longer than the buffer */
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				return 1;
			buf = nb;
			cap *= 2;
		}
		double rw = clock_s(CLOCK_MONOTONIC), rc = clock_s(CLOCK_PROCESS_CPUTIME_ID);
		ssize_t got = buf ? read(fd, buf + len, cap - len) : -1;
		read_w += clock_s(CLOCK_MONOTONIC) - rw;
		read_c += clock_s(CLOCK_PROCESS_CPUTIME_ID) - rc;
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			fprintf(stderr, "%s: cannot read %s: %s\n", argv[0], argv[1], strerror(errno));
			return 1;
		}
		bytes += (unsigned long long)got;
		len += (size_t)got;
		size_t beg = 0;
		for (;;) {
			char *nl = memchr(buf + beg, '\n', len - beg);
			if (!nl && got > 0)
				break;
			size_t n = nl ? (size_t)(nl - (buf + beg)) + 1 : len - beg;
			if (!n)
				break;
			lines++;
			scanned += wm_scan_line(buf + beg, n, &s) == 1;
			beg += n;
		}
		memmove(buf, buf + beg, len - beg);
		len -= beg;
		if (got == 0)
			break;
	}
	close(fd);
	wm_scan_free(&s);
	free(buf);
	printf("{\"wall_s\":%.6f,\"cpu_s\":%.6f,\"read_wall_s\":%.6f,\"read_cpu_s\":%.6f,\"lines\":%llu,"
	       "\"scanned\":%llu,\"bytes\":%llu}\n",
	       clock_s(CLOCK_MONOTONIC) - w0, clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0, read_w, read_c, lines, scanned,
	       bytes);
	return 0;
}
