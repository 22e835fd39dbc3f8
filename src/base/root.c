/* root.c — see root.h. */
#include "base/root.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int wm_root_open(wm_root *r, const char *path, char *err, size_t errlen)
{
	r->dirfd = -1;
	size_t n = strlen(path);
	if (n >= sizeof r->path)
		return wm_err(err, errlen, -ENAMETOOLONG, "root path too long: %.64s...", path);
	memcpy(r->path, path, n + 1);
	int fd;
	do
		fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return wm_err(err, errlen, -errno, "cannot open %s: %s (check the path given to --sysfs-root/--procfs-root)",
			      path, strerror(errno));
	r->dirfd = fd;
	return 0;
}

void wm_root_close(wm_root *r)
{
	if (r && r->dirfd >= 0) {
		close(r->dirfd);
		r->dirfd = -1;
	}
}
