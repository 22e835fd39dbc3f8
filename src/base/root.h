/* root.h — every /sys and /proc access goes through a root object.
 *
 * A root is a directory fd (O_PATH|O_DIRECTORY|O_CLOEXEC) opened once from a
 * path chosen at run time (--sysfs-root, --procfs-root), so tests run on
 * fixture trees and containers can point us at /host/sys. All reads below it
 * use openat() with paths relative to the root; no module spells "/proc".
 */
#ifndef WM_ROOT_H
#define WM_ROOT_H

#include <stddef.h>

typedef struct wm_root {
	int dirfd;        /* -1 when not open */
	char path[4096];  /* as given, for messages */
} wm_root;

/* Opens path as a root. Returns 0 or -errno with a message in err. */
int wm_root_open(wm_root *r, const char *path, char *err, size_t errlen);
void wm_root_close(wm_root *r);   /* harmless on a closed root */

#endif
