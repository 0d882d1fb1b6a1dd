/* .dpt container and model loader: round trip and every validation path.
 *
 * The fixture tests/fixtures/tiny.dpt is written by tools/export.py from a tiny random checkpoint.
 * This test re-serialises what the reader parsed with its own writer (below) and checks the bytes
 * are identical, then builds corrupted variants — with a correct checksum, so the semantic checks
 * are reached — and raw byte damage (truncation, flips) and checks each is rejected cleanly. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check_main.h"
#include "dpt.h"
#include "weights.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif
static const char *fixture = FIXTURE_DIR "/tiny.dpt";

/* ---- helpers ---- */

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

static char tmp_path[256];
static int tmp_counter;

static const char *write_tmp(const unsigned char *b, size_t n) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/dpt_test_weights_%d_%d.dpt", (int)getpid(),
             tmp_counter++);
    FILE *f = fopen(tmp_path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    return tmp_path;
}

/* Load bytes as a model; returns the status and leaves the message in err. */
static dpt_status load_bytes(const unsigned char *b, size_t n, dpt_error *err) {
    const char *p = write_tmp(b, n);
    dpt_model *m = NULL;
    memset(err, 0, sizeof *err);
    dpt_status s = dpt_model_load(p, NULL, &m, err);
    if (s == DPT_OK) ck_assert_ptr_nonnull(m);
    else ck_assert_ptr_null(m);
    dpt_model_free(m);
    remove(p);
    return s;
}

/* ---- an independent writer of the format (weights/FORMAT.md) ---- */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_le(buf *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        put(b, &c, 1);
    }
}

/* Editable copy of a parsed file. */
typedef struct model_desc {
    int n_meta, n_tensors;
    dpt_meta_entry meta[256];
    dpt_tensor_entry t[512];
    const void *data[512];  /* data source per tensor */
    int64_t force_offset[512]; /* >= 0: write this relative offset instead of the packed one */
    int64_t force_nbytes[512];
} model_desc;

static void desc_from(model_desc *d, const dpt_weights *w) {
    memset(d, 0, sizeof *d);
    ck_assert_int_le(w->n_meta, 256);
    ck_assert_int_le(w->n_tensors, 512);
    d->n_meta = w->n_meta;
    d->n_tensors = w->n_tensors;
    for (int i = 0; i < w->n_meta; i++) d->meta[i] = w->meta[i];
    for (int i = 0; i < w->n_tensors; i++) {
        d->t[i] = w->tensors[i];
        d->data[i] = w->tensors[i].data;
        d->force_offset[i] = -1;
        d->force_nbytes[i] = -1;
    }
}

static unsigned char *serialise(const model_desc *d, size_t *n_out) {
    buf meta = {0}, table = {0};
    for (int i = 0; i < d->n_meta; i++) {
        const dpt_meta_entry *e = &d->meta[i];
        put_le(&meta, strlen(e->key), 2);
        put(&meta, e->key, strlen(e->key));
        put_le(&meta, (uint64_t)e->type, 1);
        if (e->type == DPT_META_INT) {
            put_le(&meta, (uint64_t)e->i, 8);
        } else if (e->type == DPT_META_FLOAT) {
            uint64_t bits;
            memcpy(&bits, &e->f, 8);
            put_le(&meta, bits, 8);
        } else {
            put_le(&meta, strlen(e->s), 4);
            put(&meta, e->s, strlen(e->s));
        }
    }
    uint64_t off = 0, end = 0;
    uint64_t offsets[512];
    for (int i = 0; i < d->n_tensors; i++) {
        const dpt_tensor_entry *t = &d->t[i];
        uint64_t nbytes = d->force_nbytes[i] >= 0 ? (uint64_t)d->force_nbytes[i] : t->nbytes;
        offsets[i] = d->force_offset[i] >= 0 ? (uint64_t)d->force_offset[i] : off;
        put_le(&table, strlen(t->name), 2);
        put(&table, t->name, strlen(t->name));
        put_le(&table, (uint64_t)t->dtype, 1);
        put_le(&table, (uint64_t)t->ndim, 1);
        for (int k = 0; k < t->ndim; k++) put_le(&table, (uint64_t)t->shape[k], 8);
        put_le(&table, offsets[i], 8);
        put_le(&table, nbytes, 8);
        end = off + t->nbytes; /* the last tensor is not padded */
        off += (t->nbytes + 63) & ~(uint64_t)63;
    }
    uint64_t meta_off = 64, table_off = meta_off + meta.n;
    uint64_t data_off = (table_off + table.n + 63) & ~(uint64_t)63;
    uint64_t file_size = data_off + end;
    buf out = {0};
    put(&out, "DPTW", 4);
    put_le(&out, 1, 4);
    put_le(&out, file_size, 8);
    put_le(&out, (uint64_t)d->n_meta, 4);
    put_le(&out, (uint64_t)d->n_tensors, 4);
    put_le(&out, meta_off, 8);
    put_le(&out, table_off, 8);
    put_le(&out, data_off, 8);
    put_le(&out, meta.n, 4);
    put_le(&out, table.n, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, out.p, 56);
    crc = crc32(crc, meta.p, (uInt)meta.n);
    crc = crc32(crc, table.p, (uInt)table.n);
    put_le(&out, crc, 4);
    put_le(&out, 0, 4);
    put(&out, meta.p, meta.n);
    put(&out, table.p, table.n);
    while (out.n < data_off) put_le(&out, 0, 1);
    for (int i = 0; i < d->n_tensors; i++) {
        const dpt_tensor_entry *t = &d->t[i];
        size_t pos = data_off + ((d->force_offset[i] >= 0) ? 0 : offsets[i]);
        if (d->force_offset[i] >= 0) continue; /* data stays wherever the packing put it */
        while (out.n < pos) put_le(&out, 0, 1);
        put(&out, d->data[i], t->nbytes);
    }
    while (out.n < file_size) put_le(&out, 0, 1);
    free(meta.p);
    free(table.p);
    *n_out = out.n;
    return out.p;
}

/* Re-write bytes so that the header file_size/CRC stay consistent after an edit of the table. */
static dpt_weights *open_fixture(void) {
    dpt_weights *w = NULL;
    dpt_error err = {0};
    dpt_status s = dpt_weights_open(fixture, 1, &w, &err);
    ck_assert_msg(s == DPT_OK, "fixture: %s", err.message);
    return w;
}

static int meta_index(const model_desc *d, const char *key) {
    for (int i = 0; i < d->n_meta; i++)
        if (!strcmp(d->meta[i].key, key)) return i;
    ck_abort_msg("no metadata key %s", key);
    return -1;
}
static int tensor_index(const model_desc *d, const char *name) {
    for (int i = 0; i < d->n_tensors; i++)
        if (!strcmp(d->t[i].name, name)) return i;
    ck_abort_msg("no tensor %s", name);
    return -1;
}

/* Serialise d, load it, expect failure with status and message containing `needle`. */
static void expect_reject(const model_desc *d, dpt_status want, const char *needle) {
    size_t n;
    unsigned char *b = serialise(d, &n);
    dpt_error err;
    dpt_status s = load_bytes(b, n, &err);
    free(b);
    ck_assert_msg(s == want, "expected status %d (%s), got %d: %s", want, needle, s, err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
    ck_assert_msg(strstr(err.message, "/tmp/dpt_test_weights_") != NULL,
                  "message '%s' does not name the file", err.message);
    ck_assert_msg(strchr(err.message, '\n') == NULL, "message has a newline");
}

/* ---- tests ---- */

START_TEST(test_fixture_loads) {
    dpt_model *m = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_load(fixture, NULL, &m, &err) == DPT_OK, "%s", err.message);
    dpt_model_info i;
    dpt_model_get_info(m, &i);
    ck_assert_int_gt(i.n_params_total, 0);
    ck_assert_int_eq(i.n_params_total, i.n_params_audio + i.n_params_denoiser + i.n_params_style);
    ck_assert_int_eq(i.motion_dim, i.no_head_pose ? 51 : 54);
    /* every tensor reads back as the stored bytes */
    for (int k = 0; k < dpt_model_tensor_count(m); k++) {
        dpt_tensor_info t;
        ck_assert_int_eq(dpt_model_tensor_at(m, k, &t), DPT_OK);
        ck_assert_int_eq(dpt_model_tensor_find(m, t.name), k);
        float *v = malloc(sizeof(float) * (size_t)t.n_elements);
        ck_assert_int_eq(dpt_model_tensor_read(m, k, v, (size_t)t.n_elements, &err), DPT_OK);
        for (int64_t e = 0; e < t.n_elements; e++) ck_assert(isfinite(v[e]));
        /* a buffer one element short is refused */
        ck_assert_int_eq(dpt_model_tensor_read(m, k, v, (size_t)t.n_elements - 1, &err),
                         DPT_ERR_INVALID_ARG);
        free(v);
    }
    ck_assert_int_eq(dpt_model_tensor_find(m, "no.such.tensor"), -1);
    dpt_model_free(m);
}
END_TEST

START_TEST(test_round_trip_bytes) {
    size_t n0;
    unsigned char *orig = read_all(fixture, &n0);
    ck_assert_ptr_nonnull(orig);
    dpt_weights *w = open_fixture();
    static model_desc d;
    desc_from(&d, w);
    size_t n1;
    unsigned char *again = serialise(&d, &n1);
    ck_assert_uint_eq(n0, n1);
    ck_assert_msg(memcmp(orig, again, n0) == 0, "re-serialised file differs from the exporter's");
    free(again);
    free(orig);
    dpt_weights_close(w);
}
END_TEST

START_TEST(test_read_mode_equals_mmap) {
    dpt_load_params p = dpt_load_params_default();
    p.use_mmap = 0;
    dpt_model *a = NULL, *b = NULL;
    dpt_error err;
    ck_assert_int_eq(dpt_model_load(fixture, &p, &a, &err), DPT_OK);
    ck_assert_int_eq(dpt_model_load(fixture, NULL, &b, &err), DPT_OK);
    ck_assert_int_eq(dpt_model_tensor_count(a), dpt_model_tensor_count(b));
    for (int k = 0; k < dpt_model_tensor_count(a); k++) {
        dpt_tensor_info t;
        dpt_model_tensor_at(a, k, &t);
        float *x = malloc(sizeof(float) * (size_t)t.n_elements);
        float *y = malloc(sizeof(float) * (size_t)t.n_elements);
        dpt_model_tensor_read(a, k, x, (size_t)t.n_elements, &err);
        dpt_model_tensor_read(b, k, y, (size_t)t.n_elements, &err);
        ck_assert(memcmp(x, y, sizeof(float) * (size_t)t.n_elements) == 0);
        free(x);
        free(y);
    }
    dpt_model_free(a);
    dpt_model_free(b);
}
END_TEST

START_TEST(test_metadata_api) {
    dpt_model *m = NULL;
    dpt_error err;
    ck_assert_int_eq(dpt_model_load(fixture, NULL, &m, &err), DPT_OK);
    dpt_model_info info;
    dpt_model_get_info(m, &info);
    int found = 0;
    for (int k = 0; k < dpt_model_meta_count(m); k++) {
        dpt_meta_info e;
        ck_assert_int_eq(dpt_model_meta_at(m, k, &e), DPT_OK);
        if (!strcmp(e.key, "dpt.feature_dim")) {
            ck_assert_int_eq(e.type, 1);
            ck_assert_int_eq(e.i, info.feature_dim);
            found++;
        }
        if (!strcmp(e.key, "dpt.n_diff_steps")) {
            ck_assert_int_eq(e.i, info.n_diff_steps);
            found++;
        }
        if (!strcmp(e.key, "audio.model_type")) {
            ck_assert_str_eq(e.s, info.audio_model);
            found++;
        }
    }
    ck_assert_int_eq(found, 3);
    dpt_meta_info e;
    ck_assert_int_eq(dpt_model_meta_at(m, -1, &e), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_model_meta_at(m, dpt_model_meta_count(m), &e), DPT_ERR_INVALID_ARG);
    dpt_model_free(m);
}
END_TEST

START_TEST(test_missing_file) {
    dpt_model *m = (dpt_model *)1;
    dpt_error err = {0};
    ck_assert_int_eq(dpt_model_load("/nonexistent/model.dpt", NULL, &m, &err), DPT_ERR_IO);
    ck_assert_ptr_null(m);
    ck_assert(strstr(err.message, "/nonexistent/model.dpt") != NULL);
    ck_assert_int_eq(dpt_model_load("/tmp", NULL, &m, &err), DPT_ERR_IO);
}
END_TEST

START_TEST(test_truncations) {
    size_t n;
    unsigned char *b = read_all(fixture, &n);
    /* every prefix of the first 1 KiB, then a spread of longer ones, and one byte short */
    for (size_t len = 0; len < n; len += (len < 1024 ? 1 : (n / 97) + 1)) {
        dpt_error err;
        ck_assert_int_ne(load_bytes(b, len, &err), DPT_OK);
        ck_assert(err.message[0] != '\0');
    }
    dpt_error err;
    ck_assert_int_eq(load_bytes(b, n - 1, &err), DPT_ERR_FORMAT);
    ck_assert_msg(strstr(err.message, "truncated") != NULL, "%s", err.message);
    /* one byte too many is also a mismatch */
    unsigned char *c = malloc(n + 1);
    memcpy(c, b, n);
    c[n] = 0;
    ck_assert_int_eq(load_bytes(c, n + 1, &err), DPT_ERR_FORMAT);
    free(c);
    free(b);
}
END_TEST

START_TEST(test_magic_and_version) {
    size_t n;
    unsigned char *b = read_all(fixture, &n);
    dpt_error err;
    b[0] = 'X';
    ck_assert_int_eq(load_bytes(b, n, &err), DPT_ERR_FORMAT);
    ck_assert(strstr(err.message, "magic") != NULL);
    b[0] = 'D';
    b[4] = 2;
    ck_assert_int_eq(load_bytes(b, n, &err), DPT_ERR_UNSUPPORTED);
    ck_assert(strstr(err.message, "version 2") != NULL);
    free(b);
}
END_TEST

/* Flip every byte of the header, metadata and tensor table: all must be rejected (checksum or a
 * more specific check) — never accepted, never a crash. */
START_TEST(test_flipped_header_and_table_bytes) {
    size_t n;
    unsigned char *b = read_all(fixture, &n);
    uint64_t data_off = 0;
    for (int i = 7; i >= 0; i--) data_off = (data_off << 8) | b[40 + i];
    uint32_t table_end = 64;
    uint32_t meta_size = b[48] | b[49] << 8 | b[50] << 16 | (uint32_t)b[51] << 24;
    uint32_t table_size = b[52] | b[53] << 8 | b[54] << 16 | (uint32_t)b[55] << 24;
    table_end += meta_size + table_size;
    int rejected = 0, tried = 0;
    for (uint32_t pos = 0; pos < table_end; pos += (pos < 64 ? 1 : 7)) {
        if (pos >= 60 && pos < 64) continue; /* reserved field: ignored by definition */
        b[pos] ^= 0x5a;
        dpt_error err;
        dpt_status s = load_bytes(b, n, &err);
        b[pos] ^= 0x5a;
        tried++;
        if (s != DPT_OK) rejected++;
        ck_assert_msg(s != DPT_OK, "flipping byte %u was not detected", pos);
    }
    ck_assert_int_eq(rejected, tried);
    free(b);
}
END_TEST

/* Random damage anywhere (data area included): load or reject cleanly. Under ASan this is the
 * "never reads out of bounds" check. */
START_TEST(test_random_damage) {
    size_t n;
    unsigned char *orig = read_all(fixture, &n);
    unsigned char *b = malloc(n);
    srand(1234);
    for (int trial = 0; trial < 60; trial++) {
        memcpy(b, orig, n);
        int flips = 1 + rand() % 8;
        for (int k = 0; k < flips; k++) b[(size_t)rand() % n] ^= (unsigned char)(1 + rand() % 255);
        dpt_error err;
        (void)load_bytes(b, n, &err);
    }
    free(b);
    free(orig);
}
END_TEST

START_TEST(test_semantic_errors) {
    dpt_weights *w = open_fixture();
    static model_desc d;

    /* missing required tensor */
    desc_from(&d, w);
    int k = tensor_index(&d, "denoising_net.motion_dec.0.weight");
    d.t[k] = d.t[d.n_tensors - 1];
    d.data[k] = d.data[d.n_tensors - 1];
    d.n_tensors--;
    expect_reject(&d, DPT_ERR_FORMAT, "'denoising_net.motion_dec.0.weight' is missing");

    /* wrong shape */
    desc_from(&d, w);
    k = tensor_index(&d, "denoising_net.person_proj.bias");
    d.t[k].shape[0] -= 1;
    d.t[k].nbytes -= 4;
    expect_reject(&d, DPT_ERR_FORMAT, "has shape");

    /* unexpected extra tensor */
    desc_from(&d, w);
    d.t[d.n_tensors] = d.t[tensor_index(&d, "stats.exp_mean")];
    d.t[d.n_tensors].name = "stats.extra";
    d.data[d.n_tensors] = d.data[tensor_index(&d, "stats.exp_mean")];
    d.force_offset[d.n_tensors] = d.force_nbytes[d.n_tensors] = -1;
    d.n_tensors++;
    expect_reject(&d, DPT_ERR_FORMAT, "unexpected tensor 'stats.extra'");

    /* duplicate tensor name */
    desc_from(&d, w);
    d.t[1].name = d.t[0].name;
    expect_reject(&d, DPT_ERR_FORMAT, "appears twice");

    /* nbytes disagreeing with the shape */
    desc_from(&d, w);
    d.force_nbytes[0] = (int64_t)d.t[0].nbytes + 4;
    expect_reject(&d, DPT_ERR_FORMAT, "bytes, its shape and dtype need");

    /* misaligned and out-of-range offsets */
    desc_from(&d, w);
    d.force_offset[2] = 4;
    expect_reject(&d, DPT_ERR_FORMAT, "not 64-byte aligned");
    desc_from(&d, w);
    d.force_offset[2] = (int64_t)1 << 40;
    expect_reject(&d, DPT_ERR_FORMAT, "outside the file");

    /* overlapping tensors */
    desc_from(&d, w);
    d.force_offset[3] = 0;
    expect_reject(&d, DPT_ERR_FORMAT, "overlap");

    /* metadata: missing key, wrong type, unsupported value */
    desc_from(&d, w);
    k = meta_index(&d, "dpt.n_layers");
    d.meta[k] = d.meta[d.n_meta - 1];
    d.n_meta--;
    expect_reject(&d, DPT_ERR_FORMAT, "'dpt.n_layers' is missing");
    desc_from(&d, w);
    k = meta_index(&d, "dpt.n_layers");
    d.meta[k].type = DPT_META_STRING;
    d.meta[k].s = "2";
    expect_reject(&d, DPT_ERR_FORMAT, "should be int");
    desc_from(&d, w);
    k = meta_index(&d, "dpt.diff_schedule");
    d.meta[k].s = "exotic";
    expect_reject(&d, DPT_ERR_UNSUPPORTED, "'exotic' is not supported");
    desc_from(&d, w);
    k = meta_index(&d, "audio.do_stable_layer_norm");
    d.meta[k].i = 1;
    expect_reject(&d, DPT_ERR_UNSUPPORTED, "do_stable_layer_norm");
    desc_from(&d, w);
    k = meta_index(&d, "dpt.n_heads");
    d.meta[k].i = 0;
    expect_reject(&d, DPT_ERR_FORMAT, "'dpt.n_heads' = 0");
    desc_from(&d, w);
    k = meta_index(&d, "dpt.n_layers");
    d.meta[k].i += 1; /* hyperparameters imply a layer the file does not have */
    expect_reject(&d, DPT_ERR_FORMAT, "is missing");
    desc_from(&d, w);
    k = meta_index(&d, "audio.conv_kernel");
    d.meta[k].s = "10,3,x";
    expect_reject(&d, DPT_ERR_FORMAT, "not a list");

    /* NaN inside a tensor */
    desc_from(&d, w);
    k = tensor_index(&d, "stats.exp_std");
    float *bad = malloc(d.t[k].nbytes);
    memcpy(bad, d.data[k], d.t[k].nbytes);
    bad[3] = NAN;
    d.data[k] = bad;
    expect_reject(&d, DPT_ERR_FORMAT, "NaN or Inf");
    free(bad);

    /* unknown dtype */
    desc_from(&d, w);
    d.t[0].dtype = 7;
    expect_reject(&d, DPT_ERR_FORMAT, "unknown dtype 7");

    dpt_weights_close(w);
}
END_TEST

/* Patch the u32 header field at `off` and recompute the header CRC (weights/FORMAT.md). */
static void patch_header_u32(unsigned char *b, size_t off, uint32_t v) {
    for (int i = 0; i < 4; i++) b[off + (size_t)i] = (unsigned char)(v >> (8 * i));
    uint64_t meta_off = 0, table_off = 0;
    for (int i = 7; i >= 0; i--) meta_off = meta_off << 8 | b[24 + i];
    for (int i = 7; i >= 0; i--) table_off = table_off << 8 | b[32 + i];
    uint32_t meta_size = (uint32_t)b[48] | (uint32_t)b[49] << 8 | (uint32_t)b[50] << 16 | (uint32_t)b[51] << 24;
    uint32_t table_size = (uint32_t)b[52] | (uint32_t)b[53] << 8 | (uint32_t)b[54] << 16 | (uint32_t)b[55] << 24;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, b, 56);
    crc = crc32(crc, b + meta_off, meta_size);
    crc = crc32(crc, b + table_off, table_size);
    for (int i = 0; i < 4; i++) b[56 + i] = (unsigned char)(crc >> (8 * i));
}

static void expect_bytes_reject(const unsigned char *b, size_t n, dpt_status want, const char *needle) {
    dpt_error err;
    dpt_status s = load_bytes(b, n, &err);
    ck_assert_msg(s == want, "expected status %d (%s), got %d: %s", want, needle, s, err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message, needle);
    ck_assert_msg(strstr(err.message, "/tmp/dpt_test_weights_") != NULL, "message '%s' does not name the file",
                  err.message);
}

/* Resource limits (FORMAT.md "Limits"): counts and sizes past them are refused before anything is
 * allocated from them, each with a line naming the file and the limit. */
START_TEST(test_limits) {
    dpt_weights *w = open_fixture();
    static model_desc d;
    size_t n;
    unsigned char *b;

    /* tensor and metadata counts (header fields at 20 and 16) */
    desc_from(&d, w);
    b = serialise(&d, &n);
    patch_header_u32(b, 20, 65537);
    expect_bytes_reject(b, n, DPT_ERR_FORMAT, "65537 tensors /");
    expect_bytes_reject(b, n, DPT_ERR_FORMAT, "exceed the limits of 65536 / 4096");
    patch_header_u32(b, 20, 65536); /* at the limit: refused only because the table is too small */
    expect_bytes_reject(b, n, DPT_ERR_FORMAT, "cannot fit");
    free(b);
    b = serialise(&d, &n);
    patch_header_u32(b, 16, 4097);
    expect_bytes_reject(b, n, DPT_ERR_FORMAT, "limits of 65536 / 4096");
    free(b);

    /* string, key and name lengths */
    static char long_s[65537], long_k[257];
    memset(long_s, 'x', 65536);
    long_s[65536] = '\0';
    memset(long_k, 'k', 256);
    long_k[256] = '\0';
    desc_from(&d, w);
    int k = meta_index(&d, "general.exporter");
    d.meta[k].s = long_s;
    expect_reject(&d, DPT_ERR_FORMAT, "string of 65536 bytes, over the limit of 65535");
    long_s[65535] = '\0'; /* 65535: accepted by the container (and ignored by the model) */
    size_t m;
    unsigned char *ok = serialise(&d, &m);
    dpt_error err;
    ck_assert_int_eq(load_bytes(ok, m, &err), DPT_OK);
    free(ok);
    desc_from(&d, w);
    d.meta[k].key = long_k;
    expect_reject(&d, DPT_ERR_FORMAT, "key of 256 bytes, over the limit of 255");
    desc_from(&d, w);
    d.t[0].name = long_k;
    expect_reject(&d, DPT_ERR_FORMAT, "name of 256 bytes, over the limit of 255");

    /* dimensions: more than 2^40 elements */
    desc_from(&d, w);
    k = tensor_index(&d, "stats.exp_mean");
    d.t[k].shape[0] = ((int64_t)1 << 40) + 1;
    d.force_nbytes[k] = 0;
    expect_reject(&d, DPT_ERR_FORMAT, "limit of 2^40 elements");
    /* within it, but more than the file holds: refused before any allocation */
    d.t[k].shape[0] = (int64_t)1 << 38;
    d.force_nbytes[k] = (int64_t)1 << 40;
    expect_reject(&d, DPT_ERR_FORMAT, "lies outside the file's data area");

    /* hyperparameters whose tables and windows would be absurd */
    const struct { const char *key; int64_t v; const char *needle; } hp[] = {
        {"dpt.n_diff_steps", 10001, "= 10001, expected 1..10000"},
        {"dpt.feature_dim", 8193, "= 8193, expected 2..8192"},
        {"dpt.n_motions", 10001, "= 10001, expected 1..10000"},
        {"dpt.n_prev_motions", 10001, "= 10001, expected 1..10000"},
        {"audio.hidden_size", 8193, "= 8193, expected 1..8192"},
        {"style.n_motions", 10001, "= 10001, expected 1..10000"},
    };
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++) {
        desc_from(&d, w);
        d.meta[meta_index(&d, hp[i].key)].i = hp[i].v;
        expect_reject(&d, DPT_ERR_FORMAT, hp[i].needle);
    }
    dpt_weights_close(w);
}
END_TEST

START_TEST(test_strerror) {
    for (int s = 0; s <= DPT_ERR_CANCELLED; s++) {
        const char *m = dpt_strerror((dpt_status)s);
        ck_assert_ptr_nonnull(m);
        ck_assert(strlen(m) > 0);
    }
    ck_assert_str_eq(dpt_strerror((dpt_status)999), "unknown error");
}
END_TEST

int main(void) {
    Suite *s = suite_create("weights");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_fixture_loads);
    tcase_add_test(tc, test_round_trip_bytes);
    tcase_add_test(tc, test_read_mode_equals_mmap);
    tcase_add_test(tc, test_metadata_api);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_truncations);
    tcase_add_test(tc, test_magic_and_version);
    tcase_add_test(tc, test_flipped_header_and_table_bytes);
    tcase_add_test(tc, test_random_damage);
    tcase_add_test(tc, test_semantic_errors);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);
    return dpt_check_run(s);
}
