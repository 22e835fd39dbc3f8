/* cmd_proxy.c — `wattmeter proxy`: a reverse proxy in front of an LLM
 * server (ollama, vLLM, llama.cpp, any OpenAI-compatible one) that records
 * the energy of every request (src/proxy/proxy.h, the ledger in
 * wattmeter.h "requests").
 *
 * The meter measures the server (--server-*: the meter's included set) or,
 * without one, the machine. SIGINT and SIGTERM are blocked before any
 * thread starts and taken with sigwait: the proxy stops accepting, the
 * requests in flight end, the ledger's last lines are written and the
 * recording is completed. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "cli/meter_opts.h"
#include "outputs/http.h"
#include "wattmeter.h"

#ifdef WM_HAVE_CURL
#include "proxy/proxy.h"
#endif

#define MAX_SERVER_PIDS 64
#define MAX_PID 4194304 /* PID_MAX_LIMIT on 64-bit Linux */
/* How long the stop waits for the ledger's last lines (the requests that
 * ended need the interval after them to be final: a counter period or two). */
#define FLUSH_TIMEOUT_S 30.0

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter proxy --upstream URL -o DIR [options]\n"
		"\n"
		"Serve an LLM server's API (OpenAI /v1/chat/completions, /v1/completions,\n"
		"/v1/embeddings; ollama /api/generate, /api/chat, /api/embed; every other path\n"
		"forwarded as is) on --listen, measure the server's energy and record each\n"
		"request's share, its tokens and times in DIR/requests.jsonl. Streams pass\n"
		"through unbuffered; headers pass untouched and are never logged; no prompt or\n"
		"completion text is kept unless --store-text. Stops on SIGINT or SIGTERM.\n"
		"\n"
		"options:\n"
		"  --upstream URL         the server, http(s)://HOST:PORT[/PREFIX] (required)\n"
		"  -o, --output DIR       recording folder (required; must not hold a recording)\n"
		"  --listen ADDR:PORT     address to serve on (default %s; a bare PORT is\n"
		"                         127.0.0.1:PORT; :PORT listens on every interface; 0: any)\n"
		"  --server-pid PID       the server is PID and its descendants (repeatable)\n"
		"  --server-name REGEX    the server is every process whose command line matches\n"
		"                         REGEX (POSIX extended), those that start later too\n"
		"  --server-cgroup PATH   the server is a cgroup's processes (a container, a unit)\n"
		"                         without --server-*: the whole machine is the server\n"
		"  --store-text           also record each prompt and completion (off by default)\n"
		"  --metrics-path PATH    where the proxy answers Prometheus scrapes itself\n"
		"                         (default /metrics; \"\" forwards /metrics too, e.g.\n"
		"                         vLLM's own)\n",
#ifdef WM_HAVE_CURL
		WM_PROXY_DEFAULT_LISTEN
#else
		"127.0.0.1:11435"
#endif
	);
	meter_opts_usage(out);
	fprintf(out,
		"  -h, --help             show this help\n"
		"\n"
		"exit status: 0 after SIGINT/SIGTERM, 1 if it could not start, 2 for bad options.\n"
		"\n"
		"example: wattmeter proxy --listen 127.0.0.1:11435 --upstream http://127.0.0.1:11434 \\\n"
		"             --server-name ollama -o runs/serve\n"
		"         OLLAMA_HOST=127.0.0.1:11435 ollama run llama3.2 'hello'\n"
		"         wattmeter report runs/serve\n");
}

int cmd_proxy(int argc, char **argv)
{
	enum { O_LISTEN = 256, O_UPSTREAM, O_SPID, O_SNAME, O_SCG, O_TEXT, O_MPATH };
	static const struct option opts[] = {
		{"listen", required_argument, NULL, O_LISTEN},
		{"upstream", required_argument, NULL, O_UPSTREAM},
		{"output", required_argument, NULL, 'o'},
		{"server-pid", required_argument, NULL, O_SPID},
		{"server-name", required_argument, NULL, O_SNAME},
		{"server-cgroup", required_argument, NULL, O_SCG},
		{"store-text", no_argument, NULL, O_TEXT},
		{"metrics-path", required_argument, NULL, O_MPATH},
		METER_OPTS_LONGOPTS,
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct meter_opts mo;
	meter_opts_init(&mo);
	const char *listen = NULL, *upstream = NULL, *output = NULL, *server_name = NULL, *server_cgroup = NULL;
	const char *metrics_path = NULL;
	char listen_buf[300];
	int server_pids[MAX_SERVER_PIDS];
	size_t n_server_pids = 0;
	int store_text = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		int rc = meter_opts_parse("proxy", c, optarg, &mo);
		if (rc < 0)
			return CLI_EXIT_USAGE;
		if (rc > 0)
			continue;
		char lerr[512];
		switch (c) {
		case 'h': usage(stdout); return cli_finish_stdout();
		case 'o':
			if (cli_path_option("proxy", "-o/--output", optarg, &output) < 0)
				return CLI_EXIT_USAGE;
			break;
		case O_LISTEN:
			listen = optarg;
			if (!strchr(optarg, ':')) { /* a bare port: loopback */
				snprintf(listen_buf, sizeof listen_buf, "127.0.0.1:%s", optarg);
				listen = listen_buf;
			}
			if (wm_http_check_listen(listen, lerr, sizeof lerr) < 0) {
				fprintf(stderr, "wattmeter proxy: %s (see 'wattmeter proxy --help')\n", lerr);
				return CLI_EXIT_USAGE;
			}
			break;
		case O_UPSTREAM: upstream = optarg; break;
		case O_SPID: {
			uint64_t pid;
			if (wm_parse_u64_full(optarg, &pid) < 0 || pid == 0 || pid > MAX_PID || optarg[0] == '+') {
				fprintf(stderr, "wattmeter proxy: --server-pid wants a process id (1 to %d), not '%s'\n",
					MAX_PID, optarg);
				return CLI_EXIT_USAGE;
			}
			if (n_server_pids == MAX_SERVER_PIDS) {
				fprintf(stderr, "wattmeter proxy: at most %d --server-pid options\n", MAX_SERVER_PIDS);
				return CLI_EXIT_USAGE;
			}
			server_pids[n_server_pids++] = (int)pid;
			break;
		}
		case O_SNAME:
			if (!*optarg) {
				fprintf(stderr, "wattmeter proxy: --server-name wants a regular expression, e.g. 'ollama serve'\n");
				return CLI_EXIT_USAGE;
			}
			server_name = optarg;
			break;
		case O_SCG:
			if (cli_path_option("proxy", "--server-cgroup", optarg, &server_cgroup) < 0)
				return CLI_EXIT_USAGE;
			break;
		case O_TEXT: store_text = 1; break;
		case O_MPATH:
			if (*optarg && optarg[0] != '/') {
				fprintf(stderr, "wattmeter proxy: --metrics-path wants a path that starts with '/' (or \"\"), not '%s'\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			metrics_path = optarg;
			break;
		default:
			fprintf(stderr, "See 'wattmeter proxy --help'.\n");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wattmeter proxy: unexpected argument '%s' (proxy takes no command; see --help)\n",
			argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (!upstream) {
		fprintf(stderr, "wattmeter proxy: --upstream URL is required, e.g. --upstream http://127.0.0.1:11434\n");
		return CLI_EXIT_USAGE;
	}
	if (!output) {
		fprintf(stderr, "wattmeter proxy: -o DIR is required: the recording's folder, e.g. -o runs/serve\n");
		return CLI_EXIT_USAGE;
	}
	if (meter_opts_finish("proxy", &mo) < 0)
		return CLI_EXIT_USAGE;
#ifndef WM_HAVE_CURL
	(void)listen;
	(void)store_text;
	(void)metrics_path;
	(void)server_name;
	(void)server_cgroup;
	(void)server_pids;
	fprintf(stderr, "wattmeter proxy: this wattmeter was built without libcurl, which the proxy needs; "
			"install it (Debian/Ubuntu: apt-get install libcurl4-gnutls-dev) and rebuild\n");
	return 1;
#else
	char err[1024];
	if (wm_proxy_check_upstream(upstream, err, sizeof err) < 0) {
		fprintf(stderr, "wattmeter proxy: %s\n", err);
		return CLI_EXIT_USAGE;
	}
	wm_meter_config mc;
	wm_meter_config_init(&mc);
	meter_opts_apply(&mo, &mc);
	mc.output_dir = output;
	mc.include_pids = server_pids;
	mc.n_include_pids = n_server_pids;
	mc.include_name = server_name;
	mc.include_cgroup = server_cgroup;
	mc.whole_machine = !n_server_pids && !server_name && !server_cgroup;
	const char *const command[] = {"wattmeter", "proxy", "--upstream", upstream, NULL};
	mc.command = command;
	if (wm_meter_config_check(&mc, err, sizeof err) < 0) {
		fprintf(stderr, "wattmeter proxy: %s (see 'wattmeter proxy --help')\n", err);
		return CLI_EXIT_USAGE;
	}

	/* Before any thread exists: every thread inherits this mask. */
	sigset_t stop;
	cli_block_stop_signals(&stop);

	wm_proxy_metrics *pm = wm_proxy_metrics_new();
	if (!pm) {
		fprintf(stderr, "wattmeter proxy: out of memory\n");
		return 1;
	}
	wm_meter *m = NULL;
	if (wm_meter_start(&mc, &m, err, sizeof err) < 0) {
		fprintf(stderr, "wattmeter proxy: %s\n", err);
		wm_proxy_metrics_free(pm);
		return 1;
	}
	int rc = wm_meter_set_request_callback(m, wm_proxy_metrics_on_request, pm);
	if (rc < 0)
		fprintf(stderr, "wattmeter proxy: warning: no request metrics (%s)\n", strerror(-rc));
	wm_proxy_opts po = {
		.listen = listen,
		.upstream = upstream,
		.meter = m,
		.store_text = store_text,
		.metrics_path = metrics_path,
		.metrics = pm,
	};
	wm_proxy *p = NULL;
	if (wm_proxy_start(&po, &p, err, sizeof err) < 0) {
		fprintf(stderr, "wattmeter proxy: %s\n", err);
		(void)wm_meter_stop(m, -1, NULL, 0);
		wm_meter_free(m);
		wm_proxy_metrics_free(pm);
		return 1;
	}
	/* Scripts read this line for the address (with port 0, the chosen one). */
	fprintf(stderr, "wattmeter proxy: serving %s -> %s, recording to %s (stop with Ctrl-C or SIGTERM)\n",
		wm_proxy_url(p), upstream, output);
	fflush(stderr);

	int sig = 0;
	while (sigwait(&stop, &sig) != 0)
		;
	wm_proxy_free(p); /* every request has ended: the ledger has them all */
	rc = wm_meter_requests_flush(m, FLUSH_TIMEOUT_S);
	if (rc < 0)
		fprintf(stderr, "wattmeter proxy: warning: the last requests were not all written (%s)\n",
			strerror(-rc));
	int exit_code = 0;
	if (wm_meter_stop(m, -1, err, sizeof err) < 0) {
		fprintf(stderr, "wattmeter proxy: stopping: %s\n", err);
		exit_code = 1;
	}
	(void)wm_meter_set_request_callback(m, NULL, NULL);
	wm_meter_free(m);
	wm_proxy_metrics_free(pm);
	if (!exit_code)
		fprintf(stderr, "wattmeter proxy: stopped (%s); recording in %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
			output);
	return exit_code;
#endif
}
