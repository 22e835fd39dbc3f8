/* web_config.h — Prometheus exporter-toolkit's web configuration file
 * (--web.config.file), the subset wattmeter supports:
 *
 *   tls_server_config:
 *     cert_file: /etc/wattmeter/server.crt    # PEM; relative to this file
 *     key_file: /etc/wattmeter/server.key
 *     min_version: TLS12                       # TLS12 (default) or TLS13
 *     max_version: TLS13
 *     cipher_suites:                           # Go's names; forward-secret AEAD only
 *       - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
 *     curve_preferences: [X25519, CurveP256]
 *     prefer_server_cipher_suites: true
 *     client_auth_type: RequireAndVerifyClientCert
 *     client_ca_file: /etc/wattmeter/clients-ca.crt
 *   basic_auth_users:
 *     prometheus: $2y$10$...                   # bcrypt hash (htpasswd -nbBC 10)
 *
 * The parser is strict: a key exporter-toolkit knows but wattmeter does not
 * honour (client_allowed_sans, http_server_config ...) is refused with a
 * message rather than silently ignored, since an operator who wrote it
 * expects it to hold; so are TLS 1.0/1.1 and cipher suites without forward
 * secrecy or without an AEAD cipher. An empty file is valid (plain HTTP, no
 * auth), as in exporter-toolkit. Parsing is separate from reading the file
 * so it is fuzzed (fuzz/fuzz_web_config.c).
 */
#ifndef WM_OUTPUTS_WEB_CONFIG_H
#define WM_OUTPUTS_WEB_CONFIG_H

#include <stddef.h>

typedef struct wm_web_user {
	char *name;
	char *hash;          /* bcrypt: $2y$ / $2b$ / $2a$, cost 04..31, 60 characters */
} wm_web_user;

/* TLS protocol versions, as on the wire. */
#define WM_TLS12 0x0303
#define WM_TLS13 0x0304

/* client_auth_type, Go's crypto/tls policies. */
enum wm_client_auth {
	WM_CLIENT_AUTH_NONE = 0,          /* NoClientCert (default) */
	WM_CLIENT_AUTH_REQUEST,           /* RequestClientCert: asked, not required, not verified */
	WM_CLIENT_AUTH_REQUIRE_ANY,       /* RequireAnyClientCert: required, not verified */
	WM_CLIENT_AUTH_VERIFY_IF_GIVEN,   /* VerifyClientCertIfGiven */
	WM_CLIENT_AUTH_REQUIRE_VERIFY,    /* RequireAndVerifyClientCert: mTLS */
};

#define WM_WEB_MAX_LIST 16   /* cipher_suites / curve_preferences entries */

typedef struct wm_web_config {
	char *cert_file;     /* resolved path, NULL: no TLS */
	char *key_file;
	char *client_ca_file;           /* resolved path, NULL: none */
	int client_auth;                /* enum wm_client_auth */
	int min_version, max_version;   /* WM_TLS12 / WM_TLS13; 0: default (1.2, 1.3) */
	int no_server_cipher_order;     /* prefer_server_cipher_suites: false */
	size_t n_ciphers, n_curves;
	unsigned char ciphers[WM_WEB_MAX_LIST]; /* indexes into the suite table, as listed */
	unsigned char curves[WM_WEB_MAX_LIST];  /* indexes into the curve table, as listed */
	wm_web_user *users;  /* none: no authentication */
	size_t n_users;
} wm_web_config;

/* Parses text (len bytes, need not be terminated). Relative paths are
 * resolved against base_dir (NULL: kept as written). 0, or -EINVAL with a
 * message naming the line, the problem and the fix, or -ENOMEM. out is
 * zeroed first and released on failure. */
int wm_web_config_parse(const char *text, size_t len, const char *base_dir, wm_web_config *out, char *err,
			size_t errlen);

/* Reads and parses the file at path (relative paths inside resolved against
 * its folder). 0 or -errno with a message naming the file. */
int wm_web_config_load(const char *path, wm_web_config *out, char *err, size_t errlen);

void wm_web_config_release(wm_web_config *c);  /* harmless on a zeroed struct */

/* 1 if password matches the bcrypt hash, 0 if not, -errno if the hash
 * cannot be checked (libcrypt without bcrypt: -ENOSYS). Costs the hash's
 * work factor (about 50 ms at cost 10). Thread-safe (crypt_rn). */
int wm_web_check_password(const char *hash, const char *password);

/* 1 if s is a bcrypt hash wattmeter accepts. */
int wm_web_is_bcrypt(const char *s);

/* The GnuTLS priority string for c's TLS settings (libmicrohttpd's
 * MHD_OPTION_HTTPS_PRIORITIES): TLS 1.2-1.3 (or min/max_version),
 * ECDHE key exchange only, AEAD ciphers only (AES-GCM, ChaCha20-Poly1305)
 * or those of cipher_suites, curve_preferences' groups, the server's order.
 * 0, or -ENAMETOOLONG if out is too small. */
int wm_web_tls_priorities(const wm_web_config *c, char *out, size_t outlen);

/* Copies src into dst (every string duplicated). 0 or -ENOMEM (dst
 * released). */
int wm_web_config_copy(wm_web_config *dst, const wm_web_config *src);

#endif
