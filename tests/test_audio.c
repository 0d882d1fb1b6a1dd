/* Audio front end (lib/audio.c): frame bookkeeping against cases derived by hand from spec §3,
 * normalisation of known data, window padding, downmix and resampling properties, and every
 * error path (missing, empty, non-audio, corrupt, zero-length, non-finite, over-long input).
 * Parity with librosa/python-soxr is tested in tests/python/test_audio_frontend.py. */
#include <check.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "audio.h"
#include "dpt.h"

static const char *tmp_path(const char *ext) { return dpt_check_tmp_file("a", ext); }

static void check_error(const dpt_error *err, dpt_status got, dpt_status want, const char *name,
                        const char *what) {
    ck_assert_msg(got == want, "status %d, expected %d (%s)", got, want, err->message);
    ck_assert_int_eq(err->status, want);
    if (name)
        ck_assert_msg(strstr(err->message, name) != NULL, "message does not name %s: %s", name,
                      err->message);
    if (what)
        ck_assert_msg(strstr(err->message, what) != NULL, "message lacks '%s': %s", what,
                      err->message);
    ck_assert_ptr_null(strchr(err->message, '\n'));
}

/* Write frames × channels interleaved samples with libsndfile. */
static const char *write_sound(const float *x, sf_count_t frames, int channels, int rate,
                               int format, const char *ext) {
    const char *p = tmp_path(ext);
    SF_INFO info = {0};
    info.samplerate = rate;
    info.channels = channels;
    info.format = format;
    SNDFILE *sf = sf_open(p, SFM_WRITE, &info);
    ck_assert_msg(sf != NULL, "sf_open(%s): %s", p, sf_strerror(NULL));
    if (frames) ck_assert_int_eq(sf_writef_float(sf, x, frames), frames);
    sf_close(sf);
    return p;
}

static const char *write_bytes(const void *b, size_t n, const char *ext) {
    const char *p = tmp_path(ext);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    return p;
}

/* ---- layout (spec §3.3), derived by hand ---- */

typedef struct layout_case {
    size_t n;
    int fps, L;
    int clip_len, n_windows;
    long n_pad;
    int n_pad_frames, n_total, n_out;
} layout_case;

START_TEST(t_layout_cases) {
    static const layout_case cases[] = {
        /* 18560/16000·25 = 28.999999999999996 in double → clip_len 28; one window; 45440 pad
         * samples = 71 frames exactly; output 100 − 71 = 29 frames (one more than clip_len) */
        {18560, 25, 100, 28, 1, 45440, 71, 100, 29},
        /* n_pad ≤ 0 with one window: 300 samples beyond the window, no padding, no trimming */
        {64300, 25, 100, 100, 1, -300, 0, 100, 100},
        /* ceil(−639/640) = −0 → 0 padded frames */
        {64639, 25, 100, 100, 1, -639, 0, 100, 100},
        /* 64640 → clip_len 101 → two windows, 63360 pad = 99 frames, 101 out */
        {64640, 25, 100, 101, 2, 63360, 99, 200, 101},
        /* exact multiple: two full windows, nothing padded */
        {128000, 25, 100, 200, 2, 0, 0, 200, 200},
        /* n_pad ≤ 0 with two windows */
        {128500, 25, 100, 200, 2, -500, 0, 200, 200},
        /* 9.37 s: clip_len 234 → three windows, 42080 pad = ceil(65.75) = 66 frames */
        {149920, 25, 100, 234, 3, 42080, 66, 300, 234},
        /* 1 s: one window, 48000 pad = 75 frames */
        {16000, 25, 100, 25, 1, 48000, 75, 100, 25},
        /* one frame's worth: 63360 pad = 99 frames → 1 frame out */
        {640, 25, 100, 1, 1, 63360, 99, 100, 1},
        /* 30 fps: unit 533.33…, window round(53333.33) = 53333 samples; 37333 pad / unit =
         * 69.999375 → 70 frames */
        {16000, 30, 100, 30, 1, 37333, 70, 100, 30},
        /* round half to even: unit 62.5 (fps 256), L = 1 → window 62 (not 63); L = 3 → 187.5 → 188 */
        {62, 256, 1, 0, 1, 0, 0, 1, 1},
        {100, 256, 3, 1, 1, 88, 2, 3, 1},
        /* fps 20, L 10: unit 800, window 8000; 12000 samples → clip_len 15, two windows,
         * 4000 pad = 5 frames */
        {12000, 20, 10, 15, 2, 4000, 5, 20, 15},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const layout_case *c = &cases[i];
        dpt_clip_layout lay;
        dpt_error err = {0};
        ck_assert_int_eq(dpt_clip_layout_compute(c->n, c->fps, c->L, &lay, &err), DPT_OK);
        ck_assert_msg(lay.n_input == c->n && lay.clip_len == c->clip_len &&
                          lay.n_windows == c->n_windows && lay.n_pad == c->n_pad &&
                          lay.n_pad_frames == c->n_pad_frames && lay.n_frames_total == c->n_total &&
                          lay.n_out_frames == c->n_out,
                      "case %zu (n=%zu fps=%d L=%d): clip_len %d windows %d pad %ld pad_frames %d "
                      "total %d out %d",
                      i, c->n, c->fps, c->L, lay.clip_len, lay.n_windows, lay.n_pad,
                      lay.n_pad_frames, lay.n_frames_total, lay.n_out_frames);
    }
}
END_TEST

START_TEST(t_layout_errors) {
    dpt_clip_layout lay;
    dpt_error err = {0};
    check_error(&err, dpt_clip_layout_compute(1000, 0, 100, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "fps");
    check_error(&err, dpt_clip_layout_compute(1000, 25, 0, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "n_motions");
    check_error(&err, dpt_clip_layout_compute(1000, 25, 100, NULL, &err), DPT_ERR_INVALID_ARG, NULL, NULL);
    check_error(&err, dpt_clip_layout_compute((size_t)1 << 62, 25, 100, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "too long");
}
END_TEST

/* ---- normalisation and window padding ---- */

/* Reference statistics in long double, the way the spec states them. */
static void ref_stats(const float *x, size_t n, double *mean, double *std) {
    long double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    long double m = s / (long double)n, v = 0;
    for (size_t i = 0; i < n; i++) v += ((long double)x[i] - m) * ((long double)x[i] - m);
    *mean = (double)m;
    *std = (double)sqrtl(v / (long double)(n - 1));
}

START_TEST(t_prepare_normalisation) {
    const size_t n = 18560;
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = 0.3f * sinf(0.01f * (float)i) + 0.05f + 0.001f * (float)(i % 7);
    double mean, std;
    ref_stats(x, n, &mean, &std);
    for (int rep = 0; rep <= 1; rep++) {
        float *y = NULL;
        size_t ny = 0;
        dpt_clip_layout lay;
        dpt_error err = {0};
        ck_assert_int_eq(dpt_audio_prepare(x, n, 25, 100, rep, &y, &ny, &lay, &err), DPT_OK);
        ck_assert_uint_eq(ny, 64000);
        ck_assert_int_eq(lay.n_pad, 45440);
        double max_err = 0;
        for (size_t i = 0; i < n; i++) {
            double want = ((double)x[i] - mean) / (std + 1e-5);
            double d = fabs((double)y[i] - want);
            if (d > max_err) max_err = d;
        }
        ck_assert_msg(max_err < 2e-6, "max error %g", max_err);
        /* pad: zeros, or the last normalised sample (not the raw one) */
        for (size_t i = n; i < ny; i++) ck_assert(y[i] == (rep ? y[n - 1] : 0.0f));
        ck_assert(y[n - 1] != x[n - 1]);
        dpt_free(y);
    }
    free(x);
}
END_TEST

/* ±a alternating, even n: mean 0, unbiased std a·sqrt(n/(n−1)), so y = ±a/(std + 1e-5). */
START_TEST(t_prepare_known_values) {
    const size_t n = 1000;
    const float a = 0.25f;
    float x[1000];
    for (size_t i = 0; i < n; i++) x[i] = (i % 2) ? -a : a;
    float *y = NULL;
    size_t ny;
    dpt_clip_layout lay;
    dpt_error err = {0};
    ck_assert_int_eq(dpt_audio_prepare(x, n, 25, 100, 1, &y, &ny, &lay, &err), DPT_OK);
    const double std = 0.25 * sqrt(1000.0 / 999.0);
    const double want = 0.25 / (std + 1e-5);
    ck_assert_double_eq_tol(y[0], want, 1e-6);
    ck_assert_double_eq_tol(y[1], -want, 1e-6);
    ck_assert_double_eq_tol(y[999], -want, 1e-6);
    ck_assert_uint_eq(ny, 64000);
    ck_assert(y[63999] == y[999]); /* replicate */
    ck_assert_int_eq(lay.n_out_frames, 1);
    dpt_free(y);
}
END_TEST

START_TEST(t_prepare_no_padding) {
    const size_t n = 64300;
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    float *y = NULL;
    size_t ny;
    dpt_clip_layout lay;
    dpt_error err = {0};
    ck_assert_int_eq(dpt_audio_prepare(x, n, 25, 100, 0, &y, &ny, &lay, &err), DPT_OK);
    ck_assert_uint_eq(ny, n);
    ck_assert_int_eq(lay.n_pad, -300);
    ck_assert_int_eq(lay.n_out_frames, 100);
    dpt_free(y);
    free(x);
}
END_TEST

/* All-zero (and constant) audio: std 0, the epsilon keeps the output finite (zeros). */
START_TEST(t_prepare_silence) {
    const size_t n = 40000;
    float *x = calloc(n, sizeof(float));
    for (int c = 0; c < 2; c++) {
        if (c == 1)
            for (size_t i = 0; i < n; i++) x[i] = 0.125f; /* exactly representable mean */
        for (int rep = 0; rep <= 1; rep++) {
            float *y = NULL;
            size_t ny;
            dpt_clip_layout lay;
            dpt_error err = {0};
            ck_assert_int_eq(dpt_audio_prepare(x, n, 25, 100, rep, &y, &ny, &lay, &err), DPT_OK);
            ck_assert_uint_eq(ny, 64000);
            for (size_t i = 0; i < ny; i++) ck_assert_msg(y[i] == 0.0f, "y[%zu] = %g", i, y[i]);
            dpt_free(y);
        }
    }
    free(x);
}
END_TEST

START_TEST(t_prepare_errors) {
    float x[1000] = {0};
    float *y = (float *)1;
    size_t ny = 7;
    dpt_clip_layout lay;
    dpt_error err = {0};
    check_error(&err, dpt_audio_prepare(x, 0, 25, 100, 0, &y, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "zero-length");
    ck_assert_ptr_null(y);
    ck_assert_uint_eq(ny, 0);
    check_error(&err, dpt_audio_prepare(NULL, 10, 25, 100, 0, &y, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "NULL");
    check_error(&err, dpt_audio_prepare(x, 1000, 25, 100, 0, NULL, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "NULL");
    check_error(&err, dpt_audio_prepare(x, 1000, 0, 100, 0, &y, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "fps");
    check_error(&err, dpt_audio_prepare(x, 1000, 25, -1, 0, &y, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "n_motions");
    /* too short for one output frame (639 samples at 25 fps), and the std of 1 sample */
    check_error(&err, dpt_audio_prepare(x, 639, 25, 100, 0, &y, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "too short");
    check_error(&err, dpt_audio_prepare(x, 1, 16000, 100, 0, &y, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "too short");
    ck_assert_int_eq(dpt_audio_prepare(x, 640, 25, 100, 0, &y, &ny, &lay, &err), DPT_OK);
    dpt_free(y);
    /* non-finite samples */
    x[500] = NAN;
    check_error(&err, dpt_audio_prepare(x, 1000, 25, 100, 0, &y, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "sample 500");
    x[500] = INFINITY;
    check_error(&err, dpt_audio_prepare(x, 1000, 25, 100, 0, &y, &ny, &lay, &err), DPT_ERR_INVALID_ARG, NULL, "not finite");
    x[500] = 0;
    /* over the limit: rejected before any sample is read (x is far shorter than n) */
    size_t over = (size_t)(DPT_MAX_AUDIO_SECONDS * 16000) + 1;
    check_error(&err, dpt_audio_prepare(x, over, 25, 100, 0, &y, &ny, &lay, &err), DPT_ERR_UNSUPPORTED, NULL, "limit");
    ck_assert_ptr_null(y);
}
END_TEST

/* ---- dpt_audio_to_16k ---- */

START_TEST(t_to16k_passthrough_and_downmix) {
    enum { N = 5000 };
    static float st[N * 3];
    for (int i = 0; i < N; i++) {
        st[3 * i] = sinf(0.01f * (float)i);
        st[3 * i + 1] = 0.3f * cosf(0.023f * (float)i);
        st[3 * i + 2] = 0.1f;
    }
    float *y = NULL;
    size_t n = 0;
    dpt_error err = {0};
    /* mono 16 kHz: unchanged */
    float mono[N];
    for (int i = 0; i < N; i++) mono[i] = st[3 * i];
    ck_assert_int_eq(dpt_audio_to_16k(mono, N, 1, 16000.0, &y, &n, &err), DPT_OK);
    ck_assert_uint_eq(n, N);
    ck_assert_int_eq(memcmp(y, mono, sizeof mono), 0);
    dpt_free(y);
    /* 3 channels at 16 kHz: ((a + b) + c) / 3 in float32, as np.mean sums fewer than 8 values */
    ck_assert_int_eq(dpt_audio_to_16k(st, N, 3, 16000.0, &y, &n, &err), DPT_OK);
    ck_assert_uint_eq(n, N);
    for (int i = 0; i < N; i++) {
        float want = ((0.0f + st[3 * i] + st[3 * i + 1]) + st[3 * i + 2]) / 3.0f;
        ck_assert_msg(y[i] == want, "frame %d: %.9g vs %.9g", i, y[i], want);
    }
    dpt_free(y);
}
END_TEST

/* 48 kHz → 16 kHz: librosa's length ceil(n·(16000/48000)); a 440 Hz tone keeps its amplitude
 * and phase (linear-phase filter, delay compensated). */
START_TEST(t_to16k_resample_tone) {
    const int rates[3] = {48000, 44100, 8000};
    for (int r = 0; r < 3; r++) {
        const double sr = rates[r];
        const size_t n = (size_t)(sr * 0.5) + 3;
        float *x = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * (float)sin(2 * M_PI * 440.0 * (double)i / sr);
        float *y = NULL;
        size_t ny = 0;
        dpt_error err = {0};
        ck_assert_int_eq(dpt_audio_to_16k(x, n, 1, sr, &y, &ny, &err), DPT_OK);
        ck_assert_uint_eq(ny, (size_t)ceil((double)n * (16000.0 / sr)));
        double max_err = 0;
        for (size_t i = 800; i + 800 < ny; i++) {
            double want = 0.5 * sin(2 * M_PI * 440.0 * (double)i / 16000.0);
            double d = fabs(y[i] - want);
            if (d > max_err) max_err = d;
        }
        ck_assert_msg(max_err < 1e-3, "rate %g: max error %g", sr, max_err);
        dpt_free(y);
        free(x);
    }
}
END_TEST

START_TEST(t_to16k_errors) {
    float x[100] = {0};
    float *y = NULL;
    size_t n;
    dpt_error err = {0};
    const char *fn = "dpt_audio_to_16k";
    check_error(&err, dpt_audio_to_16k(x, 0, 1, 44100, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "zero-length");
    check_error(&err, dpt_audio_to_16k(x, 100, 0, 44100, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "channel");
    check_error(&err, dpt_audio_to_16k(x, 100, 1, 0.0, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "sample rate");
    check_error(&err, dpt_audio_to_16k(x, 100, 1, -8000.0, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "sample rate");
    check_error(&err, dpt_audio_to_16k(x, 100, 1, NAN, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "sample rate");
    check_error(&err, dpt_audio_to_16k(x, 100, 1, 1e9, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "sample rate");
    check_error(&err, dpt_audio_to_16k(x, 100, 1, 999.5, &y, &n, &err), DPT_ERR_INVALID_ARG, fn,
                "sample rate 999.5 Hz out of range [1000, 768000]");
    check_error(&err, dpt_audio_to_16k(NULL, 100, 1, 44100, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "NULL");
    check_error(&err, dpt_audio_to_16k(x, 100, 1, 44100, NULL, &n, &err), DPT_ERR_INVALID_ARG, fn, "NULL");
    x[37] = NAN;
    check_error(&err, dpt_audio_to_16k(x, 50, 2, 44100, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "frame 18");
    check_error(&err, dpt_audio_to_16k(x, 100, 1, 16000, &y, &n, &err), DPT_ERR_INVALID_ARG, fn, "not finite");
    ck_assert_ptr_null(y);
    /* over the limit: rejected before reading (x is far shorter than n_frames) */
    size_t over = (size_t)(DPT_MAX_AUDIO_SECONDS * 8000) + 1;
    check_error(&err, dpt_audio_to_16k(x, over, 1, 8000, &y, &n, &err), DPT_ERR_UNSUPPORTED, fn, "DPT_MAX_AUDIO_SECONDS");
    ck_assert_ptr_null(y);
}
END_TEST

/* ---- dpt_audio_load ---- */

START_TEST(t_load_wav_16k_exact) {
    /* 16-bit PCM written as integers; libsndfile reads them as v / 32768 (soundfile too) */
    enum { N = 12345 };
    static short v[N];
    for (int i = 0; i < N; i++) v[i] = (short)((i * 7919) % 65536 - 32768);
    const char *p = tmp_path(".wav");
    SF_INFO info = {0};
    info.samplerate = 16000;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE *sf = sf_open(p, SFM_WRITE, &info);
    ck_assert_ptr_nonnull(sf);
    ck_assert_int_eq(sf_writef_short(sf, v, N), N);
    sf_close(sf);
    float *y = NULL;
    size_t n = 0;
    dpt_error err = {0};
    ck_assert_int_eq(dpt_audio_load(p, &y, &n, &err), DPT_OK);
    ck_assert_uint_eq(n, N);
    for (int i = 0; i < N; i++) ck_assert_msg(y[i] == (float)v[i] / 32768.0f, "sample %d", i);
    dpt_free(y);
}
END_TEST

START_TEST(t_load_stereo_flac_and_float_wav) {
    enum { N = 22050 };
    static float st[2 * N];
    for (int i = 0; i < N; i++) {
        st[2 * i] = 0.5f * sinf(0.05f * (float)i);
        st[2 * i + 1] = 0.25f * sinf(0.031f * (float)i);
    }
    const int formats[2] = {SF_FORMAT_FLAC | SF_FORMAT_PCM_24, SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    const char *ext[2] = {".flac", ".wav"};
    for (int k = 0; k < 2; k++) {
        const char *p = write_sound(st, N, 2, 22050, formats[k], ext[k]);
        float *y = NULL, *z = NULL;
        size_t n = 0, nz = 0;
        dpt_error err = {0};
        ck_assert_msg(dpt_audio_load(p, &y, &n, &err) == DPT_OK, "%s", err.message);
        ck_assert_uint_eq(n, (size_t)ceil(N * (16000.0 / 22050.0)));
        if (k == 1) {
            /* a float WAV decodes to the very samples: load ≡ to_16k on the buffer */
            ck_assert_int_eq(dpt_audio_to_16k(st, N, 2, 22050.0, &z, &nz, &err), DPT_OK);
            ck_assert_uint_eq(nz, n);
            ck_assert_int_eq(memcmp(y, z, n * sizeof(float)), 0);
            dpt_free(z);
        }
        dpt_free(y);
    }
}
END_TEST

/* Silence decodes, resamples and normalises to finite zeros. */
START_TEST(t_load_all_zero) {
    static float x[44100];
    const char *p = write_sound(x, 44100, 1, 44100, SF_FORMAT_WAV | SF_FORMAT_PCM_16, ".wav");
    float *y = NULL, *z = NULL;
    size_t n = 0, nz = 0;
    dpt_clip_layout lay;
    dpt_error err = {0};
    ck_assert_int_eq(dpt_audio_load(p, &y, &n, &err), DPT_OK);
    ck_assert_uint_eq(n, 16000);
    ck_assert_int_eq(dpt_audio_prepare(y, n, 25, 100, 1, &z, &nz, &lay, &err), DPT_OK);
    ck_assert_uint_eq(nz, 64000);
    ck_assert(dpt_all_finite(z, nz));
    for (size_t i = 0; i < nz; i++) ck_assert(z[i] == 0.0f);
    dpt_free(y);
    dpt_free(z);
}
END_TEST

START_TEST(t_load_errors) {
    float *y = (float *)1;
    size_t n = 9;
    dpt_error err = {0};
    /* missing file, directory */
    const char *missing = "/nonexistent-dir/speech.wav";
    check_error(&err, dpt_audio_load(missing, &y, &n, &err), DPT_ERR_IO, missing, "cannot open");
    ck_assert_ptr_null(y);
    ck_assert_uint_eq(n, 0);
    const char *tmp_dir = dpt_check_tmp_dir("audio");
    check_error(&err, dpt_audio_load(tmp_dir, &y, &n, &err), DPT_ERR_IO, tmp_dir, "directory");
    /* empty file, text file, garbage after a FLAC magic, a truncated WAV header */
    const char *p = write_bytes("", 0, ".wav");
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_AUDIO, p, "zero-length");
    p = write_bytes("this is not audio\n", 18, ".wav");
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_AUDIO, p, "not a readable audio file");
    unsigned char junk[4096];
    memcpy(junk, "fLaC", 4);
    for (size_t i = 4; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 2654435761u >> 13);
    p = write_bytes(junk, sizeof junk, ".flac");
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_AUDIO, p, NULL);
    static float tone[8000];
    for (int i = 0; i < 8000; i++) tone[i] = 0.5f * sinf(0.1f * (float)i);
    const char *good = write_sound(tone, 8000, 1, 8000, SF_FORMAT_WAV | SF_FORMAT_PCM_16, ".wav");
    FILE *f = fopen(good, "rb");
    unsigned char hdr[30];
    ck_assert_uint_eq(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
    fclose(f);
    p = write_bytes(hdr, sizeof hdr, ".wav");
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_AUDIO, p, NULL);
    /* a valid WAV with no frames */
    p = write_sound(tone, 0, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_PCM_16, ".wav");
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_AUDIO, p, "zero-length");
    /* a float WAV holding NaN */
    static float nan_x[1000];
    nan_x[321] = NAN;
    p = write_sound(nan_x, 1000, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_FLOAT, ".wav");
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_AUDIO, p, "frame 321");
    /* over the limit: 3601 s at 1000 Hz (the lowest rate accepted), 8-bit (3.6 MB) */
    size_t long_n = 3601 * 1000;
    float *lx = calloc(long_n, sizeof(float));
    p = write_sound(lx, (sf_count_t)long_n, 1, 1000, SF_FORMAT_WAV | SF_FORMAT_PCM_U8, ".wav");
    free(lx);
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_UNSUPPORTED, p, "3601.0 s");
    ck_assert_ptr_null(y);
    /* sample rates below 1 kHz (x16 samples once resampled) are refused from the header: 1 Hz and
     * 999 Hz; 1000 Hz reads, 100 samples giving 1600 */
    p = write_sound(tone, 181, 1, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, ".wav");
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_UNSUPPORTED, p,
                "unsupported sample rate 1 Hz (1000 ... 768000 Hz)");
    ck_assert_ptr_null(y);
    p = write_sound(tone, 181, 1, 999, SF_FORMAT_WAV | SF_FORMAT_PCM_16, ".wav");
    check_error(&err, dpt_audio_load(p, &y, &n, &err), DPT_ERR_UNSUPPORTED, p, "sample rate 999 Hz");
    p = write_sound(tone, 100, 1, 1000, SF_FORMAT_WAV | SF_FORMAT_PCM_16, ".wav");
    ck_assert_msg(dpt_audio_load(p, &y, &n, &err) == DPT_OK, "%s", err.message);
    ck_assert_uint_eq(n, 1600);
    dpt_free(y);
    y = NULL;
    /* NULL arguments */
    ck_assert_int_eq(dpt_audio_load(NULL, &y, &n, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_audio_load(good, NULL, &n, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_audio_load(good, &y, NULL, NULL), DPT_ERR_INVALID_ARG);
}
END_TEST

/* A WAV whose data chunk is cut short decodes what is there (as soundfile does). */
START_TEST(t_load_truncated_wav) {
    static float tone[16000];
    for (int i = 0; i < 16000; i++) tone[i] = 0.5f * sinf(0.1f * (float)i);
    const char *good = write_sound(tone, 16000, 1, 44100, SF_FORMAT_WAV | SF_FORMAT_PCM_16, ".wav");
    FILE *f = fopen(good, "rb");
    static unsigned char b[44 + 32000];
    size_t len = fread(b, 1, sizeof b, f);
    fclose(f);
    ck_assert_uint_eq(len, sizeof b);
    const char *p = write_bytes(b, 44 + 20000, ".wav"); /* 10000 of 16000 frames */
    float *y = NULL;
    size_t n = 0;
    dpt_error err = {0};
    ck_assert_msg(dpt_audio_load(p, &y, &n, &err) == DPT_OK, "%s", err.message);
    ck_assert_uint_eq(n, (size_t)ceil(10000 * (16000.0 / 44100.0)));
    dpt_free(y);
}
END_TEST

static void quiet_log(int level, const char *message, void *user) {
    (void)level;
    (void)message;
    (void)user;
}

int main(void) {
    dpt_check_tmp_dir("audio"); /* in the parent, so that it removes it after the run */
    dpt_log_set_callback(quiet_log, NULL);
    Suite *s = suite_create("audio");
    TCase *tc = tcase_create("audio");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_layout_cases);
    tcase_add_test(tc, t_layout_errors);
    tcase_add_test(tc, t_prepare_normalisation);
    tcase_add_test(tc, t_prepare_known_values);
    tcase_add_test(tc, t_prepare_no_padding);
    tcase_add_test(tc, t_prepare_silence);
    tcase_add_test(tc, t_prepare_errors);
    tcase_add_test(tc, t_to16k_passthrough_and_downmix);
    tcase_add_test(tc, t_to16k_resample_tone);
    tcase_add_test(tc, t_to16k_errors);
    tcase_add_test(tc, t_load_wav_16k_exact);
    tcase_add_test(tc, t_load_stereo_flac_and_float_wav);
    tcase_add_test(tc, t_load_all_zero);
    tcase_add_test(tc, t_load_errors);
    tcase_add_test(tc, t_load_truncated_wav);
    suite_add_tcase(s, tc);
    int failed = dpt_check_run(s);
    dpt_check_tmp_dir_remove();
    return failed;
}
