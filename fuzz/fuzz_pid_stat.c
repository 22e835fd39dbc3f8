/* fuzz_pid_stat.c — /proc/<pid>/stat parser on arbitrary bytes.
 *
 * The kernel never gives us a NUL inside the line, but a name may hold any
 * other byte (spaces, parentheses, newlines), so the input is used as is up
 * to its first NUL. Checks the parser's promises on success: comm is
 * terminated within its array, pid and ppid are non-negative. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procs/procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size heap copy so ASan flags any read past the terminator. */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	wm_pid_stat st;
	if (wm_parse_pid_stat(text, &st) == 0) {
		if (memchr(st.comm, '\0', sizeof st.comm) == NULL || st.pid < 0 || st.ppid < 0 ||
		    st.num_threads < 0)
			abort();
	}
	free(text);
	return 0;
}
