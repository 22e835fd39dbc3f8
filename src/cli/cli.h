/* cli.h — the command table: one file per command (cmd_<name>.c). */
#ifndef WM_CLI_H
#define WM_CLI_H

#include <signal.h>

/* Exit codes of wattmeter itself (the GNU env/timeout convention, so they do
 * not collide with the wrapped command's codes). */
#define CLI_EXIT_USAGE 2      /* bad options */
#define CLI_EXIT_FAILURE 125  /* wattmeter failed before the command ran */
#define CLI_EXIT_NOEXEC 126   /* the command exists but cannot be executed */
#define CLI_EXIT_NOTFOUND 127 /* the command was not found */

int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_sensors(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_mark(int argc, char **argv);
int cmd_proxy(int argc, char **argv);

/* Flushes stdout and turns a write error (EPIPE, ENOSPC) into exit code 1
 * with a message, as perf does before exiting. Returns the exit code. */
int cli_finish_stdout(void);
/* Parses a positive number of seconds; 0 allowed if allow_zero. */
int cli_parse_seconds(const char *s, int allow_zero, double *out);

/* Strict decimal number as a user types it: digits with an optional
 * fraction and exponent ("0.05", "2", "1e-3"). No sign, blanks, hex
 * ("0x10"), "inf" or "nan", which strtod would take. 0 or -EINVAL. */
int cli_parse_decimal(const char *s, double *out);
/* 1 if an option's value looks like another option ("--", "-q"): the value
 * was most likely forgotten (`-o -- cmd`). A lone "-" is not an option. */
int cli_looks_like_option(const char *s);
/* Checks an option value against [lo, hi] (and 0 when zero_ok) and prints
 * what is wrong, the valid range and an example. 0, or -EINVAL after the
 * message (the caller exits CLI_EXIT_USAGE). */
/* For the daemons (serve, proxy), before any thread exists so that every
 * thread inherits the mask: blocks SIGINT and SIGTERM, filling *stop for
 * the caller's sigwait, and ignores SIGPIPE (a client or upstream that hangs
 * up mid-answer must not kill the daemon; libmicrohttpd uses MSG_NOSIGNAL
 * where it can, this covers the rest). */
void cli_block_stop_signals(sigset_t *stop);
int cli_number_option(const char *cmd, const char *opt, const char *value, double lo, double hi,
		      int zero_ok, const char *unit, const char *example, double *out);

#endif
