/* STUB */
#include <stddef.h>
#include "wattmeter.h"
#include "util.h"
char *wm_sensors_describe(const char *s, const char *p, int j, char *err, size_t errlen) { (void)s; (void)p; (void)j; wm_err(err, errlen, -1, "todo"); return NULL; }
