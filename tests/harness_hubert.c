/* Audio-encoder harness for the Python parity tests.
 *
 *   harness_hubert MODEL.dpt SAMPLES.npy OUTDIR [--threads N] [--padded L_TOT] [--no-stages]
 *                  [--stage-times] [--repeat N] [--precision f32|bf16|int8|f16]
 *
 * SAMPLES.npy: 1-D float32/float64 16 kHz mono samples, raw (unnormalised) by default; with
 * --padded L_TOT they are taken as the already prepared clip (§3) and L_TOT as the frame count.
 * Default: dpt_audio_prepare + dpt_hubert_encode_ex with every stage written into OUTDIR
 * (float32 .npy, time-major (T, C): PyTorch's (1, C, T) tensors transposed):
 *   padded, pad_audio, conv, extract_features, feature_projection, pos_conv, encoder_ln,
 *   last_hidden_state, back_resample, audio_feat
 * --no-stages: only audio_feat.npy, computed through the public dpt_model_encode_audio (unless --padded).
 * --stage-times: no stage files; the time spent before each stage boundary goes to stderr
 *   (the "pad_audio" stage then includes one clip copy).
 * Prints "frames L_TOT" and "encode_seconds S" (fastest of --repeat runs, model load excluded).
 * Exit status 0 on success, 1 on failure (message on stderr), 2 on bad usage. */
#include "audio.h"
#include "hubert.h"
#include "model.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int npy_write(const char *path, const float *data, int ndim, const int64_t *shape) {
    dpt_error err = {0};
    if (dpt_npy_write(path, data, ndim, shape, &err) != DPT_OK) {
        fprintf(stderr, "harness_hubert: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* 1-D float samples from an .npy (float32 or float64); NULL on failure (message printed). */
static float *npy_read_1d(const char *path, size_t *n_out) {
    dpt_error err = {0};
    dpt_array arr = {0};
    if (dpt_npy_read(path, &arr, &err) != DPT_OK) {
        fprintf(stderr, "harness_hubert: %s\n", err.message);
        return NULL;
    }
    if (arr.ndim != 1) {
        fprintf(stderr, "harness_hubert: %s: expected a 1-D array, got %d dimensions\n", path,
                arr.ndim);
        dpt_array_free(&arr);
        return NULL;
    }
    *n_out = (size_t)arr.shape[0];
    float *d = arr.data;
    if (!d) d = malloc(sizeof(float)); /* zero-length array: keep a valid pointer */
    return d;
}

/* ---- stage dump ---- */

typedef struct dump_ctx {
    const char *dir;
    int failed;
    int times_only; /* --stage-times: report the time since the previous stage instead */
    double last;
} dump_ctx;

static double now_seconds(void);

static void on_stage(void *user, const char *stage, const float *data, long rows, int cols) {
    dump_ctx *d = user;
    if (d->times_only) {
        double t = now_seconds();
        fprintf(stderr, "stage %-20s %8.4f s\n", stage, t - d->last);
        d->last = now_seconds();
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", d->dir, stage);
    int64_t shape[2] = {rows, cols};
    if (npy_write(path, data, cols == 1 ? 1 : 2, shape) != 0) {
        fprintf(stderr, "harness_hubert: cannot write %s\n", path);
        d->failed = 1;
    }
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr,
                "usage: %s MODEL.dpt SAMPLES.npy OUTDIR [--threads N] [--padded L_TOT] "
                "[--no-stages] [--stage-times] [--repeat N]\n",
                argv[0]);
        return 2;
    }
    const char *model_path = argv[1], *samples_path = argv[2], *outdir = argv[3];
    int threads = 0, padded_frames = 0, stages = 1, repeat = 1, times_only = 0;
    dpt_precision precision = DPT_PRECISION_F32;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--padded") && i + 1 < argc) padded_frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-stages")) stages = 0;
        else if (!strcmp(argv[i], "--stage-times")) times_only = 1, stages = 0;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            const char *v = argv[++i];
            precision = !strcmp(v, "bf16") ? DPT_PRECISION_BF16 : !strcmp(v, "int8") ? DPT_PRECISION_INT8
                      : !strcmp(v, "f16") ? DPT_PRECISION_F16 : DPT_PRECISION_F32;
        } else {
            fprintf(stderr, "harness_hubert: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (repeat < 1) repeat = 1;
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "harness_hubert: cannot create %s\n", outdir);
        return 1;
    }
    dpt_error err = {0};
    dpt_model *m = NULL;
    dpt_load_params lp = dpt_load_params_default();
    lp.precision = precision;
    if (dpt_model_load(model_path, &lp, &m, &err) != DPT_OK) {
        fprintf(stderr, "harness_hubert: %s\n", err.message);
        return 1;
    }
    size_t n = 0;
    float *samples = npy_read_1d(samples_path, &n);
    if (!samples) {
        dpt_model_free(m);
        return 1;
    }
    int rc = 1;
    float *padded = NULL, *feat = NULL;
    size_t n_padded = 0;
    int L = 0;
    dump_ctx dc = {outdir, 0, times_only, 0.0};
    dpt_hubert_dump dump = {on_stage, &dc};
    char path[4096];
    double best = 1e30;
    if (!stages && !times_only && padded_frames <= 0) {
        /* the public path: dpt_model_encode_audio (prepare + encode) */
        for (int r = 0; r < repeat; r++) {
            free(feat);
            feat = NULL;
            double t0 = now_seconds();
            if (dpt_model_encode_audio(m, samples, n, threads, &feat, &L, &err) != DPT_OK) {
                fprintf(stderr, "harness_hubert: %s\n", err.message);
                goto out;
            }
            double t1 = now_seconds();
            if (t1 - t0 < best) best = t1 - t0;
        }
    } else {
        if (padded_frames > 0) {
            padded = samples;
            samples = NULL;
            n_padded = n;
            L = padded_frames;
        } else {
            dpt_clip_layout lay;
            if (dpt_audio_prepare(samples, n, m->info.fps, m->info.n_motions,
                                  m->info.pad_replicate, &padded, &n_padded, &lay,
                                  &err) != DPT_OK) {
                fprintf(stderr, "harness_hubert: %s\n", err.message);
                goto out;
            }
            L = lay.n_frames_total;
        }
        if (stages) {
            snprintf(path, sizeof path, "%s/padded.npy", outdir);
            int64_t shp[1] = {(int64_t)n_padded};
            if (npy_write(path, padded, 1, shp) != 0) {
                fprintf(stderr, "harness_hubert: cannot write %s\n", path);
                goto out;
            }
        }
        for (int r = 0; r < repeat; r++) {
            free(feat);
            feat = NULL;
            double t0 = now_seconds();
            dc.last = t0;
            dpt_status st = dpt_hubert_encode_ex(m, padded, n_padded, L, threads,
                                                 (stages && r == 0) || times_only ? &dump : NULL,
                                                 &feat, &err);
            double t1 = now_seconds();
            if (st != DPT_OK) {
                fprintf(stderr, "harness_hubert: %s\n", err.message);
                goto out;
            }
            if (t1 - t0 < best) best = t1 - t0;
        }
        if (dc.failed) goto out;
    }
    if (!stages) {
        int64_t s2[2] = {L, m->audio.feature_map.n_out};
        snprintf(path, sizeof path, "%s/audio_feat.npy", outdir);
        if (npy_write(path, feat, 2, s2) != 0) {
            fprintf(stderr, "harness_hubert: cannot write %s\n", path);
            goto out;
        }
    }
    printf("frames %d\nencode_seconds %.4f\n", L, best);
    rc = 0;
out:
    free(feat);
    free(samples);
    dpt_free(padded);
    dpt_model_free(m);
    return rc;
}
