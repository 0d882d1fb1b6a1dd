/* The raw-sample path (16 kHz mono float samples → normalise/pad → encode → generate) and the
 * file/resampling entry points, in both builds: with libsndfile/libsoxr they work; built with
 * NO_SNDFILE=1 (DPT_NO_SNDFILE) they fail with DPT_ERR_UNSUPPORTED and a one-line message while
 * the raw path gives the same results. Uses the tiny fixture model (tests/fixtures/tiny.dpt). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "audio.h"
#include "dpt.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif
static const char *fixture = FIXTURE_DIR "/tiny.dpt";

#ifdef DPT_NO_SNDFILE
static const int have_sndfile = 0;
#else
static const int have_sndfile = 1;
#endif

/* n samples of a deterministic speech-like signal at 16 kHz: two tones under an envelope */
static float *make_signal(size_t n, float f0) {
    float *x = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++) {
        float t = (float)i / 16000.0f;
        float env = 0.5f + 0.5f * sinf(2.0f * 3.14159265f * 3.0f * t);
        x[i] = 0.3f * env * sinf(2.0f * 3.14159265f * f0 * t) + 0.05f * sinf(2.0f * 3.14159265f * 1750.0f * t);
    }
    return x;
}

static void check_unsupported(const dpt_error *err, dpt_status got, const char *name) {
    ck_assert_msg(got == DPT_ERR_UNSUPPORTED, "status %d, expected DPT_ERR_UNSUPPORTED (%s)", got,
                  err->message);
    ck_assert_int_eq(err->status, DPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err->message, name) != NULL, "message does not name %s: %s", name, err->message);
    ck_assert_msg(strstr(err->message, "NO_SNDFILE=1") != NULL, "message does not say NO_SNDFILE=1: %s",
                  err->message);
    ck_assert_msg(strstr(err->message, "16 kHz") != NULL, "message does not say what to pass: %s",
                  err->message);
    ck_assert_ptr_null(strchr(err->message, '\n'));
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

/* A 16 kHz mono IEEE-float WAV written by hand (no libsndfile needed to make it). */
static const char *write_wav(const float *x, size_t n) {
    const char *path = dpt_check_tmp_path("speech.wav");
    unsigned char h[44];
    memcpy(h, "RIFF", 4);
    put_u32(h + 4, (uint32_t)(36 + 4 * n));
    memcpy(h + 8, "WAVEfmt ", 8);
    put_u32(h + 16, 16);
    put_u16(h + 20, 3);          /* WAVE_FORMAT_IEEE_FLOAT */
    put_u16(h + 22, 1);          /* channels */
    put_u32(h + 24, 16000);      /* rate */
    put_u32(h + 28, 16000 * 4);  /* bytes per second */
    put_u16(h + 32, 4);          /* block align */
    put_u16(h + 34, 32);         /* bits */
    memcpy(h + 36, "data", 4);
    put_u32(h + 40, (uint32_t)(4 * n));
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(h, 1, sizeof h, f), sizeof h);
    for (size_t i = 0; i < n; i++) { /* little-endian float32 */
        uint32_t u;
        memcpy(&u, &x[i], 4);
        unsigned char b[4];
        put_u32(b, u);
        ck_assert_uint_eq(fwrite(b, 1, 4, f), 4);
    }
    fclose(f);
    return path;
}

static dpt_model *load_tiny(void) {
    dpt_model *m = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_load(fixture, NULL, &m, &err) == DPT_OK, "%s", err.message);
    return m;
}

static void assert_same_result(const dpt_result *a, const dpt_result *b) {
    ck_assert_int_eq(a->n_repetitions, b->n_repetitions);
    ck_assert_int_eq(a->n_frames, b->n_frames);
    size_t f = (size_t)a->n_repetitions * (size_t)a->n_frames;
    ck_assert_mem_eq(a->exp, b->exp, sizeof(float) * f * 50);
    ck_assert_mem_eq(a->pose, b->pose, sizeof(float) * f * 6);
    ck_assert_mem_eq(a->shape, b->shape, sizeof(float) * (size_t)a->n_frames * 100);
}

/* ---- 16 kHz input needs neither library ---- */

START_TEST(to16k_at_16k_without_resampling) {
    const size_t n = 4001;
    float *x = make_signal(n, 220.0f), *y = NULL;
    size_t ny = 0;
    dpt_error err = {0};
    ck_assert_msg(dpt_audio_to_16k(x, n, 1, 16000.0, &y, &ny, &err) == DPT_OK, "%s", err.message);
    ck_assert_uint_eq(ny, n);
    ck_assert_mem_eq(y, x, n * sizeof(float));
    dpt_free(y);
    /* stereo at 16 kHz: librosa's mean over channels, ((0 + l) + r) / 2 in float32 */
    float *st = malloc(2 * n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        st[2 * i] = x[i];
        st[2 * i + 1] = 0.25f - x[n - 1 - i];
    }
    ck_assert_msg(dpt_audio_to_16k(st, n, 2, 16000.0, &y, &ny, &err) == DPT_OK, "%s", err.message);
    ck_assert_uint_eq(ny, n);
    for (size_t i = 0; i < n; i++) {
        float want = ((0.0f + st[2 * i]) + st[2 * i + 1]) / 2.0f;
        ck_assert_msg(y[i] == want, "sample %zu: %.9g, expected %.9g", i, (double)y[i], (double)want);
    }
    dpt_free(y);
    free(st);
    free(x);
}
END_TEST

START_TEST(to16k_other_rates) {
    const size_t n = 44100 / 4;
    float *x = malloc(n * sizeof(float)), *y = NULL;
    for (size_t i = 0; i < n; i++) x[i] = 0.4f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / 44100.0f);
    size_t ny = 12345;
    dpt_error err = {0};
    dpt_status st = dpt_audio_to_16k(x, n, 1, 44100.0, &y, &ny, &err);
    if (have_sndfile) {
        ck_assert_msg(st == DPT_OK, "%s", err.message);
        ck_assert_uint_eq(ny, (size_t)ceil((double)n * (16000.0 / 44100.0)));
        /* a 440 Hz tone stays a tone of about the same amplitude */
        double peak = 0.0;
        for (size_t i = 100; i + 100 < ny; i++) peak = fmax(peak, fabs((double)y[i]));
        ck_assert_msg(fabs(peak - 0.4) < 0.02, "peak %g", peak);
        dpt_free(y);
    } else {
        check_unsupported(&err, st, "dpt_audio_to_16k");
        ck_assert_msg(strstr(err.message, "44100") != NULL, "rate not named: %s", err.message);
        ck_assert_ptr_null(y);
        ck_assert_uint_eq(ny, 0);
    }
    /* argument errors come first in both builds */
    ck_assert_int_eq(dpt_audio_to_16k(x, 0, 1, 44100.0, &y, &ny, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_audio_to_16k(x, n, 0, 16000.0, &y, &ny, &err), DPT_ERR_INVALID_ARG);
    free(x);
}
END_TEST

/* ---- files ---- */

START_TEST(load_file) {
    const size_t n = 8000;
    float *x = make_signal(n, 180.0f), *y = NULL;
    const char *wav = write_wav(x, n);
    size_t ny = 777;
    dpt_error err = {0};
    dpt_status st = dpt_audio_load(wav, &y, &ny, &err);
    if (have_sndfile) {
        ck_assert_msg(st == DPT_OK, "%s", err.message);
        ck_assert_uint_eq(ny, n);
        ck_assert_mem_eq(y, x, n * sizeof(float)); /* float WAV at 16 kHz: read exactly */
        dpt_free(y);
    } else {
        check_unsupported(&err, st, wav);
        ck_assert_ptr_null(y);
        ck_assert_uint_eq(ny, 0);
    }
    ck_assert_int_eq(dpt_audio_load(NULL, &y, &ny, &err), DPT_ERR_INVALID_ARG);
    free(x);
}
END_TEST

/* ---- normalise / pad ---- */

START_TEST(prepare_raw) {
    const size_t n = 16000 * 46 / 25 + 100; /* 46 frames at 25 fps + a little */
    float *x = make_signal(n, 150.0f), *y = NULL;
    size_t ny = 0;
    dpt_clip_layout lay;
    dpt_error err = {0};
    ck_assert_msg(dpt_audio_prepare(x, n, 25, 20, 0, &y, &ny, &lay, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(lay.clip_len, 46);
    ck_assert_int_eq(lay.n_windows, 3);
    ck_assert_int_gt(lay.n_pad, 0);
    ck_assert_uint_eq(ny, n + (size_t)lay.n_pad);
    ck_assert_uint_eq(ny, (size_t)(16000 / 25 * 20 * 3)); /* three windows of 0.8 s */
    double s = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++) s += y[i];
    double mean = s / (double)n;
    for (size_t i = 0; i < n; i++) ss += ((double)y[i] - mean) * ((double)y[i] - mean);
    ck_assert_msg(fabs(mean) < 1e-5, "mean %g", mean);
    ck_assert_msg(fabs(sqrt(ss / (double)(n - 1)) - 1.0) < 1e-4, "std %g", sqrt(ss / (double)(n - 1)));
    for (size_t i = n; i < ny; i++) ck_assert_msg(y[i] == 0.0f, "pad sample %zu is %g", i, (double)y[i]);
    dpt_free(y);
    /* replicate padding repeats the last normalised sample */
    ck_assert_msg(dpt_audio_prepare(x, n, 25, 20, 1, &y, &ny, &lay, &err) == DPT_OK, "%s", err.message);
    for (size_t i = n; i < ny; i++) ck_assert(y[i] == y[n - 1]);
    dpt_free(y);
    free(x);
}
END_TEST

/* ---- generation from raw samples ---- */

START_TEST(generate_raw) {
    dpt_model *m = load_tiny();
    const size_t n = 16000 * 46 / 25 + 100;
    float *x = make_signal(n, 150.0f), *quiet = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) quiet[i] = 0.01f * sinf(0.001f * (float)i);
    float shape[100];
    for (int i = 0; i < 100; i++) shape[i] = 0.01f * (float)(i % 7);
    dpt_model_info info;
    dpt_model_get_info(m, &info);
    float *style = malloc(sizeof(float) * (size_t)info.d_style);
    for (int i = 0; i < info.d_style; i++) style[i] = 0.5f * cosf((float)i);
    dpt_clip_layout lay;
    ck_assert_int_eq(dpt_clip_layout_compute(n, 25, 20, &lay, NULL), DPT_OK);

    dpt_gen_params p = dpt_gen_params_default();
    p.seed = 5;
    p.n_threads = 1;
    dpt_result *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_generate(m, x, n, shape, style, &p, &a, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(a->n_repetitions, 1);
    ck_assert_int_eq(a->n_frames, lay.n_out_frames);
    ck_assert_int_eq(a->n_frames, 46);
    for (int i = 0; i < a->n_frames * 50; i++) ck_assert(isfinite(a->exp[i]));
    for (int i = 0; i < a->n_frames * 6; i++) ck_assert(isfinite(a->pose[i]));
    for (int f = 0; f < a->n_frames; f++) ck_assert_mem_eq(a->shape + f * 100, shape, sizeof shape);

    /* deterministic, and the same as encoding first and generating from the features */
    ck_assert_msg(dpt_model_generate(m, x, n, shape, style, &p, &b, &err) == DPT_OK, "%s", err.message);
    assert_same_result(a, b);
    float *feats = NULL;
    int n_feat = 0;
    ck_assert_msg(dpt_model_encode_audio(m, x, n, 1, &feats, &n_feat, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(n_feat, lay.n_frames_total);
    ck_assert_msg(dpt_model_generate_from_features(m, feats, n_feat, n, shape, style, &p, &c, &err) == DPT_OK, "%s",
                  err.message);
    assert_same_result(a, c);

    /* the audio matters: other samples, same seed → other motion */
    ck_assert_msg(dpt_model_generate(m, quiet, n, shape, style, &p, &d, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(d->n_frames, a->n_frames);
    ck_assert(memcmp(a->exp, d->exp, sizeof(float) * (size_t)a->n_frames * 50) != 0);

    /* the file path: the same result with libsndfile, a clear error without */
    dpt_result *e = NULL;
    const char *wav = write_wav(x, n);
    dpt_status st = dpt_model_generate_file(m, wav, shape, style, &p, &e, &err);
    if (have_sndfile) {
        ck_assert_msg(st == DPT_OK, "%s", err.message);
        assert_same_result(a, e);
        dpt_result_free(e);
    } else {
        check_unsupported(&err, st, wav);
        ck_assert_ptr_null(e);
    }

    dpt_free(feats);
    dpt_result_free(a);
    dpt_result_free(b);
    dpt_result_free(c);
    dpt_result_free(d);
    free(style);
    free(quiet);
    free(x);
    dpt_model_free(m);
}
END_TEST

int main(void) {
    dpt_check_tmp_dir("raw_audio"); /* in the parent, so that it removes it after the run */
    Suite *s = suite_create("raw_audio");
    TCase *tc = tcase_create("raw_audio");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, to16k_at_16k_without_resampling);
    tcase_add_test(tc, to16k_other_rates);
    tcase_add_test(tc, load_file);
    tcase_add_test(tc, prepare_raw);
    tcase_add_test(tc, generate_raw);
    suite_add_tcase(s, tc);
    int failed = dpt_check_run(s);
    dpt_check_tmp_dir_remove();
    printf("raw_audio: built %s\n", have_sndfile ? "with libsndfile/libsoxr" : "without libsndfile/libsoxr (NO_SNDFILE=1)");
    return failed;
}
