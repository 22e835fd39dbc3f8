/* test_procfs.c — the /proc parsers on literal texts, and the kept-fd
 * machine-wide reader on a fixture procfs tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "procs/procfs.h"
#include "base/util.h"

/* A real line (Linux 6.x, 52 fields) of `cat`: pid 4413, ppid 4404,
 * utime 7, stime 3, cutime 0, cstime 0, num_threads 1, starttime 54064, rss 390. */
static const char real_stat[] =
	"4413 (cat) R 4404 4404 3254 0 -1 4194304 99 0 0 0 7 3 0 0 20 0 1 0 54064 "
	"3133440 390 18446744073709551615 94698848866304 94698848886185 140735867393584 "
	"0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94698848902192 94698848903808 94699230908416 "
	"140735867394785 140735867394805 140735867394805 140735867396075 0\n";

/* Builds a stat line: name, then fields 3.. as given ("S 1 ...") */
static void stat_line(char *out, size_t len, int pid, const char *comm, const char *rest)
{
	int n = snprintf(out, len, "%d (%s) %s\n", pid, comm, rest);
	assert_true(n > 0 && (size_t)n < len);
}

/* Fields 3..24 with utime=U stime=S cutime=CU cstime=CS starttime=ST rss=R. */
#define FIELDS(ppid, u, s, cu, cs, thr, st, rss) \
	"S " #ppid " 1 1 0 -1 4194560 100 0 0 0 " #u " " #s " " #cu " " #cs " 20 0 " #thr \
	" 0 " #st " 1000000 " #rss " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0"

static void pid_stat_real_line(void **state)
{
	(void)state;
	wm_pid_stat s;
	assert_int_equal(wm_parse_pid_stat(real_stat, &s), 0);
	assert_int_equal(s.pid, 4413);
	assert_string_equal(s.comm, "cat");
	assert_int_equal(s.state, 'R');
	assert_int_equal(s.ppid, 4404);
	assert_int_equal(s.utime_ticks, 7);
	assert_int_equal(s.stime_ticks, 3);
	assert_int_equal(s.cutime_ticks, 0);
	assert_int_equal(s.num_threads, 1);
	assert_int_equal(s.starttime_ticks, 54064);
	assert_int_equal(s.rss_pages, 390);
	assert_int_equal(s.faults, 99);   /* minflt 99 + majflt 0; cminflt/cmajflt are not its own */
}

/* Page faults are minflt (field 10) plus majflt (field 12), never the
 * reaped children's (11, 13). */
static void pid_stat_faults(void **state)
{
	(void)state;
	wm_pid_stat s;
	assert_int_equal(wm_parse_pid_stat("9 (f) S 1 1 1 0 -1 0 1000 7000 25 9000 1 2 0 0 20 0 1 0 5 0 3\n", &s), 0);
	assert_int_equal(s.faults, 1025);
	assert_int_equal(wm_parse_pid_stat("9 (f) S 1 1 1 0 -1 0 -1 0 0 0 1 2 0 0 20 0 1 0 5 0 3\n", &s), -EINVAL);
}

/* The name may hold spaces, '(' and ')': only the LAST ')' ends it. */
static void pid_stat_comm_with_parens(void **state)
{
	(void)state;
	char line[1024];
	wm_pid_stat s;
	stat_line(line, sizeof line, 77, "(a) b)", FIELDS(5, 11, 12, 13, 14, 3, 999, 42));
	assert_int_equal(wm_parse_pid_stat(line, &s), 0);
	assert_string_equal(s.comm, "(a) b)");
	assert_int_equal(s.ppid, 5);
	assert_int_equal(s.utime_ticks, 11);
	assert_int_equal(s.stime_ticks, 12);
	assert_int_equal(s.cutime_ticks, 13);
	assert_int_equal(s.cstime_ticks, 14);
	assert_int_equal(s.num_threads, 3);
	assert_int_equal(s.starttime_ticks, 999);
	assert_int_equal(s.rss_pages, 42);

	/* A name that imitates the fields that follow it. */
	stat_line(line, sizeof line, 78, "x) R 1 2 3", FIELDS(6, 1, 2, 3, 4, 1, 50, 7));
	assert_int_equal(wm_parse_pid_stat(line, &s), 0);
	assert_string_equal(s.comm, "x) R 1 2 3");
	assert_int_equal(s.ppid, 6);

	/* Empty name, and a name longer than comm[] is cut and terminated. */
	stat_line(line, sizeof line, 79, "", FIELDS(1, 0, 0, 0, 0, 1, 1, 1));
	assert_int_equal(wm_parse_pid_stat(line, &s), 0);
	assert_string_equal(s.comm, "");
	char longname[200];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	stat_line(line, sizeof line, 80, longname, FIELDS(1, 0, 0, 0, 0, 1, 1, 1));
	assert_int_equal(wm_parse_pid_stat(line, &s), 0);
	assert_int_equal(strlen(s.comm), sizeof s.comm - 1);
}

/* A read cut short (or any line with fewer than 24 fields) is rejected, as is
 * anything that is not a stat line. */
static void pid_stat_truncated_rejected(void **state)
{
	(void)state;
	wm_pid_stat s;
	char line[1024];
	/* real_stat cut after the rss field parses; cut anywhere before it fails */
	const char *rss_end = strstr(real_stat, " 390 ") + 4;
	size_t full = (size_t)(rss_end - real_stat);
	for (size_t cut = 0; cut < full; cut++) {
		memcpy(line, real_stat, cut);
		line[cut] = '\0';
		/* Cutting inside the last digits of rss still looks complete
		 * ("39"), as does any cut right after a whole field's digits
		 * only if all 24 fields are present: only cut >= full-2 can. */
		int rc = wm_parse_pid_stat(line, &s);
		if (cut < full - 3)
			assert_int_equal(rc, -EINVAL);
	}
	memcpy(line, real_stat, full);
	line[full] = '\0';
	assert_int_equal(wm_parse_pid_stat(line, &s), 0);
	assert_int_equal(s.rss_pages, 390);

	assert_int_equal(wm_parse_pid_stat("", &s), -EINVAL);
	assert_int_equal(wm_parse_pid_stat("12 (x S 1 2", &s), -EINVAL);      /* no ')' */
	assert_int_equal(wm_parse_pid_stat("12 x) S 1 2", &s), -EINVAL);      /* no '(' */
	assert_int_equal(wm_parse_pid_stat("abc (x) S 1", &s), -EINVAL);
	assert_int_equal(wm_parse_pid_stat("-3 (x) " FIELDS(1, 0, 0, 0, 0, 1, 1, 1), &s), -EINVAL);
	/* a letter where a number belongs */
	assert_int_equal(wm_parse_pid_stat("12 (x) S 1 1 1 0 -1 4194560 100 0 0 0 7 3x 0 0 20 0 1 0 5 1 1 1", &s),
			 -EINVAL);
	/* two spaces (an empty field) */
	assert_int_equal(wm_parse_pid_stat("12 (x) S  1 1 1 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1 1 1", &s),
			 -EINVAL);
	/* state must be one character */
	assert_int_equal(wm_parse_pid_stat("12 (x) SS 1 1 1 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1 1 1", &s),
			 -EINVAL);
}

static void pid_stat_negative_clamped(void **state)
{
	(void)state;
	char line[1024];
	wm_pid_stat s;
	/* cutime, cstime and rss are printed signed; negatives clamp to 0 */
	stat_line(line, sizeof line, 9, "neg", FIELDS(1, 5, 6, -7, -8, 1, 100, -2));
	assert_int_equal(wm_parse_pid_stat(line, &s), 0);
	assert_int_equal(s.cutime_ticks, 0);
	assert_int_equal(s.cstime_ticks, 0);
	assert_int_equal(s.rss_pages, 0);
	assert_int_equal(s.utime_ticks, 5);
	/* utime is unsigned: a '-' there is not a stat line we understand */
	stat_line(line, sizeof line, 9, "neg", FIELDS(1, -5, 6, 7, 8, 1, 100, 2));
	assert_int_equal(wm_parse_pid_stat(line, &s), -EINVAL);
	/* negative ppid */
	stat_line(line, sizeof line, 9, "neg", FIELDS(-1, 5, 6, 7, 8, 1, 100, 2));
	assert_int_equal(wm_parse_pid_stat(line, &s), -EINVAL);
}

static void pid_stat_huge_rejected(void **state)
{
	(void)state;
	char line[1024];
	wm_pid_stat s;
	/* 2^64-1 is a valid u64 (rsslim prints it) */
	stat_line(line, sizeof line, 9, "big", FIELDS(1, 18446744073709551615, 6, 7, 8, 1, 100, 2));
	assert_int_equal(wm_parse_pid_stat(line, &s), 0);
	assert_true(s.utime_ticks == UINT64_MAX);
	/* 2^64 is not */
	stat_line(line, sizeof line, 9, "big", FIELDS(1, 18446744073709551616, 6, 7, 8, 1, 100, 2));
	assert_int_equal(wm_parse_pid_stat(line, &s), -EINVAL);
	stat_line(line, sizeof line, 9, "big", FIELDS(1, 1, 6, 7, 8, 1, 99999999999999999999999, 2));
	assert_int_equal(wm_parse_pid_stat(line, &s), -EINVAL);
	stat_line(line, sizeof line, 9, "big", FIELDS(1, 1, 6, -99999999999999999999, 8, 1, 5, 2));
	assert_int_equal(wm_parse_pid_stat(line, &s), -EINVAL);
	/* a pid or ppid beyond int */
	assert_int_equal(wm_parse_pid_stat("4294967296 (x) " FIELDS(1, 0, 0, 0, 0, 1, 1, 1), &s), -EINVAL);
	stat_line(line, sizeof line, 9, "big", FIELDS(2147483648, 1, 6, 7, 8, 1, 5, 2));
	assert_int_equal(wm_parse_pid_stat(line, &s), -EINVAL);
	/* threads beyond int */
	stat_line(line, sizeof line, 9, "big", FIELDS(1, 1, 6, 7, 8, 2147483648, 5, 2));
	assert_int_equal(wm_parse_pid_stat(line, &s), -EINVAL);
}

/* ---- /proc/stat ---- */

static void proc_stat_with_guest(void **state)
{
	(void)state;
	const char *text =
		"cpu  3158 5 849 103640 253 1 69 2 100 7\n"
		"cpu0 383 0 295 53262 8 0 45 0 0 0\n"
		"cpu1 2775 5 554 50378 244 1 23 2 100 7\n"
		"intr 123456 0 9 0 0\n"
		"ctxt 1000\nbtime 1700000000\nprocesses 4421\nprocs_running 1\n";
	wm_cpu_times t;
	int n = 0;
	assert_int_equal(wm_parse_proc_stat(text, &t, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(t.user, 3158);
	assert_int_equal(t.nice, 5);
	assert_int_equal(t.system, 849);
	assert_int_equal(t.idle, 103640);
	assert_int_equal(t.iowait, 253);
	assert_int_equal(t.irq, 1);
	assert_int_equal(t.softirq, 69);
	assert_int_equal(t.steal, 2);
	/* guest (100) and guest_nice (7) are inside user and nice: not added */
	assert_int_equal(t.busy_ticks, 3158 + 5 + 849 + 1 + 69 + 2);
	assert_int_equal(t.total_ticks, t.busy_ticks + 103640 + 253);
}

static void proc_stat_without_guest(void **state)
{
	(void)state;
	wm_cpu_times t;
	int n = 0;
	/* 2.6.11 .. 2.6.23: eight fields */
	assert_int_equal(wm_parse_proc_stat("cpu  10 0 5 100 1 0 0 3\ncpu0 10 0 5 100 1 0 0 3\n", &t, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(t.steal, 3);
	assert_int_equal(t.busy_ticks, 18);
	assert_int_equal(t.total_ticks, 119);
	/* four fields only (oldest): the rest read as 0; no cpuN line means 1 CPU */
	assert_int_equal(wm_parse_proc_stat("cpu 1 2 3 4", &t, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(t.busy_ticks, 6);
	assert_int_equal(t.total_ticks, 10);
	/* many CPUs, aggregate line not first */
	char big[8192] = "intr 5\n";
	size_t off = strlen(big);
	for (int i = 0; i < 64; i++) {
		int k = snprintf(big + off, sizeof big - off, "cpu%d 1 0 1 10 0 0 0 0 0 0\n", i);
		assert_true(k > 0 && (size_t)k < sizeof big - off);
		off += (size_t)k;
	}
	int k = snprintf(big + off, sizeof big - off, "cpu  64 0 64 640 0 0 0 0 0 0\n");
	assert_true(k > 0 && (size_t)k < sizeof big - off);
	assert_int_equal(wm_parse_proc_stat(big, &t, &n), 0);
	assert_int_equal(n, 64);
	assert_int_equal(t.user, 64);
}

static void proc_stat_bad(void **state)
{
	(void)state;
	wm_cpu_times t;
	int n = 0;
	assert_int_equal(wm_parse_proc_stat("", &t, &n), -EINVAL);
	assert_int_equal(wm_parse_proc_stat("cpu0 1 2 3 4\n", &t, &n), -EINVAL);  /* no aggregate */
	assert_int_equal(wm_parse_proc_stat("cpu  1 2 3\n", &t, &n), -EINVAL);      /* too few */
	assert_int_equal(wm_parse_proc_stat("cpu  1 2 x 4\n", &t, &n), -EINVAL);
	assert_int_equal(wm_parse_proc_stat("cpu  1 2 3 4-\n", &t, &n), -EINVAL);
	assert_int_equal(wm_parse_proc_stat("cpu  1 2 3 -4\n", &t, &n), -EINVAL);
	assert_true(wm_parse_proc_stat("cpu  1 2 3 18446744073709551616\n", &t, &n) < 0);
	/* fields do not run on into the next line */
	assert_int_equal(wm_parse_proc_stat("cpu  1 2\n3 4\n", &t, &n), -EINVAL);
	/* "cpufreq"-like lines are neither the aggregate nor a CPU */
	assert_int_equal(wm_parse_proc_stat("cpux 1 2 3 4\ncpu  1 2 3 4\ncpu0 1\n", &t, &n), 0);
	assert_int_equal(n, 1);
}

/* ---- smaps_rollup ---- */

static const char rollup_real[] =
	"55e4ecedb000-7fff95fad000 ---p 00000000 00:00 0                          [rollup]\n"
	"Rss:                1628 kB\nPss:                 399 kB\nPss_Dirty:           108 kB\n"
	"Pss_Anon:            108 kB\nPss_File:            291 kB\nPss_Shmem:             0 kB\n"
	"Shared_Clean:       1460 kB\nShared_Dirty:          0 kB\nPrivate_Clean:        60 kB\n"
	"Private_Dirty:       108 kB\nReferenced:         1628 kB\nAnonymous:           108 kB\n"
	"KSM:                   0 kB\nLazyFree:              0 kB\nAnonHugePages:         0 kB\n"
	"ShmemPmdMapped:        0 kB\nFilePmdMapped:         0 kB\nShared_Hugetlb:        0 kB\n"
	"Private_Hugetlb:    2048 kB\nSwap:                  0 kB\nSwapPss:               0 kB\n"
	"Locked:                0 kB\n";

static void smaps_rollup_with_hugetlb(void **state)
{
	(void)state;
	uint64_t rss = 0, pss = 0, uss = 0;
	assert_int_equal(wm_parse_smaps_rollup(rollup_real, &rss, &pss, &uss), 0);
	assert_int_equal(rss, 1628 * 1024ull);
	assert_int_equal(pss, 399 * 1024ull);   /* not Pss_Dirty/Pss_Anon */
	assert_int_equal(uss, (60 + 108 + 2048) * 1024ull);
}

static void smaps_rollup_without_hugetlb(void **state)
{
	(void)state;
	uint64_t rss = 0, pss = 0, uss = 0;
	const char *old = "00400000-7fff0000 ---p 00000000 00:00 0 [rollup]\n"
			  "Rss: 100 kB\nPss: 50 kB\nPrivate_Clean: 4 kB\nPrivate_Dirty: 8 kB\n";
	assert_int_equal(wm_parse_smaps_rollup(old, &rss, &pss, &uss), 0);
	assert_int_equal(rss, 102400);
	assert_int_equal(pss, 51200);
	assert_int_equal(uss, 12 * 1024);
	/* zombie: empty file */
	assert_int_equal(wm_parse_smaps_rollup("", &rss, &pss, &uss), -EINVAL);
	assert_int_equal(wm_parse_smaps_rollup("Rss: 1 kB\n", &rss, &pss, &uss), -EINVAL);
	assert_int_equal(wm_parse_smaps_rollup("Rss: 1 kB\nPss: x kB\n", &rss, &pss, &uss), -EINVAL);
	assert_int_equal(wm_parse_smaps_rollup("Rss: 1 kB\nPss: 1 MB\n", &rss, &pss, &uss), -EINVAL);
	assert_int_equal(wm_parse_smaps_rollup("Rss: 1\nPss: 1 kB\n", &rss, &pss, &uss), -EINVAL);
	/* kB -> bytes overflow */
	assert_true(wm_parse_smaps_rollup("Rss: 18014398509481984 kB\nPss: 1 kB\n", &rss, &pss, &uss) < 0);
}

/* ---- meminfo ---- */

static void meminfo_available(void **state)
{
	(void)state;
	uint64_t total = 0, avail = 0;
	const char *text = "MemTotal:       16314356 kB\nMemFree:          913644 kB\n"
			   "MemAvailable:   12121212 kB\nBuffers:          200000 kB\n"
			   "Cached:          5000000 kB\nHugePages_Total:       0\n"
			   "Hugepagesize:       2048 kB\n";
	assert_int_equal(wm_parse_meminfo(text, &total, &avail), 0);
	assert_int_equal(total, 16314356ull * 1024);
	assert_int_equal(avail, 12121212ull * 1024);
}

static void meminfo_fallback(void **state)
{
	(void)state;
	uint64_t total = 0, avail = 0;
	/* before 3.14: MemFree + Buffers + Cached */
	const char *text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n"
			   "SwapCached: 7 kB\n";
	assert_int_equal(wm_parse_meminfo(text, &total, &avail), 0);
	assert_int_equal(total, 1000 * 1024);
	assert_int_equal(avail, 420 * 1024);
	assert_int_equal(wm_parse_meminfo("MemFree: 100 kB\n", &total, &avail), -EINVAL);
	assert_int_equal(wm_parse_meminfo("", &total, &avail), -EINVAL);
	assert_int_equal(wm_parse_meminfo("MemTotal: -5 kB\n", &total, &avail), -EINVAL);
}

/* ---- cmdline ---- */

static void cmdline_format(void **state)
{
	(void)state;
	char out[64];
	const char raw[] = "python3\0train.py\0--lr\0001e-3\0";
	assert_int_equal(wm_format_cmdline(raw, sizeof raw - 1, out, sizeof out), 26);
	assert_string_equal(out, "python3 train.py --lr 1e-3");
	/* several trailing NULs (rewritten argv), control bytes */
	const char raw2[] = "a\tb\0c\x1b\0\0\0";
	wm_format_cmdline(raw2, sizeof raw2 - 1, out, sizeof out);
	assert_string_equal(out, "a?b c?");
	/* empty: kernel thread or zombie */
	assert_int_equal(wm_format_cmdline("", 0, out, sizeof out), 0);
	assert_string_equal(out, "");
	assert_int_equal(wm_format_cmdline(NULL, 0, out, sizeof out), 0);
	/* UTF-8 kept */
	const char raw3[] = "cat\0caf\xc3\xa9.txt";
	wm_format_cmdline(raw3, sizeof raw3 - 1, out, sizeof out);
	assert_string_equal(out, "cat caf\xc3\xa9.txt");
}

static void cmdline_truncation(void **state)
{
	(void)state;
	char out[12];
	const char raw[] = "0123456789\0abcdef";
	size_t n = wm_format_cmdline(raw, sizeof raw - 1, out, sizeof out);
	assert_string_equal(out, "01234567...");
	assert_int_equal(n, 11);
	/* exactly fits: no dots */
	const char fits[] = "0123456789\0a";
	wm_format_cmdline(fits, sizeof fits - 1, out, sizeof out);   /* 12 chars into 11 */
	assert_string_equal(out, "01234567...");
	const char fits2[] = "012345678\0a";
	wm_format_cmdline(fits2, sizeof fits2 - 1, out, sizeof out);
	assert_string_equal(out, "012345678 a");
	/* never cut a UTF-8 sequence in half: e-acute spans bytes 7-8 */
	const char utf[] = "abcdefg\xc3\xa9zzzzzzz";
	wm_format_cmdline(utf, sizeof utf - 1, out, sizeof out);
	assert_string_equal(out, "abcdefg...");
	/* tiny buffers stay terminated */
	char tiny[3];
	wm_format_cmdline(raw, sizeof raw - 1, tiny, sizeof tiny);
	assert_string_equal(tiny, "01");
	char one[1];
	assert_int_equal(wm_format_cmdline(raw, sizeof raw - 1, one, sizeof one), 0);
	assert_string_equal(one, "");
}

/* ---- cpuinfo ---- */

static void cpuinfo_model(void **state)
{
	(void)state;
	char out[64];
	const char *text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
			   "model name\t:  Intel(R) Xeon(R) Platinum 8480+   \nstepping\t: 8\n\n"
			   "processor\t: 1\nmodel name\t: other\n";
	wm_parse_cpuinfo_model(text, out, sizeof out);
	assert_string_equal(out, "Intel(R) Xeon(R) Platinum 8480+");
	wm_parse_cpuinfo_model("processor : 0\nCPU part : 0xd0c\n", out, sizeof out);
	assert_string_equal(out, "");
	char small[6];
	wm_parse_cpuinfo_model(text, small, sizeof small);
	assert_string_equal(small, "Intel");
	wm_parse_cpuinfo_model("model name:\n", out, sizeof out);
	assert_string_equal(out, "");
}

/* ---- sysstat reader on a fixture ---- */

/* Rewrites root/rel in place (same inode, as procfs content changes under a
 * kept fd), padding with spaces to a fixed width so no old tail remains. */
static void rewrite_in_place(const char *root, const char *rel, const char *content, size_t width)
{
	char p[4096];
	int n = snprintf(p, sizeof p, "%s/%s", root, rel);
	assert_true(n > 0 && (size_t)n < sizeof p);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	char buf[4096];
	size_t len = strlen(content);
	assert_true(len <= width && width < sizeof buf);
	memcpy(buf, content, len);
	memset(buf + len, ' ', width - len);
	assert_int_equal(pwrite(fd, buf, width, 0), (ssize_t)width);
	close(fd);
}

static void sysstat_fixture(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	fx_write(root, "stat", "cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 50 0 25 500 5 0 0 0 0 0\n"
			       "cpu1 50 0 25 500 5 0 0 0 0 0\nintr 0\n");
	fx_write(root, "meminfo", "MemTotal: 2048 kB\nMemFree: 512 kB\nMemAvailable: 1024 kB\n");
	int dfd = fx_open_root(root);

	wm_sysstat s;
	char err[256] = "";
	assert_int_equal(wm_sysstat_open(&s, dfd, err, sizeof err), 0);
	assert_int_equal(s.n_cpus, 2);
	wm_cpu_times t;
	assert_int_equal(wm_sysstat_read_cpu(&s, &t), 0);
	assert_int_equal(t.busy_ticks, 150);
	assert_int_equal(t.total_ticks, 1160);
	uint64_t total, avail;
	assert_int_equal(wm_sysstat_read_mem(&s, &total, &avail), 0);
	assert_int_equal(total, 2048 * 1024);
	assert_int_equal(avail, 1024 * 1024);

	/* Content changes under the kept fds; a new read sees it. */
	rewrite_in_place(root, "stat", "cpu  200 0 60 1100 10 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n", 120);
	rewrite_in_place(root, "meminfo", "MemTotal: 2048 kB\nMemAvailable: 100 kB\n", 80);
	/* the stale name would no longer resolve: the fds are what is read */
	fx_unlink(root, "stat");
	assert_int_equal(wm_sysstat_read_cpu(&s, &t), 0);
	assert_int_equal(t.user, 200);
	assert_int_equal(t.busy_ticks, 260);
	assert_int_equal(s.n_cpus, 1);
	assert_int_equal(wm_sysstat_read_mem(&s, &total, &avail), 0);
	assert_int_equal(avail, 100 * 1024);

	/* A broken file gives an error, not garbage. */
	rewrite_in_place(root, "meminfo", "MemTotal: lots\n", 80);
	assert_int_equal(wm_sysstat_read_mem(&s, &total, &avail), -EINVAL);

	wm_sysstat_close(&s);
	wm_sysstat_close(&s);   /* harmless twice */
	assert_int_equal(s.stat_fd, -1);
	close(dfd);
	fx_rmtree(root);
}

/* /proc/stat larger than the kept buffer: the head still parses, the CPU
 * count comes from one whole read at open. meminfo absent is "no data". */
static void sysstat_big_stat_no_meminfo(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_buf_puts(&b, "cpu  7 0 3 90 0 0 0 0 0 0\n"), 0);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(wm_buf_printf(&b, "cpu%d 1 0 1 30 0 0 0 0 0 0\n", i), 0);
	assert_true(b.len > sizeof(((wm_sysstat *)0)->buf));
	fx_write(root, "stat", b.data);
	wm_buf_free(&b);
	int dfd = fx_open_root(root);

	wm_sysstat s;
	char err[256] = "";
	assert_int_equal(wm_sysstat_open(&s, dfd, err, sizeof err), 0);
	assert_int_equal(s.n_cpus, 3000);
	wm_cpu_times t;
	assert_int_equal(wm_sysstat_read_cpu(&s, &t), 0);
	assert_int_equal(t.busy_ticks, 10);
	assert_int_equal(s.n_cpus, 3000);   /* a truncated read does not recount */
	uint64_t total, avail;
	assert_int_equal(wm_sysstat_read_mem(&s, &total, &avail), -ENOENT);
	wm_sysstat_close(&s);
	close(dfd);
	fx_rmtree(root);
}

static void sysstat_missing(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	int dfd = fx_open_root(root);
	wm_sysstat s;
	char err[256] = "";
	assert_int_equal(wm_sysstat_open(&s, dfd, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "stat"));
	assert_int_equal(s.stat_fd, -1);
	fx_write(root, "stat", "no cpu line here\n");
	assert_int_equal(wm_sysstat_open(&s, dfd, err, sizeof err), -EINVAL);
	assert_int_equal(s.stat_fd, -1);
	assert_int_equal(s.meminfo_fd, -1);
	close(dfd);
	fx_rmtree(root);
}

/* Per-pid readers on a fixture: absent pid is -ENOENT. */
static void pid_readers_fixture(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	fx_write(root, "42/stat", real_stat);
	fx_write(root, "42/smaps_rollup", rollup_real);
	char p[4096];
	int n = snprintf(p, sizeof p, "%s/42/cmdline", root);
	assert_true(n > 0 && (size_t)n < sizeof p);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	assert_int_equal(fwrite("sleep\0" "10\0", 1, 9, f), 9);
	fclose(f);
	int dfd = fx_open_root(root);

	wm_pid_stat st;
	assert_int_equal(wm_read_pid_stat(dfd, 42, &st), 0);
	assert_int_equal(st.pid, 4413);   /* the file's content, as written */
	assert_int_equal(wm_read_pid_stat(dfd, 43, &st), -ENOENT);
	assert_int_equal(wm_read_pid_stat(dfd, 0, &st), -EINVAL);
	char cmd[64];
	assert_int_equal(wm_read_pid_cmdline(dfd, 42, cmd, sizeof cmd), 0);
	assert_string_equal(cmd, "sleep 10");
	assert_int_equal(wm_read_pid_cmdline(dfd, 43, cmd, sizeof cmd), -ENOENT);
	uint64_t rss, pss, uss;
	assert_int_equal(wm_read_pid_smaps_rollup(dfd, 42, &rss, &pss, &uss), 0);
	assert_int_equal(pss, 399 * 1024);
	assert_int_equal(wm_read_pid_smaps_rollup(dfd, 43, &rss, &pss, &uss), -ENOENT);
	close(dfd);
	fx_rmtree(root);
}

/* A cmdline longer than the read buffer ends with "..." even if what was read fits. */
static void pid_cmdline_long(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	char big[10000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	fx_write(root, "7/cmdline", big);
	int dfd = fx_open_root(root);
	char out[8192];
	assert_int_equal(wm_read_pid_cmdline(dfd, 7, out, sizeof out), 0);
	size_t len = strlen(out);
	assert_true(len > 3 && len < sizeof out);
	assert_string_equal(out + len - 3, "...");
	char small[16];
	assert_int_equal(wm_read_pid_cmdline(dfd, 7, small, sizeof small), 0);
	assert_string_equal(small, "aaaaaaaaaaaa...");
	close(dfd);
	fx_rmtree(root);
}

/* The real /proc/self, as a smoke test of the readers against the kernel. */
static void real_self(void **state)
{
	(void)state;
	int dfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		skip();
	wm_pid_stat st;
	assert_int_equal(wm_read_pid_stat(dfd, getpid(), &st), 0);
	assert_int_equal(st.pid, getpid());
	assert_int_equal(st.ppid, getppid());
	assert_true(st.rss_pages > 0);
	/* Its faults against the kernel's other account of them, getrusage:
	 * between the counts before and after the read. */
	struct rusage ru0, ru1;
	assert_int_equal(getrusage(RUSAGE_SELF, &ru0), 0);
	assert_int_equal(wm_read_pid_stat(dfd, getpid(), &st), 0);
	assert_int_equal(getrusage(RUSAGE_SELF, &ru1), 0);
	assert_true(st.faults >= (uint64_t)(ru0.ru_minflt + ru0.ru_majflt));
	assert_true(st.faults <= (uint64_t)(ru1.ru_minflt + ru1.ru_majflt));
	char cmd[512];
	assert_int_equal(wm_read_pid_cmdline(dfd, getpid(), cmd, sizeof cmd), 0);
	assert_non_null(strstr(cmd, "test_procfs"));
	wm_sysstat s;
	char err[256];
	assert_int_equal(wm_sysstat_open(&s, dfd, err, sizeof err), 0);
	assert_int_equal(s.n_cpus, (int)sysconf(_SC_NPROCESSORS_ONLN));
	wm_cpu_times t;
	assert_int_equal(wm_sysstat_read_cpu(&s, &t), 0);
	assert_true(t.total_ticks > 0);
	uint64_t total, avail;
	assert_int_equal(wm_sysstat_read_mem(&s, &total, &avail), 0);
	assert_true(total > 0 && avail <= total);
	wm_sysstat_close(&s);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pid_stat_real_line),
		cmocka_unit_test(pid_stat_faults),
		cmocka_unit_test(pid_stat_comm_with_parens),
		cmocka_unit_test(pid_stat_truncated_rejected),
		cmocka_unit_test(pid_stat_negative_clamped),
		cmocka_unit_test(pid_stat_huge_rejected),
		cmocka_unit_test(proc_stat_with_guest),
		cmocka_unit_test(proc_stat_without_guest),
		cmocka_unit_test(proc_stat_bad),
		cmocka_unit_test(smaps_rollup_with_hugetlb),
		cmocka_unit_test(smaps_rollup_without_hugetlb),
		cmocka_unit_test(meminfo_available),
		cmocka_unit_test(meminfo_fallback),
		cmocka_unit_test(cmdline_format),
		cmocka_unit_test(cmdline_truncation),
		cmocka_unit_test(cpuinfo_model),
		cmocka_unit_test(sysstat_fixture),
		cmocka_unit_test(sysstat_big_stat_no_meminfo),
		cmocka_unit_test(sysstat_missing),
		cmocka_unit_test(pid_readers_fixture),
		cmocka_unit_test(pid_cmdline_long),
		cmocka_unit_test(real_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
