/* Zip containers for .npz (zip.c): a reader working from the central directory and a writer of
 * stored or deflated entries. Internal; the public entry points are dpt_npz_* (npy.c). */
#ifndef DPT_ZIP_H
#define DPT_ZIP_H

#include "core.h"

/* An open archive: its central directory read and checked against the file's size. */
typedef struct dpt_zip {
    const char *path;
    FILE *f;
    uint64_t size;
    uint8_t *cd;          /* the central directory */
    size_t cd_size;
    uint64_t cd_offset;
    uint32_t n_entries;
} dpt_zip;

typedef struct dpt_zip_entry {
    const char *name;     /* points into cd, not terminated */
    size_t name_len;
    uint32_t flags, method, crc, csize, usize, local_off;
} dpt_zip_entry;

dpt_status dpt_zip_open(const char *path, dpt_zip *z, dpt_error *err);
void dpt_zip_close(dpt_zip *z);

/* Find "<key><ext>" (or, failing that, "<key>"): 1 found, 0 not, -1 error. */
int dpt_zip_find(const dpt_zip *z, const char *key, const char *ext, dpt_zip_entry *out,
                 dpt_error *err);

/* "a, b, c": the entry names without ext, for a missing-key message (truncated to cap). */
void dpt_zip_list_keys(const dpt_zip *z, const char *ext, char *buf, size_t cap);

/* The uncompressed bytes of an entry, CRC-checked: *data malloc'ed, *len bytes. Entries over
 * DPT_MAX_NPZ_ENTRY_BYTES are refused before allocating. */
dpt_status dpt_zip_read_entry(const dpt_zip *z, const dpt_zip_entry *e, uint8_t **data,
                              size_t *len, const char *what, dpt_error *err);

/* Writing: open, add entries in order, close (writes the central directory; on any failure,
 * st != DPT_OK passed in or met here, removes a regular output file). */
typedef struct dpt_zip_writer {
    const char *path;
    FILE *f;
    struct dpt_zip_rec *rec; /* per entry, for the central directory */
    int n, cap;
    uint64_t off;
} dpt_zip_writer;

dpt_status dpt_zip_writer_open(dpt_zip_writer *w, const char *path, int max_entries, dpt_error *err);

/* Entry "<name><ext>" holding hdr then data (deflated when compress); name and ext must stay
 * valid until dpt_zip_writer_close. */
dpt_status dpt_zip_writer_add(dpt_zip_writer *w, const char *name, const char *ext,
                              const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t nbytes,
                              int compress, dpt_error *err);

/* Finishes the archive if st is DPT_OK; always closes and frees. Returns the final status. */
dpt_status dpt_zip_writer_close(dpt_zip_writer *w, dpt_status st, dpt_error *err);

#endif
