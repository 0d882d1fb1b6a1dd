/* Per-caller states and threads: many generations at once from one shared model, each on its own
 * thread count, give the sequential result bit for bit; states reuse their threads; the host's
 * OpenBLAS thread setting is never changed by the library. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "dpt.h"

#ifdef DPT_HAVE_OPENBLAS_THREADS
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
#endif

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif
static const char *fixture = FIXTURE_DIR "/tiny.dpt";

#define N_SAMPLES 30000   /* 1.875 s at 16 kHz: one window of the tiny model, padded */

static dpt_model *load(void) {
    dpt_model *m = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_load(fixture, NULL, &m, &err) == DPT_OK, "%s", err.message);
    return m;
}

static void make_audio(float *x, int n) {
    unsigned s = 12345u;
    for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = 0.3f * sinf(0.01f * (float)i) * sinf(0.0007f * (float)i) +
               0.05f * ((float)(s >> 8) / 16777216.0f - 0.5f);
    }
}

static dpt_gen_params params(int n_threads) {
    dpt_gen_params p = dpt_gen_params_default();
    p.cfg_conds = DPT_COND_AUDIO;   /* no style vector needed */
    p.n_repetitions = 2;
    p.seed = 7;
    p.n_threads = n_threads;
    return p;
}

typedef struct job {
    const dpt_model *m;
    const float *audio;
    const float *shape;
    int n_threads;
    int use_state;
    dpt_result *res[2];
    float *feats;
    int n_feat;
    dpt_status st;
    char msg[512];
} job;

static void *run_job(void *arg) {
    job *j = arg;
    dpt_error err = {0};
    dpt_gen_params p = params(j->n_threads);
    if (j->use_state) {
        dpt_state *s = NULL;
        j->st = dpt_state_new(j->m, j->n_threads, &s, &err);
        /* two generations on the same state (its threads reused) and one encode */
        for (int r = 0; r < 2 && j->st == DPT_OK; r++)
            j->st = dpt_state_generate(s, j->audio, N_SAMPLES, j->shape, NULL, &p, &j->res[r], &err);
        if (j->st == DPT_OK)
            j->st = dpt_state_encode_audio(s, j->audio, N_SAMPLES, &j->feats, &j->n_feat, &err);
        dpt_state_free(s);
    } else {
        for (int r = 0; r < 2 && j->st == DPT_OK; r++)
            j->st = dpt_model_generate(j->m, j->audio, N_SAMPLES, j->shape, NULL, &p, &j->res[r], &err);
        if (j->st == DPT_OK)
            j->st = dpt_model_encode_audio(j->m, j->audio, N_SAMPLES, j->n_threads, &j->feats, &j->n_feat, &err);
    }
    snprintf(j->msg, sizeof j->msg, "%s", err.message);
    return NULL;
}

static int same_result(const dpt_result *a, const dpt_result *b) {
    if (a->n_repetitions != b->n_repetitions || a->n_frames != b->n_frames) return 0;
    size_t nf = (size_t)a->n_repetitions * a->n_frames;
    return !memcmp(a->exp, b->exp, sizeof(float) * nf * 50) &&
           !memcmp(a->pose, b->pose, sizeof(float) * nf * 6) &&
           !memcmp(a->shape, b->shape, sizeof(float) * (size_t)a->n_frames * 100);
}

START_TEST(concurrent_generations_bit_identical) {
    dpt_model *m = load();
    float *audio = malloc(sizeof(float) * N_SAMPLES), shape[100];
    make_audio(audio, N_SAMPLES);
    for (int i = 0; i < 100; i++) shape[i] = 0.01f * (float)(i % 7) - 0.03f;
    /* the sequential reference: one thread, nothing else running */
    job ref = {m, audio, shape, 1, 0, {NULL, NULL}, NULL, 0, DPT_OK, ""};
    run_job(&ref);
    ck_assert_msg(ref.st == DPT_OK, "%s", ref.msg);
    ck_assert_msg(same_result(ref.res[0], ref.res[1]), "two sequential runs differ");
    dpt_model_info info;
    dpt_model_get_info(m, &info);
    const int feat_dim = info.feature_dim;
    /* six callers at once: states and one-shot calls, 1, 2 and 3 threads each */
    enum { NJ = 6 };
    job jobs[NJ];
    pthread_t th[NJ];
    for (int i = 0; i < NJ; i++) {
        jobs[i] = (job){m, audio, shape, 1 + i % 3, i < 3, {NULL, NULL}, NULL, 0, DPT_OK, ""};
        ck_assert_int_eq(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    }
    for (int i = 0; i < NJ; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NJ; i++) {
        ck_assert_msg(jobs[i].st == DPT_OK, "job %d: %s", i, jobs[i].msg);
        for (int r = 0; r < 2; r++)
            ck_assert_msg(same_result(ref.res[0], jobs[i].res[r]),
                          "job %d (%s, %d threads), run %d: not bit-identical to the sequential run", i,
                          jobs[i].use_state ? "state" : "one-shot", jobs[i].n_threads, r);
        ck_assert_int_eq(jobs[i].n_feat, ref.n_feat);
        ck_assert_msg(!memcmp(jobs[i].feats, ref.feats, sizeof(float) * (size_t)ref.n_feat * (size_t)feat_dim),
                      "job %d: audio features differ", i);
    }
    for (int i = 0; i < NJ; i++) {
        dpt_result_free(jobs[i].res[0]);
        dpt_result_free(jobs[i].res[1]);
        dpt_free(jobs[i].feats);
    }
    dpt_result_free(ref.res[0]);
    dpt_result_free(ref.res[1]);
    dpt_free(ref.feats);
    free(audio);
    dpt_model_free(m);
}
END_TEST

START_TEST(state_errors) {
    dpt_model *m = load();
    dpt_state *s = (dpt_state *)1;
    dpt_error err = {0};
    ck_assert_int_eq(dpt_state_new(NULL, 1, &s, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(dpt_state_new(m, -1, &s, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "n_threads"));
    ck_assert_int_eq(dpt_state_new(m, 100000, &s, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_state_generate(NULL, NULL, 0, NULL, NULL, NULL, NULL, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "NULL state"));
    ck_assert_int_eq(dpt_state_new(m, 0, &s, &err), DPT_OK);
    ck_assert_int_ge(dpt_state_threads(s), 1);
    dpt_result *r = NULL;
    float shape[100] = {0};
    ck_assert_int_eq(dpt_state_generate(s, NULL, 100, shape, NULL, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    dpt_state_free(s);
    dpt_state_free(NULL);
    dpt_model_free(m);
}
END_TEST

#ifdef DPT_HAVE_OPENBLAS_THREADS
/* The host's OpenBLAS thread count before and after library calls on more threads. */
START_TEST(openblas_setting_untouched) {
    dpt_model *m = load();
    float *audio = malloc(sizeof(float) * N_SAMPLES), shape[100] = {0};
    make_audio(audio, N_SAMPLES);
    for (int host = 1; host <= 2; host++) {
        openblas_set_num_threads(host);
        ck_assert_int_eq(openblas_get_num_threads(), host);
        dpt_gen_params p = params(3);
        dpt_result *r = NULL;
        dpt_error err = {0};
        ck_assert_msg(dpt_model_generate(m, audio, N_SAMPLES, shape, NULL, &p, &r, &err) == DPT_OK, "%s", err.message);
        dpt_result_free(r);
        dpt_state *s = NULL;
        ck_assert_int_eq(dpt_state_new(m, 3, &s, &err), DPT_OK);
        ck_assert_msg(dpt_state_generate(s, audio, N_SAMPLES, shape, NULL, &p, &r, &err) == DPT_OK, "%s", err.message);
        dpt_result_free(r);
        float style[256];
        float exp_[20 * 50] = {0}, pose[20 * 6] = {0};
        (void)dpt_model_extract_style(m, exp_, pose, 20, 0, style, &err);
        dpt_state_free(s);
        ck_assert_msg(openblas_get_num_threads() == host, "host set OpenBLAS to %d threads, found %d after",
                      host, openblas_get_num_threads());
    }
    free(audio);
    dpt_model_free(m);
}
END_TEST
#endif

static Suite *suite(void) {
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("state");
    tcase_set_timeout(tc, 300);
    if (getenv("DPT_UNDER_QEMU")) {
        /* under qemu-user this suite hung (2026-12-03, not yet understood: no CPU used, so a
         * blocked wait, not a spin); left out and reported as skipped, never as passed */
        printf("SKIPPED: test_state: concurrent_generations_bit_identical (hangs under qemu-user)\n");
        printf("SKIPPED: test_state: openblas_setting_untouched (hangs under qemu-user)\n");
        fflush(stdout);
        tcase_add_test(tc, state_errors);
        suite_add_tcase(s, tc);
        return s;
    }
    tcase_add_test(tc, concurrent_generations_bit_identical);
    tcase_add_test(tc, state_errors);
#ifdef DPT_HAVE_OPENBLAS_THREADS
    tcase_add_test(tc, openblas_setting_untouched);
#else
    printf("NOT APPLICABLE: test_state: openblas_setting_untouched (a BLAS=none build has no OpenBLAS)\n");
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return dpt_check_run(suite());
}
