/* NumPy .npy / .npz files (public dpt_npy_*, dpt_npz_*; format: numpy's NEP 1 "format.py" notes).
 *
 * .npy: magic "\x93NUMPY", version (1|2|3).0, header length (uint16 for v1, uint32 for v2/v3),
 * then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded
 * with spaces to a 64-byte boundary and ended by '\n', then the raw data. Read: little-endian
 * float32 or float64 (converted), C order (Fortran order only where it is the same layout),
 * 0…4 dims. Written: v1.0, '<f4', byte-identical to what np.save writes.
 *
 * .npz: a zip of "<key>.npy" entries, stored (np.savez) or raw-deflate compressed
 * (np.savez_compressed); the container is zip.c's. Every byte of input is untrusted. */
#include "npy.h"

#include "zip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host (the .npy data is read and written in place)"
#endif

/* Limits (dpt.h, "NumPy files"): checked before allocating. An array is allocated only once the
 * file (or the inflated entry) is seen to hold all of its data. */
#define NPY_MAX_HEADER 65536u         /* numpy's own headers are < 1 KB (and it reads <= 10000) */
#define IO_CHUNK (1u << 16)
#define MAX_KEY 4096u

void dpt_array_free(dpt_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- .npy header ------------------------------------------------------------------------- */


dpt_status dpt_npy_header_size(const uint8_t *b, size_t len, size_t *hsize, const char *what,
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
    uint32_t hl = major == 1 ? dpt_rd16(b + 8) : dpt_rd32(b + 8);
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

dpt_status dpt_npy_header_parse(const uint8_t *b, size_t hsize, dpt_npy_header *h, const char *what,
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

static dpt_status npy_alloc_out(const dpt_npy_header *h, dpt_array *out, const char *what,
                                dpt_error *err) {
    out->data = malloc((h->count ? h->count : 1) * sizeof(float));
    if (!out->data)
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory (%zu values)", what, h->count);
    out->ndim = h->ndim;
    for (int i = 0; i < h->ndim; i++) out->shape[i] = h->shape[i];
    return DPT_OK;
}

dpt_status dpt_npy_parse_owned(uint8_t *b, size_t len, dpt_array *out, const char *what,
                                  dpt_error *err) {
    size_t hsize;
    dpt_npy_header h;
    dpt_status st = dpt_npy_header_size(b, len, &hsize, what, err);
    if (st == DPT_OK && hsize > len)
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: truncated .npy header", what);
    if (st == DPT_OK) st = dpt_npy_header_parse(b, hsize, &h, what, err);
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

dpt_status dpt_npy_read(const char *path, dpt_array *out, dpt_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!path || !out) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npy_read: NULL argument");
    uint64_t size;
    FILE *f = dpt_file_open_read(path, &size, err);
    if (!f) return err ? err->status : DPT_ERR_IO;

    dpt_status st;
    uint8_t pre[12];
    uint8_t *hdr = NULL, *buf = NULL;
    size_t got = fread(pre, 1, sizeof pre, f);
    size_t hsize;
    dpt_npy_header h;
    if ((st = dpt_npy_header_size(pre, got, &hsize, path, err)) != DPT_OK) goto done;
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
    if ((st = dpt_npy_header_parse(hdr, hsize, &h, path, err)) != DPT_OK) goto done;
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

dpt_status dpt_npz_read(const char *path, const char *key, dpt_array *out, dpt_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!path || !key || !out)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npz_read: NULL argument");
    dpt_zip z;
    dpt_status st = dpt_zip_open(path, &z, err);
    if (st != DPT_OK) return st;
    dpt_zip_entry e;
    int r = dpt_zip_find(&z, key, ".npy", &e, err);
    if (r < 0) {
        st = err ? err->status : DPT_ERR_FORMAT;
    } else if (r == 0) {
        char keys[256];
        dpt_zip_list_keys(&z, ".npy", keys, sizeof keys);
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: no array '%s' (arrays: %s)", path, key,
                      keys[0] ? keys : "none");
    } else {
        char what[768];
        snprintf(what, sizeof what, "%s: array '%.*s'", path, (int)(strlen(key) < 200 ? strlen(key) : 200), key);
        uint8_t *raw;
        size_t len;
        st = dpt_zip_read_entry(&z, &e, &raw, &len, what, err);
        if (st == DPT_OK) st = dpt_npy_parse_owned(raw, len, out, what, err);
    }
    dpt_zip_close(&z);
    return st;
}

int dpt_npz_has(const char *path, const char *key, dpt_error *err) {
    if (!path || !key) {
        dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npz_has: NULL argument");
        return -1;
    }
    dpt_zip z;
    if (dpt_zip_open(path, &z, err) != DPT_OK) return -1;
    dpt_zip_entry e;
    int r = dpt_zip_find(&z, key, ".npy", &e, err);
    dpt_zip_close(&z);
    return r;
}

/* ---- writing ----------------------------------------------------------------------------- */

void dpt_npy_header_make(int ndim, const int64_t *shape, uint8_t *buf, size_t *len) {
    char dict[200];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    /* numpy: padlen = 64 - (10 + len(dict) + 1) % 64 (a full 64 when already aligned) */
    size_t hlen = (size_t)n + 1;
    size_t pad = 64 - (10 + hlen) % 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    dpt_wr16(buf + 8, (uint32_t)(hlen + pad));
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

dpt_status dpt_npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                         dpt_error *err) {
    if (!path) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_npy_write: NULL path");
    size_t count;
    dpt_status st = check_array(ndim, shape, data, &count, path, err);
    if (st != DPT_OK) return st;
    uint8_t hdr[256];
    size_t hlen;
    dpt_npy_header_make(ndim, shape, hdr, &hlen);
    FILE *f = fopen(path, "wb");
    if (!f) return dpt_fail(err, DPT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = dpt_file_write_all(f, hdr, hlen) && dpt_file_write_all(f, data, count * sizeof(float));
    int e = errno, regular = dpt_file_is_regular(f);
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
        if (count > (0xFFFFFFFFu - 256u) / sizeof(float)) /* a zip entry is under 4 GB */
            return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                            "%s: array '%s' is 4 GB or more (zip64 not supported)", path, keys[i]);
    }
    dpt_zip_writer w;
    dpt_status st = dpt_zip_writer_open(&w, path, n, err);
    if (st != DPT_OK) return st;
    for (int i = 0; i < n && st == DPT_OK; i++) {
        const dpt_array *a = &arrays[i];
        size_t count = 1;
        for (int d = 0; d < a->ndim; d++) count *= (size_t)a->shape[d];
        uint8_t hdr[256];
        size_t hlen;
        dpt_npy_header_make(a->ndim, a->shape, hdr, &hlen);
        st = dpt_zip_writer_add(&w, keys[i], ".npy", hdr, hlen, (const uint8_t *)a->data,
                                count * sizeof(float), compress, err);
    }
    return dpt_zip_writer_close(&w, st, err);
}
