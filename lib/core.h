/* Internal core: errors, logging, aligned allocation. Not part of the public API. */
#ifndef DPT_CORE_H
#define DPT_CORE_H

#include <stddef.h>
#include <stdint.h>
#include "dpt.h"

#if defined(__GNUC__)
#define DPT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DPT_PRINTF(a, b)
#endif

/* Record a failure in err (if non-NULL) and return status. The message is one line. */
dpt_status dpt_fail(dpt_error *err, dpt_status status, const char *fmt, ...) DPT_PRINTF(3, 4);

/* Log through the user's callback (level 0 info, 1 warning). */
void dpt_log(int level, const char *fmt, ...) DPT_PRINTF(2, 3);

/* 64-byte aligned allocation; NULL on failure (or n == 0 gives a valid unique pointer). */
void *dpt_alloc(size_t n_bytes);
void *dpt_calloc(size_t n_bytes);
void dpt_alloc_free(void *ptr);

/* Overflow-checked a*b; returns 0 on overflow. */
int dpt_mul_ok(size_t a, size_t b, size_t *out);

/* float16 (IEEE binary16) → float32 */
float dpt_half_to_float(uint16_t h);

/* 1 if every value is finite. */
int dpt_all_finite(const float *x, size_t n);

#endif
