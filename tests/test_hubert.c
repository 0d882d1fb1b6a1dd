/* Audio encoder (lib/hubert.c) and its kernels (kernels/conv.c): the convolution lowerings, column
 * moments and interpolation against direct double-precision formulas; the encoder on
 * the tiny fixture model (stage order and shapes, n_pad ≤ 0 resampling, thread-count invariance bit for bit,
 * silence, every error path). Parity with PyTorch: tests/python/test_hubert_parity.py. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "conv.h"
#include "dpt.h"
#include "hubert.h"
#include "kernels.h"
#include "model.h"

#define FIXTURE "tests/fixtures/tiny.dpt"

static unsigned rng_state = 12345u;
static float frand(void) { /* uniform in [−1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) * (1.0 / 8388608.0)) - 1.0f;
}

static float *rand_array(size_t n) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++) x[i] = frand();
    return x;
}

/* ---- kernels ---- */

START_TEST(t_conv_strided_vs_naive) {
    /* (c_in, c_out, k, s): HuBERT's first layer, the k3/s2 and k2/s2 layers, k < s, k = 2s+1 */
    const int cases[][4] = {{1, 16, 10, 5}, {8, 12, 3, 2}, {8, 4, 2, 2}, {3, 5, 2, 3}, {2, 7, 5, 2}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int c_in = cases[ci][0], c_out = cases[ci][1], k = cases[ci][2], s = cases[ci][3];
        long t_out = 37, t_in = (t_out - 1) * s + k;
        int ldy = c_out + 3;
        float *x = rand_array((size_t)t_in * c_in), *w = rand_array((size_t)c_out * c_in * k);
        float *b = rand_array(c_out), *w_r = malloc(sizeof(float) * c_out * c_in * k);
        float *y = calloc((size_t)t_out * ldy, sizeof(float));
        dpt_k_conv_repack(w, c_out, c_in, k, w_r);
        ck_assert_int_eq(dpt_k_conv_out_len(t_in, k, s), t_out);
        ck_assert_int_eq(dpt_k_conv_out_len(k - 1, k, s), 0);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            for (size_t i = 0; i < (size_t)t_out * ldy; i++) y[i] = 99.0f; /* poison */
            dpt_k_conv1d_strided(x, c_in, w_r, with_bias ? b : NULL, c_out, k, s, t_out, y, ldy);
            for (long t = 0; t < t_out; t++) {
                for (int o = 0; o < c_out; o++) {
                    double ref = with_bias ? b[o] : 0.0;
                    for (int c = 0; c < c_in; c++)
                        for (int j = 0; j < k; j++)
                            ref += (double)w[((size_t)o * c_in + c) * k + j] *
                                   x[(size_t)(s * t + j) * c_in + c];
                    ck_assert_msg(fabs(y[t * ldy + o] - ref) < 1e-5,
                                  "case %zu t %ld o %d: %g vs %g", ci, t, o, y[t * ldy + o], ref);
                }
                for (int o = c_out; o < ldy; o++) ck_assert(y[t * ldy + o] == 99.0f);
            }
        }
        free(x), free(w), free(b), free(w_r), free(y);
    }
}
END_TEST

START_TEST(t_conv_grouped_vs_naive) {
    /* even kernel (HuBERT's positional conv: pad k/2, last frame dropped) and odd kernel */
    const int cases[][4] = {{12, 3, 8, 4}, {8, 2, 7, 3}, {6, 1, 4, 2}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int C = cases[ci][0], G = cases[ci][1], K = cases[ci][2], pad = cases[ci][3];
        int cg = C / G;
        long T = 23;
        float *x = rand_array((size_t)T * C), *w = rand_array((size_t)C * cg * K), *b = rand_array(C);
        float *w_r = malloc(sizeof(float) * C * cg * K), *y = malloc(sizeof(float) * T * C);
        float *scratch = malloc(sizeof(float) * 5 * K * cg);
        dpt_k_conv_repack(w, C, cg, K, w_r);
        /* groups in two calls, im2col blocks of 5 rows (not a divisor of T) */
        dpt_k_conv1d_grouped(x, T, C, w_r, b, C, K, G, 0, 1, pad, T, y, scratch, 5);
        dpt_k_conv1d_grouped(x, T, C, w_r, b, C, K, G, 1, G, pad, T, y, scratch, 5);
        for (long t = 0; t < T; t++)
            for (int o = 0; o < C; o++) {
                int g = o / cg;
                double ref = b[o];
                for (int j = 0; j < K; j++) {
                    long ts = t + j - pad;
                    if (ts < 0 || ts >= T) continue;
                    for (int c = 0; c < cg; c++)
                        ref += (double)w[((size_t)o * cg + c) * K + j] * x[ts * C + g * cg + c];
                }
                ck_assert_msg(fabs(y[t * C + o] - ref) < 1e-5, "case %zu t %ld o %d", ci, t, o);
            }
        free(x), free(w), free(b), free(w_r), free(y), free(scratch);
    }
}
END_TEST

START_TEST(t_moments_merge) {
    const int cols = 5;
    const long rows = 1000;
    float *x = rand_array((size_t)rows * cols);
    for (long t = 0; t < rows; t++) x[t * cols + 1] = 1000.0f + 0.001f * x[t * cols + 1]; /* offset */
    double mean[5], m2[5], bm[5], bq[5];
    long n = 0;
    const long splits[] = {0, 1, 8, 333, 334, 999, 1000};
    for (int i = 0; i + 1 < 7; i++) {
        long r0 = splits[i], r1 = splits[i + 1];
        dpt_k_col_moments(x + r0 * cols, r1 - r0, cols, bm, bq);
        n = dpt_k_moments_merge(n, mean, m2, r1 - r0, bm, bq, cols);
    }
    ck_assert_int_eq(n, rows);
    for (int c = 0; c < cols; c++) {
        double mu = 0, var = 0;
        for (long t = 0; t < rows; t++) mu += x[t * cols + c];
        mu /= rows;
        for (long t = 0; t < rows; t++) var += (x[t * cols + c] - mu) * (x[t * cols + c] - mu);
        ck_assert_msg(fabs(mean[c] - mu) < 1e-9 * fmax(1, fabs(mu)), "mean col %d", c);
        ck_assert_msg(fabs(m2[c] - var) < 1e-9 * fmax(1e-6, var), "m2 col %d: %g vs %g", c, m2[c], var);
    }
    free(x);
}
END_TEST

START_TEST(t_interp_linear) {
    const int cols = 3;
    float *x = rand_array(81 * cols), *y = malloc(sizeof(float) * 162 * cols);
    /* 2n → n: the mean of frame pairs, exactly */
    dpt_k_interp_linear(x, 80, cols, 40, y);
    for (int i = 0; i < 40; i++)
        for (int c = 0; c < cols; c++)
            ck_assert(y[i * cols + c] == 0.5f * x[(2 * i) * cols + c] + 0.5f * x[(2 * i + 1) * cols + c]);
    /* identity */
    dpt_k_interp_linear(x, 81, cols, 81, y);
    ck_assert(memcmp(x, y, sizeof(float) * 81 * cols) == 0);
    /* 81 → 80 and 5 → 8 (upsampling, clamped left edge) against the §2.6 formula in float */
    const long sizes[][2] = {{81, 80}, {5, 8}, {7, 3}};
    for (int si = 0; si < 3; si++) {
        long n_in = sizes[si][0], n_out = sizes[si][1];
        dpt_k_interp_linear(x, n_in, cols, n_out, y);
        float scale = (float)n_in / (float)n_out;
        for (long i = 0; i < n_out; i++) {
            float src = scale * ((float)i + 0.5f) - 0.5f;
            if (src < 0) src = 0;
            long i0 = (long)floorf(src), i1 = i0 < n_in - 1 ? i0 + 1 : i0;
            float l = src - (float)i0;
            for (int c = 0; c < cols; c++) {
                double ref = (1.0 - l) * x[i0 * cols + c] + (double)l * x[i1 * cols + c];
                ck_assert_msg(fabs(y[i * cols + c] - ref) < 1e-6, "%ld→%ld i %ld", n_in, n_out, i);
            }
        }
    }
    free(x), free(y);
}
END_TEST

/* ---- encoder on the tiny fixture ---- */

static dpt_model *load_fixture(void) {
    dpt_model *m = NULL;
    dpt_error err = {0};
    dpt_load_params p = dpt_load_params_default();
    ck_assert_msg(dpt_model_load(FIXTURE, &p, &m, &err) == DPT_OK, "%s", err.message);
    return m;
}

static float *speechy(size_t n) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        x[i] = 0.3f * sinf(0.013f * (float)i) * frand() + 0.05f * sinf(0.2f * (float)i);
    return x;
}

typedef struct stage_log {
    int n;
    char names[16][32];
    long rows[16];
    int cols[16];
    int finite;
} stage_log;

static void on_stage(void *user, const char *stage, const float *data, long rows, int cols) {
    stage_log *s = user;
    if (s->n < 16) {
        snprintf(s->names[s->n], 32, "%s", stage);
        s->rows[s->n] = rows;
        s->cols[s->n] = cols;
        s->n++;
    }
    if (!dpt_all_finite(data, (size_t)rows * cols)) s->finite = 0;
}

START_TEST(t_encode_stages) {
    dpt_model *m = load_fixture();
    const dpt_audio_encoder *a = &m->audio;
    int L = m->info.n_motions; /* one window */
    size_t n = (size_t)640 * L;
    float *x = speechy(n), *f = NULL;
    dpt_error err = {0};
    stage_log log = {0};
    log.finite = 1;
    dpt_hubert_dump dump = {on_stage, &log};
    ck_assert_msg(dpt_hubert_encode_ex(m, x, n, L, 2, &dump, &f, &err) == DPT_OK, "%s", err.message);
    const char *want[] = {"pad_audio", "conv", "extract_features", "feature_projection", "pos_conv",
                          "encoder_ln", "last_hidden_state", "back_resample", "audio_feat"};
    const long rows[] = {(long)n + 80, 2 * L, 2 * L, 2 * L, 2 * L, 2 * L, 2 * L, L, L};
    const int cols[] = {1, a->conv_dim[a->n_conv - 1], a->conv_dim[a->n_conv - 1], a->hidden,
                        a->hidden, a->hidden, a->hidden, a->hidden, m->info.feature_dim};
    ck_assert_int_eq(log.n, 9);
    for (int i = 0; i < 9; i++) {
        ck_assert_str_eq(log.names[i], want[i]);
        ck_assert_msg(log.rows[i] == rows[i] && log.cols[i] == cols[i], "%s: (%ld, %d)", want[i],
                      log.rows[i], log.cols[i]);
    }
    ck_assert(log.finite);
    ck_assert(dpt_all_finite(f, (size_t)L * m->info.feature_dim));
    free(f);
    free(x);
    dpt_model_free(m);
}
END_TEST

START_TEST(t_encode_n_pad_le_0_resamples) {
    dpt_model *m = load_fixture();
    int L = 2 * m->info.n_motions;
    size_t n = (size_t)640 * L + 500; /* extra samples the demo keeps: C = 2L + 1 conv frames */
    float *x = speechy(n), *f = NULL;
    dpt_error err = {0};
    stage_log log = {0};
    log.finite = 1;
    dpt_hubert_dump dump = {on_stage, &log};
    ck_assert_msg(dpt_hubert_encode_ex(m, x, n, L, 1, &dump, &f, &err) == DPT_OK, "%s", err.message);
    ck_assert_str_eq(log.names[1], "conv");
    ck_assert_int_eq(log.rows[0], (long)n); /* 320·units + 80 − n < −1: pad_audio adds nothing */
    ck_assert_int_eq(log.rows[1], 2 * L + 1);
    ck_assert_int_eq(log.rows[2], 2 * L);
    free(f);
    free(x);
    dpt_model_free(m);
}
END_TEST

START_TEST(t_encode_threads_and_public_api) {
    dpt_model *m = load_fixture();
    size_t n = 16000 * 3 + 123;
    float *x = speechy(n), *f1 = NULL;
    int n1 = 0;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_encode_audio(m, x, n, 1, &f1, &n1, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(n1 % m->info.n_motions, 0);
    size_t cnt = (size_t)n1 * m->info.feature_dim;
    /* the split over threads must not change a bit */
    for (int nt = 2; nt <= 3; nt++) {
        float *f = NULL;
        int nf = 0;
        ck_assert_msg(dpt_model_encode_audio(m, x, n, nt, &f, &nf, &err) == DPT_OK, "%s", err.message);
        ck_assert_int_eq(nf, n1);
        ck_assert_msg(!memcmp(f, f1, sizeof(float) * cnt), "1 vs %d threads: features differ", nt);
        free(f);
    }
    free(f1);
    /* silence: the 1e-5 epsilon keeps it finite */
    memset(x, 0, sizeof(float) * n);
    ck_assert_msg(dpt_model_encode_audio(m, x, n, 0, &f1, &n1, &err) == DPT_OK, "%s", err.message);
    ck_assert(dpt_all_finite(f1, (size_t)n1 * m->info.feature_dim));
    free(f1);
    free(x);
    dpt_model_free(m);
}
END_TEST

START_TEST(t_encode_errors) {
    dpt_model *m = load_fixture();
    float x[2000], *f = (float *)1;
    int nf = 7;
    for (int i = 0; i < 2000; i++) x[i] = frand();
    dpt_error err = {0};
    ck_assert_int_eq(dpt_hubert_encode(NULL, x, 2000, 1, 1, &f, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(dpt_hubert_encode(m, NULL, 2000, 1, 1, &f, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_hubert_encode(m, x, 2000, 1, 1, NULL, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_hubert_encode(m, x, 0, 1, 1, &f, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_hubert_encode(m, x, 2000, 0, 1, &f, &err), DPT_ERR_INVALID_ARG);
    /* too short for the conv stack (receptive field 400 samples) */
    ck_assert_int_eq(dpt_hubert_encode(m, x, 300, 1, 1, &f, &err), DPT_ERR_INVALID_ARG);
    ck_assert_msg(strstr(err.message, "too short") != NULL, "%s", err.message);
    ck_assert_ptr_null(strchr(err.message, '\n'));
    /* shorter than the reflect width of pad_audio */
    ck_assert_int_eq(dpt_hubert_encode(m, x, 10, 1, 1, &f, &err), DPT_ERR_INVALID_ARG);
    x[5] = NAN;
    ck_assert_int_eq(dpt_hubert_encode(m, x, 2000, 1, 1, &f, &err), DPT_ERR_INVALID_ARG);
    ck_assert_msg(strstr(err.message, "NaN") != NULL, "%s", err.message);
    x[5] = 0.0f;
    /* error without an error struct */
    ck_assert_int_eq(dpt_hubert_encode(m, x, 0, 1, 1, &f, NULL), DPT_ERR_INVALID_ARG);
    /* public API: NULL, empty and non-finite input */
    ck_assert_int_eq(dpt_model_encode_audio(NULL, x, 2000, 1, &f, &nf, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(nf, 0);
    ck_assert_int_eq(dpt_model_encode_audio(m, x, 2000, 1, NULL, &nf, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_model_encode_audio(m, x, 0, 1, &f, &nf, &err), DPT_ERR_INVALID_ARG);
    x[7] = INFINITY;
    ck_assert_int_eq(dpt_model_encode_audio(m, x, 2000, 1, &f, &nf, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(f);
    dpt_model_free(m);
}
END_TEST

static void quiet_log(int level, const char *message, void *user) {
    (void)level;
    (void)message;
    (void)user;
}

int main(void) {
    dpt_log_set_callback(quiet_log, NULL);
    Suite *s = suite_create("hubert");
    TCase *tk = tcase_create("kernels");
    tcase_add_test(tk, t_conv_strided_vs_naive);
    tcase_add_test(tk, t_conv_grouped_vs_naive);
    tcase_add_test(tk, t_moments_merge);
    tcase_add_test(tk, t_interp_linear);
    suite_add_tcase(s, tk);
    TCase *te = tcase_create("encoder");
    tcase_set_timeout(te, 120);
    tcase_add_test(te, t_encode_stages);
    tcase_add_test(te, t_encode_n_pad_le_0_resamples);
    tcase_add_test(te, t_encode_threads_and_public_api);
    tcase_add_test(te, t_encode_errors);
    suite_add_tcase(s, te);
    return dpt_check_run(s);
}
