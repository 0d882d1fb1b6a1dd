/* Audio front end driven by tests/python/test_audio_frontend.py.
 *
 *   harness_audio load FILE OUT.npy
 *       dpt_audio_load: 16 kHz mono samples (n,) float32
 *   harness_audio to16k SAMPLES.npy RATE OUT.npy
 *       dpt_audio_to_16k on (n,) or (n, channels) samples at RATE Hz
 *   harness_audio prepare FILE|SAMPLES.npy [--fps 25] [--n-motions 100] [--replicate] OUT.npy LAYOUT.json
 *       dpt_audio_prepare on the loaded file (or on 16 kHz mono samples from a .npy): the
 *       normalised, window-padded clip and its layout as JSON
 *
 * Errors: one line on stderr, exit status 1 (2 for bad usage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "dpt.h"

static int usage(void) {
    fprintf(stderr,
            "usage: harness_audio load FILE OUT.npy | to16k SAMPLES.npy RATE OUT.npy | prepare "
            "FILE|SAMPLES.npy [--fps N] [--n-motions N] [--replicate] OUT.npy LAYOUT.json\n");
    return 2;
}

static int fail(const dpt_error *err) {
    fprintf(stderr, "harness_audio: %s\n", err->message);
    return 1;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int write_1d(const char *path, const float *x, size_t n, dpt_error *err) {
    int64_t shape[1] = {(int64_t)n};
    return dpt_npy_write(path, x, 1, shape, err) == DPT_OK;
}

static int cmd_load(int argc, char **argv) {
    if (argc != 4) return usage();
    dpt_error err = {0};
    float *y = NULL;
    size_t n = 0;
    if (dpt_audio_load(argv[2], &y, &n, &err) != DPT_OK) return fail(&err);
    int ok = write_1d(argv[3], y, n, &err);
    dpt_free(y);
    return ok ? 0 : fail(&err);
}

static int cmd_to16k(int argc, char **argv) {
    if (argc != 5) return usage();
    dpt_error err = {0};
    dpt_array a = {0};
    if (dpt_npy_read(argv[2], &a, &err) != DPT_OK) return fail(&err);
    char *end = NULL;
    double rate = strtod(argv[3], &end);
    if (!end || *end) {
        dpt_array_free(&a);
        return usage();
    }
    int ch = a.ndim == 2 ? (int)a.shape[1] : 1;
    size_t frames = a.ndim >= 1 ? (size_t)a.shape[0] : 1;
    if (a.ndim > 2) {
        dpt_array_free(&a);
        fprintf(stderr, "harness_audio: %s: expected (n,) or (n, channels)\n", argv[2]);
        return 1;
    }
    float *y = NULL;
    size_t n = 0;
    dpt_status st = dpt_audio_to_16k(a.data, frames, ch, rate, &y, &n, &err);
    dpt_array_free(&a);
    if (st != DPT_OK) return fail(&err);
    int ok = write_1d(argv[4], y, n, &err);
    dpt_free(y);
    return ok ? 0 : fail(&err);
}

static int cmd_prepare(int argc, char **argv) {
    int fps = 25, n_motions = 100, replicate = 0;
    const char *pos[3];
    int n_pos = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--fps") == 0 && i + 1 < argc) fps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--n-motions") == 0 && i + 1 < argc) n_motions = atoi(argv[++i]);
        else if (strcmp(argv[i], "--replicate") == 0) replicate = 1;
        else if (n_pos < 3) pos[n_pos++] = argv[i];
        else return usage();
    }
    if (n_pos != 3) return usage();
    dpt_error err = {0};
    float *x = NULL;
    size_t n = 0;
    if (ends_with(pos[0], ".npy")) {
        dpt_array a = {0};
        if (dpt_npy_read(pos[0], &a, &err) != DPT_OK) return fail(&err);
        if (a.ndim != 1) {
            dpt_array_free(&a);
            fprintf(stderr, "harness_audio: %s: expected a 1-D array of 16 kHz samples\n", pos[0]);
            return 1;
        }
        x = a.data; /* malloc'ed: freed with free() below */
        n = (size_t)a.shape[0];
    } else if (dpt_audio_load(pos[0], &x, &n, &err) != DPT_OK) {
        return fail(&err);
    }
    float *y = NULL;
    size_t n_y = 0;
    dpt_clip_layout lay;
    dpt_status st = dpt_audio_prepare(x, n, fps, n_motions, replicate, &y, &n_y, &lay, &err);
    free(x);
    if (st != DPT_OK) return fail(&err);
    int ok = write_1d(pos[1], y, n_y, &err);
    dpt_free(y);
    if (!ok) return fail(&err);
    FILE *f = fopen(pos[2], "w");
    if (!f) {
        fprintf(stderr, "harness_audio: %s: cannot create\n", pos[2]);
        return 1;
    }
    fprintf(f,
            "{\"n_input\": %zu, \"clip_len\": %d, \"n_windows\": %d, \"n_pad\": %ld, "
            "\"n_pad_frames\": %d, \"n_frames_total\": %d, \"n_out_frames\": %d, \"n_padded\": %zu}\n",
            lay.n_input, lay.clip_len, lay.n_windows, lay.n_pad, lay.n_pad_frames,
            lay.n_frames_total, lay.n_out_frames, n_y);
    if (fclose(f) != 0) {
        fprintf(stderr, "harness_audio: %s: write error\n", pos[2]);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    if (strcmp(argv[1], "load") == 0) return cmd_load(argc, argv);
    if (strcmp(argv[1], "to16k") == 0) return cmd_to16k(argc, argv);
    if (strcmp(argv[1], "prepare") == 0) return cmd_prepare(argc, argv);
    return usage();
}
