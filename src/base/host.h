/* host.h — what machine this is, for meta.json. */
#ifndef WM_HOST_H
#define WM_HOST_H
#include <stdint.h>
#include "base/util.h"
/* Appends {"hostname":..,"kernel":..,"cpu_model":..,"n_cpus":..,"mem_total_bytes":..}. */
int wm_host_json(int procfs_dirfd, wm_buf *out);
#endif
