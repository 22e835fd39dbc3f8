/* record_write.c — the recording writer (see record.h, docs/recording.md).
 *
 * Two rules make it safe where others can write the folder and where the
 * disk can fill:
 * - nothing in the folder is ever opened by name unless we create it there
 *   and then (O_CREAT|O_EXCL|O_NOFOLLOW relative to the folder's fd), or
 *   replaced by rename within the folder (meta.json): a planted link is
 *   replaced or refused, never written through (base/safepath.h);
 * - samples.jsonl only ever grows by whole lines: a write cut short is cut
 *   back (ftruncate to the last complete line) before anything else is
 *   appended, so a full disk costs lines, never the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/safepath.h"
#include "recording/record.h"

int wm_recorder_open(wm_recorder *r, const char *dir, char *err, size_t errlen)
{
	r->dir_fd = -1;
	r->samples_fd = -1;
	r->reserve_fd = -1;
	r->good_off = 0;
	r->need_cut = 0;
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof r->dir)
		return wm_err(err, errlen, -ENAMETOOLONG, "recording folder name is empty or too long");
	memcpy(r->dir, dir, n + 1);

	char why[1024];
	r->dir_fd = wm_dir_open_safe(dir, 1, why, sizeof why);
	if (r->dir_fd < 0) {
		int rc = r->dir_fd;
		r->dir_fd = -1;
		return wm_err(err, errlen, rc, "cannot create the recording folder %s: %s (choose another with -o DIR)",
			      dir, why);
	}
	/* O_EXCL: never append to, or overwrite, an earlier recording; with
	 * O_CREAT it also refuses a symlink, wherever it points. */
	r->samples_fd = openat(r->dir_fd, "samples.jsonl",
			       O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
	if (r->samples_fd < 0) {
		int e = errno;
		struct stat st;
		int is_link = e == EEXIST && fstatat(r->dir_fd, "samples.jsonl", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			      S_ISLNK(st.st_mode);
		close(r->dir_fd);
		r->dir_fd = -1;
		if (is_link)
			return wm_err(err, errlen, -EEXIST,
				      "%s/samples.jsonl is a symbolic link: not followed (someone who can write %s planted it, or it is an old recording's); choose a new folder with -o DIR",
				      dir, dir);
		if (e == EEXIST)
			return wm_err(err, errlen, -EEXIST,
				      "%s already holds a recording (samples.jsonl exists); choose a new folder with -o DIR",
				      dir);
		return wm_err(err, errlen, -e, "cannot write in the recording folder %s: %s (choose a writable folder with -o DIR)",
			      dir, strerror(e));
	}
	/* The lock that says "being written" to readers (wattmeter report):
	 * an open file description lock, so it belongs to this fd (closed at
	 * exec, released when the fd is closed or the process dies) and a
	 * reader in the same process still sees it. */
	struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	if (fcntl(r->samples_fd, F_OFD_SETLK, &lk) < 0) {
		int e = errno;
		wm_recorder_close(r);
		return wm_err(err, errlen, -e, "cannot lock %s/samples.jsonl: %s%s", dir, strerror(e),
			      e == EAGAIN || e == EACCES ? " (another wattmeter is writing it; choose a new folder with -o DIR)"
							 : "");
	}
	return 0;
}

int wm_recorder_write_meta(wm_recorder *r, const char *json, size_t n)
{
	if (r->dir_fd < 0)
		return -EBADF;
	wm_tmpfile t;
	int rc = wm_tmpfile_open(&t, r->dir_fd, "meta.json", 0644);
	if (rc < 0)
		return rc;
	rc = wm_write_all(t.fd, json, n);
	if (!rc)
		rc = wm_write_all(t.fd, "\n", 1);
	if (rc) {
		wm_tmpfile_abort(&t); /* the old meta.json stays */
		return rc;
	}
	return wm_tmpfile_commit(&t, "meta.json");
}

/* Cuts samples.jsonl back to its complete lines. 0 or -errno. */
static int cut_back(wm_recorder *r)
{
	int rc;
	do
		rc = ftruncate(r->samples_fd, (off_t)r->good_off);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		r->need_cut = 1;
		return -errno;
	}
	r->need_cut = 0;
	return 0;
}

int wm_recorder_append(wm_recorder *r, const char *line, size_t n)
{
	if (r->samples_fd < 0)
		return -EBADF;
	if (r->need_cut) {
		int rc = cut_back(r);
		if (rc < 0)
			return rc;
	}
	/* One write per line: with O_APPEND the line lands whole or, if we are
	 * killed mid-call, as a truncated last line that readers skip. */
	char stackbuf[8192];
	int rc;
	if (n + 1 <= sizeof stackbuf) {
		memcpy(stackbuf, line, n);
		stackbuf[n] = '\n';
		rc = wm_write_all(r->samples_fd, stackbuf, n + 1);
	} else {
		wm_buf b;
		wm_buf_init(&b);
		wm_buf_append(&b, line, n);
		wm_buf_append(&b, "\n", 1);
		rc = wm_buf_error(&b);
		if (!rc)
			rc = wm_write_all(r->samples_fd, b.data, b.len);
		wm_buf_free(&b);
		if (rc == -ENOMEM)
			return rc; /* nothing was written */
	}
	if (rc < 0) {
		/* Part of the line may be in the file (a short write before
		 * ENOSPC/EIO): cut it off, or the next line would be glued to it
		 * and both be lost. If the cut fails too, it is retried first. */
		(void)cut_back(r);
		return rc;
	}
	r->good_off += (long long)n + 1;
	return 0;
}

int wm_recorder_reserve(wm_recorder *r, size_t bytes)
{
	if (r->dir_fd < 0)
		return -EBADF;
	int fd = openat(r->dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int e = posix_fallocate(fd, 0, (off_t)bytes);
	if (e) {
		close(fd);
		return -e;
	}
	wm_recorder_release_reserve(r);
	r->reserve_fd = fd;
	return 0;
}

void wm_recorder_release_reserve(wm_recorder *r)
{
	if (r->reserve_fd >= 0) {
		close(r->reserve_fd); /* unnamed: its blocks are free at once */
		r->reserve_fd = -1;
	}
}

int wm_recorder_lock_held(int fd)
{
	struct flock lk = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	if (fcntl(fd, F_OFD_GETLK, &lk) < 0)
		return -errno;
	return lk.l_type != F_UNLCK;
}

void wm_recorder_close(wm_recorder *r)
{
	wm_recorder_release_reserve(r);
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
