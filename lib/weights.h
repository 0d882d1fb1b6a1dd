/* Reader of the .dpt container (weights/FORMAT.md): header, metadata, tensor table, mmap. */
#ifndef DPT_WEIGHTS_H
#define DPT_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>
#include "core.h"

/* dtypes and metadata types: the public dpt_dtype / dpt_meta_type (dpt.h, through core.h) */

typedef struct dpt_tensor_entry {
    char *name;
    int dtype;
    int ndim;
    int64_t shape[4];
    int64_t n_elements;
    uint64_t offset;      /* absolute offset in the file */
    uint64_t nbytes;
    const void *data;     /* points into the mapped file */
} dpt_tensor_entry;

typedef struct dpt_meta_entry {
    char *key;
    int type;
    int64_t i;
    double f;
    char *s;
} dpt_meta_entry;

typedef struct dpt_weights {
    char *path;
    const uint8_t *bytes;  /* whole file (mapped or read) */
    size_t size;
    int mapped;
    int n_meta, n_tensors;
    dpt_meta_entry *meta;
    dpt_tensor_entry *tensors;
} dpt_weights;

/* Open and validate the container (not the model semantics; see model.c). */
dpt_status dpt_weights_open(const char *path, int use_mmap, dpt_weights **out, dpt_error *err);
void dpt_weights_close(dpt_weights *w);

const dpt_tensor_entry *dpt_weights_find(const dpt_weights *w, const char *name);
const dpt_meta_entry *dpt_weights_meta(const dpt_weights *w, const char *key);

/* Hint that the bytes [p, p + n) of a mapped file will not be read soon: the whole pages inside
 * are dropped from memory (read again from the file if they are used). No-op if not mapped. */
void dpt_weights_release(const dpt_weights *w, const void *p, size_t n);

#endif
