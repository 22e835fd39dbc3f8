/* test_record_faults.c — the recording writer where others can write the
 * folder and where writes fail (record.h, base/safepath.h,
 * docs/privileges.md, docs/recording.md "When the disk fills").
 *
 * Short writes and ENOSPC-like failures come from the kernel itself:
 * RLIMIT_FSIZE makes a write that crosses the limit write what fits and
 * return short, and the next one fail with EFBIG, exactly as a disk that
 * fills mid-line does. Planted links are real symlinks; a link "owned by
 * another user" is a real lchown (root only, else skipped).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "base/safepath.h"
#include "fixture.h"
#include "recording/record.h"
#include "wattmeter.h"

/* ---- helpers ---------------------------------------------------------------- */

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = calloc(1, 1 << 20);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Limits every file this process writes to limit bytes (RLIMIT_FSIZE), with
 * SIGXFSZ ignored so the write returns EFBIG; restore() undoes it. */
static struct rlimit saved_limit;
static void limit_file_size(rlim_t limit)
{
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved_limit), 0);
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit l = {.rlim_cur = limit, .rlim_max = saved_limit.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &l), 0);
}

static void restore_file_size(void)
{
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_limit), 0);
	signal(SIGXFSZ, SIG_DFL);
}

/* Names in dir, space-separated and sorted by readdir order (few entries). */
static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static const char victim_text[] = "root:$6$secret:19000:0:99999:7:::\n";

/* A 0600 "victim" file outside the folder, as /etc/shadow would be. */
static void make_victim(const char *root, char *path, size_t len)
{
	fx_write(root, "victim", victim_text);
	(void)snprintf(path, len, "%s/victim", root);
	assert_int_equal(chmod(path, 0600), 0);
}

static void assert_victim_untouched(const char *path)
{
	char *s = slurp(path);
	assert_string_equal(s, victim_text);
	free(s);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

#define LINE_300 \
	"{\"t_s\":0,\"pad\":\"" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"

/* ---- file systems without O_TMPFILE, users without CAP_DAC_READ_SEARCH ---------
 * Interposed for this executable (the library's calls land here): while
 * no_tmpfile is set, O_TMPFILE fails with EOPNOTSUPP as on NFS or FUSE, so
 * the named-temp path runs; while no_empty_path is set, linkat(AT_EMPTY_PATH)
 * fails with ENOENT as it does without the capability, so the /proc path
 * runs. (The build defines _FILE_OFFSET_BITS=64: openat is openat64.) */
static int no_tmpfile, no_empty_path;

int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & O_CREAT || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (no_tmpfile && (flags & O_TMPFILE) == O_TMPFILE) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
	if (no_empty_path && (flags & AT_EMPTY_PATH)) {
		errno = ENOENT;
		return -1;
	}
	return (int)syscall(SYS_linkat, olddirfd, oldpath, newdirfd, newpath, flags);
}

/* ---- short writes ---------------------------------------------------------------- */

/* A line cut short by a full disk is cut off again: the file keeps only
 * whole lines, and appending resumes at a line boundary when space returns.
 * (Before: the partial line stayed, the next line was glued to it, and the
 * reader called every line after it damage.) */
static void test_short_write_is_cut_back_to_the_last_line(void **state)
{
	(void)state;
	char root[4096], dir[4200], samples[4300];
	fx_mkdtemp(root, sizeof root);
	(void)snprintf(dir, sizeof dir, "%s/rec", root);
	(void)snprintf(samples, sizeof samples, "%s/samples.jsonl", dir);
	wm_recorder r;
	char err[512];
	assert_int_equal(wm_recorder_open(&r, dir, err, sizeof err), 0);
	size_t n = strlen(LINE_300), len = n + 1; /* a line and its newline */

	limit_file_size(3 * len + len / 3); /* 3 lines fit; the 4th is cut a third in */
	for (int i = 0; i < 3; i++)
		assert_int_equal(wm_recorder_append(&r, LINE_300, n), 0);
	int rc = wm_recorder_append(&r, LINE_300, n);
	int rc2 = wm_recorder_append(&r, LINE_300, n);
	restore_file_size();
	assert_int_equal(rc, -EFBIG);
	assert_int_equal(rc2, -EFBIG);
	assert_int_equal(file_size(samples), 3 * len); /* the partial line is gone */

	/* space again: appending resumes on a line boundary */
	assert_int_equal(wm_recorder_append(&r, LINE_300, n), 0);
	wm_recorder_close(&r);
	assert_int_equal(file_size(samples), 4 * len);
	char *s = slurp(samples);
	size_t lines = 0;
	for (char *p = s; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, 4);
	for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		assert_non_null(o);
		json_decref(o);
	}
	free(s);
	fx_rmtree(root);
}

/* meta.json that cannot be written (the disk is full) leaves the old one
 * whole, and no temp file behind. */
static void test_meta_json_kept_when_the_new_one_cannot_be_written(void **state)
{
	(void)state;
	char root[4096], dir[4200], meta[4300];
	fx_mkdtemp(root, sizeof root);
	(void)snprintf(dir, sizeof dir, "%s/rec", root);
	(void)snprintf(meta, sizeof meta, "%s/meta.json", dir);
	wm_recorder r;
	char err[512];
	assert_int_equal(wm_recorder_open(&r, dir, err, sizeof err), 0);
	const char *old = "{\"schema\":\"wattmeter.recording\",\"schema_version\":1,\"complete\":false}";
	assert_int_equal(wm_recorder_write_meta(&r, old, strlen(old)), 0);

	char big[4096];
	memset(big, ' ', sizeof big);
	memcpy(big, "{\"complete\":true", 16);
	big[sizeof big - 1] = '}';
	limit_file_size(2048);
	int rc = wm_recorder_write_meta(&r, big, sizeof big);
	restore_file_size();
	assert_int_equal(rc, -EFBIG);
	char *s = slurp(meta);
	assert_int_equal(strncmp(s, old, strlen(old)), 0);
	free(s);
	wm_recorder_close(&r);
	assert_int_equal(count_entries(dir), 2); /* meta.json, samples.jsonl */
	fx_rmtree(root);
}

/* ---- planted links ----------------------------------------------------------------- */

/* Links planted in the folder under meta.json's names (the old fixed temp
 * name, meta.json itself, names an editor or another tool would use) are
 * never written through: meta.json is a new file of our own, the victim is
 * untouched. (Before: meta.json.tmp was opened O_CREAT|O_TRUNC, following
 * the link, and the victim was rewritten.) */
static void test_planted_links_in_the_folder_are_not_followed(void **state)
{
	(void)state;
	char root[4096], victim[4200], dir[4200], meta[4300];
	fx_mkdtemp(root, sizeof root);
	make_victim(root, victim, sizeof victim);
	fx_mkdir(root, "rec");
	const char *names[] = {"meta.json.tmp", "meta.json", ".meta.json.tmp", "meta.json~", "meta.json.new"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char rel[64];
		(void)snprintf(rel, sizeof rel, "rec/%s", names[i]);
		fx_symlink(root, rel, victim);
	}
	(void)snprintf(dir, sizeof dir, "%s/rec", root);
	(void)snprintf(meta, sizeof meta, "%s/meta.json", dir);

	wm_recorder r;
	char err[512];
	assert_int_equal(wm_recorder_open(&r, dir, err, sizeof err), 0);
	const char *json = "{\"schema\":\"wattmeter.recording\",\"schema_version\":1}";
	assert_int_equal(wm_recorder_write_meta(&r, json, strlen(json)), 0);
	assert_int_equal(wm_recorder_write_meta(&r, json, strlen(json)), 0);
	wm_recorder_close(&r);

	assert_victim_untouched(victim);
	struct stat st;
	assert_int_equal(lstat(meta, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	char *s = slurp(meta);
	assert_int_equal(strncmp(s, json, strlen(json)), 0);
	free(s);
	/* the four other links, meta.json and samples.jsonl: no temp left */
	assert_int_equal(count_entries(dir), 6);
	fx_rmtree(root);
}

/* samples.jsonl planted as a link: refused, with a message that says so. */
static void test_planted_samples_link_is_refused(void **state)
{
	(void)state;
	char root[4096], victim[4200], dir[4200];
	fx_mkdtemp(root, sizeof root);
	make_victim(root, victim, sizeof victim);
	fx_mkdir(root, "rec");
	fx_symlink(root, "rec/samples.jsonl", victim);
	(void)snprintf(dir, sizeof dir, "%s/rec", root);
	wm_recorder r;
	char err[512] = "";
	assert_int_equal(wm_recorder_open(&r, dir, err, sizeof err), -EEXIST);
	assert_non_null(strstr(err, "samples.jsonl is a symbolic link"));
	assert_non_null(strstr(err, "-o DIR"));
	wm_recorder_close(&r);
	assert_victim_untouched(victim);
	fx_rmtree(root);
}

/* The rule for paths the user names, that of the kernel's
 * fs.protected_symlinks: in a sticky world-writable folder a link is
 * followed only if it is ours or the folder owner's. */
static void test_links_in_sticky_folders_follow_protected_symlinks(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip(); /* a link owned by another user needs lchown */
		return;
	}
	char root[4096], path[4300], target[4300], err[1024];
	fx_mkdtemp(root, sizeof root);
	fx_mkdir(root, "tmp");
	fx_mkdir(root, "elsewhere");
	fx_chmod(root, "tmp", 01777);
	(void)snprintf(target, sizeof target, "%s/elsewhere", root);
	fx_symlink(root, "tmp/theirs", target);
	fx_symlink(root, "tmp/mine", target);
	(void)snprintf(path, sizeof path, "%s/tmp/theirs", root);
	assert_int_equal(lchown(path, 12345, 12345), 0);

	/* another user's link: not followed, whatever the sysctl says */
	assert_int_equal(wm_dir_open_safe(path, 1, err, sizeof err), -EPERM);
	assert_non_null(strstr(err, "protected_symlinks"));
	assert_non_null(strstr(err, "uid 12345"));
	(void)snprintf(path, sizeof path, "%s/tmp/theirs/rec", root);
	wm_recorder r;
	assert_int_equal(wm_recorder_open(&r, path, err, sizeof err), -EPERM);
	wm_recorder_close(&r);
	assert_int_equal(count_entries(target), 0);

	/* our own link: followed */
	(void)snprintf(path, sizeof path, "%s/tmp/mine/rec", root);
	assert_int_equal(wm_recorder_open(&r, path, err, sizeof err), 0);
	wm_recorder_close(&r);
	assert_int_equal(count_entries(target), 1);

	/* outside a sticky folder, anyone's link is followed (who could plant
	 * it could write the folder anyway) */
	fx_symlink(root, "plain", target);
	(void)snprintf(path, sizeof path, "%s/plain", root);
	assert_int_equal(lchown(path, 12345, 12345), 0);
	int fd = wm_dir_open_safe(path, 0, err, sizeof err);
	assert_true(fd >= 0);
	close(fd);

	/* a user-named file: another user's link in a sticky folder is refused
	 * before anything is written; a missing file is created whole at commit */
	char victim[4200];
	make_victim(root, victim, sizeof victim);
	fx_symlink(root, "tmp/summary.json", victim);
	(void)snprintf(path, sizeof path, "%s/tmp/summary.json", root);
	assert_int_equal(lchown(path, 12345, 12345), 0);
	wm_outfile f;
	assert_int_equal(wm_outfile_open(&f, path, err, sizeof err), -EPERM);
	assert_non_null(strstr(err, "symbolic link"));
	assert_victim_untouched(victim);
	fx_rmtree(root);
}

/* A user-named file that exists is replaced by rename (a hard link to it
 * elsewhere keeps its content), keeping its mode; a FIFO or /dev/null is
 * written in place. */
static void test_outfile_replaces_by_rename_and_keeps_the_mode(void **state)
{
	(void)state;
	char root[4096], path[4300], other[4300], err[512];
	fx_mkdtemp(root, sizeof root);
	fx_write(root, "out.json", "old\n");
	(void)snprintf(path, sizeof path, "%s/out.json", root);
	(void)snprintf(other, sizeof other, "%s/hardlink", root);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(link(path, other), 0);
	wm_outfile f;
	assert_int_equal(wm_outfile_open(&f, path, err, sizeof err), 0);
	char *s = slurp(path);
	assert_string_equal(s, "old\n"); /* untouched until commit */
	free(s);
	assert_int_equal(wm_outfile_commit(&f, "{}\n", 3), 0);
	s = slurp(path);
	assert_string_equal(s, "{}\n");
	free(s);
	s = slurp(other);
	assert_string_equal(s, "old\n");
	free(s);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(count_entries(root), 2);

	assert_int_equal(wm_outfile_open(&f, "/dev/null", err, sizeof err), 0);
	assert_int_equal(wm_outfile_commit(&f, "x", 1), 0);
	assert_int_equal(wm_outfile_open(&f, root, err, sizeof err), -EISDIR);

	/* given up: nothing written, nothing left */
	(void)snprintf(path, sizeof path, "%s/new.json", root);
	assert_int_equal(wm_outfile_open(&f, path, err, sizeof err), 0);
	wm_outfile_abort(&f);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(count_entries(root), 2);
	fx_rmtree(root);
}

/* ---- the lock: running, not killed ------------------------------------------------- */

static char *summary_of(const char *dir)
{
	wm_recording *rec = NULL;
	char err[512];
	int rc = wm_recording_open(dir, &rec, err, sizeof err);
	if (rc)
		fail_msg("open %s: %s", dir, err);
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_recording_summary_json(rec, &b), 0);
	wm_buf tb;
	wm_buf_init(&tb);
	assert_int_equal(wm_recording_summary_text(rec, 5, &tb), 0);
	wm_recording_free(rec);
	wm_buf_puts(&b, "\n");
	wm_buf_append(&b, tb.data, tb.len);
	wm_buf_free(&tb);
	return b.data;
}

static void test_lock_says_still_running_until_closed(void **state)
{
	(void)state;
	char root[4096], dir[4200], meta[512];
	fx_mkdtemp(root, sizeof root);
	(void)snprintf(dir, sizeof dir, "%s/rec", root);
	wm_recorder r;
	char err[512];
	assert_int_equal(wm_recorder_open(&r, dir, err, sizeof err), 0);
	int n = snprintf(meta, sizeof meta,
			 "{\"schema\":\"wattmeter.recording\",\"schema_version\":1,\"devices\":[{\"name\":\"cpu\",\"method\":\"measured\"}],\"complete\":false,"
			 "\"writer_pid\":%d}",
			 (int)getpid());
	assert_int_equal(wm_recorder_write_meta(&r, meta, (size_t)n), 0);
	const char *line = "{\"t_s\":0,\"energy_j\":{}}";
	assert_int_equal(wm_recorder_append(&r, line, strlen(line)), 0);

	/* a reader in this same process sees the writer's lock */
	char *s = summary_of(dir);
	char want[128];
	(void)snprintf(want, sizeof want, "\"running_pid\":%d", (int)getpid());
	assert_non_null(strstr(s, want));
	(void)snprintf(want, sizeof want, "still running (pid %d)", (int)getpid());
	assert_non_null(strstr(s, want));
	assert_null(strstr(s, "killed"));
	free(s);

	/* the writer gone (closed, as at exit or SIGKILL) without completing */
	wm_recorder_close(&r);
	s = summary_of(dir);
	assert_non_null(strstr(s, "\"running_pid\":null"));
	assert_non_null(strstr(s, "the run was killed"));
	free(s);
	fx_rmtree(root);
}

/* ---- unwritten spans read back ------------------------------------------------------- */

/* The marker on the line after a gap names the span; meta.json's list, once
 * the run ended, is the whole truth (here: one more span, not resumed). */
static void test_unwritten_spans_from_lines_then_meta(void **state)
{
	(void)state;
	char root[4096], dir[4200];
	fx_mkdtemp(root, sizeof root);
	(void)snprintf(dir, sizeof dir, "%s/rec", root);
	fx_mkdir(root, "rec");
	fx_write(dir, "meta.json",
		 "{\"schema\":\"wattmeter.recording\",\"schema_version\":1,\"devices\":[{\"name\":\"cpu\","
		 "\"method\":\"measured\"}],\"complete\":false}\n");
	fx_write(dir, "samples.jsonl",
		 "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n"
		 "{\"t_s\":0.1,\"energy_j\":{\"cpu\":1}}\n"
		 "{\"t_s\":0.5,\"energy_j\":{\"cpu\":5},\"unwritten\":{\"from_s\":0.2,\"to_s\":0.4,\"samples\":3,"
		 "\"error\":\"No space left on device\"}}\n");
	char *s = summary_of(dir);
	assert_non_null(strstr(s, "\"unwritten\":[{\"from_s\":0.2,\"to_s\":0.4,\"samples\":3,"
				  "\"error\":\"No space left on device\",\"resumed\":true}]"));
	assert_non_null(strstr(s, "3 samples from 0.20 s to 0.40 s could not be written"));
	assert_non_null(strstr(s, "\"cpu\":5"));
	free(s);

	fx_write(dir, "meta.json",
		 "{\"schema\":\"wattmeter.recording\",\"schema_version\":1,\"devices\":[{\"name\":\"cpu\","
		 "\"method\":\"measured\"}],\"complete\":true,\"duration_s\":0.9,"
		 "\"unwritten\":[{\"from_s\":0.2,\"to_s\":0.4,\"samples\":3,\"error\":\"No space left on device\","
		 "\"resumed\":true},{\"from_s\":0.6,\"to_s\":0.9,\"samples\":4,\"error\":\"Input/output error\","
		 "\"resumed\":false}]}\n");
	s = summary_of(dir);
	assert_non_null(strstr(s, "{\"from_s\":0.6,\"to_s\":0.9,\"samples\":4,\"error\":\"Input/output error\","
				  "\"resumed\":false}]"));
	assert_null(strstr(s, "\"from_s\":0.2,\"to_s\":0.4,\"samples\":3,\"error\":\"No space left on device\","
			      "\"resumed\":true},{\"from_s\":0.2")); /* not counted twice */
	assert_non_null(strstr(s, "4 samples from 0.60 s to 0.90 s could not be written to samples.jsonl "
				  "(Input/output error): the totals stop at the last sample written"));
	free(s);
	fx_rmtree(root);
}

/* Where O_TMPFILE is missing, meta.json goes through a fresh named temp
 * (O_EXCL|O_NOFOLLOW), renamed over a planted meta.json link, and nothing is
 * left behind; where AT_EMPTY_PATH is refused, /proc's link names the
 * unnamed temp. */
static void test_named_temps_and_the_proc_link(void **state)
{
	(void)state;
	char root[4096], victim[4200], dir[4200], meta[4300], path[4300], err[512];
	fx_mkdtemp(root, sizeof root);
	make_victim(root, victim, sizeof victim);
	fx_mkdir(root, "rec");
	fx_symlink(root, "rec/meta.json", victim);
	fx_symlink(root, "rec/meta.json.tmp", victim);
	(void)snprintf(dir, sizeof dir, "%s/rec", root);
	(void)snprintf(meta, sizeof meta, "%s/meta.json", dir);
	const char *json = "{\"schema\":\"wattmeter.recording\",\"schema_version\":1}";
	for (int mode = 0; mode < 2; mode++) {
		no_tmpfile = mode == 0;
		no_empty_path = mode == 1;
		wm_recorder r;
		if (mode == 1) {
			fx_unlink(root, "rec/samples.jsonl");
			fx_unlink(root, "rec/meta.json");
			fx_symlink(root, "rec/meta.json", victim);
		}
		assert_int_equal(wm_recorder_open(&r, dir, err, sizeof err), 0);
		assert_int_equal(wm_recorder_write_meta(&r, json, strlen(json)), 0);
		assert_int_equal(wm_recorder_write_meta(&r, json, strlen(json)), 0);
		wm_recorder_close(&r);
		assert_victim_untouched(victim);
		struct stat st;
		assert_int_equal(lstat(meta, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		char *s = slurp(meta);
		assert_int_equal(strncmp(s, json, strlen(json)), 0);
		free(s);
		assert_int_equal(count_entries(dir), 3); /* meta.json, samples.jsonl, meta.json.tmp */

		(void)snprintf(path, sizeof path, "%s/out.json", root);
		wm_outfile f;
		assert_int_equal(wm_outfile_open(&f, path, err, sizeof err), 0);
		assert_int_equal(wm_outfile_commit(&f, "{}\n", 3), 0);
		s = slurp(path);
		assert_string_equal(s, "{}\n");
		free(s);
		assert_int_equal(count_entries(root), 3); /* victim, rec, out.json */
	}
	no_tmpfile = no_empty_path = 0;
	fx_rmtree(root);
}

/* ---- a meter whose disk fills, frees, and fills again to the end ------------------- */

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The whole sink path: lines fail mid-run and resume (a marker on the next
 * line, the span in meta.json), then fail again until the end (the last line
 * retried at stop, the span not resumed, the stop's error names it); every
 * sample the meter took is either a line or counted in a span. */
static void test_meter_names_what_it_could_not_write(void **state)
{
	(void)state;
	char root[4096], sys[4200], out[4200], samples[4300], meta[4300];
	fx_mkdtemp(root, sizeof root);
	(void)snprintf(sys, sizeof sys, "%s/sys", root);
	(void)snprintf(out, sizeof out, "%s/rec", root);
	(void)snprintf(samples, sizeof samples, "%s/samples.jsonl", out);
	(void)snprintf(meta, sizeof meta, "%s/meta.json", out);
	fx_mkdir(root, "sys");
	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0", "package-0", 0, 1000000000);

	wm_meter_config c;
	wm_meter_config_init(&c);
	c.sysfs_root = sys;
	c.output_dir = out;
	c.period_s = 0.01;
	c.proc_period_s = 0.05;
	wm_meter *m = NULL;
	char err[512] = "";
	if (wm_meter_start(&c, &m, err, sizeof err) < 0)
		fail_msg("start: %s", err);
	sleep_ms(200);
	limit_file_size((rlim_t)file_size(samples) + 10); /* full: the next line is cut short (10 bytes), then refused; a larger margin let a short line fit between two refused long ones under load, making two spans */
	sleep_ms(300);
	restore_file_size();
	sleep_ms(200);
	limit_file_size((rlim_t)file_size(samples) + 10); /* full again, to the end */
	sleep_ms(200);
	int rc = wm_meter_stop(m, 0, err, sizeof err);
	restore_file_size();
	wm_meter_free(m);
	assert_true(rc < 0);
	assert_non_null(strstr(err, "to the end"));
	assert_non_null(strstr(err, "File too large"));

	/* every line whole; the marker once, on the line after the first span */
	char *text = slurp(samples);
	size_t lines = 0, markers = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		if (!o)
			fail_msg("line %zu does not parse: %s", lines + 1, je.text);
		markers += json_object_get(o, "unwritten") != NULL;
		lines++;
		json_decref(o);
	}
	free(text);
	assert_int_equal(markers, 1);

	json_error_t je;
	json_t *mj = json_load_file(meta, 0, &je);
	assert_non_null(mj);
	assert_true(json_is_true(json_object_get(mj, "complete")));
	json_t *spans = json_object_get(mj, "unwritten");
	assert_int_equal(json_array_size(spans), 2);
	json_t *g0 = json_array_get(spans, 0), *g1 = json_array_get(spans, 1);
	assert_true(json_is_true(json_object_get(g0, "resumed")));
	assert_true(json_is_false(json_object_get(g1, "resumed")));
	assert_string_equal(json_string_value(json_object_get(g0, "error")), "File too large");
	json_int_t lost = json_integer_value(json_object_get(g0, "samples")) +
			  json_integer_value(json_object_get(g1, "samples"));
	json_int_t taken = json_integer_value(json_object_get(json_object_get(mj, "self"), "samples"));
	assert_true(lost >= 10);
	assert_int_equal((json_int_t)lines + lost, taken);
	json_decref(mj);

	char *sum = summary_of(out);
	assert_non_null(strstr(sum, "a gap in the time series"));
	assert_non_null(strstr(sum, "the totals stop at the last sample written"));
	free(sum);
	fx_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_write_is_cut_back_to_the_last_line),
		cmocka_unit_test(test_meta_json_kept_when_the_new_one_cannot_be_written),
		cmocka_unit_test(test_planted_links_in_the_folder_are_not_followed),
		cmocka_unit_test(test_planted_samples_link_is_refused),
		cmocka_unit_test(test_links_in_sticky_folders_follow_protected_symlinks),
		cmocka_unit_test(test_outfile_replaces_by_rename_and_keeps_the_mode),
		cmocka_unit_test(test_named_temps_and_the_proc_link),
		cmocka_unit_test(test_lock_says_still_running_until_closed),
		cmocka_unit_test(test_unwritten_spans_from_lines_then_meta),
		cmocka_unit_test(test_meter_names_what_it_could_not_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
