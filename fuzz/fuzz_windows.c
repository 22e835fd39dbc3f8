/* fuzz_windows.c — the windows reader (src/recording/windows_read.c) on
 * arbitrary windows.jsonl and samples.jsonl.
 *
 * Input: the bytes before the first 0xFF are windows.jsonl, those after it
 * samples.jsonl (read for the last sample, for windows never ended); without
 * 0xFF the whole input is windows.jsonl and samples.jsonl is one fixed line.
 * The JSON, text (all windows and one name), HTML table and plot spans run on
 * what opens; errors are fine, crashes and leaks are not.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recording/windows.h"
#include "wattmeter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[4096];

static void put(const char *name, const uint8_t *d, size_t n)
{
	char p[4200];
	(void)snprintf(p, sizeof p, "%s/%s", scratch, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	while (n > 0) {
		ssize_t w = write(fd, d, n);
		if (w <= 0)
			break;
		d += w;
		n -= (size_t)w;
	}
	close(fd);
}

static void cleanup(void)
{
	char p[4200];
	(void)snprintf(p, sizeof p, "%s/windows.jsonl", scratch);
	(void)unlink(p);
	(void)snprintf(p, sizeof p, "%s/samples.jsonl", scratch);
	(void)unlink(p);
	(void)rmdir(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!scratch[0]) {
		const char *tmp = getenv("TMPDIR");
		(void)snprintf(scratch, sizeof scratch, "%s/wmfuzzw.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(scratch)) {
			scratch[0] = '\0';
			return 0;
		}
		atexit(cleanup);
	}
	const uint8_t *ff = memchr(data, 0xFF, size);
	static const char fixed[] = "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n{\"t_s\":2.5,\"energy_j\":{\"cpu\":7.5}}\n";
	if (ff) {
		put("windows.jsonl", data, (size_t)(ff - data));
		put("samples.jsonl", ff + 1, size - (size_t)(ff - data) - 1);
	} else {
		put("windows.jsonl", data, size);
		put("samples.jsonl", (const uint8_t *)fixed, sizeof fixed - 1);
	}
	char err[512];
	free(wm_report_windows_json(scratch, NULL, err, sizeof err));
	free(wm_report_windows_json(scratch, "step", err, sizeof err));
	wm_buf b;
	wm_buf_init(&b);
	(void)wm_windows_text(scratch, NULL, &b, err, sizeof err);
	(void)wm_windows_text(scratch, "step", &b, err, sizeof err);
	(void)wm_windows_html(scratch, &b);
	wm_buf_free(&b);
	struct wm_window_span *sp = NULL;
	size_t n = 0;
	(void)wm_windows_spans(scratch, 0.0, 100, &sp, &n);
	free(sp);
	return 0;
}
