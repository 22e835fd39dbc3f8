/* jsonl_read.c — reading append-only JSON-lines files (jsonl_read.h). */
#include "recording/jsonl_read.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

/* The last complete line of samples.jsonl that parses (NULL if none):
 * read from the end, 1 MiB at most. */
json_t *wm_last_sample_line(int dfd)
{
	int fd = openat(dfd, "samples.jsonl", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	off_t size = lseek(fd, 0, SEEK_END);
	size_t want = size > (1 << 20) ? (1 << 20) : (size_t)(size > 0 ? size : 0);
	char *buf = malloc(want + 1);
	json_t *o = NULL;
	if (buf && want && pread(fd, buf, want, size - (off_t)want) == (ssize_t)want) {
		buf[want] = '\0';
		size_t end = want;
		while (end > 0 && !o) {
			/* end: just past a '\n' that closes a complete line */
			while (end > 0 && buf[end - 1] != '\n')
				end--;
			if (!end)
				break;
			buf[end - 1] = '\0';
			size_t start = end - 1;
			while (start > 0 && buf[start - 1] != '\n')
				start--;
			if (start > 0 || (off_t)want == size) {
				o = json_loads(buf + start, 0, NULL);
				if (o && !json_is_object(json_object_get(o, "energy_j"))) {
					json_decref(o);
					o = NULL;
				}
			}
			end = start;
		}
	}
	free(buf);
	close(fd);
	return o;
}


int wm_jsonl_read(int dfd, const char *dir, const char *name, const char *version_key, int max_version,
		  json_t **header, wm_jsonl_line_fn fn, void *ctx, int *found, int *truncated, char *err,
		  size_t errlen)
{
	*header = NULL;
	*found = 0;
	*truncated = 0;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0; /* absent (or a link, never followed): no such lines */
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	}
	*found = 1;
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	ssize_t n;
	int rc = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		int complete = line[n - 1] == '\n';
		json_t *o = complete ? json_loadb(line, (size_t)n, 0, NULL) : NULL;
		if (!json_is_object(o)) {
			json_decref(o);
			int c = fgetc(f);
			if (c == EOF) {
				*truncated = 1; /* a cut last line: a killed run */
				break;
			}
			rc = wm_err(err, errlen, -EBADMSG, "%s/%s line %ld is damaged (not a JSON object)", dir, name, lineno);
			break;
		}
		if (lineno == 1) {
			json_t *v = json_object_get(o, version_key);
			if (!json_is_integer(v) || json_integer_value(v) > max_version) {
				int newer = json_is_integer(v);
				json_decref(o);
				rc = newer ? wm_err(err, errlen, -ENOTSUP, "%s/%s has a newer %s: update wattmeter to read it", dir,
						    name, version_key)
					   : wm_err(err, errlen, -EBADMSG, "%s/%s has no %s header", dir, name, version_key);
				break;
			}
			*header = o;
			continue;
		}
		rc = fn(ctx, o);
		json_decref(o);
		if (rc < 0)
			break;
	}
	free(line);
	fclose(f);
	if (rc < 0) {
		json_decref(*header);
		*header = NULL;
	}
	return rc;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[n], n > 0. */
static double pct(const double *v, size_t n, double p)
{
	double r = ceil(p * (double)n);
	size_t i = r < 1 ? 0 : (size_t)r - 1;
	return v[i < n ? i : n - 1];
}

json_t *wm_stats_json(double *v, size_t n)
{
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	qsort(v, n, sizeof *v, cmp_dbl);
	return json_pack("{s:f,s:f,s:f,s:f}", "total", sum, "mean", n ? sum / (double)n : 0.0, "p50",
			 n ? pct(v, n, 0.50) : 0.0, "p99", n ? pct(v, n, 0.99) : 0.0);
}
