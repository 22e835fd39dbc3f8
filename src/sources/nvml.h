/* nvml.h — NVIDIA GPUs through NVML (the source is wm_source_nvml, in nvml.c).
 *
 * Declared here: the pure parts of the source, exported for tests and fuzzing.
 */
#ifndef WM_SOURCES_NVML_H
#define WM_SOURCES_NVML_H

#include <stddef.h>

#include "sources/source.h"

extern const wm_source_ops wm_source_nvml;

/* A MIG device: its UUID ("MIG-...") and the index of the GPU it lives on. */
typedef struct wm_nvml_mig_id {
	const char *uuid;
	size_t parent;
} wm_nvml_mig_id;

/* Which GPUs a CUDA_VISIBLE_DEVICES value exposes, read as CUDA reads it:
 * comma-separated entries, each a GPU index (NVML order, which is CUDA's with
 * CUDA_DEVICE_ORDER=PCI_BUS_ID), a "GPU-" UUID or a unique prefix of one, or
 * a MIG device ("MIG-<uuid>" or the older "MIG-GPU-<uuid>/<gi>/<ci>"), which
 * marks the GPU it lives on. Like CUDA, the list ends at the first entry that
 * names no GPU (an index out of range, an unknown or ambiguous UUID, a
 * repeated GPU, "-1", "NoDevFiles"); what came before it stays.
 *
 * spec NULL (the variable is unset): every GPU is visible. uuids[i] is GPU
 * i's UUID (may be "" if unknown); migs may be NULL when n_migs is 0.
 * Sets used[i] to 1 or 0 for every i < n and returns how many are visible. */
size_t wm_nvml_visible_parse(const char *spec, const char *const *uuids, size_t n, const wm_nvml_mig_id *migs,
			     size_t n_migs, int *used);

#endif
