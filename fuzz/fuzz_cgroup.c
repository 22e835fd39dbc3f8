/* fuzz_cgroup.c — the container-name parser of /proc/<pid>/cgroup
 * (procs/cgroup.h) on arbitrary bytes. Checks its promises: 1 comes with a
 * "<runtime>:<id>" name that fits, 0 with "", never anything else. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procs/cgroup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	char out[40];
	int rc = wm_cgroup_container_name(text, out, sizeof out);
	if (rc == 1) {
		if (!memchr(out, '\0', sizeof out) || !strchr(out, ':') || out[strlen(out) - 1] == ':')
			abort();
	} else if (rc != 0 || out[0]) {
		abort();
	}
	free(text);
	return 0;
}
