/* control.h — the control socket `wattmeter run` gives its command
 * (WATTMETER_CONTROL; protocol in include/wattmeter_client.h and
 * docs/recording.md "The control socket"). */
#ifndef WM_CLI_CONTROL_H
#define WM_CLI_CONTROL_H

#include <pthread.h>
#include <stddef.h>

#include "wattmeter.h"

struct cli_control {
	int fd, stop_r, stop_w;
	char dir[128], path[160];
	pthread_t thread;
	int started;
	wm_meter *m;
	struct cli_ctl_key *keys;  /* open windows by the client's key */
	size_t n_keys, cap_keys;
	unsigned long long received, refused;
};

/* Creates a private folder (0700) with the socket, starts the thread that
 * turns datagrams into window edges on m, and sets WATTMETER_CONTROL for the
 * command to inherit. 0 or -errno with a message. */
int cli_control_start(struct cli_control *c, wm_meter *m, char *err, size_t errlen);
/* Reads what is queued, stops the thread, removes the socket and folder. */
void cli_control_stop(struct cli_control *c);

#endif
