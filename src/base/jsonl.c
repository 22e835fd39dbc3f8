/* jsonl.c — whole-line JSON-lines files (jsonl.h). */
#include "base/jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/util.h"

void wm_jsonl_init(wm_jsonl *j)
{
	*j = (wm_jsonl){.fd = -1};
}

int wm_jsonl_create(wm_jsonl *j, int dir_fd, const char *name, const char *header, size_t n)
{
	if (j->fd >= 0)
		return 0;
	if (j->open_errno)
		return -j->open_errno;
	/* O_EXCL|O_NOFOLLOW relative to the folder: never a planted file or link */
	j->fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
	if (j->fd < 0) {
		j->open_errno = errno;
		j->write_errno = errno;
		return -j->open_errno;
	}
	return wm_jsonl_append(j, header, n);
}

int wm_jsonl_append(wm_jsonl *j, const char *data, size_t n)
{
	if (!n)
		return 0;
	if (j->fd < 0) {
		j->lines_lost++;
		return j->open_errno ? -j->open_errno : -EBADF;
	}
	if (j->need_cut) {
		if (ftruncate(j->fd, (off_t)j->good_off) < 0) {
			j->lines_lost++;
			return -errno;
		}
		j->need_cut = 0;
	}
	int rc = wm_write_all(j->fd, data, n);
	if (rc < 0) {
		/* whole lines only: a short write (ENOSPC) is cut back, the lines lost counted */
		j->lines_lost++;
		if (ftruncate(j->fd, (off_t)j->good_off) < 0)
			j->need_cut = 1;
		if (!j->write_errno)
			j->write_errno = -rc;
		return rc;
	}
	j->good_off += (long long)n;
	return 0;
}

void wm_jsonl_close(wm_jsonl *j, int sync)
{
	if (j->fd < 0)
		return;
	if (sync)
		(void)fsync(j->fd);
	close(j->fd);
	j->fd = -1;
}
