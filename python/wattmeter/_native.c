/* _native.c — the CPython binding of libwattmeter (limited API, abi3).
 *
 * It only wraps: converts arguments, releases the GIL around every call that
 * may wait (starting and stopping the sampler, reading recordings), and turns
 * negative errnos into OSError with the library's message. The sampler thread
 * is native and never calls into Python.
 */
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x03090000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "wattmeter.h"
#include "wattmeter_exporter.h"

/* The threads the library starts (the sampler, the edge thread, the request
 * ledger, the exporter's HTTP and reaper threads) inherit the signal mask of
 * the thread that starts them. CPython runs signal handlers in the main
 * thread only, and a main thread blocked in a wait (threading.Event().wait,
 * a lock) wakes only if the signal lands on it: a Ctrl-C taken by one of our
 * threads left KeyboardInterrupt pending until the wait ended (an hour in
 * monitor_machine; seen as a test timing out in CI). So the stop signals are
 * blocked while anything that may start a thread runs, and only the
 * interpreter's threads take them. */
static void stop_signals_block(sigset_t *old)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	sigaddset(&s, SIGQUIT);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	sigaddset(&s, SIGALRM);
	sigaddset(&s, SIGCHLD);
	(void)pthread_sigmask(SIG_BLOCK, &s, old);
}

static void stop_signals_restore(const sigset_t *old)
{
	(void)pthread_sigmask(SIG_SETMASK, old, NULL);
}

#define CAPSULE_NAME "wattmeter._native.meter"
#define EXPORTER_CAPSULE "wattmeter._native.exporter"

static PyObject *raise_errno(int rc, const char *msg)
{
	PyObject *args = Py_BuildValue("(is)", rc < 0 ? -rc : rc, msg && *msg ? msg : strerror(rc < 0 ? -rc : rc));
	if (args) {
		PyErr_SetObject(PyExc_OSError, args);
		Py_DECREF(args);
	}
	return NULL;
}

static void capsule_free(PyObject *cap)
{
	wm_meter *m = PyCapsule_GetPointer(cap, CAPSULE_NAME);
	/* No-op in a forked child (the meter belongs to its parent). */
	if (m)
		wm_meter_free(m);
}

static wm_meter *get_meter(PyObject *cap)
{
	return PyCapsule_GetPointer(cap, CAPSULE_NAME);
}

/* Converts a sequence of str into a NULL-terminated char* array (copies).
 * Py_None gives NULL with *ok = 1. */
static char **str_list(PyObject *seq, int *ok)
{
	*ok = 0;
	if (seq == Py_None) {
		*ok = 1;
		return NULL;
	}
	PyObject *fast = PySequence_Tuple(seq);
	if (!fast)
		return NULL;
	Py_ssize_t n = PyTuple_Size(fast);
	char **out = calloc((size_t)n + 1, sizeof *out);
	if (!out) {
		Py_DECREF(fast);
		PyErr_NoMemory();
		return NULL;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *s = PyObject_Str(PyTuple_GetItem(fast, i));
		/* surrogateescape: argv bytes that are not UTF-8 come back as they were */
		PyObject *bytes = s ? PyUnicode_AsEncodedString(s, "utf-8", "surrogateescape") : NULL;
		const char *u = bytes ? PyBytes_AsString(bytes) : NULL;
		out[i] = u ? strdup(u) : NULL;
		Py_XDECREF(bytes);
		Py_XDECREF(s);
		if (!out[i]) {
			for (Py_ssize_t j = 0; j < i; j++)
				free(out[j]);
			free(out);
			Py_DECREF(fast);
			if (!PyErr_Occurred())
				PyErr_NoMemory();
			return NULL;
		}
	}
	Py_DECREF(fast);
	*ok = 1;
	return out;
}

static void free_str_list(char **l)
{
	if (!l)
		return;
	for (size_t i = 0; l[i]; i++)
		free(l[i]);
	free(l);
}

/* A sequence of ints as a malloc'd array (*n entries); 0, or -1 with the
 * Python error set. None gives an empty one. */
static int int_list(PyObject *obj, int **out, Py_ssize_t *n)
{
	*out = NULL;
	*n = 0;
	if (obj == Py_None)
		return 0;
	PyObject *t = PySequence_Tuple(obj);
	if (!t)
		return -1;
	Py_ssize_t k = PyTuple_Size(t);
	int *v = calloc((size_t)(k ? k : 1), sizeof *v);
	if (!v) {
		Py_DECREF(t);
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < k; i++) {
		long x = PyLong_AsLong(PyTuple_GetItem(t, i));
		if (x == -1 && PyErr_Occurred()) {
			Py_DECREF(t);
			free(v);
			return -1;
		}
		v[i] = (int)x;
	}
	Py_DECREF(t);
	*out = v;
	*n = k;
	return 0;
}

static PyObject *py_meter_start(PyObject *self, PyObject *args, PyObject *kw)
{
	(void)self;
	static char *kwlist[] = {"output_dir", "period_s", "proc_period_s", "mem_period_s", "pids",
				 "measure_self", "sysfs_root", "procfs_root", "model_min_w", "model_max_w",
				 "force_model", "command", "nvml_lib", "no_gpu", "gpu_exclusive", "include_pids",
				 "include_name", "include_cgroup", "include_unit", "host_procfs", NULL};
	const char *out_dir = NULL, *sysfs = NULL, *procfs = NULL;
	double period = WM_DEFAULT_PERIOD_S, proc_period = WM_DEFAULT_PROC_PERIOD_S,
	       mem_period = WM_DEFAULT_MEM_PERIOD_S, min_w = WM_DEFAULT_MODEL_MIN_W,
	       max_w = WM_DEFAULT_MODEL_MAX_W;
	PyObject *pids_obj = Py_None, *cmd_obj = Py_None;
	int measure_self = 1, force_model = 0, no_gpu = 0, gpu_exclusive = 0;
	const char *nvml_lib = NULL, *inc_name = NULL, *inc_cgroup = NULL, *inc_unit = NULL, *host_procfs = NULL;
	PyObject *inc_obj = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "z|dddOpzzddpOzppOzzzz", kwlist, &out_dir, &period, &proc_period,
					 &mem_period, &pids_obj, &measure_self, &sysfs, &procfs, &min_w, &max_w,
					 &force_model, &cmd_obj, &nvml_lib, &no_gpu, &gpu_exclusive, &inc_obj,
					 &inc_name, &inc_cgroup, &inc_unit, &host_procfs))
		return NULL;
	int *inc_pids = NULL;
	Py_ssize_t n_inc = 0;
	if (int_list(inc_obj, &inc_pids, &n_inc) < 0)
		return NULL;

	int *pids = NULL;
	Py_ssize_t n_pids = 0;
	if (int_list(pids_obj, &pids, &n_pids) < 0) {
		free(inc_pids);
		return NULL;
	}
	int ok;
	char **command = str_list(cmd_obj, &ok);
	if (!ok) {
		free(pids);
		free(inc_pids);
		return NULL;
	}

	wm_meter_config c;
	wm_meter_config_init(&c);
	c.output_dir = out_dir;
	c.sysfs_root = sysfs;
	c.procfs_root = procfs;
	c.period_s = period;
	c.proc_period_s = proc_period;
	c.mem_period_s = mem_period;
	c.pids = pids;
	c.n_pids = (size_t)n_pids;
	c.measure_self = measure_self;
	c.command = (const char *const *)command;
	c.model_min_w_per_cpu = min_w;
	c.model_max_w_per_cpu = max_w;
	c.force_model = force_model;
	c.nvml_lib = nvml_lib;
	c.no_gpu = no_gpu;
	c.gpu_exclusive = gpu_exclusive;
	c.include_pids = inc_pids;
	c.n_include_pids = (size_t)n_inc;
	c.include_name = inc_name;
	c.include_cgroup = inc_cgroup;
	c.include_unit = inc_unit;
	c.host_procfs_root = host_procfs;

	char err[1024] = "";
	wm_meter *m = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	sigset_t old_mask;
	stop_signals_block(&old_mask);
	rc = wm_meter_start(&c, &m, err, sizeof err);
	stop_signals_restore(&old_mask);
	Py_END_ALLOW_THREADS
	free(pids);
	free(inc_pids);
	free_str_list(command);
	if (rc < 0)
		return raise_errno(rc, err);
	PyObject *cap = PyCapsule_New(m, CAPSULE_NAME, capsule_free);
	if (!cap)
		wm_meter_free(m);
	return cap;
}

static PyObject *py_meter_stop(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	int exit_status = -1;
	if (!PyArg_ParseTuple(args, "O|i", &cap, &exit_status))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	char err[1024] = "";
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = wm_meter_stop(m, exit_status, err, sizeof err);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return raise_errno(rc, err);
	Py_RETURN_NONE;
}

static PyObject *py_meter_snapshot(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	if (!PyArg_ParseTuple(args, "O", &cap))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	wm_snapshot *s = wm_meter_snapshot(m);
	if (!s)
		return raise_errno(-errno, errno == ECHILD ? "this meter was started by another process (forked child)"
							  : "out of memory");
	PyObject *devices = PyDict_New();
	if (!devices) {
		wm_snapshot_free(s);
		return NULL;
	}
	for (size_t i = 0; i < s->n_devices; i++) {
		const wm_snapshot_device *x = &s->devices[i];
		PyObject *d = Py_BuildValue("{s:d,s:d,s:d,s:d,s:s,s:s}", "power_w", x->power_w, "power_smooth_w",
					    x->power_smooth_w, "energy_j", x->energy_j, "attributed_j", x->attributed_j,
					    "method", x->modeled ? "modeled" : "measured", "kind", x->kind);
		if (!d || PyDict_SetItemString(devices, x->name, d) < 0) {
			Py_XDECREF(d);
			Py_DECREF(devices);
			wm_snapshot_free(s);
			return NULL;
		}
		Py_DECREF(d);
	}
	PyObject *r = Py_BuildValue("{s:d,s:O,s:n,s:n,s:d,s:K}", "elapsed_s", s->elapsed_s, "devices", devices,
				    "n_procs_alive", (Py_ssize_t)s->n_procs_alive, "n_procs_seen",
				    (Py_ssize_t)s->n_procs_seen, "self_cpu_s", s->self_cpu_s,
				    "samples", (unsigned long long)s->samples);
	Py_DECREF(devices);
	wm_snapshot_free(s);
	return r;
}

/* ---- windows (wattmeter.h): fast calls, the GIL kept (a time stamp and a
 * queue entry); flush waits, so it releases it. ---- */
static PyObject *window_error(int rc)
{
	const char *msg = rc == -ECHILD ? "this meter belongs to the parent process: a forked child (a DataLoader "
					  "worker) cannot open windows on it; open them in the parent"
			  : rc == -EINVAL ? "a window needs a non-empty name; attributes a JSON object, counts "
					    "non-negative numbers"
			  : rc == -ENOTSUP ? "windows are recorded in windows.jsonl: this meter has no recording "
					     "(give it an output folder)"
			  : rc == -ESHUTDOWN ? "the meter is stopped: start it before opening windows"
			  : rc == -ENOENT ? "no window has this id (end the id begin returned)"
					  : NULL;
	return raise_errno(rc, msg);
}

static PyObject *py_window_begin(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	const char *name, *attrs = NULL;
	if (!PyArg_ParseTuple(args, "Os|z", &cap, &name, &attrs))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	sigset_t old_mask;
	stop_signals_block(&old_mask);
	int64_t id = wm_meter_window_begin(m, name, attrs);
	stop_signals_restore(&old_mask);
	if (id < 0)
		return window_error((int)id);
	return PyLong_FromLongLong((long long)id);
}

static PyObject *py_window_end(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	long long id;
	const char *counts = NULL;
	if (!PyArg_ParseTuple(args, "OL|z", &cap, &id, &counts))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	int rc = wm_meter_window_end(m, (int64_t)id, counts);
	if (rc < 0)
		return window_error(rc);
	Py_RETURN_NONE;
}

static PyObject *py_mark(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	const char *name, *attrs = NULL;
	if (!PyArg_ParseTuple(args, "Os|z", &cap, &name, &attrs))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	sigset_t old_mask;
	stop_signals_block(&old_mask);
	int rc = wm_meter_mark(m, name, attrs);
	stop_signals_restore(&old_mask);
	if (rc < 0)
		return window_error(rc);
	Py_RETURN_NONE;
}

static PyObject *py_windows_flush(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	if (!PyArg_ParseTuple(args, "O", &cap))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = wm_meter_windows_flush(m);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return rc == -ENOTSUP || rc == -ECHILD ? window_error(rc) : raise_errno(rc, "cannot write windows.jsonl");
	Py_RETURN_NONE;
}

/* ---- requests (wattmeter.h): fast calls as the windows' ---- */
static PyObject *request_error(int rc)
{
	const char *msg = rc == -ECHILD ? "this meter belongs to the parent process: a forked child cannot record "
					  "requests on it"
			  : rc == -EINVAL ? "bad request JSON: attrs an object (path, model strings; stream a bool), "
					    "result an object (status an int; prompt_tokens, completion_tokens "
					    "non-negative numbers; tokens_source, outcome strings)"
			  : rc == -ENOTSUP ? "requests are recorded in requests.jsonl: this meter has no recording "
					     "(give it an output folder)"
			  : rc == -ESHUTDOWN ? "the meter is stopped: start it before recording requests"
			  : rc == -ENOENT ? "no open request has this id (it ended, or begin never returned it)"
			  : rc == -ETIMEDOUT ? "the requests were not all final within the timeout (a request still "
					       "open holds the intervals it overlaps)"
					  : NULL;
	return raise_errno(rc, msg);
}

static PyObject *py_request_begin(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	const char *attrs = NULL;
	unsigned long long t = 0;
	if (!PyArg_ParseTuple(args, "O|zK", &cap, &attrs, &t))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	sigset_t old_mask;
	stop_signals_block(&old_mask);
	int64_t id = wm_meter_request_begin(m, (uint64_t)t, attrs);
	stop_signals_restore(&old_mask);
	if (id < 0)
		return request_error((int)id);
	return PyLong_FromLongLong((long long)id);
}

static PyObject *py_request_tokens(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	long long id;
	unsigned long long n, t = 0;
	if (!PyArg_ParseTuple(args, "OLK|K", &cap, &id, &n, &t))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	int rc = wm_meter_request_tokens(m, (int64_t)id, (uint64_t)t, (uint64_t)n);
	if (rc < 0)
		return request_error(rc);
	Py_RETURN_NONE;
}

static PyObject *py_request_end(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	long long id;
	const char *result = NULL;
	unsigned long long t = 0;
	if (!PyArg_ParseTuple(args, "OL|zK", &cap, &id, &result, &t))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	int rc = wm_meter_request_end(m, (int64_t)id, (uint64_t)t, result);
	if (rc < 0)
		return request_error(rc);
	Py_RETURN_NONE;
}

static PyObject *py_requests_flush(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	double timeout_s = 30;
	if (!PyArg_ParseTuple(args, "O|d", &cap, &timeout_s))
		return NULL;
	wm_meter *m = get_meter(cap);
	if (!m)
		return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = wm_meter_requests_flush(m, timeout_s);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return rc == -EIO || rc == -ENOSPC ? raise_errno(rc, "cannot write requests.jsonl") : request_error(rc);
	Py_RETURN_NONE;
}

typedef char *(*report_fn)(const char *dir, int top_n, char *err, size_t errlen);
static PyObject *take_string(char *out, int e, const char *err);

static PyObject *py_report_windows_json(PyObject *self, PyObject *args)
{
	(void)self;
	const char *dir, *name = NULL;
	if (!PyArg_ParseTuple(args, "s|z", &dir, &name))
		return NULL;
	char err[1024] = "";
	char *out;
	int e;
	Py_BEGIN_ALLOW_THREADS
	out = wm_report_windows_json(dir, name, err, sizeof err);
	e = out ? 0 : errno;
	Py_END_ALLOW_THREADS
	return take_string(out, e, err);
}

static PyObject *py_report_requests_json(PyObject *self, PyObject *args)
{
	(void)self;
	const char *dir;
	if (!PyArg_ParseTuple(args, "s", &dir))
		return NULL;
	char err[1024] = "";
	char *out;
	int e;
	Py_BEGIN_ALLOW_THREADS
	out = wm_report_requests_json(dir, err, sizeof err);
	e = out ? 0 : errno;
	Py_END_ALLOW_THREADS
	return take_string(out, e, err);
}

static char *rep_json(const char *dir, int top_n, char *err, size_t errlen)
{
	(void)top_n;
	return wm_report_json(dir, err, errlen);
}
static char *rep_columns(const char *dir, int top_n, char *err, size_t errlen)
{
	(void)top_n;
	return wm_report_columns_json(dir, err, errlen);
}

/* Turns a malloc'd result of the library into a str (freeing it), or its
 * NULL into OSError (FileNotFoundError for ENOENT ...) with the library's
 * message; e is the errno saved right after the call. */
static PyObject *take_string(char *out, int e, const char *err)
{
	if (!out)
		return raise_errno(e ? -e : -EINVAL, err);
	PyObject *s = PyUnicode_FromString(out);
	free(out);
	return s;
}

static PyObject *call_report(PyObject *args, report_fn fn)
{
	const char *dir;
	int top_n = 5;
	if (!PyArg_ParseTuple(args, "s|i", &dir, &top_n))
		return NULL;
	char err[1024] = "";
	char *out;
	int e;
	Py_BEGIN_ALLOW_THREADS
	errno = 0;
	out = fn(dir, top_n, err, sizeof err);
	e = errno;
	Py_END_ALLOW_THREADS
	return take_string(out, e, err);
}

static PyObject *py_report_json(PyObject *self, PyObject *args)
{
	(void)self;
	return call_report(args, rep_json);
}

static PyObject *py_report_text(PyObject *self, PyObject *args)
{
	(void)self;
	return call_report(args, wm_report_text);
}

static PyObject *py_report_columns_json(PyObject *self, PyObject *args)
{
	(void)self;
	return call_report(args, rep_columns);
}

static char *rep_detail(const char *dir, int top_n, char *err, size_t errlen)
{
	(void)top_n;
	return wm_report_detail_json(dir, err, errlen);
}

static PyObject *py_report_detail_json(PyObject *self, PyObject *args)
{
	(void)self;
	return call_report(args, rep_detail);
}

/* report_window_json(dir, start_s=None, end_s=None): None is an open end. */
static PyObject *py_report_window_json(PyObject *self, PyObject *args)
{
	(void)self;
	const char *dir;
	PyObject *ps = Py_None, *pe = Py_None;
	if (!PyArg_ParseTuple(args, "s|OO", &dir, &ps, &pe))
		return NULL;
	double start_s = NAN, end_s = NAN;
	if (ps != Py_None) {
		start_s = PyFloat_AsDouble(ps);
		if (start_s == -1.0 && PyErr_Occurred())
			return NULL;
	}
	if (pe != Py_None) {
		end_s = PyFloat_AsDouble(pe);
		if (end_s == -1.0 && PyErr_Occurred())
			return NULL;
	}
	char err[1024] = "";
	char *out;
	int e;
	Py_BEGIN_ALLOW_THREADS
	errno = 0;
	out = wm_report_window_json(dir, start_s, end_s, err, sizeof err);
	e = errno;
	Py_END_ALLOW_THREADS
	return take_string(out, e, err);
}

/* ---- a recording read once: Results holds it, every query reads it ---- */

#define RECORDING_CAPSULE "wattmeter._native.recording"

static void recording_capsule_free(PyObject *cap)
{
	wm_recording *r = PyCapsule_GetPointer(cap, RECORDING_CAPSULE);
	if (r)
		wm_report_release(r);
}

static wm_recording *get_recording(PyObject *cap)
{
	return PyCapsule_GetPointer(cap, RECORDING_CAPSULE);
}

/* recording_load(dir) -> capsule: the recording parsed once, freed with it */
static PyObject *py_recording_load(PyObject *self, PyObject *args)
{
	(void)self;
	const char *dir;
	if (!PyArg_ParseTuple(args, "s", &dir))
		return NULL;
	char err[1024] = "";
	wm_recording *r;
	int e;
	Py_BEGIN_ALLOW_THREADS
	errno = 0;
	r = wm_report_load(dir, err, sizeof err);
	e = errno;
	Py_END_ALLOW_THREADS
	if (!r)
		return raise_errno(e ? -e : -EINVAL, err);
	PyObject *cap = PyCapsule_New(r, RECORDING_CAPSULE, recording_capsule_free);
	if (!cap)
		wm_report_release(r);
	return cap;
}

static int opt_double(PyObject *o, double *out)
{
	*out = NAN;
	if (o == Py_None)
		return 0;
	*out = PyFloat_AsDouble(o);
	return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* recording_render(cap, what, top_n=5, start=None, end=None) -> str */
static PyObject *py_recording_render(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap, *ps = Py_None, *pe = Py_None;
	int what, top_n = 5;
	if (!PyArg_ParseTuple(args, "Oi|iOO", &cap, &what, &top_n, &ps, &pe))
		return NULL;
	wm_recording *r = get_recording(cap);
	double s, en;
	if (!r || opt_double(ps, &s) < 0 || opt_double(pe, &en) < 0)
		return NULL;
	char err[1024] = "";
	char *out;
	int e;
	Py_BEGIN_ALLOW_THREADS
	errno = 0;
	out = wm_report_render(r, what, top_n, s, en, err, sizeof err);
	e = errno;
	Py_END_ALLOW_THREADS
	return take_string(out, e, err);
}

/* recording_series(cap, table) -> [(name, has_a_value)] in the table's order */
static PyObject *py_recording_series(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	int table;
	if (!PyArg_ParseTuple(args, "Oi", &cap, &table))
		return NULL;
	wm_recording *r = get_recording(cap);
	if (!r)
		return NULL;
	PyObject *l = PyList_New(0);
	for (size_t i = 0; l; i++) {
		const char *name;
		(void)wm_report_series(r, table, i, &name, NULL);
		if (!name)
			break;
		PyObject *nm = PyUnicode_FromString(name);
		size_t count;
		double sum, mx;
		(void)wm_report_series_stats(r, table, i, NAN, NAN, &count, &sum, &mx);
		PyObject *t = nm ? Py_BuildValue("(Oi)", nm, count > 0) : NULL;
		Py_XDECREF(nm);
		if (!t || PyList_Append(l, t) < 0) {
			Py_XDECREF(t);
			Py_DECREF(l);
			return NULL;
		}
		Py_DECREF(t);
	}
	return l;
}

/* recording_column(cap, table, i) -> bytes: the series' doubles (native
 * byte order, NaN where absent), for numpy.frombuffer or array('d') */
static PyObject *py_recording_column(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	int table;
	Py_ssize_t i;
	if (!PyArg_ParseTuple(args, "Oin", &cap, &table, &i))
		return NULL;
	wm_recording *r = get_recording(cap);
	if (!r)
		return NULL;
	const char *name;
	size_t n = wm_report_series(r, table, (size_t)i, &name, NULL);
	if (!name || i < 0) {
		PyErr_SetString(PyExc_IndexError, "no such series in the recording");
		return NULL;
	}
	PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(double)));
	if (!b)
		return NULL;
	(void)wm_report_series(r, table, (size_t)i, &name, (double *)(void *)PyBytes_AsString(b));
	return b;
}

/* recording_stats(cap, table, i, start=None, end=None) -> (count, sum, max) */
static PyObject *py_recording_stats(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap, *ps = Py_None, *pe = Py_None;
	int table;
	Py_ssize_t i;
	if (!PyArg_ParseTuple(args, "Oin|OO", &cap, &table, &i, &ps, &pe))
		return NULL;
	wm_recording *r = get_recording(cap);
	double s, en;
	if (!r || opt_double(ps, &s) < 0 || opt_double(pe, &en) < 0)
		return NULL;
	size_t count;
	double sum, mx;
	if (i < 0 || wm_report_series_stats(r, table, (size_t)i, s, en, &count, &sum, &mx) < 0) {
		PyErr_SetString(PyExc_IndexError, "no such series in the recording");
		return NULL;
	}
	return Py_BuildValue("(ndd)", (Py_ssize_t)count, sum, mx);
}

/* recording_nbytes(cap) -> int: the bytes its columns and index hold */
static PyObject *py_recording_nbytes(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	if (!PyArg_ParseTuple(args, "O", &cap))
		return NULL;
	wm_recording *r = get_recording(cap);
	return r ? PyLong_FromSize_t(wm_report_nbytes(r)) : NULL;
}


/* report_job_json([dir, ...]) */
static PyObject *py_report_job_json(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *seq;
	if (!PyArg_ParseTuple(args, "O", &seq))
		return NULL;
	int ok;
	char **dirs = str_list(seq, &ok);
	if (!ok)
		return NULL;
	size_t n = 0;
	while (dirs && dirs[n])
		n++;
	char err[1024] = "";
	char *out;
	int e;
	Py_BEGIN_ALLOW_THREADS
	errno = 0;
	out = wm_report_job_json((const char *const *)dirs, n, err, sizeof err);
	e = errno;
	Py_END_ALLOW_THREADS
	free_str_list(dirs);
	return take_string(out, e, err);
}

static PyObject *py_sensors(PyObject *self, PyObject *args, PyObject *kw)
{
	(void)self;
	static char *kwlist[] = {"sysfs_root", "procfs_root", "as_json", "nvml_lib", "no_gpu", NULL};
	wm_meter_config c;
	wm_meter_config_init(&c);
	int as_json = 1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|sspzp", kwlist, &c.sysfs_root, &c.procfs_root, &as_json,
					 &c.nvml_lib, &c.no_gpu))
		return NULL;
	char err[1024] = "";
	char *out;
	int e;
	Py_BEGIN_ALLOW_THREADS
	errno = 0;
	out = wm_sensors_describe(&c, as_json, err, sizeof err);
	e = errno;
	Py_END_ALLOW_THREADS
	return take_string(out, e, err);
}

/* ---- the Prometheus exporter (wattmeter.serve) ---------------------------- */

static void exporter_capsule_free(PyObject *cap)
{
	wm_exporter *e = PyCapsule_GetPointer(cap, EXPORTER_CAPSULE);
	if (e)
		wm_exporter_free(e); /* stops it first; a no-op in a forked child */
}

static PyObject *py_exporter_start(PyObject *self, PyObject *args, PyObject *kw)
{
	(void)self;
	static char *kwlist[] = {"listen", "period_s", "sysfs_root", "procfs_root", "nvml_lib", "no_gpu",
				 "per_process", "per_cgroup", "max_series", "web_config_file", "record_dir", "reprobe_s",
				 NULL};
	wm_exporter_config ec;
	wm_exporter_config_init(&ec);
	wm_meter_config mc;
	wm_meter_config_init(&mc);
	double period = WM_DEFAULT_PERIOD_S;
	Py_ssize_t max_series = 0;
	int no_gpu = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|zdzzzpppnzzd", kwlist, &ec.listen, &period, &mc.sysfs_root,
					 &mc.procfs_root, &mc.nvml_lib, &no_gpu, &ec.per_process, &ec.per_cgroup,
					 &max_series, &ec.web_config_file, &ec.record_dir, &ec.reprobe_s))
		return NULL;
	if (max_series < 0) {
		PyErr_SetString(PyExc_ValueError, "max_series must be >= 0 (0: the default)");
		return NULL;
	}
	if (!ec.listen)
		ec.listen = WM_EXPORTER_DEFAULT_LISTEN;
	ec.max_series = (size_t)max_series;
	mc.period_s = period;
	if (mc.proc_period_s < period)
		mc.proc_period_s = period;
	mc.no_gpu = no_gpu;
	char err[1024] = "";
	wm_exporter *e = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	sigset_t old_mask;
	stop_signals_block(&old_mask);
	rc = wm_exporter_start(&ec, &mc, &e, err, sizeof err);
	stop_signals_restore(&old_mask);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return raise_errno(rc, err);
	PyObject *cap = PyCapsule_New(e, EXPORTER_CAPSULE, exporter_capsule_free);
	if (!cap)
		wm_exporter_free(e);
	return cap;
}

static PyObject *py_exporter_info(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	if (!PyArg_ParseTuple(args, "O", &cap))
		return NULL;
	wm_exporter *e = PyCapsule_GetPointer(cap, EXPORTER_CAPSULE);
	if (!e)
		return NULL;
	return Py_BuildValue("(si)", wm_exporter_url(e), wm_exporter_port(e));
}

static PyObject *py_exporter_stop(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cap;
	if (!PyArg_ParseTuple(args, "O", &cap))
		return NULL;
	wm_exporter *e = PyCapsule_GetPointer(cap, EXPORTER_CAPSULE);
	if (!e)
		return NULL;
	char err[1024] = "";
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = wm_exporter_stop(e, err, sizeof err);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return raise_errno(rc, err);
	Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
	{"meter_start", (PyCFunction)(void (*)(void))py_meter_start, METH_VARARGS | METH_KEYWORDS,
	 "Start a meter; returns a handle. See wattmeter.Meter."},
	{"meter_stop", py_meter_stop, METH_VARARGS, "Stop a meter and complete its recording."},
	{"meter_snapshot", py_meter_snapshot, METH_VARARGS, "Latest power and energy of a running meter."},
	{"window_begin", py_window_begin, METH_VARARGS, "Open a window: (meter, name, attrs_json) -> id."},
	{"window_end", py_window_end, METH_VARARGS, "Close a window: (meter, id, counts_json)."},
	{"mark", py_mark, METH_VARARGS, "An instant mark: (meter, name, attrs_json)."},
	{"report_windows_json", py_report_windows_json, METH_VARARGS,
	 "The windows of a recording as JSON text: (dir, name=None)."},
	{"windows_flush", py_windows_flush, METH_VARARGS, "Wait until every edge is read and written."},
	{"request_begin", py_request_begin, METH_VARARGS, "A request begins: (meter, attrs_json, mono_ns=0) -> id."},
	{"request_tokens", py_request_tokens, METH_VARARGS, "Tokens produced: (meter, id, n, mono_ns=0)."},
	{"request_end", py_request_end, METH_VARARGS, "A request ends: (meter, id, result_json, mono_ns=0)."},
	{"requests_flush", py_requests_flush, METH_VARARGS, "Wait until every ended request is written: (meter, timeout_s)."},
	{"report_requests_json", py_report_requests_json, METH_VARARGS, "The requests of a recording as JSON text: (dir)."},
	{"report_json", py_report_json, METH_VARARGS, "Summary of a recording as JSON text."},
	{"report_text", py_report_text, METH_VARARGS, "Human summary of a recording."},
	{"report_columns_json", py_report_columns_json, METH_VARARGS, "Time series columns as JSON text."},
	{"report_detail_json", py_report_detail_json, METH_VARARGS,
	 "Per-sample details (zones, gauges, per-process rows) as JSON text."},
	{"report_job_json", py_report_job_json, METH_VARARGS, "One job's recordings merged, as JSON text."},
	{"report_window_json", py_report_window_json, METH_VARARGS,
	 "Energy of a time window (start_s, end_s; None = open) as JSON text."},
	{"recording_load", py_recording_load, METH_VARARGS, "Read a recording once (a capsule freed with it)."},
	{"recording_render", py_recording_render, METH_VARARGS, "Summary, text, columns, detail or window as text."},
	{"recording_series", py_recording_series, METH_VARARGS, "[(name, has_a_value)] of a table."},
	{"recording_column", py_recording_column, METH_VARARGS, "A series' doubles as bytes."},
	{"recording_stats", py_recording_stats, METH_VARARGS, "(count, sum, max) of a series in a window."},
	{"recording_nbytes", py_recording_nbytes, METH_VARARGS, "The bytes a loaded recording's columns hold."},
	{"sensors", (PyCFunction)(void (*)(void))py_sensors, METH_VARARGS | METH_KEYWORDS,
	 "Energy sources and their state (JSON text by default)."},
	{"exporter_start", (PyCFunction)(void (*)(void))py_exporter_start, METH_VARARGS | METH_KEYWORDS,
	 "Start the Prometheus exporter; returns a handle. See wattmeter.serve."},
	{"exporter_info", py_exporter_info, METH_VARARGS, "(url, port) of a running exporter."},
	{"exporter_stop", py_exporter_stop, METH_VARARGS, "Stop an exporter (sampling, then the server)."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
	PyModuleDef_HEAD_INIT, "_native", "Native core of wattmeter (libwattmeter).", -1, methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void);
PyMODINIT_FUNC PyInit__native(void)
{
	PyObject *mod = PyModule_Create(&moduledef);
	if (!mod)
		return NULL;
	if (PyModule_AddStringConstant(mod, "version", WM_VERSION) < 0 ||
	    PyModule_AddObject(mod, "DEFAULT_PERIOD_S", PyFloat_FromDouble(WM_DEFAULT_PERIOD_S)) < 0 ||
	    PyModule_AddObject(mod, "DEFAULT_PROC_PERIOD_S", PyFloat_FromDouble(WM_DEFAULT_PROC_PERIOD_S)) < 0 ||
	    PyModule_AddObject(mod, "DEFAULT_MEM_PERIOD_S", PyFloat_FromDouble(WM_DEFAULT_MEM_PERIOD_S)) < 0 ||
	    PyModule_AddObject(mod, "DEFAULT_REPROBE_S", PyFloat_FromDouble(WM_EXPORTER_DEFAULT_REPROBE_S)) < 0) {
		Py_DECREF(mod);
		return NULL;
	}
	return mod;
}
