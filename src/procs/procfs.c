/* STUB — to be written */
#include "procfs.h"
#include <errno.h>
int wm_parse_pid_stat(const char *t, wm_pid_stat *o) { (void)t; (void)o; return -ENOSYS; }
int wm_parse_proc_stat(const char *t, wm_cpu_times *o, int *n) { (void)t; (void)o; (void)n; return -ENOSYS; }
int wm_parse_smaps_rollup(const char *t, uint64_t *a, uint64_t *b, uint64_t *c) { (void)t; (void)a; (void)b; (void)c; return -ENOSYS; }
int wm_parse_meminfo(const char *t, uint64_t *a, uint64_t *b) { (void)t; (void)a; (void)b; return -ENOSYS; }
size_t wm_format_cmdline(const char *raw, size_t n, char *out, size_t outlen) { (void)raw; (void)n; if (outlen) out[0] = 0; return 0; }
void wm_parse_cpuinfo_model(const char *t, char *out, size_t outlen) { (void)t; if (outlen) out[0] = 0; }
int wm_sysstat_open(wm_sysstat *s, int fd, char *err, size_t errlen) { (void)s; (void)fd; (void)err; (void)errlen; return -ENOSYS; }
int wm_sysstat_read_cpu(wm_sysstat *s, wm_cpu_times *o) { (void)s; (void)o; return -ENOSYS; }
int wm_sysstat_read_mem(wm_sysstat *s, uint64_t *a, uint64_t *b) { (void)s; (void)a; (void)b; return -ENOSYS; }
void wm_sysstat_close(wm_sysstat *s) { (void)s; }
int wm_read_pid_stat(int d, int pid, wm_pid_stat *o) { (void)d; (void)pid; (void)o; return -ENOSYS; }
int wm_read_pid_cmdline(int d, int pid, char *out, size_t outlen) { (void)d; (void)pid; (void)out; (void)outlen; return -ENOSYS; }
int wm_read_pid_smaps_rollup(int d, int pid, uint64_t *a, uint64_t *b, uint64_t *c) { (void)d; (void)pid; (void)a; (void)b; (void)c; return -ENOSYS; }
