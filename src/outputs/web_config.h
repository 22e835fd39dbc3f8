/* web_config.h — Prometheus exporter-toolkit's web configuration file
 * (--web.config.file), the subset wattmeter supports:
 *
 *   tls_server_config:
 *     cert_file: /etc/wattmeter/server.crt    # PEM; relative to this file
 *     key_file: /etc/wattmeter/server.key
 *   basic_auth_users:
 *     prometheus: $2y$10$...                   # bcrypt hash (htpasswd -nbBC 10)
 *
 * The parser is strict: a key exporter-toolkit knows but wattmeter does not
 * honour (client_ca_file, min_version, http_server_config ...) is refused
 * with a message rather than silently ignored, since an operator who wrote it
 * expects it to hold. An empty file is valid (plain HTTP, no auth), as in
 * exporter-toolkit. Parsing is separate from reading the file so it is
 * fuzzed (fuzz/fuzz_web_config.c).
 */
#ifndef WM_OUTPUTS_WEB_CONFIG_H
#define WM_OUTPUTS_WEB_CONFIG_H

#include <stddef.h>

typedef struct wm_web_user {
	char *name;
	char *hash;          /* bcrypt: $2y$ / $2b$ / $2a$, cost 04..31, 60 characters */
} wm_web_user;

typedef struct wm_web_config {
	char *cert_file;     /* resolved path, NULL: no TLS */
	char *key_file;
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

#endif
