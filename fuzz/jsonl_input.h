/* jsonl_input.h — how fuzz_windows and fuzz_requests lay out their input:
 * a scratch folder (made once, removed at exit) holding NAME (the bytes
 * before the first 0xFF) and samples.jsonl (those after it; without 0xFF,
 * two fixed sample lines), for readers that open a recording by folder.
 */
#ifndef WM_FUZZ_JSONL_INPUT_H
#define WM_FUZZ_JSONL_INPUT_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_scratch[4096];
static const char *fuzz_jsonl_name;

static void fuzz_put(const char *name, const uint8_t *d, size_t n)
{
	char p[4200];
	(void)snprintf(p, sizeof p, "%s/%s", fuzz_scratch, name);
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

static void fuzz_cleanup(void)
{
	char p[4200];
	(void)snprintf(p, sizeof p, "%s/%s", fuzz_scratch, fuzz_jsonl_name);
	(void)unlink(p);
	(void)snprintf(p, sizeof p, "%s/samples.jsonl", fuzz_scratch);
	(void)unlink(p);
	(void)rmdir(fuzz_scratch);
}

/* Writes the input's two files; the folder's path, or NULL if none could be made. */
static const char *fuzz_jsonl_dir(const char *name, const uint8_t *data, size_t size)
{
	if (!fuzz_scratch[0]) {
		const char *tmp = getenv("TMPDIR");
		(void)snprintf(fuzz_scratch, sizeof fuzz_scratch, "%s/wmfuzzj.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(fuzz_scratch)) {
			fuzz_scratch[0] = '\0';
			return NULL;
		}
		fuzz_jsonl_name = name;
		atexit(fuzz_cleanup);
	}
	const uint8_t *ff = memchr(data, 0xFF, size);
	static const char fixed[] = "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n{\"t_s\":2.5,\"energy_j\":{\"cpu\":7.5}}\n";
	if (ff) {
		fuzz_put(name, data, (size_t)(ff - data));
		fuzz_put("samples.jsonl", ff + 1, size - (size_t)(ff - data) - 1);
	} else {
		fuzz_put(name, data, size);
		fuzz_put("samples.jsonl", (const uint8_t *)fixed, sizeof fixed - 1);
	}
	return fuzz_scratch;
}

#endif
