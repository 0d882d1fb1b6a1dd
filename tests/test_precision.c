/* Models loaded with DPT_PRECISION_BF16: an unknown precision is refused with one line; bf16
 * generations are finite, near the float32 ones without being equal to them, the same bits at 1 and
 * 2 threads, and (where the CPU has AVX512-BF16) near the emulated kernel's, which rounds the same
 * weights and sums in another order. DPT_PRECISION_INT8: near float32, the same bits at 1 and 2
 * threads and with every int8 kernel (portable, AVX512-VNNI, SDOT, I8MM: exact integer sums). The
 * deviation bound against the reference is in tests/python/test_sampler_parity.py (official size);
 * here the tiny model's own figures. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "dpt.h"
#include "kernels.h"
#include "model.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif
static const char *fixture = FIXTURE_DIR "/tiny.dpt";

static float *make_audio(size_t n) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = 0.3f * sinf(0.013f * (float)i) * sinf(0.0009f * (float)i);
    return x;
}

static dpt_result *generate(int precision, int threads) {
    dpt_load_params lp = dpt_load_params_default();
    lp.precision = precision;
    dpt_model *m = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_load(fixture, &lp, &m, &err) == DPT_OK, "%s", err.message);
    dpt_model_info info;
    dpt_model_get_info(m, &info);
    ck_assert_int_eq(info.precision, precision);
    ck_assert_ptr_nonnull(strstr(info.precision_name, precision == DPT_PRECISION_BF16   ? "bf16"
                                                      : precision == DPT_PRECISION_INT8 ? "int8"
                                                      : precision == DPT_PRECISION_F16  ? "f16"
                                                                                        : "f32"));
    dpt_gen_params p = dpt_gen_params_default();
    p.cfg_conds = DPT_COND_AUDIO;
    p.seed = 3;
    p.n_threads = threads;
    const size_t n = 30000;
    float *x = make_audio(n);
    dpt_result *r = NULL;
    ck_assert_msg(dpt_model_generate(m, x, n, (float[100]){0}, NULL, &p, &r, &err) == DPT_OK, "%s", err.message);
    free(x);
    dpt_model_free(m);
    return r;
}

static double max_abs(const float *a, size_t n) {
    double v = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i]) > v) v = fabs((double)a[i]);
    return v;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double v = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > v) v = fabs((double)a[i] - b[i]);
    return v;
}

START_TEST(unknown_precision_refused) {
    dpt_load_params lp = dpt_load_params_default();
    lp.precision = 7;
    dpt_model *m = NULL;
    dpt_error err = {0};
    ck_assert_int_eq(dpt_model_load(fixture, &lp, &m, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err.message, "precision 7"));
    ck_assert_ptr_null(strchr(err.message, '\n'));
}
END_TEST

START_TEST(bf16_near_f32_and_thread_independent) {
    dpt_result *f = generate(DPT_PRECISION_F32, 1);
    dpt_result *b1 = generate(DPT_PRECISION_BF16, 1);
    dpt_result *b2 = generate(DPT_PRECISION_BF16, 2);
    ck_assert_int_eq(f->n_frames, b1->n_frames);
    const size_t ne = (size_t)f->n_frames * 50, np = (size_t)f->n_frames * 6;
    for (size_t i = 0; i < ne; i++) ck_assert(isfinite(b1->exp[i]));
    ck_assert_msg(!memcmp(b1->exp, b2->exp, sizeof(float) * ne) && !memcmp(b1->pose, b2->pose, sizeof(float) * np),
                  "bf16: 2 threads differ from 1");
    const double de = max_diff(b1->exp, f->exp, ne) / max_abs(f->exp, ne);
    const double dp = max_diff(b1->pose, f->pose, np) / max_abs(f->pose, np);
    printf("tiny model, bf16 (%s) vs f32: exp %.2e, pose %.2e of max|f32|\n",
           dpt_k_bf16_native() ? "native" : "emulated", de, dp);
    /* bfloat16 keeps 8 bits: operands move by up to 2^-9; through 10 sampling steps the tiny
     * model's outputs move by about 1e-2 of their size. Not equal, not far. */
    ck_assert(de > 0.0 && de < 0.1 && dp < 0.1);
    dpt_result_free(f);
    dpt_result_free(b1);
    dpt_result_free(b2);
}
END_TEST

START_TEST(native_near_emulated) {
    if (dpt_k_set_bf16_native(1) != 0) {
        printf("SKIPPED: precision: native_near_emulated (no AVX512-BF16 / FEAT_BF16 on this CPU)\n");
        return;
    }
    dpt_result *nat = generate(DPT_PRECISION_BF16, 2);
    ck_assert_int_eq(dpt_k_set_bf16_native(0), 0);
    dpt_result *emu = generate(DPT_PRECISION_BF16, 2);
    dpt_k_set_bf16_native(1);
    const size_t ne = (size_t)nat->n_frames * 50;
    const double d = max_diff(nat->exp, emu->exp, ne) / max_abs(emu->exp, ne);
    printf("tiny model, bf16 native vs emulated: exp %.2e of max\n", d);
    /* the same rounded operands summed in another order: a sum that differs in its last bit can
     * round the next activation to the other bfloat16 neighbour, so the two drift apart by about
     * as much as bf16 from f32 (measured 1.9e-3 here), not more */
    ck_assert_msg(d > 0.0 && d < 1e-2, "native vs emulated: %g", d);
    dpt_result_free(nat);
    dpt_result_free(emu);
}
END_TEST

START_TEST(int8_near_f32_thread_and_kernel_independent) {
    dpt_result *f = generate(DPT_PRECISION_F32, 1);
    dpt_result *q1 = generate(DPT_PRECISION_INT8, 1);
    dpt_result *q2 = generate(DPT_PRECISION_INT8, 2);
    ck_assert_int_eq(f->n_frames, q1->n_frames);
    const size_t ne = (size_t)f->n_frames * 50, np = (size_t)f->n_frames * 6;
    for (size_t i = 0; i < ne; i++) ck_assert(isfinite(q1->exp[i]));
    ck_assert_msg(!memcmp(q1->exp, q2->exp, sizeof(float) * ne) && !memcmp(q1->pose, q2->pose, sizeof(float) * np),
                  "int8: 2 threads differ from 1");
    const double de = max_diff(q1->exp, f->exp, ne) / max_abs(f->exp, ne);
    const double dp = max_diff(q1->pose, f->pose, np) / max_abs(f->pose, np);
    printf("tiny model, int8 (%s) vs f32: exp %.2e, pose %.2e of max|f32|\n", dpt_k_int8_kernel(), de, dp);
    /* 8-bit operands move by up to half a step of 1/255 of a row's range and 1/127 of a column's
     * largest weight; through 10 steps the tiny model moves by 4e-3 of its size (measured) */
    ck_assert(de > 0.0 && de < 5e-2 && dp < 5e-2);
    /* every other kernel this CPU has (SDOT where I8MM is the default; portable): the same integer
     * sums, the same bits */
    static const char *const kernels[] = {"AVX512-VNNI", "I8MM", "SDOT", "portable"};
    const char *def = dpt_k_int8_kernel();
    for (int ki = 0; ki < 4; ki++) {
        if (!strcmp(kernels[ki], def) || dpt_k_set_int8_kernel(kernels[ki]) != 0) continue;
        dpt_result *p2 = generate(DPT_PRECISION_INT8, 2);
        dpt_k_set_int8_native(1);
        printf("int8: %s gives %s's bits: %s\n", kernels[ki], def,
               !memcmp(q2->exp, p2->exp, sizeof(float) * ne) ? "yes" : "NO");
        ck_assert_msg(!memcmp(q2->exp, p2->exp, sizeof(float) * ne) && !memcmp(q2->pose, p2->pose, sizeof(float) * np),
                      "int8: kernel %s differs from %s", kernels[ki], def);
        dpt_result_free(p2);
    }
    dpt_result_free(f);
    dpt_result_free(q1);
    dpt_result_free(q2);
}
END_TEST

/* f16 (weights rounded to half, float32 activations and sums): near f32 — much nearer than bf16 —
 * without being equal, the same bits at 1 and 2 threads; on aarch64 the native kernel (half
 * panels) and the forced fallback (float panels of the same halves) give the same bits, both
 * being the float32 kernel's arithmetic on the rounded weights. */
START_TEST(f16_near_f32_and_native_equals_emulated) {
    dpt_result *f = generate(DPT_PRECISION_F32, 1);
    dpt_result *h1 = generate(DPT_PRECISION_F16, 1);
    dpt_result *h2 = generate(DPT_PRECISION_F16, 2);
    const size_t ne = (size_t)f->n_frames * 50, np = (size_t)f->n_frames * 6;
    ck_assert_int_eq(f->n_frames, h1->n_frames);
    ck_assert_msg(!memcmp(h1->exp, h2->exp, sizeof(float) * ne) && !memcmp(h1->pose, h2->pose, sizeof(float) * np),
                  "f16: 2 threads differ from 1");
    const double de = max_diff(h1->exp, f->exp, ne) / max_abs(f->exp, ne);
    const double dp = max_diff(h1->pose, f->pose, np) / max_abs(f->pose, np);
    printf("tiny model, f16 (%s) vs f32: exp %.2e, pose %.2e of max|f32|\n",
           dpt_k_f16_native() ? "native" : "emulated", de, dp);
    /* halves keep 11 bits: weights move by up to 2^-12 relative, 16 times less than bfloat16's */
    ck_assert(de > 0.0 && de < 1e-2 && dp < 1e-2);
    if (dpt_k_f16_native()) {
        ck_assert_int_eq(dpt_k_set_f16_native(0), 0);
        dpt_result *e = generate(DPT_PRECISION_F16, 2);
        dpt_k_set_f16_native(1);
        ck_assert_msg(!memcmp(e->exp, h1->exp, sizeof(float) * ne) && !memcmp(e->pose, h1->pose, sizeof(float) * np),
                      "f16 native differs from its fallback");
        dpt_result_free(e);
    } else {
        printf("f16: no native kernel in this build (aarch64 only): native = fallback not checked\n");
    }
    dpt_result_free(f);
    dpt_result_free(h1);
    dpt_result_free(h2);
}
END_TEST

/* Reduced precisions prepack the encoder's conv layers 1 … n−1 (model.h conv_piece): features the
 * same bits at 1, 2 and 3 threads; after a switch of kernel architecture that makes the float
 * panels of an f16 load unusable, the encoder falls back to float32 convolutions and stays near. */
static float *encode(const dpt_model *m, int threads, int *n_frames) {
    const size_t n = 30000;
    float *x = make_audio(n), *f = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_encode_audio(m, x, n, threads, &f, n_frames, &err) == DPT_OK, "%s", err.message);
    free(x);
    return f;
}

START_TEST(encoder_conv_prepacked) {
    const int precs[] = {DPT_PRECISION_BF16, DPT_PRECISION_INT8, DPT_PRECISION_F16};
    for (size_t q = 0; q < sizeof precs / sizeof precs[0]; q++) {
        dpt_load_params lp = dpt_load_params_default();
        lp.precision = precs[q];
        dpt_model *m = NULL;
        dpt_error err = {0};
        ck_assert_msg(dpt_model_load(fixture, &lp, &m, &err) == DPT_OK, "%s", err.message);
        ck_assert_int_eq(m->audio.conv_pieces[0], 0); /* layer 0 stays float32 */
        for (int i = 1; i < m->audio.n_conv; i++)
            ck_assert_int_eq(m->audio.conv_pieces[i],
                             (m->audio.conv_kernel[i] + m->audio.conv_stride[i] - 1) / m->audio.conv_stride[i]);
        int n1 = 0, n2 = 0, n3 = 0;
        float *f1 = encode(m, 1, &n1), *f2 = encode(m, 2, &n2), *f3 = encode(m, 3, &n3);
        const size_t cnt = (size_t)n1 * m->info.feature_dim;
        ck_assert(n1 == n2 && n1 == n3);
        ck_assert_msg(!memcmp(f1, f2, sizeof(float) * cnt) && !memcmp(f1, f3, sizeof(float) * cnt),
                      "precision %d: features differ between thread counts", precs[q]);
        if (precs[q] == DPT_PRECISION_F16 && dpt_k_arch_active() != DPT_K_ARCH_SCALAR && !dpt_k_f16_native()) {
            /* float panels for the active micro-kernel: unusable once the scalar one is active */
            const dpt_k_arch was = dpt_k_arch_active();
            ck_assert_int_eq(dpt_k_set_arch(DPT_K_ARCH_SCALAR), 0);
            int nf = 0;
            float *ff = encode(m, 2, &nf);
            dpt_k_set_arch(was);
            ck_assert_int_eq(nf, n1);
            double d = 0.0, scale = max_abs(f1, cnt);
            for (size_t i = 0; i < cnt; i++) d = fmax(d, fabs((double)ff[i] - f1[i]));
            ck_assert_msg(isfinite(d) && d < 1e-2 * scale, "fallback: %g of %g", d, scale);
            dpt_free(ff);
        }
        dpt_free(f1);
        dpt_free(f2);
        dpt_free(f3);
        dpt_model_free(m);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("precision");
    TCase *tc = tcase_create("precision");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, unknown_precision_refused);
    tcase_add_test(tc, bf16_near_f32_and_thread_independent);
    tcase_add_test(tc, native_near_emulated);
    tcase_add_test(tc, int8_near_f32_thread_and_kernel_independent);
    tcase_add_test(tc, f16_near_f32_and_native_equals_emulated);
    tcase_add_test(tc, encoder_conv_prepacked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return dpt_check_run(suite());
}
