/* FLAME files and vertices (lib/flame.c): load refusals and API argument errors, plus values with a
 * closed form (zero coefficients give the template, a pure global rotation rotates the template about
 * the root joint, a one-hot shape adds its direction). The test writes its own small FLAME files
 * (V = 7 vertices, 5 joints) with an independent writer of the container (weights/FORMAT.md), so
 * every variant has a correct checksum and reaches the FLAME checks. Parity with upstream's LBS on
 * official-size models is tests/python/test_flame.py. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check_main.h"
#include "dpt.h"

#define V 7
#define F 4
#define J 5
#define NB 150
#define P 36
#define NUV 5

/* ---- a FLAME model in memory and its serialisation ---- */

typedef struct tensor {
    const char *name;
    int ndim;
    int64_t dims[4];
    float *data;
} tensor;

typedef struct meta {
    const char *key;
    int is_int;
    int64_t i;
    const char *s;
} meta;

typedef struct model {
    int n_t, n_m;
    tensor t[12];
    meta m[8];
    float v_template[V * 3], shapedirs[V * 3 * NB], posedirs[P * V * 3], jreg[J * V], parents[J],
        weights[V * J], faces[F * 3], vt[NUV * 2], ft[F * 3];
} model;

static unsigned rng_state = 1;
static float rnd(void) { /* uniform in [-0.5, 0.5) */
    rng_state = rng_state * 1103515245u + 12345u;
    return (float)(rng_state >> 8) / 16777216.0f - 0.5f;
}

static void add_t(model *m, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, float *data) {
    tensor *t = &m->t[m->n_t++];
    t->name = name;
    t->ndim = ndim;
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->dims[2] = d2;
    t->data = data;
}

static void make_model(model *m, int with_uv) {
    memset(m, 0, sizeof *m);
    rng_state = 7;
    for (int i = 0; i < V * 3; i++) m->v_template[i] = 0.2f * rnd();
    for (int i = 0; i < V * 3 * NB; i++) m->shapedirs[i] = 0.01f * rnd();
    for (int i = 0; i < P * V * 3; i++) m->posedirs[i] = 0.01f * rnd();
    for (int j = 0; j < J; j++) {          /* joint j = mean of vertices j and j + 1 */
        m->jreg[j * V + j] = 0.5f;
        m->jreg[j * V + j + 1] = 0.5f;
    }
    const float parents[J] = {-1, 0, 1, 1, 1};
    memcpy(m->parents, parents, sizeof parents);
    for (int v = 0; v < V; v++) {
        float s = 0;
        for (int j = 0; j < J; j++) s += m->weights[v * J + j] = rnd() + 0.6f;
        for (int j = 0; j < J; j++) m->weights[v * J + j] /= s;
    }
    const float faces[F * 3] = {0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 0, 3};
    memcpy(m->faces, faces, sizeof faces);
    for (int i = 0; i < NUV * 2; i++) m->vt[i] = rnd() + 0.5f;
    const float ft[F * 3] = {0, 1, 2, 2, 3, 4, 4, 0, 1, 1, 3, 2};
    memcpy(m->ft, ft, sizeof ft);
    add_t(m, "flame.v_template", 2, V, 3, 0, m->v_template);
    add_t(m, "flame.shapedirs", 3, V, 3, NB, m->shapedirs);
    add_t(m, "flame.posedirs", 2, P, V * 3, 0, m->posedirs);
    add_t(m, "flame.J_regressor", 2, J, V, 0, m->jreg);
    add_t(m, "flame.parents", 1, J, 0, 0, m->parents);
    add_t(m, "flame.lbs_weights", 2, V, J, 0, m->weights);
    add_t(m, "flame.faces", 2, F, 3, 0, m->faces);
    if (with_uv) {
        add_t(m, "flame.uv.vt", 2, NUV, 2, 0, m->vt);
        add_t(m, "flame.uv.ft", 2, F, 3, 0, m->ft);
    }
    m->m[m->n_m++] = (meta){"general.format", 0, 0, "libdpt"};
    m->m[m->n_m++] = (meta){"kind", 0, 0, "flame"};
    m->m[m->n_m++] = (meta){"flame_source", 0, 0, "test_flame.c synthetic"};
    m->m[m->n_m++] = (meta){"flame.n_shape", 1, 100, NULL};
    m->m[m->n_m++] = (meta){"flame.n_exp", 1, 50, NULL};
}

static tensor *find_t(model *m, const char *name) {
    for (int i = 0; i < m->n_t; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

static void drop_t(model *m, const char *name) {
    tensor *t = find_t(m, name);
    *t = m->t[--m->n_t];
}

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
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

static void pad_to(buf *b, size_t n) {
    while (b->n < n) put_le(b, 0, 1);
}

static int64_t n_elem(const tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->dims[d];
    return n;
}

/* The .dpt bytes of a model (the tensors' data is written for their declared element count, taken
 * cyclically from the source array so that changed shapes stay in bounds). */
static unsigned char *serialise(const model *m, size_t *n_out, size_t src_n[12]) {
    buf meta = {0}, table = {0};
    for (int i = 0; i < m->n_m; i++) {
        const struct meta *e = &m->m[i];
        put_le(&meta, strlen(e->key), 2);
        put(&meta, e->key, strlen(e->key));
        put_le(&meta, e->is_int ? 1 : 3, 1);
        if (e->is_int) {
            put_le(&meta, (uint64_t)e->i, 8);
        } else {
            put_le(&meta, strlen(e->s), 4);
            put(&meta, e->s, strlen(e->s));
        }
    }
    uint64_t off = 0, offsets[12];
    for (int i = 0; i < m->n_t; i++) {
        const tensor *t = &m->t[i];
        put_le(&table, strlen(t->name), 2);
        put(&table, t->name, strlen(t->name));
        put_le(&table, 0, 1);
        put_le(&table, (uint64_t)t->ndim, 1);
        for (int d = 0; d < t->ndim; d++) put_le(&table, (uint64_t)t->dims[d], 8);
        offsets[i] = off;
        put_le(&table, off, 8);
        put_le(&table, (uint64_t)n_elem(t) * 4, 8);
        off = (off + (uint64_t)n_elem(t) * 4 + 63) / 64 * 64;
    }
    const uint64_t table_off = 64 + meta.n, data_off = (table_off + table.n + 63) / 64 * 64;
    buf out = {0};
    put(&out, "DPTW", 4);
    put_le(&out, 1, 4);
    put_le(&out, 0, 8); /* file size, patched below */
    put_le(&out, (uint64_t)m->n_m, 4);
    put_le(&out, (uint64_t)m->n_t, 4);
    put_le(&out, 64, 8);
    put_le(&out, table_off, 8);
    put_le(&out, data_off, 8);
    put_le(&out, meta.n, 4);
    put_le(&out, table.n, 4);
    put_le(&out, 0, 4); /* crc */
    put_le(&out, 0, 4);
    put(&out, meta.p, meta.n);
    put(&out, table.p, table.n);
    for (int i = 0; i < m->n_t; i++) {
        pad_to(&out, data_off + offsets[i]);
        const tensor *t = &m->t[i];
        for (int64_t k = 0; k < n_elem(t); k++) put(&out, &t->data[(size_t)k % src_n[i]], 4);
    }
    uint64_t size = out.n;
    for (int i = 0; i < 8; i++) out.p[8 + i] = (unsigned char)(size >> (8 * i));
    uLong crc = crc32(0L, out.p, 56);
    crc = crc32(crc, meta.p, (uInt)meta.n);
    crc = crc32(crc, table.p, (uInt)table.n);
    for (int i = 0; i < 4; i++) out.p[56 + i] = (unsigned char)(crc >> (8 * i));
    free(meta.p);
    free(table.p);
    *n_out = out.n;
    return out.p;
}

static char tmp_path[256];
static int tmp_counter;

static const char *write_bytes(const unsigned char *b, size_t n) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/dpt_test_flame_%d_%d.dpt", (int)getpid(), tmp_counter++);
    FILE *f = fopen(tmp_path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    return tmp_path;
}

/* Source sizes for serialise: the arrays' real lengths (before any shape change). */
static void source_sizes(const model *m, size_t src_n[12]) {
    for (int i = 0; i < m->n_t; i++) src_n[i] = (size_t)n_elem(&m->t[i]);
}

static const char *write_model(const model *m, const size_t *src) {
    size_t n, s[12];
    if (!src) source_sizes(m, s);
    unsigned char *b = serialise(m, &n, src ? (size_t *)src : s);
    const char *p = write_bytes(b, n);
    free(b);
    return p;
}

/* Load a file as FLAME: status, message in err, the file removed. */
static dpt_status load_path(const char *p, dpt_error *err) {
    dpt_flame *f = (dpt_flame *)(uintptr_t)1;
    memset(err, 0, sizeof *err);
    dpt_status s = dpt_flame_load(p, &f, err);
    if (s == DPT_OK) ck_assert_ptr_nonnull(f);
    else ck_assert_ptr_null(f);
    dpt_flame_free(f);
    remove(p);
    return s;
}

static void expect_refusal(const model *m, const size_t *src, dpt_status want, const char *needle) {
    dpt_error err;
    const char *p = write_model(m, src);
    char path[256];
    snprintf(path, sizeof path, "%s", p);
    dpt_status s = load_path(p, &err);
    ck_assert_msg(s == want, "status %d, want %d (%s) for '%s'", s, want, err.message, needle);
    ck_assert_msg(strstr(err.message, path) != NULL, "message does not name the file: %s", err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' not in: %s", needle, err.message);
    ck_assert_ptr_null(strchr(err.message, '\n'));
}

static dpt_flame *load_model(const model *m) {
    dpt_error err = {0};
    dpt_flame *f = NULL;
    const char *p = write_model(m, NULL);
    dpt_status s = dpt_flame_load(p, &f, &err);
    remove(p);
    ck_assert_msg(s == DPT_OK, "%s", err.message);
    return f;
}

static uint64_t rd_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static void wr_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The model's file with tensor `name` declared d0 rows long (its data moved past the end of the
 * file, which is extended as a sparse hole: no disk, nothing read before the count is checked). */
static const char *write_huge_rows(const model *m, const char *name, int64_t d0) {
    size_t n, s[12];
    source_sizes(m, s);
    unsigned char *b = serialise(m, &n, s);
    const uint64_t table_off = rd_le(b + 32, 8), data_off = rd_le(b + 40, 8);
    const uint64_t meta_size = rd_le(b + 48, 4), table_size = rd_le(b + 52, 4);
    unsigned char *e = NULL;
    for (size_t k = table_off; k + 2 + strlen(name) <= table_off + table_size; k++)
        if (rd_le(b + k, 2) == strlen(name) && memcmp(b + k + 2, name, strlen(name)) == 0) e = b + k;
    ck_assert_ptr_nonnull(e);
    unsigned char *q = e + 2 + strlen(name);
    const int ndim = q[1];
    int64_t per_row = 4;
    for (int d = 1; d < ndim; d++) per_row *= (int64_t)rd_le(q + 2 + 8 * d, 8);
    const uint64_t off = (n - data_off + 63) / 64 * 64, nbytes = (uint64_t)d0 * (uint64_t)per_row;
    wr_le(q + 2, (uint64_t)d0, 8);
    wr_le(q + 2 + 8 * ndim, off, 8);
    wr_le(q + 2 + 8 * ndim + 8, nbytes, 8);
    const uint64_t size = data_off + off + nbytes;
    wr_le(b + 8, size, 8);
    uLong crc = crc32(0L, b, 56);
    crc = crc32(crc, b + 64, (uInt)meta_size);
    crc = crc32(crc, b + table_off, (uInt)table_size);
    wr_le(b + 56, crc, 4);
    const char *p = write_bytes(b, n);
    free(b);
    ck_assert_int_eq(truncate(p, (off_t)size), 0);
    return p;
}

/* Counts from the file (vertices, faces, uv coordinates) beyond 2^24 are refused before the
 * loader allocates anything from them; at 2^24 the file itself is checked (data present). */
START_TEST(test_count_limits) {
    model m;
    make_model(&m, 1);
    const char *const names[] = {"flame.v_template", "flame.faces", "flame.uv.vt"};
    for (int k = 0; k < 3; k++) {
        dpt_error err;
        const char *p = write_huge_rows(&m, names[k], ((int64_t)1 << 24) + 1);
        char path[256];
        snprintf(path, sizeof path, "%s", p);
        dpt_status st = load_path(p, &err);
        ck_assert_msg(st == DPT_ERR_FORMAT, "%s: %d %s", names[k], st, err.message);
        ck_assert_msg(strstr(err.message, path) && strstr(err.message, names[k]) &&
                      strstr(err.message, "beyond the limit of 2^24"), "%s", err.message);
    }
    /* a count within the limit passes that check and fails on the data (here: wrong shapes) */
    dpt_error err;
    dpt_status st = load_path(write_huge_rows(&m, "flame.v_template", (int64_t)1 << 24), &err);
    ck_assert_int_eq(st, DPT_ERR_FORMAT);
    ck_assert_ptr_null(strstr(err.message, "2^24"));
}
END_TEST

/* ---- loading ---- */

START_TEST(test_loads_and_describes) {
    model m;
    make_model(&m, 1);
    dpt_flame *f = load_model(&m);
    dpt_flame_info i;
    dpt_flame_get_info(f, &i);
    ck_assert_int_eq(i.n_vertices, V);
    ck_assert_int_eq(i.n_faces, F);
    ck_assert_int_eq(i.n_joints, J);
    ck_assert_int_eq(i.n_shape, 100);
    ck_assert_int_eq(i.n_exp, 50);
    ck_assert_int_eq(i.has_uv, 1);
    ck_assert_int_eq(i.n_uv, NUV);
    ck_assert_str_eq(i.source, "test_flame.c synthetic");
    const int32_t *faces = dpt_flame_faces(f);
    for (int k = 0; k < F * 3; k++) ck_assert_int_eq(faces[k], (int)m.faces[k]);
    const float *vt;
    const int32_t *ft;
    dpt_flame_uv(f, &vt, &ft);
    ck_assert_ptr_nonnull(vt);
    for (int k = 0; k < NUV * 2; k++) ck_assert_float_eq(vt[k], m.vt[k]);
    for (int k = 0; k < F * 3; k++) ck_assert_int_eq(ft[k], (int)m.ft[k]);
    dpt_flame_free(f);

    make_model(&m, 0);
    f = load_model(&m);
    dpt_flame_get_info(f, &i);
    ck_assert_int_eq(i.has_uv, 0);
    dpt_flame_uv(f, &vt, &ft);
    ck_assert_ptr_null(vt);
    ck_assert_ptr_null(ft);
    dpt_flame_free(f);
    dpt_flame_free(NULL);
}
END_TEST

START_TEST(test_missing_and_not_flame) {
    dpt_error err = {0};
    dpt_flame *f = NULL;
    ck_assert_int_eq(dpt_flame_load("/nonexistent/flame.dpt", &f, &err), DPT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/flame.dpt"));
    ck_assert_int_eq(dpt_flame_load(NULL, &f, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_flame_load("x", NULL, &err), DPT_ERR_INVALID_ARG);
    model m;
    make_model(&m, 0);
    m.m[1].s = "model";
    expect_refusal(&m, NULL, DPT_ERR_UNSUPPORTED, "not a FLAME file");
    make_model(&m, 0);
    m.m[1] = m.m[--m.n_m]; /* no kind at all */
    expect_refusal(&m, NULL, DPT_ERR_UNSUPPORTED, "not a FLAME file");
    /* and the model loader refuses a FLAME file */
    make_model(&m, 0);
    const char *p = write_model(&m, NULL);
    dpt_model *mod = NULL;
    ck_assert_int_eq(dpt_model_load(p, NULL, &mod, &err), DPT_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.message, "dpt_flame_load"));
    ck_assert_ptr_null(mod);
    remove(p);
}
END_TEST

START_TEST(test_truncated) {
    model m;
    make_model(&m, 1);
    size_t n, s[12];
    source_sizes(&m, s);
    unsigned char *b = serialise(&m, &n, s);
    const size_t cuts[] = {0, 10, 63, 64, 100, 300, n / 2, n - 64, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        dpt_error err;
        dpt_status st = load_path(write_bytes(b, cuts[k]), &err);
        ck_assert_msg(st == DPT_ERR_FORMAT || st == DPT_ERR_IO, "cut %zu: %d %s", cuts[k], st, err.message);
    }
    free(b);
}
END_TEST

START_TEST(test_wrong_shapes) {
    /* every tensor with one dimension off by one: refused, naming the tensor (except the count of
     * uv coordinates, which only the file gives) */
    model m;
    make_model(&m, 1);
    for (int t = 0; t < m.n_t; t++)
        for (int d = 0; d < m.t[t].ndim; d++) {
            if (!strcmp(m.t[t].name, "flame.uv.vt") && d == 0) continue;
            model w;
            make_model(&w, 1);
            size_t s[12];
            source_sizes(&w, s);
            w.t[t].dims[d] += 1;
            dpt_error err;
            dpt_status st = load_path(write_model(&w, s), &err);
            ck_assert_msg(st == DPT_ERR_FORMAT, "%s dim %d: %d %s", w.t[t].name, d, st, err.message);
            ck_assert_msg(strstr(err.message, "flame.") != NULL, "%s", err.message);
        }
    model w;
    make_model(&w, 0);
    size_t s[12];
    source_sizes(&w, s);
    find_t(&w, "flame.shapedirs")->ndim = 2;
    expect_refusal(&w, s, DPT_ERR_FORMAT, "'flame.shapedirs' has shape (7, 3)");
}
END_TEST

START_TEST(test_bad_values) {
    model m;
    make_model(&m, 0);
    m.faces[5] = V;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "'flame.faces'");
    make_model(&m, 0);
    m.faces[2] = 1.5f;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "'flame.faces'");
    make_model(&m, 0);
    m.faces[0] = -1;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "'flame.faces'");
    make_model(&m, 0);
    m.parents[0] = 0;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "joint 0 has parent 0");
    make_model(&m, 0);
    m.parents[2] = 3;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "joint 2 has parent 3");
    make_model(&m, 0);
    m.parents[3] = 3;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "joint 3 has parent 3");
    make_model(&m, 0);
    m.v_template[4] = NAN;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "'flame.v_template' has NaN");
    make_model(&m, 0);
    m.posedirs[100] = INFINITY;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "'flame.posedirs' has NaN");
    make_model(&m, 1);
    m.ft[7] = NUV;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "'flame.uv.ft'");
    make_model(&m, 1);
    m.vt[3] = 1.25f;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "outside [0, 1]");
    make_model(&m, 0);
    m.m[3].i = 99;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "'flame.n_shape'");
}
END_TEST

START_TEST(test_missing_and_unexpected_tensors) {
    const char *names[] = {"flame.v_template", "flame.shapedirs", "flame.posedirs", "flame.J_regressor",
                           "flame.parents", "flame.lbs_weights", "flame.faces"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        model m;
        make_model(&m, 0);
        drop_t(&m, names[k]);
        expect_refusal(&m, NULL, DPT_ERR_FORMAT, names[k]);
    }
    model m;
    make_model(&m, 1);
    drop_t(&m, "flame.uv.ft");
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "without 'flame.uv.ft'");
    make_model(&m, 0);
    add_t(&m, "flame.extra", 1, 3, 0, 0, m.v_template);
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "unexpected tensor 'flame.extra'");
    make_model(&m, 0);
    find_t(&m, "flame.J_regressor")->dims[0] = 4; /* 4 joints: the pose layout needs 5 */
    find_t(&m, "flame.parents")->dims[0] = 4;
    find_t(&m, "flame.lbs_weights")->dims[1] = 4;
    find_t(&m, "flame.posedirs")->dims[0] = 27;
    expect_refusal(&m, NULL, DPT_ERR_FORMAT, "4 joints");
}
END_TEST

/* ---- vertices ---- */

static float coef_shape[2 * 100], coef_exp[2 * 50], coef_pose[2 * 6];

START_TEST(test_argument_errors) {
    model m;
    make_model(&m, 0);
    dpt_flame *f = load_model(&m);
    float out[2 * V * 3];
    dpt_error err = {0};
    memset(coef_shape, 0, sizeof coef_shape);
    memset(coef_exp, 0, sizeof coef_exp);
    memset(coef_pose, 0, sizeof coef_pose);
    dpt_flame_params p = dpt_flame_params_default();
    ck_assert_int_eq(p.no_head, 0);
    ck_assert_int_eq(p.n_threads, 0);
#define CALL(fl, n, s, per, e, po, pp, o) dpt_flame_vertices(fl, n, s, per, e, po, pp, o, &err)
    ck_assert_int_eq(CALL(f, 2, coef_shape, 0, coef_exp, coef_pose, &p, out), DPT_OK);
    ck_assert_int_eq(CALL(f, 2, coef_shape, 1, coef_exp, coef_pose, NULL, out), DPT_OK);
    ck_assert_int_eq(CALL(NULL, 2, coef_shape, 0, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(CALL(f, 0, coef_shape, 0, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(CALL(f, -3, coef_shape, 0, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(CALL(f, 2, NULL, 0, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(CALL(f, 2, coef_shape, 0, NULL, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(CALL(f, 2, coef_shape, 0, coef_exp, NULL, &p, out), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(CALL(f, 2, coef_shape, 0, coef_exp, coef_pose, &p, NULL), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(CALL(f, 2, coef_shape, 2, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    p.n_threads = -1;
    ck_assert_int_eq(CALL(f, 2, coef_shape, 0, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    p.n_threads = 0;
    coef_exp[57] = NAN;
    ck_assert_int_eq(CALL(f, 2, coef_shape, 0, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "NaN"));
    coef_exp[57] = 0;
    coef_pose[10] = INFINITY;
    ck_assert_int_eq(CALL(f, 2, coef_shape, 0, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    coef_pose[10] = 0;
    coef_shape[150] = NAN; /* second frame's shape: only read with shape_per_frame */
    ck_assert_int_eq(CALL(f, 2, coef_shape, 0, coef_exp, coef_pose, &p, out), DPT_OK);
    ck_assert_int_eq(CALL(f, 2, coef_shape, 1, coef_exp, coef_pose, &p, out), DPT_ERR_INVALID_ARG);
    coef_shape[150] = 0;
#undef CALL
    dpt_flame_free(f);
}
END_TEST

static float joint0(const model *m, int k) {
    return 0.5f * (m->v_template[0 * 3 + k] + m->v_template[1 * 3 + k]);
}

START_TEST(test_closed_form_values) {
    model m;
    make_model(&m, 0);
    dpt_flame *f = load_model(&m);
    dpt_error err = {0};
    float out[2 * V * 3];
    float shape[100] = {0}, exp[2 * 50] = {0}, pose[2 * 6] = {0};
    /* frame 0: zero pose → the template; frame 1: a global rotation of π/2 about z */
    pose[6 + 2] = (float)M_PI / 2;
    for (int nt = 1; nt <= 2; nt++) {
        dpt_flame_params p = dpt_flame_params_default();
        p.n_threads = nt;
        ck_assert_int_eq(dpt_flame_vertices(f, 2, shape, 0, exp, pose, &p, out, &err), DPT_OK);
        for (int i = 0; i < V * 3; i++) ck_assert_float_eq_tol(out[i], m.v_template[i], 1e-6f);
        const float c = cosf((float)M_PI / 2), s = sinf((float)M_PI / 2);
        for (int v = 0; v < V; v++) {
            const float x = m.v_template[v * 3] - joint0(&m, 0), y = m.v_template[v * 3 + 1] - joint0(&m, 1),
                        z = m.v_template[v * 3 + 2] - joint0(&m, 2);
            const float *o = out + V * 3 + v * 3;
            ck_assert_float_eq_tol(o[0], c * x - s * y + joint0(&m, 0), 1e-6f);
            ck_assert_float_eq_tol(o[1], s * x + c * y + joint0(&m, 1), 1e-6f);
            ck_assert_float_eq_tol(o[2], z + joint0(&m, 2), 1e-6f);
        }
        /* no_head: the global rotation is ignored */
        p.no_head = 1;
        ck_assert_int_eq(dpt_flame_vertices(f, 2, shape, 0, exp, pose, &p, out, &err), DPT_OK);
        for (int i = 0; i < V * 3; i++) ck_assert_float_eq_tol(out[V * 3 + i], m.v_template[i], 1e-6f);
    }
    /* one-hot shape 7 and expression 3 (direction 100 + 3), no pose: template + the directions */
    memset(pose, 0, sizeof pose);
    shape[7] = 2.0f;
    exp[50 + 3] = -1.5f;
    ck_assert_int_eq(dpt_flame_vertices(f, 2, shape, 0, exp, pose, NULL, out, &err), DPT_OK);
    for (int i = 0; i < V * 3; i++) {
        const float sd7 = m.shapedirs[i * NB + 7], sd103 = m.shapedirs[i * NB + 103];
        ck_assert_float_eq_tol(out[i], m.v_template[i] + 2.0f * sd7, 1e-6f);
        ck_assert_float_eq_tol(out[V * 3 + i], m.v_template[i] + 2.0f * sd7 - 1.5f * sd103, 1e-6f);
    }
    /* per-frame shape equal to the one shape: the same vertices */
    float shape2[200] = {0}, out2[2 * V * 3];
    shape2[7] = shape2[100 + 7] = 2.0f;
    ck_assert_int_eq(dpt_flame_vertices(f, 2, shape2, 1, exp, pose, NULL, out2, &err), DPT_OK);
    for (int i = 0; i < 2 * V * 3; i++) ck_assert_float_eq_tol(out2[i], out[i], 1e-6f);
    dpt_flame_free(f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("flame");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_loads_and_describes);
    tcase_add_test(tc, test_missing_and_not_flame);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_wrong_shapes);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_missing_and_unexpected_tensors);
    tcase_add_test(tc, test_argument_errors);
    tcase_add_test(tc, test_closed_form_values);
    tcase_add_test(tc, test_count_limits);
    suite_add_tcase(s, tc);
    return dpt_check_run(s);
}
