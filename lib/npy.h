/* NumPy .npy header codec and in-memory parse (npy.c), internal. The public entry points are
 * dpt_npy_read/write and dpt_npz_read/has/write (dpt.h); .npz's container is zip.h's. */
#ifndef DPT_NPY_H
#define DPT_NPY_H

#include "core.h"

#define NPY_MAX_DIMS 4

typedef struct dpt_npy_header {
    size_t header_size;   /* preamble + dict: offset of the data */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int f64;              /* 0: '<f4', 1: '<f8' */
    size_t count;         /* elements */
    size_t nbytes;        /* data bytes */
} dpt_npy_header;

/* From the first len bytes of a .npy, the total header size (needs 10 or 12 bytes). */
dpt_status dpt_npy_header_size(const uint8_t *b, size_t len, size_t *hsize, const char *what,
                               dpt_error *err);

/* Parse the dict of b[0..hsize) (the preamble is already checked by dpt_npy_header_size). */
dpt_status dpt_npy_header_parse(const uint8_t *b, size_t hsize, dpt_npy_header *h,
                                const char *what, dpt_error *err);

/* The v1.0 header np.save writes for a float32 C-order array: *len bytes into buf[256]. */
void dpt_npy_header_make(int ndim, const int64_t *shape, uint8_t *buf, size_t *len);

/* A whole .npy held in malloc'ed memory (an inflated .npz entry): converted in place and kept as
 * the array's data (no second copy of a large entry); b is freed on failure. */
dpt_status dpt_npy_parse_owned(uint8_t *b, size_t len, dpt_array *out, const char *what,
                               dpt_error *err);

#endif
