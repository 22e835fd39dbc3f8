/* STUB — to be written */
#include "proctree.h"
#include <errno.h>
#include <stdlib.h>
struct wm_proctree { int fd; };
int wm_proctree_new(int fd, wm_proctree **out) { wm_proctree *t = calloc(1, sizeof *t); if (!t) return -ENOMEM; t->fd = fd; *out = t; return 0; }
void wm_proctree_free(wm_proctree *t) { free(t); }
int wm_proctree_add_root(wm_proctree *t, int pid, int own) { (void)t; (void)pid; (void)own; return -ENOSYS; }
int wm_proctree_scan(wm_proctree *t) { (void)t; return -ENOSYS; }
int wm_proctree_read_memory(wm_proctree *t) { (void)t; return -ENOSYS; }
size_t wm_proctree_count(const wm_proctree *t) { (void)t; return 0; }
wm_proc *wm_proctree_get(wm_proctree *t, size_t i) { (void)t; (void)i; return NULL; }
