/* .npy / .npz reader and writer (lib/npy.c): round trips, files written by numpy itself, every
 * error path (with the file named in the message), and malformed input of every kind — every
 * truncation and deterministic byte damage — which must fail cleanly (run under ASan/UBSan by
 * `make test-asan`, so any out-of-bounds access fails the suite). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check_main.h"
#include "dpt.h"

/* ---- files written by numpy 1.24.2 (Python 3.11 zipfile), embedded as test vectors ----
 * np_savez:            np.savez(a=np.arange(3, dtype=float32), b=[[1.5, -2.0], [3.0, 4.25]] float64)
 * np_savez_compressed: np.savez_compressed(exp=np.arange(6, dtype=float32).reshape(2, 3),
 *                                          pose=np.full((2, 6), 0.5, float32))
 * np_v2:               format.write_array([1.0, 2.0, -3.5] float32, version=(2, 0))
 * np_v3_f64:           format.write_array([[0.25], [8.0]] float64, version=(3, 0)) */
static const unsigned char np_savez[534] = {
    0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0xb6, 0x8c,
    0x86, 0x53, 0x8c, 0x00, 0x00, 0x00, 0x8c, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14, 0x00, 0x61, 0x2e,
    0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0x8c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8c,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76,
    0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27,
    0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72,
    0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65,
    0x27, 0x3a, 0x20, 0x28, 0x33, 0x2c, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00,
    0x00, 0x00, 0x40, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21,
    0x00, 0x34, 0xe2, 0x35, 0x9f, 0xa0, 0x00, 0x00, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14,
    0x00, 0x62, 0x2e, 0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59,
    0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c,
    0x66, 0x38, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72,
    0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68,
    0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x20, 0x32, 0x29, 0x2c, 0x20, 0x7d, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xf8, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x08, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x40, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03,
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0xb6, 0x8c, 0x86, 0x53, 0x8c, 0x00,
    0x00, 0x00, 0x8c, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x61, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x01,
    0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x34, 0xe2, 0x35,
    0x9f, 0xa0, 0x00, 0x00, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0xc3, 0x00, 0x00, 0x00, 0x62, 0x2e, 0x6e, 0x70, 0x79,
    0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x66, 0x00, 0x00, 0x00,
    0x9a, 0x01, 0x00, 0x00, 0x00, 0x00,
};
static const unsigned char np_savez_compressed[405] = {
    0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0x4f, 0xe9,
    0x00, 0x2a, 0x55, 0x00, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00, 0x07, 0x00, 0x14, 0x00, 0x65, 0x78,
    0x70, 0x2e, 0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0x98, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9b, 0xec, 0x17, 0xea, 0x1b, 0x10, 0xc9,
    0xc8, 0x50, 0xc6, 0x50, 0xad, 0x9e, 0x92, 0x5a, 0x9c, 0x5c, 0xa4, 0x6e, 0xa5, 0xa0, 0x6e, 0x93,
    0x66, 0xa2, 0xae, 0xa3, 0xa0, 0x9e, 0x96, 0x5f, 0x54, 0x52, 0x94, 0x98, 0x17, 0x9f, 0x5f, 0x94,
    0x92, 0x0a, 0x12, 0x77, 0x4b, 0xcc, 0x29, 0x4e, 0x05, 0x8a, 0x17, 0x67, 0x24, 0x16, 0xa4, 0x02,
    0xf9, 0x1a, 0x46, 0x3a, 0x0a, 0xc6, 0x9a, 0x3a, 0x0a, 0xb5, 0x0a, 0x64, 0x03, 0x2e, 0x06, 0x30,
    0x68, 0xb0, 0x07, 0x12, 0x0e, 0x40, 0x04, 0xc4, 0x0d, 0x40, 0xbc, 0xc0, 0x01, 0x00, 0x50, 0x4b,
    0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0x5a, 0x7d, 0xed, 0x49,
    0x4c, 0x00, 0x00, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x08, 0x00, 0x14, 0x00, 0x70, 0x6f, 0x73, 0x65,
    0x2e, 0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x4c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9b, 0xec, 0x17, 0xea, 0x1b, 0x10, 0xc9, 0xc8,
    0x50, 0xc6, 0x50, 0xad, 0x9e, 0x92, 0x5a, 0x9c, 0x5c, 0xa4, 0x6e, 0xa5, 0xa0, 0x6e, 0x93, 0x66,
    0xa2, 0xae, 0xa3, 0xa0, 0x9e, 0x96, 0x5f, 0x54, 0x52, 0x94, 0x98, 0x17, 0x9f, 0x5f, 0x94, 0x92,
    0x0a, 0x12, 0x77, 0x4b, 0xcc, 0x29, 0x4e, 0x05, 0x8a, 0x17, 0x67, 0x24, 0x16, 0xa4, 0x02, 0xf9,
    0x1a, 0x46, 0x3a, 0x0a, 0x66, 0x9a, 0x3a, 0x0a, 0xb5, 0x0a, 0x64, 0x03, 0x2e, 0x06, 0x06, 0x06,
    0x7b, 0x52, 0x30, 0x00, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00,
    0x00, 0x00, 0x21, 0x00, 0x4f, 0xe9, 0x00, 0x2a, 0x55, 0x00, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00,
    0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x65, 0x78, 0x70, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14,
    0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0x5a, 0x7d, 0xed, 0x49, 0x4c, 0x00, 0x00,
    0x00, 0xb0, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x80, 0x01, 0x8e, 0x00, 0x00, 0x00, 0x70, 0x6f, 0x73, 0x65, 0x2e, 0x6e, 0x70, 0x79, 0x50,
    0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x6b, 0x00, 0x00, 0x00, 0x14,
    0x01, 0x00, 0x00, 0x00, 0x00,
};
static const unsigned char np_v2[140] = {
    0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x02, 0x00, 0x74, 0x00, 0x00, 0x00, 0x7b, 0x27, 0x64, 0x65,
    0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f,
    0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61,
    0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x33,
    0x2c, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
    0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x60, 0xc0,
};
static const unsigned char np_v3_f64[144] = {
    0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x03, 0x00, 0x74, 0x00, 0x00, 0x00, 0x7b, 0x27, 0x64, 0x65,
    0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x38, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f,
    0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61,
    0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32,
    0x2c, 0x20, 0x31, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x40,
};

/* ---- helpers ---- */

/* A fresh temporary path ending in ext (check_main.h: 8 rotating buffers). */
static const char *tmp_path(const char *ext) { return dpt_check_tmp_file("f", ext); }

static const char *write_bytes(const void *b, size_t n, const char *ext) {
    const char *p = tmp_path(ext);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    return p;
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* The failure is `status`, one line, naming the file (and containing `what` if non-NULL). */
static void check_error(const dpt_error *err, dpt_status got, dpt_status want, const char *path,
                        const char *what) {
    ck_assert_msg(got == want, "status %d, expected %d (%s)", got, want, err->message);
    ck_assert_int_eq(err->status, want);
    ck_assert_msg(strstr(err->message, path) != NULL, "message does not name the file: %s",
                  err->message);
    ck_assert_ptr_null(strchr(err->message, '\n'));
    if (what)
        ck_assert_msg(strstr(err->message, what) != NULL, "message lacks '%s': %s", what,
                      err->message);
}

static dpt_status read_npy_bytes(const void *b, size_t n, dpt_array *a, dpt_error *err,
                                 const char **path) {
    *path = write_bytes(b, n, ".npy");
    memset(err, 0, sizeof *err);
    dpt_status st = dpt_npy_read(*path, a, err);
    if (st != DPT_OK) {
        ck_assert_ptr_null(a->data);
        ck_assert_int_eq(a->ndim, 0);
    }
    return st;
}

/* A v1.0 .npy made of an arbitrary header dict and payload. */
static unsigned char *npy_v1(const char *dict, const void *payload, size_t n_payload, size_t *n) {
    size_t dl = strlen(dict);
    size_t hl = dl + 1;
    size_t pad = (64 - (10 + hl) % 64) % 64;
    size_t total = 10 + hl + pad + n_payload;
    unsigned char *b = malloc(total);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)((hl + pad) & 0xff);
    b[9] = (unsigned char)((hl + pad) >> 8);
    memcpy(b + 10, dict, dl);
    memset(b + 10 + dl, ' ', pad);
    b[10 + dl + pad] = '\n';
    if (n_payload) memcpy(b + 10 + hl + pad, payload, n_payload);
    *n = total;
    return b;
}

static uint32_t rd32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Deterministic xorshift for the damage tests. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- .npy: round trips ---- */

START_TEST(t_npy_roundtrip_all_ranks) {
    static const int64_t shapes[][4] = {{0}, {5}, {2, 3}, {2, 3, 4}, {2, 1, 3, 2}, {0}, {3, 0}};
    static const int ndims[] = {0, 1, 2, 3, 4, 1, 2};
    for (size_t c = 0; c < sizeof ndims / sizeof ndims[0]; c++) {
        int nd = ndims[c];
        size_t count = 1;
        for (int i = 0; i < nd; i++) count *= (size_t)shapes[c][i];
        float *x = malloc((count ? count : 1) * sizeof(float));
        for (size_t i = 0; i < count; i++) x[i] = (float)i * 0.37f - 3.0f + (i == 1 ? NAN : 0.0f);
        if (count > 2) x[2] = -INFINITY;
        const char *p = tmp_path(".npy");
        dpt_error err = {0};
        ck_assert_int_eq(dpt_npy_write(p, x, nd, shapes[c], &err), DPT_OK);
        /* header: v1.0, 64-byte aligned, ends with '\n' */
        size_t n;
        unsigned char *b = read_bytes(p, &n);
        size_t hsize = 10 + (size_t)(b[8] | b[9] << 8);
        ck_assert_uint_eq(hsize % 64, 0);
        ck_assert_int_eq(b[hsize - 1], '\n');
        ck_assert_uint_eq(n, hsize + count * 4);
        free(b);
        dpt_array a;
        ck_assert_int_eq(dpt_npy_read(p, &a, &err), DPT_OK);
        ck_assert_int_eq(a.ndim, nd);
        for (int i = 0; i < nd; i++) ck_assert_int_eq(a.shape[i], shapes[c][i]);
        ck_assert_ptr_nonnull(a.data);
        ck_assert_int_eq(memcmp(a.data, x, count * sizeof(float)), 0); /* bitwise, NaN included */
        dpt_array_free(&a);
        ck_assert_ptr_null(a.data);
        free(x);
    }
}
END_TEST

/* The writer's bytes are exactly numpy's np.save output (header text and padding). */
START_TEST(t_npy_header_matches_numpy) {
    const float x[6] = {0};
    const int64_t shape[2] = {2, 3};
    const char *p = tmp_path(".npy");
    dpt_error err = {0};
    ck_assert_int_eq(dpt_npy_write(p, x, 2, shape, &err), DPT_OK);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    const char *want = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    ck_assert_uint_eq(n, 128 + 24);
    ck_assert_int_eq(b[8] | b[9] << 8, 118);
    ck_assert_int_eq(memcmp(b, "\x93NUMPY\x01\x00", 8), 0);
    ck_assert_int_eq(memcmp(b + 10, want, strlen(want)), 0);
    free(b);
    /* 1-D and 0-D tuple spelling; the 1-D file is byte-identical to numpy's np_v2 payload */
    const float y[3] = {1.0f, 2.0f, -3.5f};
    const int64_t s1[1] = {3};
    ck_assert_int_eq(dpt_npy_write(p, y, 1, s1, &err), DPT_OK);
    b = read_bytes(p, &n);
    ck_assert_ptr_nonnull(strstr((char *)b + 10, "'shape': (3,), }"));
    ck_assert_int_eq(memcmp(b + n - 12, np_v2 + sizeof np_v2 - 12, 12), 0);
    free(b);
    ck_assert_int_eq(dpt_npy_write(p, y, 0, NULL, &err), DPT_OK);
    b = read_bytes(p, &n);
    ck_assert_ptr_nonnull(strstr((char *)b + 10, "'shape': (), }"));
    ck_assert_uint_eq(n, 128 + 4);
    free(b);
}
END_TEST

START_TEST(t_npy_numpy_v2_v3_f64) {
    dpt_array a;
    dpt_error err;
    const char *p;
    ck_assert_int_eq(read_npy_bytes(np_v2, sizeof np_v2, &a, &err, &p), DPT_OK);
    ck_assert_int_eq(a.ndim, 1);
    ck_assert_int_eq(a.shape[0], 3);
    ck_assert(a.data[0] == 1.0f && a.data[1] == 2.0f && a.data[2] == -3.5f);
    dpt_array_free(&a);
    ck_assert_int_eq(read_npy_bytes(np_v3_f64, sizeof np_v3_f64, &a, &err, &p), DPT_OK);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_int_eq(a.shape[0], 2);
    ck_assert_int_eq(a.shape[1], 1);
    ck_assert(a.data[0] == 0.25f && a.data[1] == 8.0f);
    dpt_array_free(&a);
}
END_TEST

START_TEST(t_npy_float64_conversion) {
    const double v[4] = {0.1, -1e-3, 1e300, 3.0};
    size_t n;
    unsigned char *b =
        npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", v, sizeof v, &n);
    dpt_array a;
    dpt_error err;
    const char *p;
    ck_assert_int_eq(read_npy_bytes(b, n, &a, &err, &p), DPT_OK);
    ck_assert(a.data[0] == (float)0.1 && a.data[1] == (float)-1e-3);
    ck_assert(isinf(a.data[2]) && a.data[3] == 3.0f);
    dpt_array_free(&a);
    free(b);
}
END_TEST

/* Header spellings numpy's literal_eval accepts: key order, quotes, spacing, Python 2 longs,
 * Fortran order where it is the same layout as C order. */
START_TEST(t_npy_header_variants) {
    static const char *dicts[] = {
        "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,3)}",
        "{ 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6, 1), }",
    };
    float x[6] = {1, 2, 3, 4, 5, 6};
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        size_t n;
        unsigned char *b = npy_v1(dicts[i], x, sizeof x, &n);
        dpt_array a;
        dpt_error err;
        const char *p;
        ck_assert_msg(read_npy_bytes(b, n, &a, &err, &p) == DPT_OK, "%s: %s", dicts[i], err.message);
        ck_assert_int_eq(memcmp(a.data, x, sizeof x), 0);
        dpt_array_free(&a);
        free(b);
    }
}
END_TEST

/* ---- .npy: every error ---- */

typedef struct bad_case {
    const char *dict;
    dpt_status status;
    const char *what;
} bad_case;

START_TEST(t_npy_bad_headers) {
    static const bad_case cases[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", DPT_ERR_UNSUPPORTED, "Fortran"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", DPT_ERR_UNSUPPORTED, "big-endian"},
        {"{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", DPT_ERR_UNSUPPORTED, "big-endian"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }", DPT_ERR_UNSUPPORTED, "'<i4'"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", DPT_ERR_UNSUPPORTED, "'<i8'"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (6,), }", DPT_ERR_UNSUPPORTED, "'|O'"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (12,), }", DPT_ERR_UNSUPPORTED, "dtype"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", DPT_ERR_UNSUPPORTED, "structured"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 2, 3), }", DPT_ERR_UNSUPPORTED, "dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, }", DPT_ERR_FORMAT, "missing"},
        {"{'descr': '<f4', 'shape': (6,), }", DPT_ERR_FORMAT, "missing"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}", DPT_ERR_FORMAT, "unexpected key"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", DPT_ERR_FORMAT, "duplicate"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,), }", DPT_ERR_FORMAT, "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", DPT_ERR_FORMAT, "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6.0,), }", DPT_ERR_FORMAT, "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [6], }", DPT_ERR_FORMAT, "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,", DPT_ERR_FORMAT, "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", DPT_ERR_FORMAT, "large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", DPT_ERR_FORMAT, "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", DPT_ERR_FORMAT, "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", DPT_ERR_FORMAT, "truncated"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (6,), }", DPT_ERR_FORMAT, "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", DPT_ERR_FORMAT, "trailing"},
        {"['descr', '<f4']", DPT_ERR_FORMAT, "malformed"},
        {"", DPT_ERR_FORMAT, "malformed"},
        {"{'de\\x73cr': '<f4', 'fortran_order': False, 'shape': (6,), }", DPT_ERR_FORMAT, "malformed"},
    };
    float x[6] = {1, 2, 3, 4, 5, 6};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        unsigned char *b = npy_v1(cases[i].dict, x, sizeof x, &n);
        dpt_array a;
        dpt_error err;
        const char *p;
        dpt_status st = read_npy_bytes(b, n, &a, &err, &p);
        ck_assert_msg(st == cases[i].status, "case %zu (%s): status %d: %s", i, cases[i].dict, st,
                      err.message);
        check_error(&err, st, cases[i].status, p, cases[i].what);
        free(b);
    }
}
END_TEST

#define BAD_NPY(bytes, len, status, what)                                                   \
    do {                                                                                     \
        const char *p_;                                                                      \
        dpt_status st_ = read_npy_bytes(bytes, len, &a, &err, &p_);                          \
        check_error(&err, st_, status, p_, what);                                            \
    } while (0)

START_TEST(t_npy_bad_files) {
    dpt_array a;
    dpt_error err = {0};
    /* missing file */
    const char *missing = "/nonexistent-dir/none.npy";
    check_error(&err, dpt_npy_read(missing, &a, &err), DPT_ERR_IO, missing, "cannot open");
    /* a directory */
    const char *tmp_dir = dpt_check_tmp_dir("npy");
    check_error(&err, dpt_npy_read(tmp_dir, &a, &err), DPT_ERR_IO, tmp_dir, NULL);
    /* empty, bad magic, short preamble */
    BAD_NPY("", 0, DPT_ERR_FORMAT, NULL);
    BAD_NPY("PK\x03\x04 not npy at all", 20, DPT_ERR_FORMAT, "magic");
    BAD_NPY("\x93NUMPY\x01", 7, DPT_ERR_FORMAT, "truncated");
    /* header length beyond the end of the file */
    BAD_NPY("\x93NUMPY\x01\x00\x76\x00{'descr'", 17, DPT_ERR_FORMAT, "truncated");
    /* v2 with an absurd header length */
    BAD_NPY("\x93NUMPY\x02\x00\xff\xff\xff\x7f{", 13, DPT_ERR_FORMAT, "over the limit of 65536");
    /* unknown versions */
    BAD_NPY("\x93NUMPY\x04\x00\x10\x00{}", 12, DPT_ERR_UNSUPPORTED, "version");
    BAD_NPY("\x93NUMPY\x01\x01\x10\x00{}", 12, DPT_ERR_UNSUPPORTED, "version");
    /* float64 data truncated */
    double v[3] = {1, 2, 3};
    size_t n;
    unsigned char *b = npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", v, sizeof v, &n);
    BAD_NPY(b, n, DPT_ERR_FORMAT, "truncated");
    free(b);
    /* NULL arguments */
    ck_assert_int_eq(dpt_npy_read(NULL, &a, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_npy_read("x.npy", NULL, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_npy_read(NULL, NULL, NULL), DPT_ERR_INVALID_ARG);
}
END_TEST

/* Every truncation of a valid file fails cleanly; deterministic damage to the header never
 * crashes or reads out of bounds (ASan), and data is only returned with a consistent shape. */
START_TEST(t_npy_damage) {
    const float x[6] = {1, 2, 3, 4, 5, 6};
    const int64_t shape[2] = {2, 3};
    const char *p = tmp_path(".npy");
    dpt_error err;
    ck_assert_int_eq(dpt_npy_write(p, x, 2, shape, &err), DPT_OK);
    size_t n;
    unsigned char *good = read_bytes(p, &n);
    for (size_t len = 0; len < n; len++) {
        dpt_array a;
        const char *q;
        ck_assert_int_ne(read_npy_bytes(good, len, &a, &err, &q), DPT_OK);
        ck_assert_ptr_nonnull(strstr(err.message, q));
    }
    unsigned char *bad = malloc(n);
    for (int trial = 0; trial < 600; trial++) {
        memcpy(bad, good, n);
        int flips = 1 + (int)(rng_next() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = rng_next() % 128; /* the header */
            bad[at] = trial % 3 == 0 ? (unsigned char)rng_next()
                                    : (unsigned char)"0123456789(),' :{}TFL\n"[rng_next() % 22];
        }
        dpt_array a;
        const char *q;
        dpt_status st = read_npy_bytes(bad, n, &a, &err, &q);
        if (st == DPT_OK) {
            size_t count = 1;
            for (int i = 0; i < a.ndim; i++) count *= (size_t)a.shape[i];
            ck_assert_uint_le(count * 4, n - 10);
            dpt_array_free(&a);
        } else {
            ck_assert_ptr_nonnull(strstr(err.message, q));
        }
    }
    free(bad);
    free(good);
}
END_TEST

START_TEST(t_npy_write_errors) {
    const float x[4] = {0};
    const int64_t good[2] = {2, 2}, neg[2] = {2, -1};
    dpt_error err = {0};
    const char *p = tmp_path(".npy");
    check_error(&err, dpt_npy_write(p, x, 5, good, &err), DPT_ERR_INVALID_ARG, p, "ndim");
    check_error(&err, dpt_npy_write(p, x, -1, good, &err), DPT_ERR_INVALID_ARG, p, "ndim");
    check_error(&err, dpt_npy_write(p, x, 2, neg, &err), DPT_ERR_INVALID_ARG, p, "shape");
    check_error(&err, dpt_npy_write(p, NULL, 2, good, &err), DPT_ERR_INVALID_ARG, p, "NULL");
    const char *unwritable = "/nonexistent-dir/out.npy";
    check_error(&err, dpt_npy_write(unwritable, x, 2, good, &err), DPT_ERR_IO, unwritable, "cannot create");
    ck_assert_int_eq(dpt_npy_write(NULL, x, 2, good, &err), DPT_ERR_INVALID_ARG);
    /* an empty array needs no data */
    const int64_t empty[1] = {0};
    ck_assert_int_eq(dpt_npy_write(p, NULL, 1, empty, &err), DPT_OK);
    dpt_array_free(NULL);
}
END_TEST

/* ---- .npz ---- */

static void check_array_eq(const dpt_array *a, int ndim, const int64_t *shape, const float *v) {
    ck_assert_int_eq(a->ndim, ndim);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        ck_assert_int_eq(a->shape[i], shape[i]);
        count *= (size_t)shape[i];
    }
    for (size_t i = 0; i < count; i++) ck_assert_msg(a->data[i] == v[i], "value %zu", i);
}

START_TEST(t_npz_numpy_files) {
    dpt_error err = {0};
    dpt_array a;
    const char *s = write_bytes(np_savez, sizeof np_savez, ".npz");
    const int64_t s3[1] = {3}, s22[2] = {2, 2}, s23[2] = {2, 3}, s26[2] = {2, 6};
    const float va[3] = {0, 1, 2}, vb[4] = {1.5f, -2.0f, 3.0f, 4.25f};
    ck_assert_int_eq(dpt_npz_read(s, "a", &a, &err), DPT_OK);
    check_array_eq(&a, 1, s3, va);
    dpt_array_free(&a);
    ck_assert_int_eq(dpt_npz_read(s, "b", &a, &err), DPT_OK);
    check_array_eq(&a, 2, s22, vb);
    dpt_array_free(&a);
    ck_assert_int_eq(dpt_npz_has(s, "a", &err), 1);
    ck_assert_int_eq(dpt_npz_has(s, "b.npy", &err), 1); /* the entry's full name also works */
    ck_assert_int_eq(dpt_npz_has(s, "c", &err), 0);

    const char *c = write_bytes(np_savez_compressed, sizeof np_savez_compressed, ".npz");
    const float ve[6] = {0, 1, 2, 3, 4, 5};
    float vp[12];
    for (int i = 0; i < 12; i++) vp[i] = 0.5f;
    ck_assert_int_eq(dpt_npz_read(c, "exp", &a, &err), DPT_OK);
    check_array_eq(&a, 2, s23, ve);
    dpt_array_free(&a);
    ck_assert_int_eq(dpt_npz_read(c, "pose", &a, &err), DPT_OK);
    check_array_eq(&a, 2, s26, vp);
    dpt_array_free(&a);
    check_error(&err, dpt_npz_read(c, "shape", &a, &err), DPT_ERR_FORMAT, c, "no array 'shape'");
    ck_assert_ptr_nonnull(strstr(err.message, "exp, pose"));
    ck_assert_ptr_null(a.data);
}
END_TEST

START_TEST(t_npz_roundtrip) {
    float e[2 * 50], q[2 * 6], sh[100], scalar = 7.5f;
    for (int i = 0; i < 100; i++) e[i] = sinf((float)i), sh[i] = (float)i;
    for (int i = 0; i < 12; i++) q[i] = -(float)i / 3.0f;
    const char *keys[5] = {"exp", "pose", "shape", "scalar", "empty"};
    dpt_array arr[5] = {{2, {2, 50}, e}, {2, {2, 6}, q}, {1, {100}, sh}, {0, {0}, &scalar},
                        {2, {0, 3}, NULL}};
    for (int compress = 0; compress <= 1; compress++) {
        const char *p = tmp_path(".npz");
        dpt_error err = {0};
        ck_assert_int_eq(dpt_npz_write(p, 5, keys, arr, compress, &err), DPT_OK);
        for (int k = 0; k < 5; k++) {
            dpt_array a;
            ck_assert_msg(dpt_npz_read(p, keys[k], &a, &err) == DPT_OK, "%s", err.message);
            size_t count = 1;
            ck_assert_int_eq(a.ndim, arr[k].ndim);
            for (int i = 0; i < a.ndim; i++) {
                ck_assert_int_eq(a.shape[i], arr[k].shape[i]);
                count *= (size_t)a.shape[i];
            }
            if (count) ck_assert_int_eq(memcmp(a.data, arr[k].data, count * 4), 0);
            dpt_array_free(&a);
            ck_assert_int_eq(dpt_npz_has(p, keys[k], &err), 1);
        }
        ck_assert_int_eq(dpt_npz_has(p, "style", &err), 0);
        /* entry layout: names "<key>.npy", method 0 or 8 */
        size_t n;
        unsigned char *b = read_bytes(p, &n);
        ck_assert_int_eq(rd32le(b), 0x04034b50u);
        ck_assert_int_eq(b[8], compress ? 8 : 0);
        ck_assert_int_eq(memcmp(b + 30, "exp.npy", 7), 0);
        free(b);
    }
    /* an empty archive */
    const char *p = tmp_path(".npz");
    dpt_error err = {0};
    ck_assert_int_eq(dpt_npz_write(p, 0, NULL, NULL, 1, &err), DPT_OK);
    ck_assert_int_eq(dpt_npz_has(p, "exp", &err), 0);
}
END_TEST

START_TEST(t_npz_compression_effective) {
    static float z[20000];
    const char *keys[1] = {"z"};
    dpt_array arr[1] = {{1, {20000}, z}};
    const char *ps = tmp_path(".npz"), *pc = tmp_path(".npz");
    dpt_error err = {0};
    ck_assert_int_eq(dpt_npz_write(ps, 1, keys, arr, 0, &err), DPT_OK);
    ck_assert_int_eq(dpt_npz_write(pc, 1, keys, arr, 1, &err), DPT_OK);
    struct stat a, b;
    stat(ps, &a);
    stat(pc, &b);
    ck_assert_int_gt(a.st_size, 80000);
    ck_assert_int_lt(b.st_size, 2000);
}
END_TEST

START_TEST(t_npz_write_errors) {
    float x[2] = {1, 2};
    dpt_array arr[2] = {{1, {2}, x}, {1, {2}, x}};
    const char *dup[2] = {"a", "a"}, *empty[1] = {""}, *nul[1] = {NULL};
    dpt_error err = {0};
    const char *p = tmp_path(".npz");
    check_error(&err, dpt_npz_write(p, 2, dup, arr, 1, &err), DPT_ERR_INVALID_ARG, p, "duplicate");
    check_error(&err, dpt_npz_write(p, 1, empty, arr, 1, &err), DPT_ERR_INVALID_ARG, p, "name");
    check_error(&err, dpt_npz_write(p, 1, nul, arr, 1, &err), DPT_ERR_INVALID_ARG, p, "name");
    dpt_array badnd[1] = {{7, {2}, x}};
    const char *k[1] = {"a"};
    check_error(&err, dpt_npz_write(p, 1, k, badnd, 0, &err), DPT_ERR_INVALID_ARG, p, "ndim");
    dpt_array nodata[1] = {{1, {2}, NULL}};
    check_error(&err, dpt_npz_write(p, 1, k, nodata, 0, &err), DPT_ERR_INVALID_ARG, p, "NULL");
    const char *unwritable = "/nonexistent-dir/out.npz";
    check_error(&err, dpt_npz_write(unwritable, 1, k, arr, 1, &err), DPT_ERR_IO, unwritable, NULL);
    ck_assert_int_eq(dpt_npz_write(NULL, 1, k, arr, 1, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_npz_write(p, -1, k, arr, 1, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_npz_has(NULL, "a", &err), -1);
    ck_assert_int_eq(dpt_npz_read(p, NULL, NULL, &err), DPT_ERR_INVALID_ARG);
}
END_TEST

/* A stored archive whose first entry's data starts at `*data_off` (for targeted damage). */
static unsigned char *stored_npz(size_t *n, size_t *data_off) {
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    const char *keys[1] = {"a"};
    dpt_array arr[1] = {{1, {16}, x}};
    const char *p = tmp_path(".npz");
    dpt_error err = {0};
    ck_assert_int_eq(dpt_npz_write(p, 1, keys, arr, 0, &err), DPT_OK);
    unsigned char *b = read_bytes(p, n);
    *data_off = 30 + 5;
    return b;
}

START_TEST(t_npz_errors) {
    dpt_error err = {0};
    dpt_array a;
    const char *p;
    /* missing, not a zip, too short, a .npy instead of an .npz */
    const char *missing = "/nonexistent-dir/none.npz";
    check_error(&err, dpt_npz_read(missing, "a", &a, &err), DPT_ERR_IO, missing, "cannot open");
    ck_assert_int_eq(dpt_npz_has(missing, "a", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, missing));
    p = write_bytes("hello", 5, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, "too short");
    p = write_bytes(np_v2, sizeof np_v2, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, "end-of-central-directory");

    size_t n, off;
    unsigned char *b = stored_npz(&n, &off);
    unsigned char *c = malloc(n);
    /* CRC mismatch: one data byte changed in a stored entry */
    memcpy(c, b, n);
    c[n - 22 - 51 - 10] ^= 0x40; /* inside the float data (before the central directory) */
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, "CRC");
    ck_assert_ptr_nonnull(strstr(err.message, "'a'"));
    /* unsupported compression method (bzip2 = 12) in the central directory */
    memcpy(c, b, n);
    size_t cd = rd32le(b + n - 22 + 16);
    c[cd + 10] = 12;
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_UNSUPPORTED, p, "method 12");
    /* encrypted */
    memcpy(c, b, n);
    c[cd + 8] |= 1;
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_UNSUPPORTED, p, "encrypted");
    /* zip64 markers */
    memcpy(c, b, n);
    memset(c + n - 22 + 16, 0xff, 4);
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_UNSUPPORTED, p, "zip64");
    memcpy(c, b, n);
    memset(c + cd + 20, 0xff, 8);
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_UNSUPPORTED, p, "zip64");
    /* local header offset pointing past the data; central directory out of bounds */
    memcpy(c, b, n);
    c[cd + 42] = 0x70;
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, "local header");
    memcpy(c, b, n);
    c[n - 22 + 16] += 1;
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, NULL);
    memcpy(c, b, n);
    c[n - 22 + 12] += 100;
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, "out of bounds");
    /* stored sizes disagree */
    memcpy(c, b, n);
    c[cd + 24] -= 4;
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, "sizes differ");
    /* a deflated entry announcing 1.125 GiB (a zip bomb's header): refused from the directory */
    memcpy(c, b, n);
    c[cd + 10] = 8;
    c[cd + 24] = 0, c[cd + 25] = 0, c[cd + 26] = 0, c[cd + 27] = 0x48;
    p = write_bytes(c, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_UNSUPPORTED, p, "DPT_MAX_NPZ_ENTRY_BYTES");
    free(c);
    free(b);
    /* an entry that is not float32, and the same bytes as a (corrupt) deflate stream */
    {
        size_t m;
        int32_t iv[4] = {1, 2, 3, 4};
        unsigned char *nb = npy_v1("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", iv, sizeof iv, &m);
        /* one stored entry "i.npy", built by hand */
        size_t zn = 30 + 5 + m + 46 + 5 + 22;
        unsigned char *z = calloc(1, zn);
        uint32_t crc = 0;
        {
            /* CRC-32 (bitwise, reflected 0xEDB88320) */
            crc = 0xFFFFFFFFu;
            for (size_t i = 0; i < m; i++) {
                crc ^= nb[i];
                for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
            }
            crc ^= 0xFFFFFFFFu;
        }
#define W16(p, v) ((p)[0] = (unsigned char)(v), (p)[1] = (unsigned char)((v) >> 8))
#define W32(p, v) (W16(p, (v) & 0xffff), W16((p) + 2, (uint32_t)(v) >> 16))
        W32(z, 0x04034b50u);
        W16(z + 4, 20);
        W32(z + 14, crc);
        W32(z + 18, m);
        W32(z + 22, m);
        W16(z + 26, 5);
        memcpy(z + 30, "i.npy", 5);
        memcpy(z + 35, nb, m);
        unsigned char *h = z + 35 + m;
        W32(h, 0x02014b50u);
        W16(h + 6, 20);
        W32(h + 16, crc);
        W32(h + 20, m);
        W32(h + 24, m);
        W16(h + 28, 5);
        memcpy(h + 46, "i.npy", 5);
        unsigned char *e = h + 51;
        W32(e, 0x06054b50u);
        W16(e + 8, 1);
        W16(e + 10, 1);
        W32(e + 12, 51);
        W32(e + 16, 35 + m);
        p = write_bytes(z, zn, ".npz");
        check_error(&err, dpt_npz_read(p, "i", &a, &err), DPT_ERR_UNSUPPORTED, p, "'<i4'");
        ck_assert_ptr_nonnull(strstr(err.message, "'i'"));
        /* and a corrupt deflate stream: same entry marked deflated */
        h[10] = 8;
        p = write_bytes(z, zn, ".npz");
        dpt_status st = dpt_npz_read(p, "i", &a, &err);
        ck_assert_int_eq(st, DPT_ERR_FORMAT);
        check_error(&err, st, DPT_ERR_FORMAT, p, NULL);
        free(z);
        free(nb);
    }
}
END_TEST

/* Every truncation and deterministic damage anywhere in stored and compressed archives:
 * a clean error (or, where the damage is harmless, the right data), never a crash. */
START_TEST(t_npz_damage) {
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i * i) * 0.5f;
    const char *keys[2] = {"exp", "pose"};
    dpt_array arr[2] = {{2, {8, 4}, x}, {1, {32}, x + 32}};
    for (int compress = 0; compress <= 1; compress++) {
        const char *p = tmp_path(".npz");
        dpt_error err = {0};
        ck_assert_int_eq(dpt_npz_write(p, 2, keys, arr, compress, &err), DPT_OK);
        size_t n;
        unsigned char *good = read_bytes(p, &n);
        for (size_t len = 0; len < n; len++) {
            const char *q = write_bytes(good, len, ".npz");
            dpt_array a;
            ck_assert_int_ne(dpt_npz_read(q, "pose", &a, &err), DPT_OK);
            ck_assert_ptr_nonnull(strstr(err.message, q));
            ck_assert_ptr_null(a.data);
            (void)dpt_npz_has(q, "exp", &err);
        }
        unsigned char *bad = malloc(n);
        for (int trial = 0; trial < 1500; trial++) {
            memcpy(bad, good, n);
            int flips = 1 + (int)(rng_next() % 3);
            for (int k = 0; k < flips; k++) bad[rng_next() % n] ^= (unsigned char)(1u << (rng_next() % 8));
            const char *q = write_bytes(bad, n, ".npz");
            for (int k = 0; k < 2; k++) {
                dpt_array a;
                dpt_status st = dpt_npz_read(q, keys[k], &a, &err);
                if (st == DPT_OK) {
                    /* accepted damage must not have changed the data (CRC-protected) */
                    ck_assert_int_eq(memcmp(a.data, k == 0 ? x : x + 32, 32 * 4), 0);
                    dpt_array_free(&a);
                } else {
                    ck_assert_ptr_nonnull(strstr(err.message, q));
                    ck_assert_ptr_null(strchr(err.message, '\n'));
                }
            }
        }
        free(bad);
        free(good);
    }
}
END_TEST

/* ---- resource limits (dpt.h "NumPy files") ---- */

static void wr16le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void wr32le(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A one-entry zip "a.npy" whose headers declare method, crc, csize and usize, followed by the
 * n bytes of data (whatever they are). */
static unsigned char *zip_one(uint32_t method, uint32_t crc, uint32_t csize, uint32_t usize,
                              const void *data, size_t n, size_t *len) {
    const char *name = "a.npy";
    size_t nl = strlen(name), total = 30 + nl + n + 46 + nl + 22;
    unsigned char *b = calloc(1, total), *p = b;
    wr32le(p, 0x04034b50u);
    wr16le(p + 4, 20);
    wr16le(p + 8, method);
    wr32le(p + 14, crc);
    wr32le(p + 18, csize);
    wr32le(p + 22, usize);
    wr16le(p + 26, (uint32_t)nl);
    memcpy(p + 30, name, nl);
    if (n) memcpy(p + 30 + nl, data, n);
    p += 30 + nl + n;
    size_t cd_off = (size_t)(p - b);
    wr32le(p, 0x02014b50u);
    wr16le(p + 4, 20);
    wr16le(p + 6, 20);
    wr16le(p + 10, method);
    wr32le(p + 16, crc);
    wr32le(p + 20, csize);
    wr32le(p + 24, usize);
    wr16le(p + 28, (uint32_t)nl);
    memcpy(p + 46, name, nl);
    p += 46 + nl;
    wr32le(p, 0x06054b50u);
    wr16le(p + 8, 1);
    wr16le(p + 10, 1);
    wr32le(p + 12, (uint32_t)(46 + nl));
    wr32le(p + 16, (uint32_t)cd_off);
    *len = total;
    return b;
}

/* Raw deflate of n zero bytes. */
static unsigned char *deflate_zeros(size_t n, size_t *out_len) {
    unsigned char *zeros = calloc(1, n), *out = malloc(n / 100 + 4096);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = zeros;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)(n / 100 + 4096);
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    free(zeros);
    return out;
}

START_TEST(t_limits) {
    dpt_error err = {0};
    dpt_array a;
    const char *p;
    size_t n;

    /* .npy header length: 65536 bytes is the limit (accepted), 65537 is refused */
    static unsigned char big[12 + 65537 + 4];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    for (uint32_t hl = 65536; hl <= 65537; hl++) {
        memcpy(big, "\x93NUMPY\x02\x00", 8);
        wr32le(big + 8, hl);
        memset(big + 12, ' ', hl);
        memcpy(big + 12, dict, strlen(dict));
        big[12 + hl - 1] = '\n';
        const float one = 1.0f;
        memcpy(big + 12 + hl, &one, 4);
        dpt_status st = read_npy_bytes(big, 12 + hl + 4, &a, &err, &p);
        if (hl == 65536) {
            ck_assert_msg(st == DPT_OK, "%s", err.message);
            ck_assert_float_eq(a.data[0], 1.0f);
            dpt_array_free(&a);
        } else {
            check_error(&err, st, DPT_ERR_FORMAT, p, "header of 65537 bytes is over the limit of 65536");
        }
    }
    /* a shape the file does not hold: refused before the array is allocated */
    unsigned char *b = npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000, 8), }", NULL, 0, &n);
    dpt_status st = read_npy_bytes(b, n, &a, &err, &p);
    check_error(&err, st, DPT_ERR_FORMAT, p, "data truncated");
    free(b);

    /* .npz entry over 1 GiB uncompressed (with compressed bytes enough for deflate's ratio) */
    size_t csize = ((size_t)1 << 30) / 1032 + 4096;
    unsigned char *junk = calloc(1, csize);
    b = zip_one(8, 0, (uint32_t)csize, (1u << 30) + 1, junk, csize, &n);
    p = write_bytes(b, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_UNSUPPORTED, p,
                "1073741825 bytes uncompressed is over the limit of 1073741824 bytes");
    ck_assert_ptr_null(a.data);
    free(b);
    free(junk);
    /* a declared size beyond deflate's ratio: refused before inflating */
    size_t z;
    unsigned char *bomb = deflate_zeros(64u << 20, &z);
    b = zip_one(8, 0, 100, 10u << 20, bomb, 100, &n);
    p = write_bytes(b, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, "implausible uncompressed size");
    free(b);
    /* a bomb declaring less than it inflates to: inflation stops at the declared size */
    b = zip_one(8, 0, (uint32_t)z, 1000, bomb, z, &n);
    p = write_bytes(b, n, ".npz");
    check_error(&err, dpt_npz_read(p, "a", &a, &err), DPT_ERR_FORMAT, p, "inflates to more than the declared 1000");
    free(b);
    free(bomb);
    /* an honest, highly compressed entry below the limit reads (16 MiB of zeros) */
    static float zeros[1 << 22];
    const char *keys[1] = {"a"};
    dpt_array arr[1] = {{1, {1 << 22}, zeros}};
    p = tmp_path(".npz");
    ck_assert_int_eq(dpt_npz_write(p, 1, keys, arr, 1, &err), DPT_OK);
    ck_assert_msg(dpt_npz_read(p, "a", &a, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(a.shape[0], 1 << 22);
    ck_assert_float_eq(a.data[(1 << 22) - 1], 0.0f);
    dpt_array_free(&a);
}
END_TEST

/* float64 entries of an .npz are converted in place: the same values as dpt_npy_read gives */
START_TEST(t_npz_float64_entry) {
    dpt_error err = {0};
    dpt_array a, r;
    const char *p = write_bytes(np_v3_f64, sizeof np_v3_f64, ".npy");
    ck_assert_int_eq(dpt_npy_read(p, &r, &err), DPT_OK);
    size_t n;
    uint32_t crc = (uint32_t)crc32(0, np_v3_f64, sizeof np_v3_f64);
    unsigned char *b = zip_one(0, crc, sizeof np_v3_f64, sizeof np_v3_f64, np_v3_f64, sizeof np_v3_f64, &n);
    p = write_bytes(b, n, ".npz");
    free(b);
    ck_assert_msg(dpt_npz_read(p, "a", &a, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(a.ndim, r.ndim);
    size_t count = 1;
    for (int i = 0; i < r.ndim; i++) {
        ck_assert_int_eq(a.shape[i], r.shape[i]);
        count *= (size_t)r.shape[i];
    }
    ck_assert_int_eq(memcmp(a.data, r.data, count * sizeof(float)), 0);
    dpt_array_free(&a);
    dpt_array_free(&r);
}
END_TEST

int main(void) {
    dpt_check_tmp_dir("npy"); /* in the parent, so that it removes it after the run */
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_npy_roundtrip_all_ranks);
    tcase_add_test(tc, t_npy_header_matches_numpy);
    tcase_add_test(tc, t_npy_numpy_v2_v3_f64);
    tcase_add_test(tc, t_npy_float64_conversion);
    tcase_add_test(tc, t_npy_header_variants);
    tcase_add_test(tc, t_npy_bad_headers);
    tcase_add_test(tc, t_npy_bad_files);
    tcase_add_test(tc, t_npy_damage);
    tcase_add_test(tc, t_npy_write_errors);
    tcase_add_test(tc, t_npz_numpy_files);
    tcase_add_test(tc, t_npz_roundtrip);
    tcase_add_test(tc, t_npz_compression_effective);
    tcase_add_test(tc, t_npz_write_errors);
    tcase_add_test(tc, t_npz_errors);
    tcase_add_test(tc, t_npz_damage);
    tcase_add_test(tc, t_limits);
    tcase_add_test(tc, t_npz_float64_entry);
    suite_add_tcase(s, tc);
    int failed = dpt_check_run(s);
    dpt_check_tmp_dir_remove();
    return failed;
}
