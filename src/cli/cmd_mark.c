/* cmd_mark.c — `wattmeter mark NAME [--begin | --end KEY] [--count K=N]...
 * [--attr K=V]...`: windows and marks from shell scripts run under
 * `wattmeter run`, through its control socket (WATTMETER_CONTROL; the client
 * is include/wattmeter_client.h, as any C program would use it). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "wattmeter_client.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter mark NAME [--attr KEY=VALUE]...             an instant mark\n"
		"       wattmeter mark NAME --begin [--attr KEY=VALUE]...     opens a window, prints its KEY\n"
		"       wattmeter mark NAME --end KEY [--count KEY=N]...      closes it\n"
		"\n"
		"Windows of work from a shell script run under 'wattmeter run': the energy\n"
		"between the two edges is read from the counters at the edges themselves and\n"
		"recorded in the run's windows.jsonl ('wattmeter report DIR' shows them).\n"
		"\n"
		"  --begin          open a window named NAME; print its KEY for --end\n"
		"  --end KEY        close the window KEY (from --begin)\n"
		"  --count K=N      a count of the window's work (tokens=512, samples=8): J per count\n"
		"  --attr K=V       an attribute (epoch=3, phase=train): a number if it is one\n"
		"  -h, --help       show this help\n"
		"\n"
		"Example:\n"
		"  key=$(wattmeter mark step --begin --attr step=1)\n"
		"  ./train-one-step\n"
		"  wattmeter mark step --end \"$key\" --count samples=32\n");
}

/* K=V into o: a number when V is one (counts must be). */
static int add_pair(json_t *o, const char *kv, int numbers_only)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv || !eq[1])
		return -EINVAL;
	char key[128];
	size_t n = (size_t)(eq - kv);
	if (n >= sizeof key)
		return -EINVAL;
	memcpy(key, kv, n);
	key[n] = '\0';
	double v;
	if (wm_parse_double_full(eq + 1, &v) == 0) {
		/* 3 stays 3 (an epoch, a step), 0.5 a real */
		json_t *num = v > -9e15 && v < 9e15 && v == (double)(long long)v ? json_integer((json_int_t)v) : json_real(v);
		return json_object_set_new(o, key, num) ? -ENOMEM : 0;
	}
	if (numbers_only)
		return -EINVAL;
	return json_object_set_new(o, key, json_string(eq + 1)) ? -EINVAL : 0;
}

int cmd_mark(int argc, char **argv)
{
	static const struct option opts[] = {
		{"begin", no_argument, NULL, 'b'},
		{"end", required_argument, NULL, 'e'},
		{"count", required_argument, NULL, 'c'},
		{"attr", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int begin = 0;
	const char *end_key = NULL;
	json_t *attrs = json_object(), *counts = json_object();
	int c, ret = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b': begin = 1; break;
		case 'e': end_key = optarg; break;
		case 'c':
			if (add_pair(counts, optarg, 1) < 0) {
				fprintf(stderr, "wattmeter mark: --count wants KEY=N with N a number (tokens=512), not '%s'\n",
					optarg);
				ret = CLI_EXIT_USAGE;
			}
			break;
		case 'a':
			if (add_pair(attrs, optarg, 0) < 0) {
				fprintf(stderr, "wattmeter mark: --attr wants KEY=VALUE (epoch=3), not '%s'\n", optarg);
				ret = CLI_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			json_decref(attrs);
			json_decref(counts);
			return cli_finish_stdout();
		default: ret = CLI_EXIT_USAGE; break;
		}
	}
	const char *name = optind < argc ? argv[optind] : NULL;
	if (!ret && (optind + 1 < argc || (!name && !end_key) || (begin && end_key) ||
		     (json_object_size(counts) && !end_key))) {
		usage(stderr);
		ret = CLI_EXIT_USAGE;
	}
	if (ret) {
		json_decref(attrs);
		json_decref(counts);
		return ret;
	}
	wm_client cl;
	int rc = wm_client_open(&cl);
	if (rc == -ENOENT) {
		fprintf(stderr, "wattmeter mark: WATTMETER_CONTROL is not set: run this under 'wattmeter run "
				"[-o DIR] -- CMD' (a recorded run), which sets it for CMD and its children\n");
		ret = 1;
	} else if (rc < 0) {
		fprintf(stderr, "wattmeter mark: cannot open the control socket %s: %s\n", getenv("WATTMETER_CONTROL"),
			strerror(-rc));
		ret = 1;
	} else {
		char *aj = json_object_size(attrs) ? json_dumps(attrs, JSON_COMPACT) : NULL;
		char *cj = json_object_size(counts) ? json_dumps(counts, JSON_COMPACT) : NULL;
		char key[48] = "";
		if (begin)
			rc = wm_client_begin(&cl, name, aj, key, sizeof key);
		else if (end_key)
			rc = wm_client_end(&cl, end_key, cj);
		else
			rc = wm_client_mark(&cl, name, aj);
		free(aj);
		free(cj);
		wm_client_close(&cl);
		if (rc < 0) {
			fprintf(stderr, "wattmeter mark: cannot reach the meter at %s: %s (has 'wattmeter run' ended?)\n",
				getenv("WATTMETER_CONTROL"), strerror(-rc));
			ret = 1;
		} else if (begin) {
			printf("%s\n", key);
			ret = cli_finish_stdout();
		}
	}
	json_decref(attrs);
	json_decref(counts);
	return ret;
}
