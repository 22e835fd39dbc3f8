/* STUB — to be written */
#include "rapl.h"
#include <errno.h>
#include <stdlib.h>
int wm_rapl_probe(int sysfs_dirfd, wm_rapl **out, char *err, size_t errlen)
{ (void)sysfs_dirfd; (void)err; (void)errlen; wm_rapl *r = calloc(1, sizeof *r); if (!r) return -ENOMEM; r->state = WM_SRC_ABSENT; *out = r; return 0; }
int wm_rapl_read_uj(const wm_rapl *r, size_t i, uint64_t *e) { (void)r; (void)i; (void)e; return -ENOSYS; }
double wm_rapl_min_wrap_s(const wm_rapl *r, double max_w) { (void)r; (void)max_w; return 0; }
const char *wm_rapl_domain_name(wm_rapl_domain d) { (void)d; return "?"; }
void wm_rapl_free(wm_rapl *r) { free(r); }
