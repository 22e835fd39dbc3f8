/* wattmeter_client.h — open and close windows of work on the meter of a
 * `wattmeter run` from any descendant: C, C++, CUDA. Single header, no
 * library to link, no allocation; only POSIX sockets.
 *
 * `wattmeter run` gives its command WATTMETER_CONTROL, the path of a unix
 * datagram socket (in a private 0700 folder). Each call sends one datagram,
 * a JSON object (docs/recording.md "The control socket"):
 *
 *   {"v":1,"op":"begin","key":"4242.1","name":"step","t_ns":123,"attrs":{...}}
 *   {"v":1,"op":"end","key":"4242.1","t_ns":456,"counts":{"tokens":512}}
 *   {"v":1,"op":"mark","name":"checkpoint","t_ns":789,"attrs":{...}}
 *   {"v":1,"op":"request_begin","key":"4242.r2","t_ns":1,"attrs":{"model":"m"}}
 *   {"v":1,"op":"request_tokens","key":"4242.r2","t_ns":2,"n":1}
 *   {"v":1,"op":"request_end","key":"4242.r2","t_ns":3,"result":{"prompt_tokens":9}}
 *
 * t_ns is this process's CLOCK_MONOTONIC at the edge, so the window's
 * energy is read from its own edges, not from when the meter got the
 * message. Sending never blocks (MSG_DONTWAIT): a full socket drops the
 * edge and the call returns -EAGAIN. Usage:
 *
 *   wm_client c;
 *   if (wm_client_open(&c) == 0) {           // -ENOENT: not under wattmeter run
 *       char key[32];
 *       wm_client_begin(&c, "step", "{\"step\":1}", key, sizeof key);
 *       ...
 *       wm_client_end(&c, key, "{\"tokens\":512}");
 *       wm_client_close(&c);
 *   }
 *
 * attrs/counts are JSON objects given as text (NULL: none); the meter checks
 * them and drops an edge whose JSON is bad. Names are escaped here.
 * Returns 0 or a negative errno. One wm_client per thread, or a lock.
 */
#ifndef WATTMETER_CLIENT_H
#define WATTMETER_CLIENT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WM_CLIENT_MSG_MAX 4096 /* the meter reads datagrams up to this size */

typedef struct wm_client {
	int fd;
	struct sockaddr_un addr;
	socklen_t addrlen;
	unsigned long long next; /* begin keys: "<pid>.<n>" */
} wm_client;

static inline int wm_client_open_path(wm_client *c, const char *path)
{
	c->fd = -1;
	c->next = 0;
	if (!path || !*path)
		return -ENOENT;
	size_t n = strlen(path);
	if (n >= sizeof c->addr.sun_path)
		return -ENAMETOOLONG;
	memset(&c->addr, 0, sizeof c->addr);
	c->addr.sun_family = AF_UNIX;
	memcpy(c->addr.sun_path, path, n + 1);
	c->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	c->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return c->fd < 0 ? -errno : 0;
}

/* From $WATTMETER_CONTROL; -ENOENT when unset (not under `wattmeter run`). */
static inline int wm_client_open(wm_client *c)
{
	return wm_client_open_path(c, getenv("WATTMETER_CONTROL"));
}

static inline void wm_client_close(wm_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static inline unsigned long long wm_client_now_ns_(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Appends s as a JSON string to buf at *len (bounded). */
static inline void wm_client_put_str_(char *buf, size_t cap, size_t *len, const char *s)
{
	if (*len + 1 < cap)
		buf[(*len)++] = '"';
	for (; *s && *len + 7 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = (char)ch;
		} else if (ch < 0x20) {
			*len += (size_t)snprintf(buf + *len, cap - *len, "\\u%04x", ch);
		} else {
			buf[(*len)++] = (char)ch;
		}
	}
	if (*len + 1 < cap)
		buf[(*len)++] = '"';
	buf[*len < cap ? *len : cap - 1] = '\0';
}

static inline int wm_client_send_(wm_client *c, const char *op, const char *key, const char *name,
				  const char *objkey, const char *obj)
{
	if (c->fd < 0)
		return -EBADF;
	char buf[WM_CLIENT_MSG_MAX];
	size_t len = (size_t)snprintf(buf, sizeof buf, "{\"v\":1,\"op\":\"%s\",\"t_ns\":%llu", op, wm_client_now_ns_());
	if (key) {
		len += (size_t)snprintf(buf + len, sizeof buf - len, ",\"key\":");
		wm_client_put_str_(buf, sizeof buf, &len, key);
	}
	if (name && len < sizeof buf) {
		len += (size_t)snprintf(buf + len, sizeof buf - len, ",\"name\":");
		wm_client_put_str_(buf, sizeof buf, &len, name);
	}
	if (obj && *obj && len < sizeof buf)
		len += (size_t)snprintf(buf + len, sizeof buf - len, ",\"%s\":%s", objkey, obj);
	if (len + 2 > sizeof buf)
		return -EMSGSIZE;
	buf[len++] = '}';
	ssize_t r = sendto(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&c->addr, c->addrlen);
	return r < 0 ? -errno : 0;
}

/* Opens a window; its key ("<pid>.<n>", for wm_client_end) goes to key. */
static inline int wm_client_begin(wm_client *c, const char *name, const char *attrs_json, char *key, size_t keylen)
{
	if (!key || keylen < 24)
		return -EINVAL;
	(void)snprintf(key, keylen, "%ld.%llu", (long)getpid(), ++c->next);
	return wm_client_send_(c, "begin", key, name, "attrs", attrs_json);
}

static inline int wm_client_end(wm_client *c, const char *key, const char *counts_json)
{
	return wm_client_send_(c, "end", key, NULL, "counts", counts_json);
}

/* Requests to a server (docs/architecture.md "Requests"): begin gives a key
 * ("<pid>.r<n>"); tokens reports n completion tokens produced since the
 * last call (a stream chunk); end gives the result object
 * ({"status":200,"prompt_tokens":12,"completion_tokens":40,
 * "tokens_source":"usage"}) or NULL. */
static inline int wm_client_request_begin(wm_client *c, const char *attrs_json, char *key, size_t keylen)
{
	if (!key || keylen < 24)
		return -EINVAL;
	(void)snprintf(key, keylen, "%ld.r%llu", (long)getpid(), ++c->next);
	return wm_client_send_(c, "request_begin", key, NULL, "attrs", attrs_json);
}

static inline int wm_client_request_tokens(wm_client *c, const char *key, unsigned long long n)
{
	char num[24];
	(void)snprintf(num, sizeof num, "%llu", n);
	return wm_client_send_(c, "request_tokens", key, NULL, "n", num);
}

static inline int wm_client_request_end(wm_client *c, const char *key, const char *result_json)
{
	return wm_client_send_(c, "request_end", key, NULL, "result", result_json);
}

static inline int wm_client_mark(wm_client *c, const char *name, const char *attrs_json)
{
	return wm_client_send_(c, "mark", NULL, name, "attrs", attrs_json);
}

#ifdef __cplusplus
}
#endif

#endif
