/* Errors, logging and the version string for the whole library (memory: mem.c). */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>

const char *dpt_version(void) { return DPT_VERSION_STRING; }

const char *dpt_strerror(dpt_status status) {
    switch (status) {
    case DPT_OK: return "success";
    case DPT_ERR_INVALID_ARG: return "invalid argument";
    case DPT_ERR_IO: return "input/output error";
    case DPT_ERR_FORMAT: return "corrupt or inconsistent file";
    case DPT_ERR_UNSUPPORTED: return "unsupported";
    case DPT_ERR_NOMEM: return "out of memory";
    case DPT_ERR_AUDIO: return "audio error";
    case DPT_ERR_NOISE: return "noise source exhausted";
    case DPT_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}

dpt_status dpt_fail(dpt_error *err, dpt_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        /* keep it one line */
        for (char *p = err->message; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
        err->status = status;
    }
    return status;
}

static dpt_log_fn log_fn = NULL;
static void *log_user = NULL;

void dpt_log_set_callback(dpt_log_fn fn, void *user) {
    log_fn = fn;
    log_user = user;
}

void dpt_log(int level, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (log_fn) {
        log_fn(level, buf, log_user);
    } else if (level >= 1) {
        fprintf(stderr, "libdpt: warning: %s\n", buf);
    }
}
