/* Sampler, RNG, schedules, CFG algebra, quantile, thresholding, validation, style-encoder input
 * checks. The tiny fixture model tests/fixtures/tiny.dpt (audio,style guidance, incremental,
 * head pose, T = 10, L = 20) drives the end-to-end checks with synthetic audio features. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "audio.h"
#include "dpt.h"
#include "kernels.h"
#include "model.h"
#include "rng.h"
#include "sampler.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif
static const char *fixture = FIXTURE_DIR "/tiny.dpt";

/* ---- RNG ---- */

START_TEST(rng_deterministic) {
    dpt_rng a, b;
    float x[1000], y[1000];
    dpt_rng_seed(&a, 42);
    dpt_rng_seed(&b, 42);
    dpt_rng_normal(&a, x, 1000);
    dpt_rng_normal(&b, y, 1000);
    ck_assert_mem_eq(x, y, sizeof x);
    /* split calls (odd sizes leave a pending pair value) give the same stream */
    dpt_rng_seed(&b, 42);
    dpt_rng_normal(&b, y, 3);
    dpt_rng_normal(&b, y + 3, 1);
    dpt_rng_normal(&b, y + 4, 995);
    dpt_rng_normal(&b, y + 999, 1);
    ck_assert_mem_eq(x, y, sizeof x);
    /* another seed differs */
    dpt_rng_seed(&b, 43);
    dpt_rng_normal(&b, y, 1000);
    int same = 0;
    for (int i = 0; i < 1000; i++) same += x[i] == y[i];
    ck_assert_int_lt(same, 5);
}
END_TEST

START_TEST(rng_xoshiro_reference) {
    /* xoshiro256** from a fixed state: the published reference generator's first outputs for
     * s = {1, 2, 3, 4} (computed from the algorithm's definition). */
    dpt_rng r = {{1, 2, 3, 4}, 0, 0.0};
    ck_assert_uint_eq(dpt_rng_next(&r), 11520ull);
    ck_assert_uint_eq(dpt_rng_next(&r), 0ull);
    ck_assert_uint_eq(dpt_rng_next(&r), 1509978240ull);
    ck_assert_uint_eq(dpt_rng_next(&r), 1215971899390074240ull);
}
END_TEST

START_TEST(rng_moments) {
    enum { N = 200000 };
    float *x = malloc(sizeof(float) * N);
    dpt_rng r;
    dpt_rng_seed(&r, 7);
    dpt_rng_normal(&r, x, N);
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < N; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        s4 += (double)x[i] * x[i] * x[i] * x[i];
        ck_assert(isfinite(x[i]));
    }
    double mean = s / N, var = s2 / N - mean * mean;
    ck_assert_double_lt(fabs(mean), 0.01);
    ck_assert_double_lt(fabs(var - 1.0), 0.015);
    ck_assert_double_lt(fabs(s4 / N - 3.0), 0.1);
    free(x);
}
END_TEST

START_TEST(rng_log_accuracy) {
    dpt_rng r;
    dpt_rng_seed(&r, 1);
    for (int i = 0; i < 100000; i++) {
        double x = dpt_rng_uniform(&r);
        if (x == 0.0) continue;
        if (i % 3 == 0) x = ldexp(x, -(i % 900));
        double a = dpt_rng_log(x), b = log(x);
        ck_assert_msg(fabs(a - b) <= 1e-15 * fabs(b), "log(%a): %a vs %a", x, a, b);
    }
    ck_assert_double_eq(dpt_rng_log(1.0), 0.0);
}
END_TEST

/* ---- schedules ---- */

START_TEST(schedule_shapes) {
    for (int kind = 0; kind < 4; kind++) {
        for (int T = 1; T <= 500; T += (T < 10 ? 1 : 97)) {
            size_t n = (size_t)T + 1;
            float *b = malloc(sizeof(float) * 5 * n), *a = b + n, *ab = b + 2 * n, *sf = b + 3 * n,
                  *si = b + 4 * n;
            ck_assert_int_eq(dpt_schedule_compute((dpt_schedule_kind)kind, T, b, a, ab, sf, si, NULL),
                             DPT_OK);
            ck_assert_float_eq(b[0], 0.0f);
            ck_assert_float_eq(ab[0], 1.0f);
            ck_assert_float_eq(si[0], 0.0f);
            ck_assert_float_eq(si[1], 0.0f); /* ᾱ₀ = 1 */
            for (int t = 1; t <= T; t++) {
                ck_assert(b[t] >= 1e-4f * 0.999f && b[t] <= 0.999f);
                ck_assert_float_eq(a[t], 1.0f - b[t]);
                ck_assert(ab[t] < ab[t - 1] && ab[t] > 0.0f);
                ck_assert_float_eq(sf[t], sqrtf(b[t]));
                ck_assert(si[t] >= 0.0f && si[t] <= sf[t] * 1.0001f);
                if (t > 1) ck_assert_msg(b[t] >= b[t - 1] * (1.0f - 1e-6f), "kind %d T %d t %d", kind, T, t);
            }
            if ((kind == DPT_SCHED_LINEAR || kind == DPT_SCHED_QUADRATIC) && T > 1) {
                ck_assert_float_eq_tol(b[1], 1e-4f, 1e-9f);
                ck_assert_float_eq_tol(b[T], 0.02f, 1e-8f);
            }
            free(b);
        }
    }
}
END_TEST

START_TEST(schedule_cosine_values) {
    /* spec §7.1 reference values (cosine, T = 500) */
    size_t n = 501;
    float *b = malloc(sizeof(float) * 5 * n), *ab = b + 2 * n, *si = b + 4 * n;
    ck_assert_int_eq(dpt_schedule_compute(DPT_SCHED_COSINE, 500, b, b + n, ab, b + 3 * n, si, NULL),
                     DPT_OK);
    ck_assert_float_eq_tol(b[1], 1.0e-4f, 1e-10f);
    ck_assert_float_eq_tol(b[2], 1.06811523e-4f, 1e-10f);
    ck_assert_float_eq(b[500], 0.999f);
    ck_assert_float_eq_tol(ab[250], 0.493837416f, 2e-7f);
    ck_assert_float_eq_tol(ab[500], 9.71420544e-9f, 1e-14f);
    ck_assert_float_eq_tol(si[2], 7.18687847e-3f, 1e-8f);
    ck_assert_float_eq_tol(si[500], 0.999495029f, 1e-6f);
    ck_assert_int_eq(dpt_schedule_compute(DPT_SCHED_LINEAR, 0, b, b, b, b, b, NULL), DPT_ERR_INVALID_ARG);
    free(b);
}
END_TEST

/* ---- quantile, thresholding, CFG ---- */

START_TEST(quantile_rank_example) {
    enum { N = 5400 };
    float *x = malloc(sizeof(float) * N), *s = malloc(sizeof(float) * N);
    /* values i, shuffled: the quantile is the float32 rank itself */
    for (int i = 0; i < N; i++) x[i] = (float)i;
    dpt_rng r;
    dpt_rng_seed(&r, 3);
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(dpt_rng_next(&r) % (uint64_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    float q = dpt_quantile(x, N, 0.99f, s);
    ck_assert_float_eq_tol(q, 5345.0102539f, 1e-4f);
    ck_assert(fabsf(q - 5345.01f) > 1e-4f);
    ck_assert_float_eq(dpt_quantile(x, N, 0.0f, s), 0.0f);
    ck_assert_float_eq(dpt_quantile(x, N, 1.0f, s), 5399.0f);
    ck_assert_float_eq(dpt_quantile(x, N, 0.5f, s), 2699.5f);
    /* input untouched */
    float sum = 0;
    for (int i = 0; i < N; i++) sum += x[i];
    ck_assert_float_eq(sum, (float)N * (N - 1) / 2);
    /* duplicates and one value */
    float d[7] = {2, 2, 2, 1, 1, 3, 3};
    ck_assert_float_eq(dpt_quantile(d, 7, 0.5f, s), 2.0f);
    ck_assert_float_eq_tol(dpt_quantile(d, 7, 0.9f, s), 3.0f, 1e-6f);
    ck_assert_float_eq(dpt_quantile(d, 1, 0.3f, s), 2.0f);
    d[4] = NAN;
    ck_assert(isnan(dpt_quantile(d, 7, 0.5f, s)));
    free(x);
    free(s);
}
END_TEST

START_TEST(threshold_clamps) {
    float r[4] = {-10, 0.5f, 7, -0.25f}, s[4];
    /* quantile(|r|, 1.0) = 10 → clamped to max 4 */
    float t = dpt_dyn_threshold(r, 4, 1.0f, 1.0f, 4.0f, s);
    ck_assert_float_eq(t, 4.0f);
    ck_assert_float_eq(r[0], -4.0f);
    ck_assert_float_eq(r[1], 0.5f);
    ck_assert_float_eq(r[2], 4.0f);
    ck_assert_float_eq(r[3], -0.25f);
    /* quantile 0 = 0.25 → clamped up to min 1 (no rescaling) */
    float r2[4] = {-10, 0.5f, 7, -0.25f};
    t = dpt_dyn_threshold(r2, 4, 0.0f, 1.0f, 4.0f, s);
    ck_assert_float_eq(t, 1.0f);
    ck_assert_float_eq(r2[0], -1.0f);
    ck_assert_float_eq(r2[1], 0.5f);
    ck_assert_float_eq(r2[2], 1.0f);
}
END_TEST

START_TEST(cfg_algebra) {
    /* three entries of 2 values each */
    const float R[6] = {1, 2, /* r0 */ 3, 5, /* r1 */ 10, 20 /* r2 */};
    const float sc[2] = {2.0f, 0.5f};
    float out[2];
    /* incremental: r0 + 2(r1 − r0) + 0.5(r2 − r1) */
    dpt_cfg_combine(R, 3, 2, sc, 0, out);
    ck_assert_float_eq(out[0], 1 + 2 * 2 + 0.5f * 7);
    ck_assert_float_eq(out[1], 2 + 2 * 3 + 0.5f * 15);
    /* independent, sequential: g1 = r0 + 2(r1 − r0); g1 + 0.5(r2 − g1) */
    dpt_cfg_combine(R, 3, 2, sc, 1, out);
    float g0 = 1 + 2 * 2, g1 = 2 + 2 * 3;
    ck_assert_float_eq(out[0], g0 + 0.5f * (10 - g0));
    ck_assert_float_eq(out[1], g1 + 0.5f * (20 - g1));
    ck_assert(out[0] != 1 + 2 * 2 + 0.5f * 9); /* not the textbook sum of differences to r0 */
    /* one condition: both modes equal the textbook formula; one entry copies r0 */
    dpt_cfg_combine(R, 2, 2, sc, 1, out);
    ck_assert_float_eq(out[0], 5.0f);
    dpt_cfg_combine(R, 2, 2, sc, 0, out);
    ck_assert_float_eq(out[1], 8.0f);
    dpt_cfg_combine(R, 1, 2, sc, 0, out);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], 2.0f);
}
END_TEST

/* ---- generation on the tiny fixture ---- */

static dpt_model *load_tiny(void) {
    dpt_model *m = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_load(fixture, NULL, &m, &err) == DPT_OK, "%s", err.message);
    return m;
}

typedef struct gen_in {
    float *feats;
    dpt_clip_layout lay;
    float shape[100];
    float style[64];
} gen_in;

/* n_samples of audio → layout + deterministic synthetic features */
static void make_input(const dpt_model *m, size_t n_samples, gen_in *g) {
    ck_assert_int_eq(dpt_clip_layout_compute(n_samples, m->info.fps, m->info.n_motions, &g->lay, NULL),
                     DPT_OK);
    size_t n = (size_t)g->lay.n_frames_total * m->den.D;
    g->feats = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) g->feats[i] = sinf(0.37f * (float)i) * 0.8f;
    for (int i = 0; i < 100; i++) g->shape[i] = 0.01f * (float)(i % 13) - 0.05f;
    for (int i = 0; i < 64; i++) g->style[i] = cosf((float)i);
}

static dpt_status run(const dpt_model *m, const gen_in *g, const dpt_gen_params *p, const float *style,
                      dpt_result **r, dpt_error *err) {
    return dpt_generate_features(m, g->feats, g->lay.n_frames_total, &g->lay, g->shape, style, p, r, err);
}

typedef struct stream {
    dpt_rng rng;
    size_t used, limit;
} stream;

static int stream_fn(void *user, float *dst, size_t n) {
    stream *s = user;
    if (s->used + n > s->limit) return 1;
    dpt_rng_normal(&s->rng, dst, n);
    s->used += n;
    return 0;
}

START_TEST(generate_layout_and_noise_order) {
    dpt_model *m = load_tiny();
    gen_in g;
    /* 2.3 windows of 20 frames at 25 fps: 46 frames of audio → 3 windows, padded last */
    make_input(m, 16000 * 46 / 25 + 100, &g);
    ck_assert_int_eq(g.lay.n_windows, 3);
    ck_assert_int_gt(g.lay.n_pad_frames, 0);
    dpt_gen_params p = dpt_gen_params_default();
    p.n_repetitions = 3;
    p.seed = 11;
    dpt_result *a = NULL, *b = NULL;
    dpt_error err = {0};
    ck_assert_msg(run(m, &g, &p, g.style, &a, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(a->n_repetitions, 3);
    ck_assert_int_eq(a->n_frames, g.lay.n_out_frames);
    /* the built-in generator replayed through noise_fn gives the same result, and exactly
     * N·L·dm·(1 + n_windows·(T−1)) values are drawn */
    stream s;
    dpt_rng_seed(&s.rng, 11);
    s.used = 0;
    s.limit = (size_t)-1;
    p.noise_fn = stream_fn;
    p.noise_user = &s;
    ck_assert_msg(run(m, &g, &p, g.style, &b, &err) == DPT_OK, "%s", err.message);
    size_t draw = (size_t)3 * m->den.L * m->den.dm;
    ck_assert_uint_eq(s.used, draw * (1 + (size_t)g.lay.n_windows * (m->den.T - 1)));
    ck_assert_mem_eq(a->exp, b->exp, sizeof(float) * 3 * a->n_frames * 50);
    ck_assert_mem_eq(a->pose, b->pose, sizeof(float) * 3 * a->n_frames * 6);
    for (int f = 0; f < a->n_frames; f++) ck_assert_mem_eq(a->shape + f * 100, g.shape, sizeof g.shape);
    /* jaw y/z come out as pose_mean[4:6] */
    for (int i = 0; i < 3 * a->n_frames; i++) {
        ck_assert_float_eq(a->pose[i * 6 + 4], m->stats.pose_mean[4]);
        ck_assert_float_eq(a->pose[i * 6 + 5], m->stats.pose_mean[5]);
    }
    /* zero_head_pose: the global rotation is zeroed after de-normalisation, nothing else moves */
    dpt_result_free(b);
    b = NULL;
    p.zero_head_pose = 1;
    dpt_rng_seed(&s.rng, 11);
    s.used = 0;
    ck_assert_int_eq(run(m, &g, &p, g.style, &b, &err), DPT_OK);
    for (int i = 0; i < 3 * a->n_frames; i++) {
        for (int c = 0; c < 3; c++) ck_assert_float_eq(b->pose[i * 6 + c], 0.0f);
        for (int c = 3; c < 6; c++) ck_assert_float_eq(b->pose[i * 6 + c], a->pose[i * 6 + c]);
    }
    ck_assert_mem_eq(a->exp, b->exp, sizeof(float) * 3 * a->n_frames * 50);
    p.zero_head_pose = 0;
    dpt_result_free(b);
    b = NULL;
    /* repetitions differ */
    ck_assert(memcmp(a->exp, a->exp + a->n_frames * 50, sizeof(float) * 50) != 0);
    dpt_result_free(b);
    b = NULL;
    /* running out of noise: DPT_ERR_NOISE */
    dpt_rng_seed(&s.rng, 11);
    s.used = 0;
    s.limit = draw * 5;
    ck_assert_int_eq(run(m, &g, &p, g.style, &b, &err), DPT_ERR_NOISE);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(strstr(err.message, "noise"));
    dpt_result_free(a);
    free(g.feats);
    dpt_model_free(m);
}
END_TEST

START_TEST(generate_thread_count) {
    dpt_model *m = load_tiny();
    gen_in g;
    make_input(m, 16000 * 2, &g);
    dpt_gen_params p = dpt_gen_params_default();
    p.n_repetitions = 2;
    p.dt_ratio = 0.9f;
    dpt_result *a = NULL, *b = NULL;
    p.n_threads = 1;
    ck_assert_int_eq(run(m, &g, &p, g.style, &a, NULL), DPT_OK);
    p.n_threads = 2;
    ck_assert_int_eq(run(m, &g, &p, g.style, &b, NULL), DPT_OK);
    /* the noise is identical; BLAS may round differently with another thread count */
    for (int i = 0; i < 2 * a->n_frames * 50; i++)
        ck_assert_float_eq_tol(a->exp[i], b->exp[i], 1e-4f * (1.0f + fabsf(a->exp[i])));
    dpt_result_free(a);
    dpt_result_free(b);
    free(g.feats);
    dpt_model_free(m);
}
END_TEST

static int cancel_at_3(void *user, int w, int nw, int step, int n) {
    (void)user;
    (void)w;
    (void)nw;
    (void)n;
    return step == 3;
}

/* progress records the step count it is told */
static int record_steps(void *user, int w, int nw, int step, int n) {
    (void)w;
    (void)nw;
    (void)step;
    *(int *)user = n;
    return 0;
}

START_TEST(generate_strided_steps) {
    dpt_model *m = load_tiny();
    const int T = m->den.T;
    int tseq[32];
    dpt_strided_timesteps(T, T, tseq);
    for (int k = 0; k <= T; k++) ck_assert_int_eq(tseq[k], k);
    dpt_strided_timesteps(500, 25, tseq);
    for (int k = 0; k <= 25; k++) ck_assert_int_eq(tseq[k], 20 * k);
    dpt_strided_timesteps(10, 3, tseq);
    ck_assert(tseq[0] == 0 && tseq[1] == 4 && tseq[2] == 7 && tseq[3] == 10);

    gen_in g;
    make_input(m, 16000 * 46 / 25 + 100, &g); /* 3 windows */
    dpt_gen_params p = dpt_gen_params_default();
    p.n_repetitions = 2;
    p.seed = 5;
    dpt_result *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    ck_assert_int_eq(run(m, &g, &p, g.style, &a, NULL), DPT_OK);
    /* steps = T (any eta) is the faithful sampler: the same bits */
    p.steps = T;
    p.eta = 0.7f;
    ck_assert_int_eq(run(m, &g, &p, g.style, &b, NULL), DPT_OK);
    ck_assert_mem_eq(a->exp, b->exp, sizeof(float) * 2 * a->n_frames * 50);
    ck_assert_mem_eq(a->pose, b->pose, sizeof(float) * 2 * a->n_frames * 6);
    /* fewer steps: S−1 draws per window after x_T, the progress counts S, output finite and
     * different; eta = 0 does not depend on the per-step draws */
    const int S = 4;
    stream s;
    dpt_rng_seed(&s.rng, 5);
    s.used = 0;
    s.limit = (size_t)-1;
    int told = 0;
    p.steps = S;
    p.eta = 0.0f;
    p.noise_fn = stream_fn;
    p.noise_user = &s;
    p.progress_fn = record_steps;
    p.progress_user = &told;
    ck_assert_int_eq(run(m, &g, &p, g.style, &c, NULL), DPT_OK);
    size_t draw = (size_t)2 * m->den.L * m->den.dm;
    ck_assert_uint_eq(s.used, draw * (1 + (size_t)g.lay.n_windows * (S - 1)));
    ck_assert_int_eq(told, S);
    ck_assert(memcmp(a->exp, c->exp, sizeof(float) * 50) != 0);
    for (int i = 0; i < 2 * c->n_frames * 50; i++) ck_assert(isfinite(c->exp[i]));
    p.noise_fn = NULL;
    p.seed = 5;
    ck_assert_int_eq(run(m, &g, &p, g.style, &d, NULL), DPT_OK);
    ck_assert_mem_eq(c->exp, d->exp, sizeof(float) * 2 * c->n_frames * 50);
    dpt_result_free(d);
    d = NULL;
    p.seed = 6; /* another x_T: another result */
    ck_assert_int_eq(run(m, &g, &p, g.style, &d, NULL), DPT_OK);
    ck_assert(memcmp(c->exp, d->exp, sizeof(float) * 50) != 0);
    dpt_result_free(d);
    d = NULL;
    /* bad values: steps > T, steps < 0, eta outside [0, 1], flexibility with strided steps */
    dpt_error err;
    p = dpt_gen_params_default();
    p.steps = T + 1;
    ck_assert_int_eq(run(m, &g, &p, g.style, &d, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "steps"));
    p.steps = -1;
    ck_assert_int_eq(run(m, &g, &p, g.style, &d, &err), DPT_ERR_INVALID_ARG);
    p.steps = S;
    p.eta = 1.5f;
    ck_assert_int_eq(run(m, &g, &p, g.style, &d, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "eta"));
    p.eta = NAN;
    ck_assert_int_eq(run(m, &g, &p, g.style, &d, &err), DPT_ERR_INVALID_ARG);
    p.eta = 0.0f;
    p.flexibility = 0.5f;
    ck_assert_int_eq(run(m, &g, &p, g.style, &d, &err), DPT_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.message, "flexibility"));
    ck_assert_ptr_null(d);
    dpt_result_free(a);
    dpt_result_free(b);
    dpt_result_free(c);
    free(g.feats);
    dpt_model_free(m);
}
END_TEST

START_TEST(generate_cancel) {
    dpt_model *m = load_tiny();
    gen_in g;
    make_input(m, 16000, &g);
    dpt_gen_params p = dpt_gen_params_default();
    p.progress_fn = cancel_at_3;
    dpt_result *r = NULL;
    ck_assert_int_eq(run(m, &g, &p, g.style, &r, NULL), DPT_ERR_CANCELLED);
    ck_assert_ptr_null(r);
    free(g.feats);
    dpt_model_free(m);
}
END_TEST

START_TEST(validation_errors) {
    dpt_model *m = load_tiny();
    gen_in g;
    make_input(m, 16000, &g);
    dpt_result *r = NULL;
    dpt_error err;
    dpt_gen_params p;
#define EXPECT(st, style)                                                                           \
    do {                                                                                            \
        memset(&err, 0, sizeof err);                                                                \
        ck_assert_int_eq(run(m, &g, &p, style, &r, &err), st);                                      \
        ck_assert_ptr_null(r);                                                                      \
        ck_assert(strlen(err.message) > 10 && !strchr(err.message, '\n'));                          \
    } while (0)
    p = dpt_gen_params_default();
    p.n_repetitions = 0;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p.n_repetitions = -2;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p = dpt_gen_params_default();
    p.cfg_mode = 7;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p = dpt_gen_params_default();
    p.cfg_conds = 4;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p = dpt_gen_params_default(); /* default conds include style: a style vector is required */
    EXPECT(DPT_ERR_INVALID_ARG, NULL);
    ck_assert_ptr_nonnull(strstr(err.message, "style"));
    p.cfg_conds = DPT_COND_AUDIO; /* audio only: the null style is used */
    ck_assert_int_eq(run(m, &g, &p, NULL, &r, NULL), DPT_OK);
    dpt_result_free(r);
    r = NULL;
    p = dpt_gen_params_default();
    p.dt_ratio = 1.5f;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p.dt_ratio = NAN;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p.dt_ratio = 0.9f;
    p.dt_min = 5.0f;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p.dt_min = NAN;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p.dt_min = -1.0f;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p = dpt_gen_params_default();
    p.scale_audio = INFINITY;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p = dpt_gen_params_default();
    p.flexibility = 1.5f;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p = dpt_gen_params_default();
    p.n_threads = -1;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    p = dpt_gen_params_default();
    g.shape[7] = NAN;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    g.shape[7] = 0.0f;
    g.style[3] = INFINITY;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    g.style[3] = 0.0f;
    g.feats[5] = NAN;
    EXPECT(DPT_ERR_INVALID_ARG, g.style);
    g.feats[5] = 0.0f;
    /* features that do not match the layout */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(dpt_generate_features(m, g.feats, g.lay.n_frames_total - 1, &g.lay, g.shape,
                                           g.style, &p, &r, &err),
                     DPT_ERR_INVALID_ARG);
    /* NULLs */
    ck_assert_int_eq(dpt_generate_features(m, g.feats, g.lay.n_frames_total, &g.lay, NULL, g.style,
                                           &p, &r, &err),
                     DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_model_generate(m, NULL, 5, g.shape, g.style, &p, &r, &err), DPT_ERR_INVALID_ARG);
    /* the same checks through dpt_model_generate, before any audio work */
    p.n_repetitions = 0;
    float audio[16000] = {0};
    ck_assert_int_eq(dpt_model_generate(m, audio, 16000, g.shape, g.style, &p, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(r);
#undef EXPECT
    free(g.feats);
    dpt_model_free(m);
}
END_TEST

/* ---- style encoder inputs ---- */

static char last_warning[1024];
static void capture(int level, const char *msg, void *user) {
    (void)user;
    if (level >= 1) snprintf(last_warning, sizeof last_warning, "%s", msg);
}

START_TEST(style_inputs) {
    dpt_model *m = load_tiny();
    int Tm = m->style.n_motions;
    int F = Tm + 7;
    float *exp = calloc((size_t)F * 50, sizeof(float)), *pose = calloc((size_t)F * 6, sizeof(float));
    for (int i = 0; i < F * 50; i++) exp[i] = sinf((float)i);
    for (int i = 0; i < F * 6; i++) pose[i] = 0.1f * cosf((float)i);
    float s1[64], s2[64];
    dpt_error err = {0};
    dpt_log_set_callback(capture, NULL);
    last_warning[0] = 0;
    ck_assert_int_eq(dpt_model_extract_style(m, exp, pose, F, 0, s1, &err), DPT_OK);
    ck_assert_str_eq(last_warning, "");
    ck_assert(dpt_all_finite(s1, (size_t)m->style.D));
    /* jaw y/z (dropped columns, std 0 in real statistics) do not matter, even if huge */
    for (int f = 0; f < F; f++) pose[f * 6 + 4] = pose[f * 6 + 5] = 1e30f;
    ck_assert_int_eq(dpt_model_extract_style(m, exp, pose, F, 0, s2, &err), DPT_OK);
    ck_assert_mem_eq(s1, s2, sizeof(float) * (size_t)m->style.D);
    /* a short clip: fewer frames, a warning */
    ck_assert_int_eq(dpt_model_extract_style(m, exp, pose, F, 10, s2, &err), DPT_OK);
    ck_assert_ptr_nonnull(strstr(last_warning, "frames"));
    ck_assert(dpt_all_finite(s2, (size_t)m->style.D));
    /* errors */
    ck_assert_int_eq(dpt_model_extract_style(m, exp, pose, 0, 0, s2, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_model_extract_style(m, exp, pose, F, F, s2, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_model_extract_style(m, exp, pose, F, -1, s2, &err), DPT_ERR_INVALID_ARG);
    exp[3] = NAN;
    ck_assert_int_eq(dpt_model_extract_style(m, exp, pose, F, 0, s2, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "NaN"));
    dpt_log_set_callback(NULL, NULL);
    free(exp);
    free(pose);
    dpt_model_free(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rng_deterministic);
    tcase_add_test(tc, rng_xoshiro_reference);
    tcase_add_test(tc, rng_moments);
    tcase_add_test(tc, rng_log_accuracy);
    tcase_add_test(tc, schedule_shapes);
    tcase_add_test(tc, schedule_cosine_values);
    tcase_add_test(tc, quantile_rank_example);
    tcase_add_test(tc, threshold_clamps);
    tcase_add_test(tc, cfg_algebra);
    tcase_add_test(tc, generate_layout_and_noise_order);
    tcase_add_test(tc, generate_thread_count);
    tcase_add_test(tc, generate_strided_steps);
    tcase_add_test(tc, generate_cancel);
    tcase_add_test(tc, validation_errors);
    tcase_add_test(tc, style_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return dpt_check_run(suite());
}
