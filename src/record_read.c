/* STUB — to be written */
#include "record.h"
#include <errno.h>
int wm_recording_open(const char *dir, wm_recording **out, char *err, size_t errlen) { (void)dir; (void)out; return wm_err(err, errlen, -ENOSYS, "not implemented"); }
void wm_recording_free(wm_recording *r) { (void)r; }
int wm_recording_summary_json(const wm_recording *r, wm_buf *out) { (void)r; (void)out; return -ENOSYS; }
int wm_recording_summary_text(const wm_recording *r, int top_n, wm_buf *out) { (void)r; (void)top_n; (void)out; return -ENOSYS; }
int wm_recording_columns_json(const wm_recording *r, wm_buf *out) { (void)r; (void)out; return -ENOSYS; }
