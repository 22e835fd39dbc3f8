/* record_write.c — the recording writer (see record.h, docs/recording.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recording/record.h"

int wm_recorder_open(wm_recorder *r, const char *dir, char *err, size_t errlen)
{
	r->dir_fd = -1;
	r->samples_fd = -1;
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof r->dir)
		return wm_err(err, errlen, -ENAMETOOLONG, "recording folder name is empty or too long");
	memcpy(r->dir, dir, n + 1);

	int rc = wm_mkdir_p(dir);
	if (rc < 0)
		return wm_err(err, errlen, rc,
			      "cannot create the recording folder %s: %s (choose another with -o DIR)", dir,
			      strerror(-rc));
	r->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dir_fd < 0)
		return wm_err(err, errlen, -errno, "cannot open the recording folder %s: %s", dir,
			      strerror(errno));
	/* O_EXCL: never append to, or overwrite, an earlier recording. */
	r->samples_fd = openat(r->dir_fd, "samples.jsonl",
			       O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
	if (r->samples_fd < 0) {
		int e = errno;
		close(r->dir_fd);
		r->dir_fd = -1;
		if (e == EEXIST)
			return wm_err(err, errlen, -EEXIST,
				      "%s already holds a recording (samples.jsonl exists); choose a new folder with -o DIR",
				      dir);
		return wm_err(err, errlen, -e, "cannot write in the recording folder %s: %s (choose a writable folder with -o DIR)",
			      dir, strerror(e));
	}
	return 0;
}

int wm_recorder_write_meta(wm_recorder *r, const char *json, size_t n)
{
	if (r->dir_fd < 0)
		return -EBADF;
	int fd = openat(r->dir_fd, "meta.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = wm_write_all(fd, json, n);
	if (!rc)
		rc = wm_write_all(fd, "\n", 1);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && renameat(r->dir_fd, "meta.json.tmp", r->dir_fd, "meta.json") < 0)
		rc = -errno;
	if (rc)
		(void)unlinkat(r->dir_fd, "meta.json.tmp", 0);
	return rc;
}

int wm_recorder_append(wm_recorder *r, const char *line, size_t n)
{
	if (r->samples_fd < 0)
		return -EBADF;
	/* One write per line: with O_APPEND the line lands whole or, if we are
	 * killed mid-call, as a truncated last line that readers skip. */
	char stackbuf[8192];
	if (n + 1 <= sizeof stackbuf) {
		memcpy(stackbuf, line, n);
		stackbuf[n] = '\n';
		return wm_write_all(r->samples_fd, stackbuf, n + 1);
	}
	wm_buf b;
	wm_buf_init(&b);
	wm_buf_append(&b, line, n);
	wm_buf_append(&b, "\n", 1);
	int rc = wm_buf_error(&b);
	if (!rc)
		rc = wm_write_all(r->samples_fd, b.data, b.len);
	wm_buf_free(&b);
	return rc;
}

void wm_recorder_close(wm_recorder *r)
{
	if (r->samples_fd >= 0) {
		(void)fsync(r->samples_fd);
		close(r->samples_fd);
		r->samples_fd = -1;
	}
	if (r->dir_fd >= 0) {
		close(r->dir_fd);
		r->dir_fd = -1;
	}
}
