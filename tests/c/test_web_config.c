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
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n", "without a client_auth_type"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans:\n", "not supported"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
		 "needs client_ca_file"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n", "not a policy"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n", "RFC 8996"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n", "RFC 8996"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS14\n", "not a TLS version"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n",
		 "above max_version"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n  - TLS_RSA_WITH_AES_128_CBC_SHA\n",
		 "no forward secrecy"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n",
		 "not an AEAD"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA\n",
		 "broken"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    - AES128-SHA\n", "unknown cipher"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
		 "only TLS 1.3 suites"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [X25519, CurveP999]\n",
		 "unknown curve"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [X25519, X25519]\n", "listed twice"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [X25519,, CurveP256]\n",
		 "extra comma"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [X25519\n", "must close"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: X25519\n", "is a list"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences:\n    -X25519\n", "space after"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS12\n  min_version: TLS13\n",
		 "given twice"},
		{"tls_server_config:\n  cert_file: a\n  key_file: b\n  prefer_server_cipher_suites: maybe\n", "true or false"},
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

/* exporter-toolkit's TLS keys: parsed, and turned into GnuTLS priorities
 * that enable exactly TLS 1.2-1.3, ECDHE and AEAD (or what was listed). */
static void tls_settings_parse_into_priorities(void **state)
{
	(void)state;
	wm_web_config c;
	char err[512] = "", prio[512];
	assert_int_equal(parse("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n", &c, err, sizeof err), 0);
	assert_int_equal(c.client_auth, WM_CLIENT_AUTH_NONE);
	assert_int_equal(wm_web_tls_priorities(&c, prio, sizeof prio), 0);
	assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
				  "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:"
				  "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:"
				  "%SERVER_PRECEDENCE");
	wm_web_config_release(&c);

	const char *text = "tls_server_config:\n"
			   "  cert_file: c.pem\n"
			   "  key_file: k.pem\n"
			   "  client_auth_type: RequireAndVerifyClientCert\n"
			   "  client_ca_file: ca.pem\n"
			   "  min_version: TLS13\n"
			   "  max_version: TLS13\n"
			   "  cipher_suites:\n"
			   "  - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256   # compact list\n"
			   "  - 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'\n"
			   "  - TLS_AES_256_GCM_SHA384\n"
			   "  curve_preferences: [CurveP384, X25519]\n"
			   "  prefer_server_cipher_suites: false\n"
			   "basic_auth_users:\n"
			   "  u: " H_UU "\n";
	assert_int_equal(parse(text, &c, err, sizeof err), 0);
	assert_string_equal(c.client_ca_file, "/etc/wm/ca.pem");
	assert_int_equal(c.client_auth, WM_CLIENT_AUTH_REQUIRE_VERIFY);
	assert_int_equal(c.min_version, WM_TLS13);
	assert_int_equal(c.max_version, WM_TLS13);
	assert_int_equal(c.n_ciphers, 3);
	assert_int_equal(c.n_curves, 2);
	assert_int_equal(c.n_users, 1);
	assert_int_equal(wm_web_tls_priorities(&c, prio, sizeof prio), 0);
	assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA:"
				  "-CIPHER-ALL:+CHACHA20-POLY1305:+AES-256-GCM:-MAC-ALL:+AEAD:"
				  "-GROUP-ALL:+GROUP-SECP384R1:+GROUP-X25519");
	assert_int_equal(wm_web_tls_priorities(&c, prio, 20), -ENAMETOOLONG);
	wm_web_config d;
	assert_int_equal(wm_web_config_copy(&d, &c), 0);
	assert_string_equal(d.client_ca_file, c.client_ca_file);
	assert_ptr_not_equal(d.client_ca_file, c.client_ca_file);
	assert_string_equal(d.users[0].hash, H_UU);
	wm_web_config_release(&d);
	wm_web_config_release(&c);

	/* The list may be indented below its key; other policies parse. */
	assert_int_equal(parse("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites:\n"
			       "      - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n  client_auth_type: RequireAnyClientCert\n",
			       &c, err, sizeof err),
			 0);
	assert_int_equal(c.n_ciphers, 1);
	assert_int_equal(c.client_auth, WM_CLIENT_AUTH_REQUIRE_ANY);
	wm_web_config_release(&c);
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
		cmocka_unit_test(tls_settings_parse_into_priorities),
		cmocka_unit_test(load_from_file),
		cmocka_unit_test(bcrypt_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
