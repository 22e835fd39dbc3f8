/* fuzz_cuda_visible.c — the CUDA_VISIBLE_DEVICES parser (sources/nvml.h) on
 * arbitrary bytes, against four GPUs (two of them sharing a UUID prefix) and
 * two MIG devices. Checks its promises: every flag is 0 or 1 and the count
 * it returns is the number of flags set. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sources/nvml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size heap copy so ASan flags any read past the terminator. */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	static const char *const uuids[] = {"GPU-0a1b2c3d-0000-4000-8000-000000000000",
					    "GPU-0a1b9999-0000-4000-8000-000000000001", "", "GPU-ffff"};
	static const wm_nvml_mig_id migs[] = {{"MIG-5e6f0000-0000-5000-8000-000000000000", 3},
					      {"MIG-5e6f0000-0000-5000-8000-000000000001", 3}};
	int used[4];
	size_t n = wm_nvml_visible_parse(text, uuids, 4, migs, 2, used);
	size_t set = 0;
	for (size_t i = 0; i < 4; i++) {
		if (used[i] != 0 && used[i] != 1)
			abort();
		set += (size_t)used[i];
	}
	if (set != n)
		abort();
	free(text);
	return 0;
}
