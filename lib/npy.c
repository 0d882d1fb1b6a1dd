/* NumPy .npy / .npz files (public dpt_npy_*, dpt_npz_*; format: numpy's NEP 1 "format.py" notes
 * and the PKWARE zip APPNOTE).
 *
 * .npy: magic "\x93NUMPY", version (1|2|3).0, header length (uint16 for v1, uint32 for v2/v3),
 * then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded
 * with spaces to a 64-byte boundary and ended by '\n', then the raw data. Read: little-endian
 * float32 or float64 (converted), C order (Fortran order only where it is the same layout),
 * 0…4 dims. Written: v1.0, '<f4', byte-identical to what np.save writes.
 *
 * .npz: a zip of "<key>.npy" entries, stored (np.savez) or raw-deflate compressed
 * (np.savez_compressed). The reader works from the central directory (np.savez writes zip64
 * extra fields into the local headers, whose size fields are then placeholders), checks every
 * offset and size against the file, inflates with zlib and verifies the CRC-32. zip64 archives
 * (entries or offsets of 4 GB and more) are rejected. Every byte of input is untrusted. */
#include "core.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host (the .npy data is read and written in place)"
#endif

/* Limits (dpt.h, "NumPy files"): checked before allocating. An array is allocated only once the
 * file (or the inflated entry) is seen to hold all of its data. */
#define NPY_MAX_HEADER 65536u         /* numpy's own headers are < 1 KB (and it reads <= 10000) */
#define NPY_MAX_DIMS 4
#define ZIP_MAX32 0xFFFFFFFFu
#define ZIP_EOCD_SIZE 22u
#define ZIP_CDH_SIZE 46u
#define ZIP_LFH_SIZE 30u
#define ZIP_SIG_EOCD 0x06054b50u
#define ZIP_SIG_CDH 0x02014b50u
#define ZIP_SIG_LFH 0x04034b50u
#define ZIP_SIG_ZIP64_LOC 0x07064b50u
#define DEFLATE_MAX_RATIO 1032u       /* deflate cannot expand more than ~1032:1 */
#define IO_CHUNK (1u << 16)
#define MAX_KEY 4096u

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void dpt_array_free(dpt_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- .npy header ------------------------------------------------------------------------- */

typedef struct npy_header {
    size_t header_size;   /* preamble + dict: offset of the data */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int f64;              /* 0: '<f4', 1: '<f8' */
    size_t count;         /* elements */
    size_t nbytes;        /* data bytes */
} npy_header;

/* From the first len bytes of a .npy, the total header size (needs 10 or 12 bytes). */
static dpt_status npy_header_size(const uint8_t *b, size_t len, size_t *hsize, const char *what,
                                  dpt_error *err) {
    static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    size_t m = len < 6 ? len : 6;
    if (memcmp(b, magic, m) != 0)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: not a .npy file (bad magic)", what);
    if (len < 10) return dpt_fail(err, DPT_ERR_FORMAT, "%s: truncated .npy header", what);
    int major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: .npy format version %d.%d not supported",
                        what, major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre) return dpt_fail(err, DPT_ERR_FORMAT, "%s: truncated .npy header", what);
    uint32_t hl = major == 1 ? rd16(b + 8) : rd32(b + 8);
    if (hl > NPY_MAX_HEADER)
        return dpt_fail(err, DPT_ERR_FORMAT,
                        "%s: .npy header of %u bytes is over the limit of %u bytes", what, hl,
                        NPY_MAX_HEADER);
    *hsize = pre + hl;
    return DPT_OK;
}

/* Bounded cursor over the header text. */
typedef struct tcur {
    const char *p, *end;
} tcur;

static void t_ws(tcur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}
static int t_peek(tcur *c) { return c->p < c->end ? (unsigned char)*c->p : -1; }
static int t_eat(tcur *c, char ch) {
    t_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}
static int t_word(tcur *c, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}
/* A quoted Python string without escapes into out[cap]; 0 if malformed or too long. */
static int t_string(tcur *c, char *out, size_t cap) {
    t_ws(c);
    int q = t_peek(c);
    if (q != '\'' && q != '"') return 0;
    c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static dpt_status bad_header(const char *what, const char *why, dpt_error *err) {
    return dpt_fail(err, DPT_ERR_FORMAT, "%s: malformed .npy header (%s)", what, why);
}

/* Parse the dict of b[0..hsize) (the preamble is already checked). */
static dpt_status npy_parse_header(const uint8_t *b, size_t hsize, npy_header *h, const char *what,
                                   dpt_error *err) {
    memset(h, 0, sizeof *h);
    h->header_size = hsize;
    size_t pre = b[6] == 1 ? 10 : 12;
    tcur c = {(const char *)b + pre, (const char *)b + hsize};
    char key[32] = "", descr[32] = "";
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0, ndim = 0;
    int64_t shape[NPY_MAX_DIMS] = {0};

    if (!t_eat(&c, '{')) return bad_header(what, "no '{'", err);
    for (;;) {
        if (t_eat(&c, '}')) break;
        if (!t_string(&c, key, sizeof key)) return bad_header(what, "bad key", err);
        if (!t_eat(&c, ':')) return bad_header(what, "no ':'", err);
        t_ws(&c);
        if (strcmp(key, "descr") == 0) {
            if (have_descr++) return bad_header(what, "duplicate 'descr'", err);
            if (t_peek(&c) == '[' || t_peek(&c) == '{')
                return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                                "%s: structured dtype not supported (float32/float64 only)", what);
            if (!t_string(&c, descr, sizeof descr)) return bad_header(what, "bad 'descr'", err);
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_fortran++) return bad_header(what, "duplicate 'fortran_order'", err);
            if (t_word(&c, "True")) fortran = 1;
            else if (t_word(&c, "False")) fortran = 0;
            else return bad_header(what, "bad 'fortran_order'", err);
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++) return bad_header(what, "duplicate 'shape'", err);
            if (!t_eat(&c, '(')) return bad_header(what, "bad 'shape'", err);
            for (;;) {
                t_ws(&c);
                if (t_eat(&c, ')')) break;
                int ch = t_peek(&c);
                if (ch < '0' || ch > '9') return bad_header(what, "bad 'shape'", err);
                int64_t v = 0;
                while ((ch = t_peek(&c)) >= '0' && ch <= '9') {
                    if (v > (INT64_MAX - 9) / 10) return bad_header(what, "dimension too large", err);
                    v = v * 10 + (ch - '0');
                    c.p++;
                }
                if (t_peek(&c) == 'L') c.p++; /* Python 2 long */
                if (ndim >= NPY_MAX_DIMS)
                    return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                                    "%s: arrays of more than %d dimensions not supported", what,
                                    NPY_MAX_DIMS);
                shape[ndim++] = v;
                if (!t_eat(&c, ',')) {
                    if (!t_eat(&c, ')')) return bad_header(what, "bad 'shape'", err);
                    break;
                }
            }
        } else {
            return bad_header(what, "unexpected key", err);
        }
        if (!t_eat(&c, ',')) {
            if (!t_eat(&c, '}')) return bad_header(what, "expected ',' or '}'", err);
            break;
        }
    }
    t_ws(&c);
    if (c.p != c.end) return bad_header(what, "trailing characters", err);
    if (!have_descr || !have_fortran || !have_shape)
        return bad_header(what, "missing 'descr', 'fortran_order' or 'shape'", err);

    if (strcmp(descr, "<f4") == 0) h->f64 = 0;
    else if (strcmp(descr, "<f8") == 0) h->f64 = 1;
    else if (descr[0] == '>' && (strcmp(descr + 1, "f4") == 0 || strcmp(descr + 1, "f8") == 0))
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: big-endian dtype '%s' not supported (little-endian float32/float64 only)",
                        what, descr);
    else
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: dtype '%s' not supported (little-endian float32 '<f4' or float64 '<f8' only)",
                        what, descr);
    if (fortran) {
        /* Fortran order is the same layout as C order when at most one dimension exceeds 1 */
        int big = 0;
        for (int i = 0; i < ndim; i++) big += shape[i] > 1;
        if (big > 1)
            return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                            "%s: Fortran-order array not supported (save a C-order copy, "
                            "np.ascontiguousarray)", what);
    }
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if ((uint64_t)shape[i] > SIZE_MAX || !dpt_mul_ok(count, (size_t)shape[i], &count))
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: array size overflows", what);
        h->shape[i] = shape[i];
    }
    if (!dpt_mul_ok(count, h->f64 ? 8 : 4, &h->nbytes) || count > SIZE_MAX / sizeof(float))
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: array size overflows", what);
    h->ndim = ndim;
    h->count = count;
    return DPT_OK;
}

/* little-endian float32/float64 bytes → float32 */
static void npy_convert(const uint8_t *src, size_t count, int f64, float *dst) {
    if (!f64) {
        memcpy(dst, src, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        double d;
        memcpy(&d, src + 8 * i, 8);
        dst[i] = (float)d;
    }
}

static dpt_status npy_alloc_out(const npy_header *h, dpt_array *out, const char *what,
                                dpt_error *err) {
    out->data = malloc((h->count ? h->count : 1) * sizeof(float));
    if (!out->data)
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory (%zu values)", what, h->count);
    out->ndim = h->ndim;
    for (int i = 0; i < h->ndim; i++) out->shape[i] = h->shape[i];
    return DPT_OK;
}

/* A whole .npy held in malloc'ed memory (an inflated .npz entry): converted in place and kept as
 * the array's data (no second copy of a large entry); b is freed on failure. */
static dpt_status npy_parse_owned(uint8_t *b, size_t len, dpt_array *out, const char *what,
                                  dpt_error *err) {
    size_t hsize;
    npy_header h;
    dpt_status st = npy_header_size(b, len, &hsize, what, err);
    if (st == DPT_OK && hsize > len)
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: truncated .npy header", what);
    if (st == DPT_OK) st = npy_parse_header(b, hsize, &h, what, err);
    if (st == DPT_OK && len - hsize < h.nbytes)
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: data truncated (%zu of %zu bytes)", what,
                      len - hsize, h.nbytes);
    if (st != DPT_OK) {
        free(b);
        return st;
    }
    /* float i lands at 4i, below the bytes of every later source value (hsize + 4i or 8i) */
    if (!h.f64) {
        memmove(b, b + hsize, h.count * sizeof(float));
    } else {
        for (size_t i = 0; i < h.count; i++) {
            double d;
            memcpy(&d, b + hsize + 8 * i, 8);
            float f = (float)d;
            memcpy(b + 4 * i, &f, sizeof f);
        }
    }
    size_t keep = (h.count ? h.count : 1) * sizeof(float);
    uint8_t *shrunk = keep < len ? realloc(b, keep) : b;
    out->data = (float *)(void *)(shrunk ? shrunk : b);
    out->ndim = h.ndim;
    for (int i = 0; i < h.ndim; i++) out->shape[i] = h.shape[i];
    return DPT_OK;
}

static int file_size(FILE *f, uint64_t *size) {
    struct stat s;
    if (fstat(fileno(f), &s) != 0 || !S_ISREG(s.st_mode) || s.st_size < 0) return 0;
    *size = (uint64_t)s.st_size;
    return 1;
}

static FILE *open_read(const char *path, uint64_t *size, dpt_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        dpt_fail(err, DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (!file_size(f, size)) {
        fclose(f);
        dpt_fail(err, DPT_ERR_IO, "%s: not a regular file", path);
        return NULL;
    }
    return f;
}

dpt_status dpt_npy_read(const char *path, dpt_array *out, dpt_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!path || !out) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npy_read: NULL argument");
    uint64_t size;
    FILE *f = open_read(path, &size, err);
    if (!f) return err ? err->status : DPT_ERR_IO;

    dpt_status st;
    uint8_t pre[12];
    uint8_t *hdr = NULL, *buf = NULL;
    size_t got = fread(pre, 1, sizeof pre, f);
    size_t hsize;
    npy_header h;
    if ((st = npy_header_size(pre, got, &hsize, path, err)) != DPT_OK) goto done;
    if (hsize > size) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: truncated .npy header", path);
        goto done;
    }
    hdr = malloc(hsize);
    if (!hdr) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fseek(f, 0, SEEK_SET) != 0 || fread(hdr, 1, hsize, f) != hsize) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: truncated .npy header", path);
        goto done;
    }
    if ((st = npy_parse_header(hdr, hsize, &h, path, err)) != DPT_OK) goto done;
    if (size - hsize < h.nbytes) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: data truncated (%llu of %zu bytes)", path,
                      (unsigned long long)(size - hsize), h.nbytes);
        goto done;
    }
    if ((st = npy_alloc_out(&h, out, path, err)) != DPT_OK) goto done;
    if (!h.f64) {
        if (fread(out->data, sizeof(float), h.count, f) != h.count) goto short_read;
    } else {
        buf = malloc(IO_CHUNK * 8);
        if (!buf) {
            st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        for (size_t i = 0; i < h.count; i += IO_CHUNK) {
            size_t k = h.count - i < IO_CHUNK ? h.count - i : IO_CHUNK;
            if (fread(buf, 8, k, f) != k) goto short_read;
            npy_convert(buf, k, 1, out->data + i);
        }
    }
    st = DPT_OK;
    goto done;
short_read:
    st = dpt_fail(err, DPT_ERR_IO, "%s: read error: %s", path,
                  ferror(f) ? strerror(errno) : "unexpected end of file");
done:
    if (st != DPT_OK) dpt_array_free(out);
    free(hdr);
    free(buf);
    fclose(f);
    return st;
}

/* ---- .npz reading ------------------------------------------------------------------------ */

typedef struct zip_dir {
    const char *path;
    FILE *f;
    uint64_t size;
    uint8_t *cd;          /* the central directory */
    size_t cd_size;
    uint64_t cd_offset;
    uint32_t n_entries;
} zip_dir;

typedef struct zip_entry {
    const char *name;     /* points into cd, not terminated */
    size_t name_len;
    uint32_t flags, method, crc, csize, usize, local_off;
} zip_entry;

static void zip_close(zip_dir *z) {
    if (z->f) fclose(z->f);
    free(z->cd);
    memset(z, 0, sizeof *z);
}

static int read_at(FILE *f, uint64_t off, void *dst, size_t n) {
    if (off > (uint64_t)LONG_MAX) return 0;
    if (fseeko(f, (off_t)off, SEEK_SET) != 0) return 0;
    return fread(dst, 1, n, f) == n;
}

static dpt_status zip_open(const char *path, zip_dir *z, dpt_error *err) {
    memset(z, 0, sizeof *z);
    z->path = path;
    z->f = open_read(path, &z->size, err);
    if (!z->f) return err ? err->status : DPT_ERR_IO;
    dpt_status st = DPT_OK;
    if (z->size < ZIP_EOCD_SIZE) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: not a .npz (zip) file: too short", path);
        goto fail;
    }
    /* the end-of-central-directory record sits in the last 22 + 65535 (comment) bytes */
    size_t tail_len = z->size < ZIP_EOCD_SIZE + 65535u ? (size_t)z->size : ZIP_EOCD_SIZE + 65535u;
    uint64_t tail_off = z->size - tail_len;
    uint8_t *tail = malloc(tail_len);
    if (!tail) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (!read_at(z->f, tail_off, tail, tail_len)) {
        free(tail);
        st = dpt_fail(err, DPT_ERR_IO, "%s: read error", path);
        goto fail;
    }
    size_t pos = tail_len - ZIP_EOCD_SIZE;
    int found = 0;
    for (;;) {
        if (rd32(tail + pos) == ZIP_SIG_EOCD && pos + ZIP_EOCD_SIZE + rd16(tail + pos + 20) <= tail_len) {
            found = 1;
            break;
        }
        if (pos == 0) break;
        pos--;
    }
    if (!found) {
        free(tail);
        st = dpt_fail(err, DPT_ERR_FORMAT,
                      "%s: not a .npz (zip) file: no end-of-central-directory record", path);
        goto fail;
    }
    const uint8_t *e = tail + pos;
    uint32_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8), n_total = rd16(e + 10);
    uint32_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);
    int zip64_loc = pos >= 20 && rd32(e - 20) == ZIP_SIG_ZIP64_LOC;
    uint64_t eocd_abs = tail_off + pos;
    free(tail);
    if (zip64_loc || n_total == 0xFFFFu || cd_size == ZIP_MAX32 || cd_off == ZIP_MAX32) {
        st = dpt_fail(err, DPT_ERR_UNSUPPORTED,
                      "%s: zip64 archive not supported (over 4 GB or 65535 entries)", path);
        goto fail;
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total) {
        st = dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: multi-volume zip not supported", path);
        goto fail;
    }
    if ((uint64_t)cd_off + cd_size > eocd_abs) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: central directory out of bounds", path);
        goto fail;
    }
    z->cd = malloc(cd_size ? cd_size : 1);
    if (!z->cd) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (cd_size && !read_at(z->f, cd_off, z->cd, cd_size)) {
        st = dpt_fail(err, DPT_ERR_IO, "%s: read error", path);
        goto fail;
    }
    z->cd_size = cd_size;
    z->cd_offset = cd_off;
    z->n_entries = n_total;
    return DPT_OK;
fail:
    zip_close(z);
    return st;
}

/* Entry at *pos of the central directory; advances *pos. */
static dpt_status zip_next(const zip_dir *z, size_t *pos, zip_entry *ze, dpt_error *err) {
    size_t p = *pos;
    if (z->cd_size - p < ZIP_CDH_SIZE || rd32(z->cd + p) != ZIP_SIG_CDH)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip central directory", z->path);
    const uint8_t *c = z->cd + p;
    size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    if (z->cd_size - p - ZIP_CDH_SIZE < nlen + xlen + clen)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip central directory", z->path);
    ze->flags = rd16(c + 8);
    ze->method = rd16(c + 10);
    ze->crc = rd32(c + 16);
    ze->csize = rd32(c + 20);
    ze->usize = rd32(c + 24);
    ze->local_off = rd32(c + 42);
    ze->name = (const char *)c + ZIP_CDH_SIZE;
    ze->name_len = nlen;
    *pos = p + ZIP_CDH_SIZE + nlen + xlen + clen;
    return DPT_OK;
}

static int name_is(const zip_entry *e, const char *s, size_t n) {
    return e->name_len == n && memcmp(e->name, s, n) == 0;
}

/* Find "<key>.npy" (or, failing that, "<key>"): 1 found, 0 not, -1 error. */
static int zip_find(const zip_dir *z, const char *key, zip_entry *out, dpt_error *err) {
    size_t klen = strlen(key);
    int found = 0;
    size_t pos = 0;
    for (uint32_t i = 0; i < z->n_entries; i++) {
        zip_entry e;
        if (zip_next(z, &pos, &e, err) != DPT_OK) return -1;
        if (e.name_len == klen + 4 && memcmp(e.name, key, klen) == 0 &&
            memcmp(e.name + klen, ".npy", 4) == 0) {
            *out = e;
            return 1;
        }
        if (!found && name_is(&e, key, klen)) {
            *out = e;
            found = 1;
        }
    }
    return found;
}

/* "a, b, c" — the array names, for the missing-key message */
static void zip_list_keys(const zip_dir *z, char *buf, size_t cap) {
    size_t pos = 0, n = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < z->n_entries && n + 1 < cap; i++) {
        zip_entry e;
        if (zip_next(z, &pos, &e, NULL) != DPT_OK) break;
        size_t l = e.name_len;
        if (l >= 4 && memcmp(e.name + l - 4, ".npy", 4) == 0) l -= 4;
        int w = snprintf(buf + n, cap - n, "%s%.*s", i ? ", " : "", (int)(l < 64 ? l : 64), e.name);
        if (w < 0) break;
        n += (size_t)w;
    }
}

static dpt_status inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                              const char *what, dpt_error *err) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK)
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: cannot initialise zlib", what);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = out;
    zs.avail_out = (uInt)out_len;
    int r = inflate(&zs, Z_FINISH);
    dpt_status st = DPT_OK;
    if (r == Z_STREAM_END) {
        if (zs.total_out != out_len)
            st = dpt_fail(err, DPT_ERR_FORMAT, "%s: inflated size %lu differs from the declared %zu",
                          what, (unsigned long)zs.total_out, out_len);
    } else if (r == Z_DATA_ERROR) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt deflate data (%s)", what,
                      zs.msg ? zs.msg : "zlib");
    } else if (r == Z_MEM_ERROR) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory inflating", what);
    } else if (zs.avail_out == 0) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: inflates to more than the declared %zu bytes", what,
                      out_len);
    } else {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: deflate data truncated", what);
    }
    inflateEnd(&zs);
    return st;
}

static uint32_t crc32_big(uint32_t crc, const uint8_t *p, size_t n) {
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return crc;
}

/* The uncompressed bytes of an entry, CRC-checked: *data malloc'ed, *len bytes. */
static dpt_status zip_read_entry(const zip_dir *z, const zip_entry *e, uint8_t **data,
                                 size_t *len, const char *what, dpt_error *err) {
    *data = NULL;
    *len = 0;
    if (e->flags & 1u)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: encrypted zip entry not supported", what);
    if (e->csize == ZIP_MAX32 || e->usize == ZIP_MAX32 || e->local_off == ZIP_MAX32)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: zip64 entry (4 GB or more) not supported", what);
    if (e->method != 0 && e->method != 8)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: zip compression method %u not supported (stored or deflate only)",
                        what, (unsigned)e->method);
    uint8_t lfh[ZIP_LFH_SIZE];
    if ((uint64_t)e->local_off + ZIP_LFH_SIZE > z->cd_offset ||
        !read_at(z->f, e->local_off, lfh, ZIP_LFH_SIZE) || rd32(lfh) != ZIP_SIG_LFH)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: bad local header", what);
    uint64_t data_off = (uint64_t)e->local_off + ZIP_LFH_SIZE + rd16(lfh + 26) + rd16(lfh + 28);
    if (data_off > z->cd_offset || z->cd_offset - data_off < e->csize)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: entry data out of bounds", what);
    if (e->method == 0 && e->csize != e->usize)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: stored entry sizes differ", what);
    if ((uint64_t)e->usize > DPT_MAX_NPZ_ENTRY_BYTES)   /* before allocating: no zip bombs */
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: entry of %u bytes uncompressed is over the limit of %llu bytes "
                        "(DPT_MAX_NPZ_ENTRY_BYTES)",
                        what, e->usize, (unsigned long long)DPT_MAX_NPZ_ENTRY_BYTES);
    if (e->method == 8 && (uint64_t)e->usize > (uint64_t)e->csize * DEFLATE_MAX_RATIO + 1024u)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: implausible uncompressed size %u",
                        what, e->usize);

    uint8_t *comp = malloc(e->csize ? e->csize : 1);
    if (!comp) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", what);
    if (e->csize && !read_at(z->f, data_off, comp, e->csize)) {
        free(comp);
        return dpt_fail(err, DPT_ERR_IO, "%s: read error", what);
    }
    uint8_t *raw = comp;
    if (e->method == 8) {
        raw = malloc(e->usize ? e->usize : 1);
        if (!raw) {
            free(comp);
            return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", what);
        }
        dpt_status st = inflate_raw(comp, e->csize, raw, e->usize, what, err);
        free(comp);
        if (st != DPT_OK) {
            free(raw);
            return st;
        }
    }
    if (crc32_big((uint32_t)crc32(0, Z_NULL, 0), raw, e->usize) != e->crc) {
        free(raw);
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: CRC-32 mismatch (data corrupt)", what);
    }
    *data = raw;
    *len = e->usize;
    return DPT_OK;
}

dpt_status dpt_npz_read(const char *path, const char *key, dpt_array *out, dpt_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!path || !key || !out)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npz_read: NULL argument");
    zip_dir z;
    dpt_status st = zip_open(path, &z, err);
    if (st != DPT_OK) return st;
    zip_entry e;
    int r = zip_find(&z, key, &e, err);
    if (r < 0) {
        st = err ? err->status : DPT_ERR_FORMAT;
    } else if (r == 0) {
        char keys[256];
        zip_list_keys(&z, keys, sizeof keys);
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: no array '%s' (arrays: %s)", path, key,
                      keys[0] ? keys : "none");
    } else {
        char what[768];
        snprintf(what, sizeof what, "%s: array '%.*s'", path, (int)(strlen(key) < 200 ? strlen(key) : 200), key);
        uint8_t *raw;
        size_t len;
        st = zip_read_entry(&z, &e, &raw, &len, what, err);
        if (st == DPT_OK) st = npy_parse_owned(raw, len, out, what, err);
    }
    zip_close(&z);
    return st;
}

int dpt_npz_has(const char *path, const char *key, dpt_error *err) {
    if (!path || !key) {
        dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npz_has: NULL argument");
        return -1;
    }
    zip_dir z;
    if (zip_open(path, &z, err) != DPT_OK) return -1;
    zip_entry e;
    int r = zip_find(&z, key, &e, err);
    zip_close(&z);
    return r;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* The v1.0 header np.save writes for a float32 C-order array: *len bytes into buf[256]. */
static void npy_make_header(int ndim, const int64_t *shape, uint8_t *buf, size_t *len) {
    char dict[200];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    /* numpy: padlen = 64 - (10 + len(dict) + 1) % 64 (a full 64 when already aligned) */
    size_t hlen = (size_t)n + 1;
    size_t pad = 64 - (10 + hlen) % 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    wr16(buf + 8, (uint32_t)(hlen + pad));
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[10 + (size_t)n + pad] = '\n';
    *len = 10 + hlen + pad;
}

static dpt_status check_array(int ndim, const int64_t *shape, const float *data, size_t *count,
                              const char *what, dpt_error *err) {
    if (ndim < 0 || ndim > NPY_MAX_DIMS || (ndim > 0 && !shape))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: ndim %d out of range [0, %d]", what, ndim,
                        NPY_MAX_DIMS);
    size_t c = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX || !dpt_mul_ok(c, (size_t)shape[i], &c) ||
            c > SIZE_MAX / sizeof(float))
            return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: invalid shape", what);
    }
    if (c && !data) return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: NULL data", what);
    *count = c;
    return DPT_OK;
}

static int write_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

/* A failed write removes its half-written output, but never a device (/dev/full) or FIFO. */
static int is_regular(FILE *f) {
    struct stat s;
    return fstat(fileno(f), &s) == 0 && S_ISREG(s.st_mode);
}

dpt_status dpt_npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                         dpt_error *err) {
    if (!path) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npy_write: NULL path");
    size_t count;
    dpt_status st = check_array(ndim, shape, data, &count, path, err);
    if (st != DPT_OK) return st;
    uint8_t hdr[256];
    size_t hlen;
    npy_make_header(ndim, shape, hdr, &hlen);
    FILE *f = fopen(path, "wb");
    if (!f) return dpt_fail(err, DPT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = write_all(f, hdr, hlen) && write_all(f, data, count * sizeof(float));
    int e = errno, regular = is_regular(f);
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        if (regular) remove(path);
        return dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(e));
    }
    return DPT_OK;
}

typedef struct cd_rec {
    uint32_t crc, csize, usize, off;
    uint16_t method, flags;
} cd_rec;

/* Deflate hdr then data into f; *csize = compressed bytes. */
static dpt_status deflate_to(FILE *f, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                             size_t n, uint64_t *csize, const char *what, dpt_error *err) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* np.savez_compressed → zipfile ZIP_DEFLATED: zlib level 6 (default), raw stream */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: cannot initialise zlib", what);
    uint8_t *obuf = malloc(IO_CHUNK);
    if (!obuf) {
        deflateEnd(&zs);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", what);
    }
    dpt_status st = DPT_OK;
    uint64_t total = 0;
    const uint8_t *src[2] = {hdr, data};
    size_t len[2] = {hlen, n};
    for (int part = 0; part < 2 && st == DPT_OK; part++) {
        const uint8_t *p = src[part];
        size_t left = len[part];
        int last = part == 1;
        do {
            uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.next_in = (Bytef *)(uintptr_t)p;
            zs.avail_in = k;
            p += k;
            left -= k;
            int flush = last && left == 0 ? Z_FINISH : Z_NO_FLUSH;
            int r;
            do {
                zs.next_out = obuf;
                zs.avail_out = IO_CHUNK;
                r = deflate(&zs, flush);
                if (r == Z_STREAM_ERROR) {
                    st = dpt_fail(err, DPT_ERR_IO, "%s: deflate failed", what);
                    break;
                }
                size_t have = IO_CHUNK - zs.avail_out;
                total += have;
                if (!write_all(f, obuf, have)) {
                    st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", what, strerror(errno));
                    break;
                }
            } while (zs.avail_out == 0 || (flush == Z_FINISH && r != Z_STREAM_END));
        } while (left > 0 && st == DPT_OK);
    }
    free(obuf);
    deflateEnd(&zs);
    *csize = total;
    return st;
}

dpt_status dpt_npz_write(const char *path, int n, const char *const *keys, const dpt_array *arrays,
                         int compress, dpt_error *err) {
    if (!path || n < 0 || (n > 0 && (!keys || !arrays)))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npz_write: invalid arguments");
    if (n > 65535)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: more than 65535 arrays need zip64", path);
    for (int i = 0; i < n; i++) {
        size_t count;
        if (!keys[i] || !keys[i][0] || strlen(keys[i]) > MAX_KEY)
            return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: array %d has an empty or invalid name",
                            path, i);
        for (int j = 0; j < i; j++)
            if (strcmp(keys[i], keys[j]) == 0)
                return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: duplicate array name '%s'", path,
                                keys[i]);
        dpt_status st = check_array(arrays[i].ndim, arrays[i].shape, arrays[i].data, &count, path, err);
        if (st != DPT_OK) return st;
        if (count > (ZIP_MAX32 - 256u) / sizeof(float))
            return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                            "%s: array '%s' is 4 GB or more (zip64 not supported)", path, keys[i]);
    }
    cd_rec *rec = calloc((size_t)(n ? n : 1), sizeof *rec);
    if (!rec) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(rec);
        return dpt_fail(err, DPT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    dpt_status st = DPT_OK;
    const uint32_t dos_time = 0, dos_date = (0u << 9) | (1u << 5) | 1u; /* 1980-01-01 00:00 */
    uint64_t off = 0;
    uint8_t b[ZIP_CDH_SIZE];

    for (int i = 0; i < n && st == DPT_OK; i++) {
        const dpt_array *a = &arrays[i];
        size_t count = 1;
        for (int d = 0; d < a->ndim; d++) count *= (size_t)a->shape[d];
        uint8_t hdr[256];
        size_t hlen;
        npy_make_header(a->ndim, a->shape, hdr, &hlen);
        const uint8_t *data = (const uint8_t *)a->data;
        size_t nbytes = count * sizeof(float);
        size_t klen = strlen(keys[i]);
        int utf8 = 0;
        for (size_t k = 0; k < klen; k++) utf8 |= (unsigned char)keys[i][k] >= 0x80;
        cd_rec *r = &rec[i];
        r->method = compress ? 8 : 0;
        r->flags = utf8 ? 0x800 : 0;
        r->usize = (uint32_t)(hlen + nbytes);
        r->crc = crc32_big(crc32_big((uint32_t)crc32(0, Z_NULL, 0), hdr, hlen), data, nbytes);
        if (off > ZIP_MAX32 - 1) {
            st = dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: archive over 4 GB (zip64 not supported)", path);
            break;
        }
        r->off = (uint32_t)off;
        memset(b, 0, ZIP_LFH_SIZE);
        wr32(b, ZIP_SIG_LFH);
        wr16(b + 4, 20);
        wr16(b + 6, r->flags);
        wr16(b + 8, r->method);
        wr16(b + 10, dos_time);
        wr16(b + 12, dos_date);
        wr32(b + 14, r->crc);
        wr32(b + 18, compress ? 0 : r->usize); /* compressed size: patched below if deflated */
        wr32(b + 22, r->usize);
        wr16(b + 26, (uint32_t)(klen + 4));
        wr16(b + 28, 0);
        if (!write_all(f, b, ZIP_LFH_SIZE) || !write_all(f, keys[i], klen) || !write_all(f, ".npy", 4)) {
            st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
            break;
        }
        uint64_t csize = 0;
        if (!compress) {
            if (!write_all(f, hdr, hlen) || !write_all(f, data, nbytes)) {
                st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
                break;
            }
            csize = r->usize;
        } else {
            st = deflate_to(f, hdr, hlen, data, nbytes, &csize, path, err);
            if (st != DPT_OK) break;
            if (csize >= ZIP_MAX32) {
                st = dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: entry over 4 GB (zip64 not supported)", path);
                break;
            }
            uint8_t c4[4];
            wr32(c4, (uint32_t)csize);
            if (fseeko(f, (off_t)(off + 18), SEEK_SET) != 0 || !write_all(f, c4, 4) ||
                fseeko(f, 0, SEEK_END) != 0) {
                st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
                break;
            }
        }
        r->csize = (uint32_t)csize;
        off += ZIP_LFH_SIZE + klen + 4 + csize;
    }

    uint64_t cd_off = off;
    for (int i = 0; i < n && st == DPT_OK; i++) {
        const cd_rec *r = &rec[i];
        size_t klen = strlen(keys[i]);
        memset(b, 0, ZIP_CDH_SIZE);
        wr32(b, ZIP_SIG_CDH);
        wr16(b + 4, (3u << 8) | 20u); /* made by: Unix, zip 2.0 */
        wr16(b + 6, 20);
        wr16(b + 8, r->flags);
        wr16(b + 10, r->method);
        wr16(b + 12, dos_time);
        wr16(b + 14, dos_date);
        wr32(b + 16, r->crc);
        wr32(b + 20, r->csize);
        wr32(b + 24, r->usize);
        wr16(b + 28, (uint32_t)(klen + 4));
        wr32(b + 38, 0644u << 16); /* external attributes: regular file rw-r--r-- */
        wr32(b + 42, r->off);
        if (!write_all(f, b, ZIP_CDH_SIZE) || !write_all(f, keys[i], klen) || !write_all(f, ".npy", 4)) {
            st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
            break;
        }
        off += ZIP_CDH_SIZE + klen + 4;
    }
    if (st == DPT_OK && (cd_off >= ZIP_MAX32 || off - cd_off >= ZIP_MAX32))
        st = dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: archive over 4 GB (zip64 not supported)", path);
    if (st == DPT_OK) {
        memset(b, 0, ZIP_EOCD_SIZE);
        wr32(b, ZIP_SIG_EOCD);
        wr16(b + 8, (uint32_t)n);
        wr16(b + 10, (uint32_t)n);
        wr32(b + 12, (uint32_t)(off - cd_off));
        wr32(b + 16, (uint32_t)cd_off);
        if (!write_all(f, b, ZIP_EOCD_SIZE))
            st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
    }
    int regular = is_regular(f);
    if (fclose(f) != 0 && st == DPT_OK)
        st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
    if (st != DPT_OK && regular) remove(path);
    free(rec);
    return st;
}
