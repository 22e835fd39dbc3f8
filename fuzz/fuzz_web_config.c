/* fuzz_web_config.c — the exporter's parsers of outside input on arbitrary
 * bytes: the web config file (exporter-toolkit YAML subset), and, from the
 * same input, /proc/<pid>/cgroup text and the Accept / Accept-Encoding
 * header values a scraper sends. Checks the parser's promises on success:
 * both TLS files or neither, every user name without ':', every hash a
 * bcrypt hash, and everything owned (ASan and valgrind see leaks). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outputs/prometheus.h"
#include "outputs/web_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size heap copies so ASan flags any read past the end. */
	char *raw = malloc(size ? size : 1);
	char *text = malloc(size + 1);
	if (!raw || !text) {
		free(raw);
		free(text);
		return 0;
	}
	memcpy(raw, data, size);
	memcpy(text, data, size);
	text[size] = '\0';

	wm_web_config c;
	char err[256];
	if (wm_web_config_parse(raw, size, "/base", &c, err, sizeof err) == 0) {
		if ((c.cert_file == NULL) != (c.key_file == NULL))
			abort();
		for (size_t i = 0; i < c.n_users; i++)
			if (strchr(c.users[i].name, ':') || !wm_web_is_bcrypt(c.users[i].hash))
				abort();
		/* TLS settings: only TLS 1.2/1.3, bounded lists, a CA exactly
		 * where a policy needs one, and always a priority string. */
		if ((c.min_version && c.min_version != WM_TLS12 && c.min_version != WM_TLS13) ||
		    (c.max_version && c.max_version != WM_TLS12 && c.max_version != WM_TLS13) ||
		    c.n_ciphers > WM_WEB_MAX_LIST || c.n_curves > WM_WEB_MAX_LIST ||
		    c.client_auth < WM_CLIENT_AUTH_NONE || c.client_auth > WM_CLIENT_AUTH_REQUIRE_VERIFY ||
		    (c.client_ca_file && c.client_auth == WM_CLIENT_AUTH_NONE) ||
		    (!c.client_ca_file && (c.client_auth == WM_CLIENT_AUTH_VERIFY_IF_GIVEN ||
					   c.client_auth == WM_CLIENT_AUTH_REQUIRE_VERIFY)))
			abort();
		char prio[512];
		if (wm_web_tls_priorities(&c, prio, sizeof prio) != 0 || strncmp(prio, "NORMAL:-VERS-ALL:", 17) != 0)
			abort();
		wm_web_config_release(&c);
	} else if (c.users || c.cert_file || c.key_file || c.client_ca_file) {
		abort(); /* a failed parse leaves nothing behind */
	}

	char cg[256];
	if (wm_prom_parse_cgroup(text, cg, sizeof cg) == 0 && (cg[0] != '/' || !memchr(cg, '\0', sizeof cg)))
		abort();
	(void)wm_prom_wants_openmetrics(text);
	(void)wm_prom_accepts_gzip(text);
	free(raw);
	free(text);
	return 0;
}
