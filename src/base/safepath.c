/* safepath.c — folders walked and files created without following a planted
 * link (safepath.h, docs/privileges.md "Files wattmeter writes"). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/safepath.h"
#include "base/util.h"

/* The kernel's fs.protected_symlinks rule (Documentation/admin-guide/sysctl/fs.rst):
 * a link in a sticky world-writable folder is followed only when the follower
 * or the folder's owner owns it. 0, or -EPERM with why; -errno if the folder
 * cannot be examined. */
static int link_allowed(int parent_fd, const struct stat *lst, char *why, size_t whylen)
{
	struct stat ds;
	if (fstat(parent_fd, &ds) < 0)
		return -errno;
	if (!(ds.st_mode & S_ISVTX) || !(ds.st_mode & S_IWOTH))
		return 0;
	uid_t me = geteuid();
	if (lst->st_uid == me || lst->st_uid == ds.st_uid)
		return 0;
	(void)snprintf(why, whylen,
		       "owned by uid %u in a sticky world-writable folder owned by uid %u (neither you, uid %u, nor the folder's owner)",
		       (unsigned)lst->st_uid, (unsigned)ds.st_uid, (unsigned)me);
	return -EPERM;
}

/* One component: cur/name as an O_PATH folder fd. path[0..plen) names it in
 * messages. */
static int step(int cur, const char *name, int create, const char *path, size_t plen, char *err, size_t errlen)
{
	int p = (int)plen;
	size_t rest = strspn(path + plen, "/");
	int whole = path[plen + rest] == '\0'; /* the last component */
	for (int tries = 0; tries < 8; tries++) {
		struct stat st;
		if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			int e = errno;
			if (e == ENOENT && create) {
				if (mkdirat(cur, name, 0755) < 0 && errno != EEXIST) {
					e = errno;
					/* the caller names the whole path: say which part, if another */
					if (whole)
						return wm_err(err, errlen, -e, "%s", strerror(e));
					return wm_err(err, errlen, -e, "cannot create %.*s: %s", p, path, strerror(e));
				}
				continue; /* examine what is there now */
			}
			if (whole)
				return wm_err(err, errlen, -e, "%s", strerror(e));
			return wm_err(err, errlen, -e, "%.*s: %s", p, path, strerror(e));
		}
		int follow = 0;
		if (S_ISLNK(st.st_mode)) {
			char why[200] = "";
			int rc = link_allowed(cur, &st, why, sizeof why);
			if (rc == -EPERM)
				return wm_err(err, errlen, rc,
					      "%.*s is a symbolic link %s: not followed, by the rule of the kernel's fs.protected_symlinks (docs/privileges.md); remove it or choose another path",
					      p, path, why);
			if (rc < 0)
				return wm_err(err, errlen, rc, "cannot examine the folder holding %.*s: %s", p, path,
					      strerror(-rc));
			follow = 1;
		} else if (!S_ISDIR(st.st_mode)) {
			return wm_err(err, errlen, -ENOTDIR, "%.*s is not a folder", p, path);
		}
		int fd = openat(cur, name, O_PATH | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
		if (fd >= 0)
			return fd;
		int e = errno;
		/* ENOTDIR/ELOOP without follow: swapped for a link since the stat;
		 * look again, so the link meets the rule. */
		if (e == EINTR || (!follow && (e == ENOTDIR || e == ELOOP)))
			continue;
		if (e == ENOTDIR)
			return wm_err(err, errlen, -e, "%.*s is a link to something that is not a folder", p, path);
		return wm_err(err, errlen, -e, "cannot open the folder %.*s: %s", p, path, strerror(e));
	}
	return wm_err(err, errlen, -ELOOP, "%.*s keeps changing while it is opened (replaced by a link?)", p, path);
}

int wm_dir_open_safe(const char *path, int create, char *err, size_t errlen)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0)
		return wm_err(err, errlen, -EINVAL, "the folder name is empty");
	if (n >= sizeof buf)
		return wm_err(err, errlen, -ENAMETOOLONG, "the folder name is too long (%zu bytes)", n);
	memcpy(buf, path, n + 1);
	int cur = open(buf[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return wm_err(err, errlen, -errno, "cannot open %s: %s", buf[0] == '/' ? "/" : "the current folder",
			      strerror(errno));
	char *p = buf;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *name = p;
		while (*p && *p != '/')
			p++;
		char save = *p;
		*p = '\0';
		if (strcmp(name, ".") != 0) {
			int next = step(cur, name, create, path, (size_t)(p - buf), err, errlen);
			close(cur);
			if (next < 0)
				return next;
			cur = next;
		}
		*p = save;
	}
	return cur;
}

/* ---- temporary files ----------------------------------------------------------- */

static void temp_name(char *out, size_t len, const char *final_name)
{
	uint32_t x;
	if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x) {
		struct timespec ts;
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16);
	}
	(void)snprintf(out, len, ".%.200s.%08x.tmp", final_name, (unsigned)x);
}

int wm_tmpfile_open(wm_tmpfile *t, int dir_fd, const char *final_name, mode_t mode)
{
	t->fd = -1;
	t->dir_fd = dir_fd;
	t->unnamed = 0;
	t->tmp[0] = '\0';
	int fd;
	do
		fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	if (fd >= 0) {
		t->fd = fd;
		t->unnamed = 1;
		return 0;
	}
	/* these say "no O_TMPFILE here" (kernel or file system); anything else
	 * (EACCES, EROFS, ENOSPC) is the answer */
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT)
		return -errno;
	for (int i = 0; i < 32; i++) {
		temp_name(t->tmp, sizeof t->tmp, final_name);
		fd = openat(dir_fd, t->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
		if (fd >= 0) {
			t->fd = fd;
			return 0;
		}
		if (errno != EEXIST && errno != EINTR) {
			int e = errno;
			t->tmp[0] = '\0';
			return -e;
		}
	}
	t->tmp[0] = '\0';
	return -EEXIST;
}

/* Gives the unnamed temp a fresh name in its folder. 0 or -errno. */
static int link_unnamed(wm_tmpfile *t, const char *final_name)
{
	int rc = -EEXIST;
	for (int i = 0; i < 32 && rc == -EEXIST; i++) {
		temp_name(t->tmp, sizeof t->tmp, final_name);
		if (linkat(t->fd, "", t->dir_fd, t->tmp, AT_EMPTY_PATH) == 0)
			return 0;
		rc = -errno;
		if (rc == -ENOENT || rc == -EPERM) {
			/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc's link does not */
			char proc[64];
			(void)snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
			if (linkat(AT_FDCWD, proc, t->dir_fd, t->tmp, AT_SYMLINK_FOLLOW) == 0)
				return 0;
			rc = -errno;
		}
	}
	t->tmp[0] = '\0';
	return rc;
}

int wm_tmpfile_commit(wm_tmpfile *t, const char *final_name)
{
	if (t->fd < 0)
		return -EBADF;
	int rc = 0;
	if (fsync(t->fd) < 0 && errno != EINVAL)
		rc = -errno;
	if (!rc && t->unnamed)
		rc = link_unnamed(t, final_name);
	if (close(t->fd) < 0 && !rc)
		rc = -errno;
	t->fd = -1;
	if (!rc && renameat(t->dir_fd, t->tmp, t->dir_fd, final_name) < 0)
		rc = -errno;
	if (rc && t->tmp[0])
		(void)unlinkat(t->dir_fd, t->tmp, 0);
	t->tmp[0] = '\0';
	return rc;
}

void wm_tmpfile_abort(wm_tmpfile *t)
{
	if (t->fd >= 0) {
		close(t->fd);
		t->fd = -1;
	}
	if (t->tmp[0])
		(void)unlinkat(t->dir_fd, t->tmp, 0);
	t->tmp[0] = '\0';
}

/* ---- files the user names --------------------------------------------------------- */

int wm_outfile_open(wm_outfile *f, const char *path, char *err, size_t errlen)
{
	f->tmp.fd = -1;
	f->tmp.tmp[0] = '\0';
	f->fd = -1;
	f->dir_fd = -1;
	f->name[0] = '\0';
	size_t n = strlen(path);
	if (n == 0)
		return wm_err(err, errlen, -EINVAL, "the file name is empty");
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return wm_err(err, errlen, -EISDIR, "it names a folder; give a file name");
	if (strlen(name) >= sizeof f->name)
		return wm_err(err, errlen, -ENAMETOOLONG, "the file name is too long");
	memcpy(f->name, name, strlen(name) + 1);

	char dir[4096];
	if (!slash)
		(void)snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		(void)snprintf(dir, sizeof dir, "/");
	else if ((size_t)(slash - path) >= sizeof dir)
		return wm_err(err, errlen, -ENAMETOOLONG, "the folder name is too long");
	else
		(void)snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int dfd = wm_dir_open_safe(dir, 0, err, errlen);
	if (dfd < 0)
		return dfd;
	f->dir_fd = dfd;

	struct stat st;
	mode_t mode = 0644;
	int rc = 0;
	if (fstatat(dfd, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT) {
			rc = wm_err(err, errlen, -errno, "%s", strerror(errno));
			goto fail;
		}
	} else if (S_ISLNK(st.st_mode)) {
		char why[200] = "";
		rc = link_allowed(dfd, &st, why, sizeof why);
		if (rc == -EPERM) {
			rc = wm_err(err, errlen, rc,
				    "it is a symbolic link %s: not followed, by the rule of the kernel's fs.protected_symlinks (docs/privileges.md); remove it or choose another path",
				    why);
			goto fail;
		}
		if (rc < 0) {
			rc = wm_err(err, errlen, rc, "cannot examine its folder: %s", strerror(-rc));
			goto fail;
		}
		/* a link the rule trusts: written where it points, in place */
		do
			f->fd = openat(dfd, f->name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
		while (f->fd < 0 && errno == EINTR);
		if (f->fd < 0) {
			rc = wm_err(err, errlen, -errno, "%s", strerror(errno));
			goto fail;
		}
		return 0;
	} else if (S_ISDIR(st.st_mode)) {
		rc = wm_err(err, errlen, -EISDIR, "it is a folder; give a file name");
		goto fail;
	} else if (!S_ISREG(st.st_mode)) {
		/* a FIFO, a terminal, a socket: written to directly */
		do
			f->fd = openat(dfd, f->name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		while (f->fd < 0 && errno == EINTR);
		if (f->fd < 0) {
			rc = wm_err(err, errlen, -errno, "%s", strerror(errno));
			goto fail;
		}
		return 0;
	} else {
		mode = st.st_mode & 0777; /* replacing it keeps its mode */
	}
	rc = wm_tmpfile_open(&f->tmp, dfd, f->name, mode);
	if (rc < 0) {
		rc = wm_err(err, errlen, rc, "%s", strerror(-rc));
		goto fail;
	}
	if (mode != 0644)
		(void)fchmod(f->tmp.fd, mode); /* the umask narrowed it: the old mode, no wider */
	return 0;
fail:
	close(dfd);
	f->dir_fd = -1;
	return rc;
}

int wm_outfile_commit(wm_outfile *f, const void *data, size_t n)
{
	int rc;
	if (f->fd >= 0) {
		rc = wm_write_all(f->fd, data, n);
		/* EINVAL: a pipe or terminal, which cannot be synced */
		if (!rc && fsync(f->fd) < 0 && errno != EINVAL && errno != EROFS)
			rc = -errno;
		if (close(f->fd) < 0 && !rc)
			rc = -errno;
		f->fd = -1;
	} else if (f->tmp.fd >= 0) {
		rc = wm_write_all(f->tmp.fd, data, n);
		if (!rc)
			rc = wm_tmpfile_commit(&f->tmp, f->name);
		else
			wm_tmpfile_abort(&f->tmp);
		if (rc == -EBUSY) {
			/* a bind-mounted file (containers) cannot be renamed over:
			 * write it in place, never through a link */
			int fd = openat(f->dir_fd, f->name, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
			rc = fd < 0 ? -errno : wm_write_all(fd, data, n);
			if (fd >= 0 && close(fd) < 0 && !rc)
				rc = -errno;
		}
	} else {
		rc = -EBADF;
	}
	if (f->dir_fd >= 0) {
		close(f->dir_fd);
		f->dir_fd = -1;
	}
	return rc;
}

void wm_outfile_abort(wm_outfile *f)
{
	wm_tmpfile_abort(&f->tmp);
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	if (f->dir_fd >= 0) {
		close(f->dir_fd);
		f->dir_fd = -1;
	}
}
