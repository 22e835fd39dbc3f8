/* host.c — see host.h. */
#include "base/host.h"

#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "procs/procfs.h"

int wm_host_json(int procfs_dirfd, wm_buf *out)
{
	struct utsname u;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof u);
	char model[256] = "";
	wm_buf cpuinfo;
	wm_buf_init(&cpuinfo);
	if (wm_read_file_buf_at(procfs_dirfd, "cpuinfo", &cpuinfo) == 0 && cpuinfo.data)
		wm_parse_cpuinfo_model(cpuinfo.data, model, sizeof model);
	wm_buf_free(&cpuinfo);

	int n_cpus = 0;
	uint64_t mem_total = 0, mem_avail = 0;
	char text[8192] = "";
	wm_buf st;
	wm_buf_init(&st);
	if (wm_read_file_buf_at(procfs_dirfd, "stat", &st) == 0 && st.data) {
		wm_cpu_times ct;
		if (wm_parse_proc_stat(st.data, &ct, &n_cpus) < 0)
			n_cpus = 0;
	}
	wm_buf_free(&st);
	if (wm_read_file_at(procfs_dirfd, "meminfo", text, sizeof text) >= 0 ||
	    text[0] /* -EOVERFLOW still leaves the head, which holds MemTotal */)
		(void)wm_parse_meminfo(text, &mem_total, &mem_avail);

	wm_buf_puts(out, "{\"hostname\":");
	wm_buf_json_str(out, u.nodename);
	wm_buf_puts(out, ",\"kernel\":");
	wm_buf_json_str(out, u.release);
	wm_buf_puts(out, ",\"machine\":");
	wm_buf_json_str(out, u.machine);
	wm_buf_puts(out, ",\"cpu_model\":");
	wm_buf_json_str(out, model);
	wm_buf_printf(out, ",\"n_cpus\":%d,\"mem_total_bytes\":%llu}", n_cpus, (unsigned long long)mem_total);
	return wm_buf_error(out);
}
