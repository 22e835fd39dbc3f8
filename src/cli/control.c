/* control.c — the control socket of `wattmeter run` (control.h).
 *
 * A unix datagram socket in a fresh 0700 folder (mkdtemp under
 * $XDG_RUNTIME_DIR or /tmp): only processes of the user who runs wattmeter
 * can reach it, and the command inherits its path in WATTMETER_CONTROL.
 * One thread reads datagrams (a JSON object each, WM_CLIENT_MSG_MAX bytes at
 * most) and calls wm_meter_window_begin_at/_end_at/wm_meter_mark_at, and
 * wm_meter_request_begin/_tokens/_end, with the sender's CLOCK_MONOTONIC
 * stamp. A window is named by the client's key
 * ("<pid>.<n>"), mapped here to the meter's id. A bad datagram is counted
 * and dropped, never fatal: the measured command must not be disturbed.
 */
#include "cli/control.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"
#include "wattmeter_client.h"

#define CTL_MAX_OPEN 100000 /* open windows kept by key: memory stays bounded */

struct cli_ctl_key {
	char key[48];
	int64_t id;
};

static int64_t take_key(struct cli_control *c, const char *key)
{
	for (size_t i = 0; i < c->n_keys; i++) {
		if (strcmp(c->keys[i].key, key) == 0) {
			int64_t id = c->keys[i].id;
			c->keys[i] = c->keys[--c->n_keys];
			return id;
		}
	}
	return -ENOENT;
}

static int64_t find_key(const struct cli_control *c, const char *key)
{
	for (size_t i = 0; i < c->n_keys; i++)
		if (strcmp(c->keys[i].key, key) == 0)
			return c->keys[i].id;
	return -ENOENT;
}

static int put_key(struct cli_control *c, const char *key, int64_t id)
{
	if (strlen(key) >= sizeof c->keys[0].key || c->n_keys >= CTL_MAX_OPEN)
		return -E2BIG;
	if (c->n_keys == c->cap_keys) {
		size_t cap = c->cap_keys ? 2 * c->cap_keys : 64;
		struct cli_ctl_key *p = realloc(c->keys, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		c->keys = p;
		c->cap_keys = cap;
	}
	(void)snprintf(c->keys[c->n_keys].key, sizeof c->keys[0].key, "%s", key);
	c->keys[c->n_keys++].id = id;
	return 0;
}

static char *dump_obj(json_t *o)
{
	return json_is_object(o) ? json_dumps(o, JSON_COMPACT) : NULL;
}

/* A request's begin, tokens or end (wm_meter_request_*): keyed by the
 * client's key with an "r:" prefix, apart from the windows' keys. */
static int handle_request(struct cli_control *c, json_t *o, const char *what, const char *key, uint64_t t)
{
	char rkey[sizeof c->keys[0].key];
	if (snprintf(rkey, sizeof rkey, "r:%s", key) >= (int)sizeof rkey)
		return -E2BIG;
	json_t *aj = json_object_get(o, "attrs"), *rj = json_object_get(o, "result"), *nj = json_object_get(o, "n");
	if ((aj && !json_is_object(aj) && !json_is_null(aj)) || (rj && !json_is_object(rj) && !json_is_null(rj)))
		return -EINVAL;
	if (!strcmp(what, "begin")) {
		if (find_key(c, rkey) >= 0)
			return -EEXIST;
		char *attrs = dump_obj(aj);
		int64_t id = wm_meter_request_begin(c->m, t, attrs);
		free(attrs);
		int rc = id < 0 ? (int)id : put_key(c, rkey, id);
		if (rc < 0 && id > 0)
			(void)wm_meter_request_end(c->m, id, t, NULL);
		return rc;
	}
	if (!strcmp(what, "tokens")) {
		int64_t id = find_key(c, rkey);
		if (!json_is_integer(nj) || json_integer_value(nj) < 0)
			return -EINVAL;
		return id < 0 ? (int)id : wm_meter_request_tokens(c->m, id, t, (uint64_t)json_integer_value(nj));
	}
	if (!strcmp(what, "end")) {
		int64_t id = take_key(c, rkey);
		if (id < 0)
			return (int)id;
		char *res = dump_obj(rj);
		int rc = wm_meter_request_end(c->m, id, t, res);
		free(res);
		if (rc == -EINVAL) {
			(void)put_key(c, rkey, id); /* a bad result: the request stays open for a good end */
		}
		return rc;
	}
	return -EINVAL;
}

/* One datagram. 0 or -errno (counted as refused). */
static int handle(struct cli_control *c, const char *buf, size_t n)
{
	json_t *o = json_loadb(buf, n, 0, NULL);
	if (!json_is_object(o) || json_integer_value(json_object_get(o, "v")) != 1) {
		json_decref(o);
		return -EINVAL;
	}
	const char *op = json_string_value(json_object_get(o, "op"));
	const char *key = json_string_value(json_object_get(o, "key"));
	const char *name = json_string_value(json_object_get(o, "name"));
	json_t *tj = json_object_get(o, "t_ns");
	uint64_t t = json_is_integer(tj) && json_integer_value(tj) > 0 ? (uint64_t)json_integer_value(tj) : 0;
	int rc = -EINVAL;
	json_t *aj = json_object_get(o, "attrs"), *cj = json_object_get(o, "counts");
	if ((aj && !json_is_object(aj) && !json_is_null(aj)) || (cj && !json_is_object(cj) && !json_is_null(cj))) {
		json_decref(o);
		return -EINVAL; /* attrs and counts are objects */
	}
	if (op && !strcmp(op, "begin") && key && name) {
		char *attrs = dump_obj(json_object_get(o, "attrs"));
		int64_t id = wm_meter_window_begin_at(c->m, t, name, attrs);
		free(attrs);
		rc = id < 0 ? (int)id : put_key(c, key, id);
		if (rc < 0 && id > 0)
			(void)wm_meter_window_end_at(c->m, t, id, NULL);
	} else if (op && !strcmp(op, "end") && key) {
		int64_t id = take_key(c, key);
		char *counts = dump_obj(json_object_get(o, "counts"));
		rc = id < 0 ? (int)id : wm_meter_window_end_at(c->m, t, id, counts);
		if (rc == -EINVAL && id > 0)
			(void)put_key(c, key, id); /* bad counts: the window stays open for a good end */
		free(counts);
	} else if (op && !strncmp(op, "request_", 8) && key) {
		rc = handle_request(c, o, op + 8, key, t);
	} else if (op && !strcmp(op, "mark") && name) {
		char *attrs = dump_obj(json_object_get(o, "attrs"));
		rc = wm_meter_mark_at(c->m, t, name, attrs);
		free(attrs);
	}
	json_decref(o);
	return rc;
}

static void drain(struct cli_control *c)
{
	char buf[WM_CLIENT_MSG_MAX + 1];
	for (;;) {
		ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		c->received++;
		if ((size_t)r > WM_CLIENT_MSG_MAX || handle(c, buf, (size_t)r) < 0)
			c->refused++;
	}
}

static void *control_main(void *arg)
{
	struct cli_control *c = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->stop_r, .events = POLLIN}};
		int r = poll(p, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[0].revents)
			drain(c);
		if (p[1].revents)
			break;
	}
	drain(c); /* what the command sent before it exited */
	return NULL;
}

int cli_control_start(struct cli_control *c, wm_meter *m, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	c->fd = c->stop_r = c->stop_w = -1;
	c->m = m;
	const char *base = getenv("XDG_RUNTIME_DIR");
	if (!base || !*base || strlen(base) > 60 || access(base, W_OK) != 0)
		base = "/tmp";
	(void)snprintf(c->dir, sizeof c->dir, "%s/wattmeter-XXXXXX", base);
	if (!mkdtemp(c->dir)) { /* mode 0700, a fresh name: nothing planted */
		int e = errno;
		c->dir[0] = '\0';
		return wm_err(err, errlen, -e, "cannot create the control folder under %s: %s", base, strerror(e));
	}
	(void)snprintf(c->path, sizeof c->path, "%s/control", c->dir);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t pl = strlen(c->path);
	if (pl >= sizeof a.sun_path) {
		cli_control_stop(c);
		return wm_err(err, errlen, -ENAMETOOLONG, "the control socket path under %s is too long", base);
	}
	memcpy(a.sun_path, c->path, pl + 1);
	c->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int pfd[2];
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof a) < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		int e = errno;
		cli_control_stop(c);
		return wm_err(err, errlen, -e, "cannot create the control socket %s: %s", a.sun_path, strerror(e));
	}
	c->stop_r = pfd[0];
	c->stop_w = pfd[1];
	int rc = -pthread_create(&c->thread, NULL, control_main, c);
	if (rc < 0) {
		cli_control_stop(c);
		return wm_err(err, errlen, rc, "cannot start the control thread: %s", strerror(-rc));
	}
	c->started = 1;
	if (setenv("WATTMETER_CONTROL", c->path, 1) < 0) {
		int e = errno;
		cli_control_stop(c);
		return wm_err(err, errlen, -e, "cannot set WATTMETER_CONTROL: %s", strerror(e));
	}
	return 0;
}

void cli_control_stop(struct cli_control *c)
{
	if (c->started) {
		char x = 1;
		ssize_t w;
		do
			w = write(c->stop_w, &x, 1);
		while (w < 0 && errno == EINTR);
		(void)pthread_join(c->thread, NULL);
		c->started = 0;
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->stop_r >= 0)
		close(c->stop_r);
	if (c->stop_w >= 0)
		close(c->stop_w);
	c->fd = c->stop_r = c->stop_w = -1;
	if (c->path[0])
		(void)unlink(c->path);
	if (c->dir[0])
		(void)rmdir(c->dir);
	c->path[0] = c->dir[0] = '\0';
	free(c->keys);
	c->keys = NULL;
	c->n_keys = c->cap_keys = 0;
}
