/* safepath.h — creating files where another user may have planted a link
 * (docs/privileges.md "Files wattmeter writes").
 *
 * wattmeter often runs as root (RAPL counters are root-only since Linux
 * 5.10) and writes where the user says: -o DIR, ./wattmeter-runs,
 * --summary-json FILE, report --html FILE. If another user can write one of
 * those folders, a symlink planted there must never make root write
 * elsewhere. The rules, in the order the code applies them:
 *
 * - A symbolic link in a path the user gave is followed only where the
 *   kernel's fs.protected_symlinks would follow it: outside a sticky
 *   world-writable folder (/tmp, /var/tmp, /dev/shm), or owned by the
 *   follower or by that folder's owner. Checked by us for every component
 *   we walk, so it holds where the sysctl is 0 (containers, old kernels).
 * - Inside the folder, every file is created relative to the folder's fd
 *   with O_CREAT|O_EXCL|O_NOFOLLOW (an existing name, link or not, is never
 *   opened) or as an unnamed O_TMPFILE; a file is replaced by rename(2)
 *   within the folder, as git's lockfiles and install(1) do, which replaces
 *   a planted link instead of writing through it.
 *
 * Every fd here is O_CLOEXEC.
 */
#ifndef WM_SAFEPATH_H
#define WM_SAFEPATH_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Opens the folder path as O_PATH|O_DIRECTORY|O_CLOEXEC, one component at a
 * time, creating missing ones (mode 0755, umask applies) when create is set.
 * A symlink component is followed only by the rule above. Returns the fd, or
 * -errno with a message in err naming the component: -EPERM for a link the
 * rule refuses, -ENOTDIR for a component that is not a folder. */
int wm_dir_open_safe(const char *path, int create, char *err, size_t errlen);

/* A temporary file in a folder, to be renamed over a final name: unnamed
 * (O_TMPFILE, nothing left behind if we are killed) where the file system
 * supports it, else ".<name>.<random>.tmp" created O_EXCL|O_NOFOLLOW. */
typedef struct wm_tmpfile {
	int fd;        /* O_WRONLY|O_CLOEXEC, -1 when closed */
	int dir_fd;    /* borrowed */
	int unnamed;   /* O_TMPFILE: linked under a fresh name at commit */
	char tmp[256]; /* the named temp, "" when unnamed */
} wm_tmpfile;

/* 0 or -errno (EACCES, EROFS, ENOSPC ...). */
int wm_tmpfile_open(wm_tmpfile *t, int dir_fd, const char *final_name, mode_t mode);
/* fsyncs, closes and renames the temp over final_name (within dir_fd).
 * 0 or -errno; on failure the temp is gone and final_name is untouched. */
int wm_tmpfile_commit(wm_tmpfile *t, const char *final_name);
/* Closes and removes the temp; harmless twice. */
void wm_tmpfile_abort(wm_tmpfile *t);

/* A file the user named (--summary-json, report --html), opened up front so
 * a path that cannot be written is known before anything runs, written at
 * commit:
 * - absent or a regular file: written to a temp in its folder and renamed
 *   over it at commit (readers never see half a file; a hard or planted
 *   link to another file is replaced, not written through; the mode of the
 *   file replaced is kept);
 * - a symlink: refused in a sticky world-writable folder unless the rule
 *   above allows it; otherwise followed and written in place;
 * - a FIFO, terminal, /dev/stdout ...: written directly. */
typedef struct wm_outfile {
	wm_tmpfile tmp; /* tmp.fd >= 0: replace mode */
	int fd;         /* direct mode: the file itself; -1 otherwise */
	int dir_fd;
	char name[256];
} wm_outfile;

/* 0 or -errno with a message in err (without the path: the caller names it). */
int wm_outfile_open(wm_outfile *f, const char *path, char *err, size_t errlen);
/* Writes data and completes the file (rename or close). 0 or -errno. */
int wm_outfile_commit(wm_outfile *f, const void *data, size_t n);
/* Gives up: removes the temp (the file named is untouched); harmless twice. */
void wm_outfile_abort(wm_outfile *f);

#endif
