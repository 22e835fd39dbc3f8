/* fuzz_recording.c — the recording reader on arbitrary meta.json and
 * samples.jsonl.
 *
 * Input: if it holds a 0xFF byte (never valid in UTF-8 JSON), the bytes before
 * the first one are meta.json and the bytes after it samples.jsonl; otherwise
 * the whole input is samples.jsonl under a fixed, valid meta.json. Both files
 * go into one scratch folder made on the first call and removed at exit. Every
 * renderer runs on what opens; errors are fine, crashes and leaks are not.
 */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recording/carbon.h"
#include "recording/html.h"
#include "recording/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_meta[] =
	"{\"schema\":\"wattmeter.recording\",\"schema_version\":1,"
	"\"command\":[\"python3\",\"train.py\"],\"start_utc\":\"2026-11-25T12:00:00.000Z\","
	"\"devices\":[{\"name\":\"cpu\",\"method\":\"modeled\",\"source\":\"cpu-model\"},"
	"{\"name\":\"dram\",\"method\":\"measured\",\"source\":\"rapl-powercap\"},"
	"{\"name\":\"psys\",\"method\":\"measured\",\"source\":\"rapl-powercap\"}],"
	"\"sensors\":[{\"name\":\"rapl-powercap\",\"state\":\"absent\",\"detail\":\"d\",\"fix\":\"f\"}],"
	"\"model\":{\"name\":\"ccf-linear\"},\"duration_s\":1.5,\"exit_status\":0,\"complete\":true,"
	"\"self\":{\"cpu_s\":0.01}}";

static char scratch[4096];

static void cleanup(void)
{
	char p[4200];
	if (snprintf(p, sizeof p, "%s/meta.json", scratch) < (int)sizeof p)
		(void)unlink(p);
	if (snprintf(p, sizeof p, "%s/samples.jsonl", scratch) < (int)sizeof p)
		(void)unlink(p);
	(void)rmdir(scratch);
}

static int make_scratch(void)
{
	if (scratch[0])
		return 0;
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(scratch, sizeof scratch, "%s/wmfuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof scratch || !mkdtemp(scratch)) {
		scratch[0] = '\0';
		return -1;
	}
	atexit(cleanup);
	return 0;
}

static int put(const char *name, const void *data, size_t n)
{
	char p[4200];
	int len = snprintf(p, sizeof p, "%s/%s", scratch, name);
	if (len < 0 || (size_t)len >= sizeof p)
		return -ENAMETOOLONG;
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = wm_write_all(fd, data, n);
	close(fd);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (make_scratch() < 0)
		return 0;
	const uint8_t *sep = size ? memchr(data, 0xFF, size) : NULL;
	int rc;
	if (sep) {
		rc = put("meta.json", data, (size_t)(sep - data));
		if (!rc)
			rc = put("samples.jsonl", sep + 1, size - (size_t)(sep - data) - 1);
	} else {
		rc = put("meta.json", fixed_meta, sizeof fixed_meta - 1);
		if (!rc)
			rc = put("samples.jsonl", data, size);
	}
	if (rc)
		return 0;

	wm_recording *r = NULL;
	char err[512];
	if (wm_recording_open(scratch, &r, err, sizeof err) < 0)
		return 0;
	wm_buf b;
	wm_buf_init(&b);
	(void)wm_recording_summary_json(r, &b);
	wm_buf_reset(&b);
	(void)wm_recording_summary_text(r, 3, &b);
	wm_buf_reset(&b);
	(void)wm_recording_columns_json(r, &b);
	/* carbon, comparison and HTML renderers; the HTML must never hold a
	 * script element whatever the recording says */
	struct wm_carbon_opts co;
	wm_carbon_opts_init(&co);
	(void)wm_carbon_set_intensity(&co, "FR", err, sizeof err);
	(void)wm_carbon_set_price(&co, "0.2", err, sizeof err);
	(void)wm_carbon_set_currency(&co, "EUR", err, sizeof err);
	wm_buf_reset(&b);
	(void)wm_recording_summary_json_carbon(r, &co, &b);
	wm_buf_reset(&b);
	(void)wm_recording_carbon_text(r, &co, &b);
	const wm_recording *two[2] = {r, r};
	wm_buf_reset(&b);
	(void)wm_recording_compare_text(two, 2, &co, &b);
	wm_buf_reset(&b);
	struct wm_html_opts ho = {.top_n = 5, .carbon = &co};
	if (wm_html_report(two, 1, &ho, &b) == 0 && b.data && strcasestr(b.data, "<script"))
		abort();
	wm_buf_reset(&b); /* the second pass of query.c over the same lines */
	(void)wm_recording_detail_json(r, &b, err, sizeof err);
	wm_buf_reset(&b);
	(void)wm_recording_window_json(r, NAN, NAN, &b, err, sizeof err);
	wm_buf_reset(&b);
	(void)wm_recording_window_json(r, 0.1, 1.0, &b, err, sizeof err);
	wm_buf_free(&b);
	wm_recording_free(r);
	return 0;
}
