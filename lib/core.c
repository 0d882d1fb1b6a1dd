/* Errors, logging and memory for the whole library. */
#include "core.h"

#include "kernels.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void *dpt_alloc(size_t n_bytes) {
    void *p = NULL;
    size_t n = (n_bytes + 63) & ~(size_t)63;
    if (n < n_bytes) return NULL;
    if (n == 0) n = 64;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    return p;
}

void *dpt_calloc(size_t n_bytes) {
    void *p = dpt_alloc(n_bytes);
    if (p) memset(p, 0, n_bytes);
    return p;
}

void dpt_alloc_free(void *ptr) { free(ptr); }

void dpt_free(void *ptr) { free(ptr); }

int dpt_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* One half from the file's bytes; the conversion itself is the kernels' exact reference. */
float dpt_half_to_float(uint16_t h) {
    float f;
    dpt_k_half_to_float_ref(&h, &f, 1);
    return f;
}

/* Branch-free over blocks (vectorised by the compiler): a float is NaN or ±Inf exactly when its
 * exponent bits are all ones. Runs over every weight at load, so it has to be fast. */
int dpt_all_finite(const float *x, size_t n) {
    const uint32_t EXP = 0x7f800000u;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        uint32_t bad = 0;
        for (size_t j = 0; j < 256; j++) {
            uint32_t b;
            memcpy(&b, x + i + j, sizeof b);
            bad |= (uint32_t)((b & EXP) == EXP);
        }
        if (bad) return 0;
    }
    for (; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}
