/* replay_main.c — runs a fuzz target over every file of a corpus folder, so
 * the corpus is a regression test without libFuzzer. Exits non-zero only if
 * the folder cannot be read; crashes and sanitizer reports fail the test. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *data = malloc(n ? n : 1);
	if (!data) {
		close(fd);
		return -1;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, data + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	LLVMFuzzerTestOneInput(data, got);
	free(data);
	return 1;
}

int main(int argc, char **argv)
{
	int total = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		if (!d) {
			fprintf(stderr, "cannot open corpus %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			int r = run_file(dirfd(d), e->d_name);
			if (r < 0) {
				closedir(d);
				return 1;
			}
			total += r;
		}
		closedir(d);
	}
	printf("replayed %d inputs\n", total);
	return total > 0 ? 0 : 1;
}
