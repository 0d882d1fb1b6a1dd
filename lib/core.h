/* Internal core, one header for: errors and logging (core.c), memory and value helpers (mem.c), file
 * helpers (file.c), little-endian fields. Not part of the public API. */
#ifndef DPT_CORE_H
#define DPT_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* Little-endian fields of file formats (npy, zip). */
static inline uint32_t dpt_rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t dpt_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void dpt_wr16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void dpt_wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Files (file.c). Open path for reading, a regular file only: *size its bytes; NULL and err filled
 * on failure. */
FILE *dpt_file_open_read(const char *path, uint64_t *size, dpt_error *err);
/* 1 if all n bytes were written (n == 0 writes nothing). */
int dpt_file_write_all(FILE *f, const void *p, size_t n);
/* 1 if f is a regular file (a failed write may remove it; never a device or FIFO). */
int dpt_file_is_regular(FILE *f);

#endif
