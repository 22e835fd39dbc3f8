/* test_util.c — the growable buffer, JSON escaping, strict parsing, reads. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "base/util.h"

static void buf_grows_and_stays_terminated(void **state)
{
	(void)state;
	wm_buf b;
	wm_buf_init(&b);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(wm_buf_printf(&b, "%d,", i % 10), 0);
	assert_int_equal(b.len, 20000);
	assert_int_equal(strlen(b.data), 20000);
	assert_true(b.cap > b.len);
	wm_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	wm_buf_free(&b);
	wm_buf_free(&b); /* twice is harmless */
}

static void buf_reserve_refuses_overflow(void **state)
{
	(void)state;
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	assert_int_equal(wm_buf_reserve(&b, SIZE_MAX - 1), -ENOMEM);
	wm_buf_free(&b);
}

/* Whatever bytes a process name or argv holds, the JSON we write parses and
 * gives the same text back where it was valid UTF-8. */
static void json_strings_always_parse(void **state)
{
	(void)state;
	const char *inputs[] = {
		"plain", "quote\" and \\ backslash", "tab\tnew\nline\rcr", "\x01\x1f\x7f control",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8b", "latin1 \xe9 byte", "\xff\xfe", "\xed\xa0\x80 surrogate",
		"",
	};
	for (size_t i = 0; i < WM_ARRAY_LEN(inputs); i++) {
		wm_buf b;
		wm_buf_init(&b);
		assert_int_equal(wm_buf_json_str(&b, inputs[i]), 0);
		json_error_t e;
		json_t *v = json_loads(b.data, JSON_DECODE_ANY, &e);
		assert_non_null(v);
		assert_true(json_is_string(v));
		if (i < 5 || i == 8) /* valid UTF-8 round-trips exactly */
			assert_string_equal(json_string_value(v), inputs[i]);
		json_decref(v);
		wm_buf_free(&b);
	}
}

static void json_doubles_round_trip_and_nan_is_null(void **state)
{
	(void)state;
	double values[] = {0.0, 1.0, -2.5, 0.1, 1e-9, 123456.789012, 1.7976931348623157e308};
	for (size_t i = 0; i < WM_ARRAY_LEN(values); i++) {
		wm_buf b;
		wm_buf_init(&b);
		assert_int_equal(wm_buf_json_double(&b, values[i]), 0);
		assert_true(strtod(b.data, NULL) == values[i]);
		wm_buf_free(&b);
	}
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_buf_json_double(&b, NAN), 0);
	assert_int_equal(wm_buf_json_double(&b, INFINITY), 0);
	assert_string_equal(b.data, "nullnull");
	wm_buf_free(&b);
}

static void fixed_numbers_are_exact_and_short(void **state)
{
	(void)state;
	struct {
		double v;
		int decimals;
		const char *want;
	} cases[] = {
		{0.0, 6, "0"},          {1.5, 6, "1.5"},          {2.0, 3, "2"},
		{-0.000001, 6, "-0.000001"}, {-0.0000001, 6, "0"}, {123.4567894, 6, "123.456789"},
		{0.0005, 3, "0.001"},    {9.9999999, 6, "10"},     {4.24, 3, "4.24"},
		{1795608733.4641, 3, "1795608733.464"}, {1e13, 2, "10000000000000.00"},
	};
	for (size_t i = 0; i < WM_ARRAY_LEN(cases); i++) {
		wm_buf b;
		wm_buf_init(&b);
		assert_int_equal(wm_buf_json_fixed(&b, cases[i].v, cases[i].decimals), 0);
		assert_string_equal(b.data, cases[i].want);
		wm_buf_free(&b);
	}
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_buf_json_fixed(&b, NAN, 3), 0);
	assert_string_equal(b.data, "null");
	wm_buf_free(&b);
	/* every microjoule value up to 10 kJ reads back exactly */
	for (uint64_t uj = 0; uj < 10000000000ull; uj = uj * 3 + 7) {
		wm_buf_init(&b);
		assert_int_equal(wm_buf_json_fixed(&b, (double)uj / 1e6, 6), 0);
		assert_true(llround(strtod(b.data, NULL) * 1e6) == (long long)uj);
		wm_buf_free(&b);
	}
}

static void parse_u64_is_strict(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(wm_parse_u64_full("42\n", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(wm_parse_u64_full("  00000000000000000123\n", &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(wm_parse_u64_full("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(wm_parse_u64_full("18446744073709551616", &v), -ERANGE);
	assert_int_equal(wm_parse_u64_full("", &v), -EINVAL);
	assert_int_equal(wm_parse_u64_full("12abc", &v), -EINVAL);
	assert_int_equal(wm_parse_u64_full("-1", &v), -EINVAL);
	assert_int_equal(wm_parse_u64_full("+1", &v), -EINVAL);
	assert_int_equal(wm_parse_u64_full("1 2", &v), -EINVAL);
	int64_t s;
	assert_int_equal(wm_parse_i64("-17 rest", &s, NULL), 0);
	assert_int_equal(s, -17);
	double d;
	assert_int_equal(wm_parse_double_full("0.25", &d), 0);
	assert_true(d == 0.25);
	assert_int_equal(wm_parse_double_full("nan", &d), -EINVAL);
	assert_int_equal(wm_parse_double_full("1e999", &d), -ERANGE);
	assert_int_equal(wm_parse_double_full("0.5s", &d), -EINVAL);
}

static void pread_all_detects_truncation_and_rereads(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	fx_write(root, "f", "0123456789");
	int dfd = fx_open_root(root);
	char small[8], big[64];
	assert_int_equal(wm_read_file_at(dfd, "f", small, sizeof small), -EOVERFLOW);
	assert_int_equal(strlen(small), sizeof small - 1);
	assert_int_equal(wm_read_file_at(dfd, "f", big, sizeof big), 10);
	assert_string_equal(big, "0123456789");
	assert_int_equal(wm_read_file_at(dfd, "missing", big, sizeof big), -ENOENT);

	int fd = openat(dfd, "f", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	fx_write(root, "f", "abc"); /* O_TRUNC rewrite: the same inode */
	assert_int_equal(wm_pread_all(fd, big, sizeof big), 3);
	assert_string_equal(big, "abc");
	close(fd);

	wm_buf b;
	wm_buf_init(&b);
	char longtext[10000];
	memset(longtext, 'x', sizeof longtext - 1);
	longtext[sizeof longtext - 1] = '\0';
	fx_write(root, "long", longtext);
	assert_int_equal(wm_read_file_buf_at(dfd, "long", &b), 0);
	assert_int_equal(b.len, sizeof longtext - 1);
	wm_buf_free(&b);
	close(dfd);
	fx_rmtree(root);
}

static void mkdir_p_creates_nested_and_refuses_files(void **state)
{
	(void)state;
	char root[4096], path[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(path, sizeof path, "%s/a/b/c", root);
	assert_int_equal(wm_mkdir_p(path), 0);
	assert_int_equal(wm_mkdir_p(path), 0); /* exists: fine */
	fx_write(root, "file", "x");
	snprintf(path, sizeof path, "%s/file", root);
	assert_int_equal(wm_mkdir_p(path), -ENOTDIR);
	snprintf(path, sizeof path, "%s/file/sub", root);
	assert_int_equal(wm_mkdir_p(path), -ENOTDIR);
	fx_rmtree(root);
}

static void utc_format_is_iso8601(void **state)
{
	(void)state;
	char out[40];
	wm_format_utc(1795608000.25, out, sizeof out);
	assert_string_equal(out, "2026-11-25T12:00:00.250Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_grows_and_stays_terminated),
		cmocka_unit_test(buf_reserve_refuses_overflow),
		cmocka_unit_test(json_strings_always_parse),
		cmocka_unit_test(json_doubles_round_trip_and_nan_is_null),
		cmocka_unit_test(fixed_numbers_are_exact_and_short),
		cmocka_unit_test(parse_u64_is_strict),
		cmocka_unit_test(pread_all_detects_truncation_and_rereads),
		cmocka_unit_test(mkdir_p_creates_nested_and_refuses_files),
		cmocka_unit_test(utc_format_is_iso8601),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
