/* Reader of the .dpt container (weights/FORMAT.md). Every byte of the file is untrusted: all reads
 * go through a bounds-checked cursor and all sizes are checked for overflow. */
#include "weights.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HEADER_SIZE 64u
/* Limits (weights/FORMAT.md "Limits"): checked before anything is allocated from a count. The
 * official models have ~350 tensors and ~60 metadata entries. */
#define MAX_NAME 255u
#define MAX_STRING 65535u
#define MAX_TENSORS 65536u
#define MAX_META 4096u
#define MAX_ELEMENTS ((uint64_t)1 << 40)

/* Bounds-checked little-endian cursor over [p, end). */
typedef struct cursor {
    const uint8_t *p, *end;
    int bad;
} cursor;

static int cur_need(cursor *c, size_t n) {
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        return 0;
    }
    return 1;
}

static uint64_t cur_le(cursor *c, int n) {
    if (!cur_need(c, (size_t)n)) return 0;
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | c->p[i];
    c->p += n;
    return v;
}

static const uint8_t *cur_bytes(cursor *c, size_t n) {
    if (!cur_need(c, n)) return NULL;
    const uint8_t *q = c->p;
    c->p += n;
    return q;
}

static char *dup_str(const uint8_t *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

static uint64_t rd_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void dpt_weights_close(dpt_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].s);
    }
    for (int i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->meta);
    free(w->tensors);
    if (w->bytes) {
        if (w->mapped)
            munmap((void *)w->bytes, w->size);
        else
            dpt_alloc_free((void *)w->bytes);
    }
    free(w->path);
    free(w);
}

static int cmp_offset(const void *a, const void *b) {
    const dpt_tensor_entry *x = *(const dpt_tensor_entry *const *)a;
    const dpt_tensor_entry *y = *(const dpt_tensor_entry *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if the n strings are pairwise distinct; on a duplicate returns 0 and sets *dup. */
static int names_unique(char **names, int n, const char **dup) {
    if (n < 2) return 1;
    char **sorted = malloc(sizeof(char *) * (size_t)n);
    if (!sorted) return 1; /* cannot check; not a correctness hazard for reading */
    memcpy(sorted, names, sizeof(char *) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(char *), cmp_name);
    int ok = 1;
    for (int i = 1; i < n && ok; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            *dup = sorted[i];
            ok = 0;
        }
    free(sorted);
    return ok;
}

static dpt_status load_bytes(const char *path, int use_mmap, dpt_weights *w, dpt_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dpt_fail(err, DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dpt_fail(err, DPT_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size < HEADER_SIZE) {
        close(fd);
        return dpt_fail(err, DPT_ERR_FORMAT,
                        "%s: file is %lld bytes, too short for a .dpt header (64 bytes)", path,
                        (long long)st.st_size);
    }
    w->size = (size_t)st.st_size;
    if (use_mmap) {
        void *m = mmap(NULL, w->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            w->bytes = m;
            w->mapped = 1;
            close(fd);
            return DPT_OK;
        }
    }
    uint8_t *buf = dpt_alloc(w->size);
    if (!buf) {
        close(fd);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, w->size);
    }
    size_t got = 0;
    while (got < w->size) {
        ssize_t r = read(fd, buf + got, w->size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            dpt_alloc_free(buf);
            close(fd);
            return dpt_fail(err, DPT_ERR_IO, "%s: read failed", path);
        }
        got += (size_t)r;
    }
    close(fd);
    w->bytes = buf;
    return DPT_OK;
}

static dpt_status parse(dpt_weights *w, dpt_error *err) {
    const char *path = w->path;
    const uint8_t *h = w->bytes;
    if (memcmp(h, "DPTW", 4) != 0)
        return dpt_fail(err, DPT_ERR_FORMAT,
                        "%s: not a .dpt weight file (magic %02x %02x %02x %02x, expected 'DPTW')",
                        path, h[0], h[1], h[2], h[3]);
    uint32_t version = rd_u32(h + 4);
    if (version != 1)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: .dpt format version %u, this libdpt reads version 1", path, version);
    uint64_t file_size = rd_u64(h + 8);
    uint32_t n_meta = rd_u32(h + 16), n_tensors = rd_u32(h + 20);
    uint64_t meta_off = rd_u64(h + 24), table_off = rd_u64(h + 32), data_off = rd_u64(h + 40);
    uint32_t meta_size = rd_u32(h + 48), table_size = rd_u32(h + 52), crc = rd_u32(h + 56);
    if (file_size != w->size)
        return dpt_fail(err, DPT_ERR_FORMAT,
                        "%s: truncated or extended: header says %llu bytes, file has %zu", path,
                        (unsigned long long)file_size, w->size);
    if (meta_off != HEADER_SIZE || table_off != meta_off + meta_size ||
        table_off + table_size > data_off || data_off > file_size || data_off % 64 != 0)
        return dpt_fail(err, DPT_ERR_FORMAT,
                        "%s: inconsistent header (metadata at %llu+%u, table at %llu+%u, data at "
                        "%llu, file %llu bytes)",
                        path, (unsigned long long)meta_off, meta_size,
                        (unsigned long long)table_off, table_size, (unsigned long long)data_off,
                        (unsigned long long)file_size);
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, h, 56);
    c = crc32(c, h + meta_off, meta_size);
    c = crc32(c, h + table_off, table_size);
    if ((uint32_t)c != crc)
        return dpt_fail(err, DPT_ERR_FORMAT,
                        "%s: header checksum mismatch (stored %08x, computed %08x): the header, "
                        "metadata or tensor table is corrupted",
                        path, crc, (uint32_t)c);

    if (n_tensors > MAX_TENSORS || n_meta > MAX_META)
        return dpt_fail(err, DPT_ERR_FORMAT,
                        "%s: %u tensors / %u metadata entries exceed the limits of %u / %u", path,
                        n_tensors, n_meta, MAX_TENSORS, MAX_META);
    /* Each metadata entry takes at least 2+1+1+8 bytes and each tensor entry at least
     * 2+1+1+1+8+8+8 bytes, so the counts are bounded by the block sizes. */
    if ((uint64_t)n_meta * 12u > meta_size || (uint64_t)n_tensors * 29u > table_size)
        return dpt_fail(err, DPT_ERR_FORMAT,
                        "%s: %u metadata entries / %u tensors cannot fit in their blocks", path,
                        n_meta, n_tensors);
    w->meta = calloc(n_meta ? n_meta : 1, sizeof *w->meta);
    w->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *w->tensors);
    if (!w->meta || !w->tensors) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);

    cursor c1 = {h + meta_off, h + meta_off + meta_size, 0};
    for (uint32_t i = 0; i < n_meta; i++) {
        dpt_meta_entry *m = &w->meta[i];
        size_t klen = (size_t)cur_le(&c1, 2);
        const uint8_t *k = cur_bytes(&c1, klen);
        int type = (int)cur_le(&c1, 1);
        if (klen > MAX_NAME)
            return dpt_fail(err, DPT_ERR_FORMAT,
                            "%s: metadata entry %u has a key of %zu bytes, over the limit of %u",
                            path, i, klen, MAX_NAME);
        if (c1.bad || klen == 0 || memchr(k, 0, klen))
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: metadata entry %u is malformed", path, i);
        m->key = dup_str(k, klen);
        w->n_meta = (int)i + 1;
        if (!m->key) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        m->type = type;
        if (type == DPT_META_INT) {
            m->i = (int64_t)cur_le(&c1, 8);
            m->f = (double)m->i;
        } else if (type == DPT_META_FLOAT) {
            uint64_t bits = cur_le(&c1, 8);
            memcpy(&m->f, &bits, sizeof m->f);
            m->i = 0;
        } else if (type == DPT_META_STRING) {
            size_t n = (size_t)cur_le(&c1, 4);
            if (!c1.bad && n > MAX_STRING)
                return dpt_fail(err, DPT_ERR_FORMAT,
                                "%s: metadata '%s' is a string of %zu bytes, over the limit of %u",
                                path, m->key, n, MAX_STRING);
            const uint8_t *s = cur_bytes(&c1, n);
            if (c1.bad || (n > 0 && !s) || (s && memchr(s, 0, n)))
                return dpt_fail(err, DPT_ERR_FORMAT, "%s: metadata '%s' has a malformed string",
                                path, m->key);
            m->s = dup_str(s ? s : (const uint8_t *)"", n);
            if (!m->s) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        } else {
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: metadata '%s' has unknown type %d", path,
                            m->key, type);
        }
        if (c1.bad)
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: metadata entry '%s' runs past its block",
                            path, m->key);
    }
    if (c1.p != c1.end)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: %td stray bytes after the metadata entries",
                        path, c1.end - c1.p);

    uint64_t data_size = file_size - data_off;
    cursor c2 = {h + table_off, h + table_off + table_size, 0};
    for (uint32_t i = 0; i < n_tensors; i++) {
        dpt_tensor_entry *t = &w->tensors[i];
        size_t nlen = (size_t)cur_le(&c2, 2);
        const uint8_t *nm = cur_bytes(&c2, nlen);
        int dtype = (int)cur_le(&c2, 1);
        int ndim = (int)cur_le(&c2, 1);
        if (nlen > MAX_NAME)
            return dpt_fail(err, DPT_ERR_FORMAT,
                            "%s: tensor table entry %u has a name of %zu bytes, over the limit of %u",
                            path, i, nlen, MAX_NAME);
        if (c2.bad || nlen == 0 || memchr(nm, 0, nlen))
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: tensor table entry %u is malformed", path,
                            i);
        t->name = dup_str(nm, nlen);
        w->n_tensors = (int)i + 1;
        if (!t->name) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        if (dtype != DPT_DTYPE_F32 && dtype != DPT_DTYPE_F16)
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: tensor '%s' has unknown dtype %d", path,
                            t->name, dtype);
        if (ndim < 1 || ndim > 4)
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (1..4)",
                            path, t->name, ndim);
        t->dtype = dtype;
        t->ndim = ndim;
        uint64_t n_el = 1;
        for (int d = 0; d < ndim; d++) {
            uint64_t dim = cur_le(&c2, 8);
            if (c2.bad) break;
            if (dim == 0 || dim > MAX_ELEMENTS || n_el > MAX_ELEMENTS / dim)
                return dpt_fail(err, DPT_ERR_FORMAT,
                                "%s: tensor '%s' has an invalid shape (a dimension of 0, or more "
                                "than the limit of 2^40 elements)", path, t->name);
            t->shape[d] = (int64_t)dim;
            n_el *= dim;
        }
        uint64_t off = cur_le(&c2, 8), nbytes = cur_le(&c2, 8);
        if (c2.bad)
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: tensor entry '%s' runs past the table",
                            path, t->name);
        t->n_elements = (int64_t)n_el;
        uint64_t expect = n_el * (dtype == DPT_DTYPE_F32 ? 4u : 2u);
        if (nbytes != expect)
            return dpt_fail(err, DPT_ERR_FORMAT,
                            "%s: tensor '%s' has %llu bytes, its shape and dtype need %llu", path,
                            t->name, (unsigned long long)nbytes, (unsigned long long)expect);
        if (off % 64 != 0)
            return dpt_fail(err, DPT_ERR_FORMAT,
                            "%s: tensor '%s' data offset %llu is not 64-byte aligned", path,
                            t->name, (unsigned long long)off);
        if (off > data_size || nbytes > data_size - off)
            return dpt_fail(err, DPT_ERR_FORMAT,
                            "%s: tensor '%s' data (%llu+%llu) lies outside the file's data area "
                            "(%llu bytes)",
                            path, t->name, (unsigned long long)off, (unsigned long long)nbytes,
                            (unsigned long long)data_size);
        t->offset = data_off + off;
        t->nbytes = nbytes;
        t->data = h + t->offset;
    }
    if (c2.p != c2.end)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: %td stray bytes after the tensor table", path,
                        c2.end - c2.p);

    /* unique names and keys */
    const char *dup = NULL;
    char **names = malloc(sizeof(char *) * (size_t)(n_tensors + n_meta + 1));
    if (!names) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    for (uint32_t i = 0; i < n_tensors; i++) names[i] = w->tensors[i].name;
    int ok = names_unique(names, (int)n_tensors, &dup);
    if (!ok) {
        dpt_status s = dpt_fail(err, DPT_ERR_FORMAT, "%s: tensor '%s' appears twice", path, dup);
        free(names);
        return s;
    }
    for (uint32_t i = 0; i < n_meta; i++) names[i] = w->meta[i].key;
    ok = names_unique(names, (int)n_meta, &dup);
    free(names);
    if (!ok) return dpt_fail(err, DPT_ERR_FORMAT, "%s: metadata key '%s' appears twice", path, dup);

    /* tensor regions must not overlap */
    if (n_tensors > 1) {
        const dpt_tensor_entry **order = malloc(sizeof(*order) * n_tensors);
        if (!order) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        for (uint32_t i = 0; i < n_tensors; i++) order[i] = &w->tensors[i];
        qsort(order, n_tensors, sizeof(*order), cmp_offset);
        for (uint32_t i = 1; i < n_tensors; i++) {
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset) {
                dpt_status s = dpt_fail(err, DPT_ERR_FORMAT,
                                        "%s: tensors '%s' and '%s' overlap in the file", path,
                                        order[i - 1]->name, order[i]->name);
                free(order);
                return s;
            }
        }
        free(order);
    }
    return DPT_OK;
}

dpt_status dpt_weights_open(const char *path, int use_mmap, dpt_weights **out, dpt_error *err) {
    *out = NULL;
    if (!path) return dpt_fail(err, DPT_ERR_INVALID_ARG, "model path is NULL");
    dpt_weights *w = calloc(1, sizeof *w);
    if (!w) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    w->path = strdup(path);
    if (!w->path) {
        free(w);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    dpt_status s = load_bytes(path, use_mmap, w, err);
    if (s == DPT_OK) s = parse(w, err);
    if (s != DPT_OK) {
        dpt_weights_close(w);
        return s;
    }
    *out = w;
    return DPT_OK;
}

const dpt_tensor_entry *dpt_weights_find(const dpt_weights *w, const char *name) {
    for (int i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return &w->tensors[i];
    return NULL;
}

const dpt_meta_entry *dpt_weights_meta(const dpt_weights *w, const char *key) {
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0) return &w->meta[i];
    return NULL;
}

void dpt_weights_release(const dpt_weights *w, const void *p, size_t n) {
    if (!w || !w->mapped || !p || !n) return;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t lo = ((uintptr_t)p + (uintptr_t)ps - 1) / (uintptr_t)ps * (uintptr_t)ps;
    uintptr_t hi = ((uintptr_t)p + n) / (uintptr_t)ps * (uintptr_t)ps;
    uintptr_t base = (uintptr_t)w->bytes, end = base + w->size;
    if (lo < base || hi > end || hi <= lo) return;
    /* a read-only private mapping: dropped pages come back unchanged from the file */
    (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
