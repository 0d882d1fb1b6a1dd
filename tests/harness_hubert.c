/* Audio-encoder harness for the Python parity tests.
 *
 *   harness_hubert MODEL.dpt SAMPLES.npy OUTDIR [--threads N] [--padded L_TOT] [--no-stages]
 *                  [--repeat N] [--stage-times]
 *
 * SAMPLES.npy: 1-D float32/float64 16 kHz mono samples. By default they are raw (unnormalised)
 * and go through dpt_audio_prepare (normalisation + window padding, §3) first; with
 * --padded L_TOT they are taken as the already prepared clip and L_TOT as the frame count.
 * Writes into OUTDIR (float32 .npy, time-major (T, C) — PyTorch's (1, C, T) tensors transposed):
 *   padded.npy, pad_audio.npy, conv.npy, extract_features.npy, feature_projection.npy,
 *   pos_conv.npy, encoder_ln.npy, last_hidden_state.npy, back_resample.npy, audio_feat.npy
 * (only padded.npy and audio_feat.npy with --no-stages). Prints "encode_seconds S" (wall time of
 * the fastest of --repeat runs) on stdout; --stage-times writes no stages but prints the time
 * spent before each stage boundary on stderr (the "pad_audio" stage then costs one clip copy). Exit status 0 on success, 1 on failure (message on
 * stderr). */
#if defined(__has_include)
#if __has_include("audio.h")
#include "audio.h"
#define DPT_HAVE_AUDIO_H 1
#endif
#endif
#include "hubert.h"
#include "model.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- minimal .npy I/O (float32 write; 1-D float32/float64 little-endian read) ---- */

static int npy_write(const char *path, const float *data, int ndim, const int64_t *shape) {
    char hdr[256], shp[128] = "";
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        char t[32];
        snprintf(t, sizeof t, "%lld%s", (long long)shape[i], (ndim == 1 || i < ndim - 1) ? "," : "");
        strcat(shp, t);
        if (i < ndim - 1) strcat(shp, " ");
        n *= (size_t)shape[i];
    }
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                       shp);
    int total = 10 + len + 1;
    int padn = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned short hl = (unsigned short)(len + padn + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (int i = 0; i < padn; i++) fputc(' ', f);
    fputc('\n', f);
    size_t w = fwrite(data, sizeof(float), n, f);
    int bad = fclose(f) != 0 || w != n;
    return bad ? -1 : 0;
}

static float *npy_read_1d(const char *path, size_t *n_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    float *out = NULL;
    char *hdr = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) goto fail;
    size_t hl;
    if (pre[6] == 1) {
        hl = pre[8] | (size_t)pre[9] << 8;
    } else {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) goto fail;
        hl = pre[8] | (size_t)pre[9] << 8 | (size_t)b[0] << 16 | (size_t)b[1] << 24;
    }
    hdr = calloc(hl + 1, 1);
    if (!hdr || fread(hdr, 1, hl, f) != hl) goto fail;
    int is64 = strstr(hdr, "'<f8'") != NULL;
    if (!is64 && !strstr(hdr, "'<f4'")) goto fail;
    if (strstr(hdr, "'fortran_order': True")) goto fail;
    char *s = strstr(hdr, "'shape': (");
    if (!s) goto fail;
    s += 10;
    size_t n = 1;
    int nd = 0;
    while (*s && *s != ')') {
        if (*s >= '0' && *s <= '9') {
            n *= strtoull(s, &s, 10);
            nd++;
        } else {
            s++;
        }
    }
    if (nd > 2) goto fail;
    out = malloc(sizeof(float) * (n ? n : 1));
    if (!out) goto fail;
    for (size_t i = 0; i < n; i++) {
        if (is64) {
            double d;
            if (fread(&d, 8, 1, f) != 1) goto fail;
            out[i] = (float)d;
        } else if (fread(&out[i], 4, 1, f) != 1) {
            goto fail;
        }
    }
    fclose(f);
    free(hdr);
    *n_out = n;
    return out;
fail:
    fclose(f);
    free(hdr);
    free(out);
    return NULL;
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
                "[--no-stages] [--repeat N]\n",
                argv[0]);
        return 2;
    }
    const char *model_path = argv[1], *samples_path = argv[2], *outdir = argv[3];
    int threads = 0, padded_frames = 0, stages = 1, repeat = 1, times_only = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--padded") && i + 1 < argc) padded_frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-stages")) stages = 0;
        else if (!strcmp(argv[i], "--stage-times")) times_only = 1;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else {
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
    dpt_load_params lp = dpt_load_default_params();
    if (dpt_model_load(model_path, &lp, &m, &err) != DPT_OK) {
        fprintf(stderr, "harness_hubert: %s\n", err.message);
        return 1;
    }
    size_t n = 0;
    float *samples = npy_read_1d(samples_path, &n);
    if (!samples) {
        fprintf(stderr, "harness_hubert: cannot read %s (1-D float32/float64 .npy)\n", samples_path);
        dpt_model_free(m);
        return 1;
    }
    int rc = 1;
    float *padded = NULL, *feat = NULL;
    size_t n_padded = 0;
    int L = 0;
    if (padded_frames > 0) {
        padded = samples;
        samples = NULL;
        n_padded = n;
        L = padded_frames;
    } else {
#ifndef DPT_HAVE_AUDIO_H /* transitional: lib/audio.h not in the tree yet */
        fprintf(stderr, "harness_hubert: built without the audio front end; use --padded\n");
        goto out;
#else
        dpt_clip_layout lay;
        if (dpt_audio_prepare(samples, n, m->info.fps, m->info.n_motions, m->info.pad_replicate,
                              &padded, &n_padded, &lay, &err) != DPT_OK) {
            fprintf(stderr, "harness_hubert: %s\n", err.message);
            goto out;
        }
        L = lay.n_frames_total;
#endif
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/padded.npy", outdir);
    int64_t shp[2] = {(int64_t)n_padded, 0};
    if (npy_write(path, padded, 1, shp) != 0) {
        fprintf(stderr, "harness_hubert: cannot write %s\n", path);
        goto out;
    }
    dump_ctx dc = {outdir, 0, times_only, 0.0};
    if (times_only) stages = 0;
    dpt_hubert_dump dump = {on_stage, &dc};
    double best = 1e30;
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
