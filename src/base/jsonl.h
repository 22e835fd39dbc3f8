/* jsonl.h — an append-only JSON-lines file of a recording (windows.jsonl,
 * requests.jsonl) that holds whole lines at every instant.
 *
 * Created O_CREAT|O_EXCL|O_NOFOLLOW relative to the recording folder's fd
 * (safepath.h: never a planted file or link), O_APPEND|O_CLOEXEC. Each
 * append is one write of whole lines; a failed or short one (ENOSPC, EIO)
 * is cut back to the last complete line (ftruncate) and its lines are
 * counted lost, as samples.jsonl does (record.h): the next append, once
 * there is room again, starts on a line boundary.
 */
#ifndef WM_BASE_JSONL_H
#define WM_BASE_JSONL_H

#include <stddef.h>
#include <stdint.h>

typedef struct wm_jsonl {
	int fd;               /* -1 before create, after close */
	int open_errno;       /* create failed: appends are dropped (counted lost) */
	int write_errno;      /* the first failure, 0 none */
	int need_cut;         /* a cut-back failed: retried before the next append */
	long long good_off;   /* bytes that are complete lines */
	uint64_t lines_lost;  /* appends lost */
} wm_jsonl;

void wm_jsonl_init(wm_jsonl *j);
/* Creates name in dir_fd and writes header (whole lines). 0 or -errno;
 * a second call after a failure answers the first failure. */
int wm_jsonl_create(wm_jsonl *j, int dir_fd, const char *name, const char *header, size_t n);
/* Appends whole lines (data ends in '\n'); 0 or -errno (then nothing of
 * it is in the file). */
int wm_jsonl_append(wm_jsonl *j, const char *data, size_t n);
/* fsyncs (sync) and closes; harmless twice. */
void wm_jsonl_close(wm_jsonl *j, int sync);

#endif
