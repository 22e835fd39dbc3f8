/* cli.h — the command table: one file per command (cmd_<name>.c). */
#ifndef WM_CLI_H
#define WM_CLI_H
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_sensors(int argc, char **argv);
#endif
