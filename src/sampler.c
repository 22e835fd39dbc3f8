/* STUB */
#include <errno.h>
#include <string.h>
#include "wattmeter.h"
#include "util.h"
void wm_meter_config_init(wm_meter_config *c) { memset(c, 0, sizeof *c); }
int wm_meter_start(const wm_meter_config *c, wm_meter **out, char *err, size_t errlen) { (void)c; (void)out; return wm_err(err, errlen, -ENOSYS, "todo"); }
int wm_meter_add_pid(wm_meter *m, int pid) { (void)m; (void)pid; return -ENOSYS; }
int wm_meter_snapshot(wm_meter *m, wm_snapshot *o) { (void)m; (void)o; return -ENOSYS; }
int wm_meter_stop(wm_meter *m, int st, char *err, size_t errlen) { (void)m; (void)st; (void)err; (void)errlen; return -ENOSYS; }
void wm_meter_free(wm_meter *m) { (void)m; }
