/* recording_input.h — how fuzz_recording and fuzz_report_html read their
 * input, so the two share one corpus (fuzz/corpus/fuzz_recording).
 *
 * If the input holds a 0xFF byte (never valid in UTF-8 JSON), the bytes
 * before the first one are meta.json and the bytes after it samples.jsonl;
 * otherwise the whole input is samples.jsonl under a fixed, valid meta.json.
 * Both are parsed in memory (wm_recording_parse: the reader's own code, but
 * for the open(2)s), so the fuzzer runs at thousands of inputs a second (a
 * scratch folder per input ran at 292 execs/s).
 */
#ifndef WM_FUZZ_RECORDING_INPUT_H
#define WM_FUZZ_RECORDING_INPUT_H

#include <stdint.h>
#include <string.h>

#include "recording/record.h"

static const char fuzz_fixed_meta[] =
	"{\"schema\":\"wattmeter.recording\",\"schema_version\":1,"
	"\"command\":[\"python3\",\"train.py\"],\"start_utc\":\"2026-11-25T12:00:00.000Z\","
	"\"devices\":[{\"name\":\"cpu\",\"method\":\"modeled\",\"source\":\"cpu-model\"},"
	"{\"name\":\"dram\",\"method\":\"measured\",\"source\":\"rapl-powercap\"},"
	"{\"name\":\"psys\",\"method\":\"measured\",\"source\":\"rapl-powercap\"}],"
	"\"sensors\":[{\"name\":\"rapl-powercap\",\"state\":\"absent\",\"detail\":\"d\",\"fix\":\"f\"}],"
	"\"model\":{\"name\":\"ccf-linear\"},\"exit_status\":0,\"complete\":true,"
	"\"self\":{\"cpu_s\":0.01}}";

/* The recording in data, or NULL when the reader refuses it (which is fine:
 * errors are answers, crashes and leaks are not). */
static inline wm_recording *fuzz_recording_open(const uint8_t *data, size_t size)
{
	const uint8_t *sep = size ? memchr(data, 0xFF, size) : NULL;
	const char *meta = fuzz_fixed_meta, *samples = (const char *)data;
	size_t meta_len = sizeof fuzz_fixed_meta - 1, samples_len = size;
	if (sep) {
		meta = (const char *)data;
		meta_len = (size_t)(sep - data);
		samples = (const char *)sep + 1;
		samples_len = size - meta_len - 1;
	}
	wm_recording *r = NULL;
	char err[512];
	if (wm_recording_parse("fuzz", meta, meta_len, samples, samples_len, &r, err, sizeof err) < 0)
		return NULL;
	return r;
}

#endif
