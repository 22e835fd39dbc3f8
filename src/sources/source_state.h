/* source_state.h — the state of one energy source, as probed at start. */
#ifndef WM_SOURCE_STATE_H
#define WM_SOURCE_STATE_H

typedef enum wm_source_state {
	WM_SRC_OK = 0,      /* present and readable: measured */
	WM_SRC_ABSENT,      /* not on this machine (ENOENT, ENODEV, EOPNOTSUPP): no data */
	WM_SRC_FORBIDDEN,   /* present but not readable (EACCES, EPERM): comes with a fix */
	WM_SRC_MODELED,     /* estimated from a documented model, never presented as measured */
	WM_SRC_ERROR,       /* present but failing (malformed): no data, with a message */
} wm_source_state;

static inline const char *wm_source_state_name(wm_source_state s)
{
	switch (s) {
	case WM_SRC_OK: return "ok";
	case WM_SRC_ABSENT: return "absent";
	case WM_SRC_FORBIDDEN: return "permission denied";
	case WM_SRC_MODELED: return "modeled";
	case WM_SRC_ERROR: return "error";
	}
	return "?";
}

#endif
