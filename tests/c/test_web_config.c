/* test_web_config.c — exporter-toolkit's web config subset: what parses,
 * what is refused (and that the message says why), and bcrypt checks
 * against published test vectors (Openwall crypt_blowfish's). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "outputs/web_config.h"

/* Openwall crypt_blowfish test vectors: hash, password. */
#define H_UU "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"    /* "U*U" */
#define H_UUU "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"   /* "U*U*" */
#define H_UU_2Y "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" /* "U*U" */

static int parse(const char *text, wm_web_config *c, char *err, size_t errlen)
{
	return wm_web_config_parse(text, strlen(text), "/etc/wm", c, err, errlen);
}

static void full_example_parses(void **state)
{
	(void)state;
	const char *text = "# exporter-toolkit web config\n"
			   "---\n"
			   "tls_server_config:\n"
			   "  cert_file: server.crt   # relative to the file\n"
			   "  key_file: \"/abs/server key.pem\"\n"
			   "\n"
			   "basic_auth_users:\n"
			   "  prometheus: " H_UU_2Y "\n"
			   "  'o''brien': '" H_UUU "'\r\n";
	wm_web_config c;
	char err[512] = "";
	assert_int_equal(parse(text, &c, err, sizeof err), 0);
	assert_string_equal(c.cert_file, "/etc/wm/server.crt");
	assert_string_equal(c.key_file, "/abs/server key.pem");
	assert_int_equal(c.n_users, 2);
	assert_string_equal(c.users[0].name, "prometheus");
	assert_string_equal(c.users[0].hash, H_UU_2Y);
	assert_string_equal(c.users[1].name, "o'brien");
	assert_string_equal(c.users[1].hash, H_UUU);
	wm_web_config_release(&c);
	wm_web_config_release(&c); /* twice is harmless */
}

static void empty_and_comment_only_are_valid(void **state)
{
	(void)state;
	wm_web_config c;
	assert_int_equal(parse("", &c, NULL, 0), 0);
	assert_null(c.cert_file);
	assert_int_equal(c.n_users, 0);
	assert_int_equal(parse("# nothing\n\n   \n", &c, NULL, 0), 0);
	assert_int_equal(parse("basic_auth_users: {}\n", &c, NULL, 0), 0);
	assert_int_equal(c.n_users, 0);
	wm_web_config_release(&c);
}

/* Each bad input is refused, and the message names the problem. */
static void bad_inputs_are_refused(void **state)
{
	(void)state;
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{"tls_server_config:\n  cert_file: a.crt\n", "needs both cert_file and key_file"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n", "client_ca_file is not supported"},
		{"tls_server_config:\n  cert_file: a\n  cert_file: b\n  key_file: c\n", "given twice"},
		{"http_server_config:\n  http2: true\n", "not supported"},
		{"tls_config:\n", "unknown key \"tls_config\""},
		{"basic_auth_users:\n  alice: plaintext\n", "not a bcrypt hash"},
		{"basic_auth_users:\n  alice: $2a$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n", "not a bcrypt"},
		{"basic_auth_users:\n  alice: " H_UU "\n  alice: " H_UU "\n", "listed twice"},
		{"basic_auth_users:\n  'a:b': " H_UU "\n", "contains ':'"},
		{"basic_auth_users:\n\talice: " H_UU "\n", "tab"},
		{"basic_auth_users:\n  alice: " H_UU "\n    bob: " H_UU "\n", "indentation"},
		{"basic_auth_users:\n  - alice\n", "list item"},
		{"basic_auth_users:\n  alice:\n", "has no value"},
		{"basic_auth_users: alice\n", "indented"},
		{"  alice: x\n", "outside"},
		{"basic_auth_users:\n  alice: \"" H_UU "\n", "not closed"},
		{"basic_auth_users:\n  alice: \"\\x41\"\n", "unsupported escape"},
		{"basic_auth_users:\n  alice: '" H_UU "' trailing\n", "after the quoted"},
		{"basic_auth_users:\n  alice: &anchor " H_UU "\n", "does not support"},
		{"basic_auth_users\n", "key: value"},
		{"tls_server_config:\n  cert_file: ''\n  key_file: b\n", "empty file name"},
		{"basic_auth_users:\n basic_auth_users:\n", "has no value"},
		{"tls_server_config:\ntls_server_config:\n", "given twice"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		wm_web_config c;
		char err[512] = "";
		int rc = parse(cases[i].text, &c, err, sizeof err);
		if (rc != -EINVAL || !strstr(err, cases[i].msg))
			fail_msg("case %zu: rc %d, message \"%s\", wanted \"%s\"", i, rc, err, cases[i].msg);
		assert_null(c.cert_file);
		assert_null(c.users);
	}
	/* A NUL byte inside the text. */
	wm_web_config c;
	char err[256];
	assert_int_equal(wm_web_config_parse("basic_auth_users:\n\0", 19, NULL, &c, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
}

static void load_from_file(void **state)
{
	(void)state;
	char dir[4096], path[4200];
	fx_mkdtemp(dir, sizeof dir);
	fx_write(dir, "web.yml", "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n");
	snprintf(path, sizeof path, "%s/web.yml", dir);
	wm_web_config c;
	char err[512];
	assert_int_equal(wm_web_config_load(path, &c, err, sizeof err), 0);
	char want[4300];
	snprintf(want, sizeof want, "%s/c.pem", dir);
	assert_string_equal(c.cert_file, want);
	wm_web_config_release(&c);
	/* Missing file: named in the message. */
	snprintf(path, sizeof path, "%s/missing.yml", dir);
	assert_int_equal(wm_web_config_load(path, &c, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "missing.yml"));
	/* A parse error names the file and the line. */
	fx_write(dir, "bad.yml", "basic_auth_users:\n  bob: nope\n");
	snprintf(path, sizeof path, "%s/bad.yml", dir);
	assert_int_equal(wm_web_config_load(path, &c, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "bad.yml"));
	assert_non_null(strstr(err, "line 2"));
	fx_rmtree(dir);
}

static void bcrypt_vectors(void **state)
{
	(void)state;
	assert_int_equal(wm_web_check_password(H_UU, "U*U"), 1);
	assert_int_equal(wm_web_check_password(H_UU_2Y, "U*U"), 1);
	assert_int_equal(wm_web_check_password(H_UUU, "U*U*"), 1);
	assert_int_equal(wm_web_check_password(H_UU, "U*U*"), 0);
	assert_int_equal(wm_web_check_password(H_UU, ""), 0);
	assert_int_equal(wm_web_check_password("plain", "plain"), -EINVAL);
	assert_true(wm_web_is_bcrypt(H_UU));
	assert_false(wm_web_is_bcrypt("$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
	assert_false(wm_web_is_bcrypt("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe"));
	assert_false(wm_web_is_bcrypt("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe!"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_example_parses),
		cmocka_unit_test(empty_and_comment_only_are_valid),
		cmocka_unit_test(bad_inputs_are_refused),
		cmocka_unit_test(load_from_file),
		cmocka_unit_test(bcrypt_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
