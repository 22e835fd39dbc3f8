/* cli.h — the command table: one file per command (cmd_<name>.c). */
#ifndef WM_CLI_H
#define WM_CLI_H

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

/* Flushes stdout and turns a write error (EPIPE, ENOSPC) into exit code 1
 * with a message, as perf does before exiting. Returns the exit code. */
int cli_finish_stdout(void);
/* Parses a positive number of seconds; 0 allowed if allow_zero. */
int cli_parse_seconds(const char *s, int allow_zero, double *out);

#endif
