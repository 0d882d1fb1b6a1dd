/* dpt-generate: speech → FLAME coefficients (exp, pose, shape) with a DiffPoseTalk model, as
 * upstream's demo.py with --save_coef. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt.h"
#include "audio.h"
#include "sampler.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: dpt-generate -m MODEL.dpt -a AUDIO -c SHAPE.npy [-s STYLE.npy] -o OUT.npz [options]\n"
            "  -m MODEL.dpt            model (tools/export.py)\n"
            "  -a AUDIO                speech (any format libsndfile reads; resampled to 16 kHz)\n"
            "  -c SHAPE.npy            FLAME shape: (100,) or (frames, 100) (first row), or .npz key 'shape'\n"
            "  -s STYLE.npy            style vector (d_style,) from dpt-style, or .npz key 'style'\n"
            "  -o OUT.npz              output: exp (F,50), pose (F,6), shape (F,100); with -n K > 1\n"
            "                          OUT_000.npz, OUT_001.npz, ...\n"
            "  -n K                    repetitions (independent samples, batched), default 1\n"
            "  --seed S                seed of the built-in generator, default 0\n"
            "  --noise-from DRAWS.npy  replay standard-normal draws (flat float32, upstream's order)\n"
            "  -sa X, -ss X            guidance scales for audio (1.15) and style (3.0)\n"
            "  --cfg-mode M            incremental | independent (default: the model's)\n"
            "  --cfg-cond LIST         comma list of audio,style ('' = none; default: the model's)\n"
            "  -dtr R                  dynamic thresholding quantile (default 0 = off)\n"
            "  --dt-min X, --dt-max X  threshold clamp range (1.0, 4.0)\n"
            "  --threads N             threads (default: all cores)\n"
            "  --save-audio-features FEATS.npy  write the whole-clip audio features (exit if no -o)\n"
            "  --audio-features FEATS.npy       use cached features instead of running the encoder\n"
            "                          (-a still gives the clip length)\n"
            "  -h, --help              this help\n");
}

static int fail(const char *what, const char *msg) {
    if (what) fprintf(stderr, "dpt-generate: %s: %s\n", what, msg);
    else fprintf(stderr, "dpt-generate: %s\n", msg);
    return 1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static void shape_str(const dpt_array *a, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < a->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (k < n) snprintf(buf + k, n - k, a->ndim == 1 ? ",)" : ")");
}

/* A vector of `want` values: (want,), or (rows, want) taking the first row when rows_ok.
 * .npz files are read at `key`. */
static int read_vector(const char *path, const char *key, int want, int rows_ok, float *dst) {
    dpt_array a = {0};
    dpt_error err = {0};
    dpt_status st = ends_with(path, ".npz") ? dpt_npz_read(path, key, &a, &err)
                                            : dpt_npy_read(path, &a, &err);
    if (st != DPT_OK) {
        fprintf(stderr, "dpt-generate: %s\n", err.message);
        return 1;
    }
    int ok = (a.ndim == 1 && a.shape[0] == want) ||
             (a.ndim == 2 && a.shape[1] == want && a.shape[0] >= 1 && (rows_ok || a.shape[0] == 1));
    if (!ok) {
        char s[96], msg[256];
        shape_str(&a, s, sizeof s);
        if (rows_ok) snprintf(msg, sizeof msg, "expected (%d,) or (frames, %d), got shape %s", want, want, s);
        else snprintf(msg, sizeof msg, "expected (%d,), got shape %s", want, s);
        dpt_array_free(&a);
        return fail(path, msg);
    }
    memcpy(dst, a.data, sizeof(float) * (size_t)want);
    dpt_array_free(&a);
    for (int i = 0; i < want; i++)
        if (!isfinite(dst[i])) return fail(path, "contains NaN or Inf");
    return 0;
}

typedef struct replay {
    const float *data;
    size_t n, pos;
} replay;

static int replay_fn(void *user, float *dst, size_t n) {
    replay *r = user;
    if (r->n - r->pos < n) return 1;
    memcpy(dst, r->data + r->pos, sizeof(float) * n);
    r->pos += n;
    return 0;
}

static int parse_float(const char *opt, const char *s, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        fprintf(stderr, "dpt-generate: %s: '%s' is not a number\n", opt, s);
        return 1;
    }
    *out = (float)v;
    return 0;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "dpt-generate: %s: '%s' is not an integer in %ld..%ld\n", opt, s, lo, hi);
        return 1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *audio_path = NULL, *shape_path = NULL, *style_path = NULL,
               *out_path = NULL, *noise_path = NULL, *save_feats = NULL, *load_feats = NULL;
    dpt_gen_params p = dpt_gen_default_params();
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return fail(NULL, strncmp(o, "-", 1) ? "unexpected argument" : "option needs a value");
        }
        const char *v = argv[++i];
        long iv;
        if (!strcmp(o, "-m")) model_path = v;
        else if (!strcmp(o, "-a")) audio_path = v;
        else if (!strcmp(o, "-c")) shape_path = v;
        else if (!strcmp(o, "-s")) style_path = v;
        else if (!strcmp(o, "-o")) out_path = v;
        else if (!strcmp(o, "--noise-from")) noise_path = v;
        else if (!strcmp(o, "--save-audio-features")) save_feats = v;
        else if (!strcmp(o, "--audio-features")) load_feats = v;
        else if (!strcmp(o, "-n")) {
            if (parse_int(o, v, 1, 4096, &iv)) return 1;
            p.n_repetitions = (int)iv;
        } else if (!strcmp(o, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || *v == '-') return fail("--seed", "expected a non-negative integer");
            p.seed = (uint64_t)s;
        } else if (!strcmp(o, "-sa")) {
            if (parse_float(o, v, &p.scale_audio)) return 1;
        } else if (!strcmp(o, "-ss")) {
            if (parse_float(o, v, &p.scale_style)) return 1;
        } else if (!strcmp(o, "-dtr")) {
            if (parse_float(o, v, &p.dt_ratio)) return 1;
        } else if (!strcmp(o, "--dt-min")) {
            if (parse_float(o, v, &p.dt_min)) return 1;
        } else if (!strcmp(o, "--dt-max")) {
            if (parse_float(o, v, &p.dt_max)) return 1;
        } else if (!strcmp(o, "--threads")) {
            if (parse_int(o, v, 0, 1024, &iv)) return 1;
            p.n_threads = (int)iv;
        } else if (!strcmp(o, "--cfg-mode")) {
            if (!strcmp(v, "incremental")) p.cfg_mode = DPT_CFG_INCREMENTAL;
            else if (!strcmp(v, "independent")) p.cfg_mode = DPT_CFG_INDEPENDENT;
            else return fail("--cfg-mode", "expected incremental or independent");
        } else if (!strcmp(o, "--cfg-cond")) {
            unsigned c = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                if (!strcmp(tok, "audio")) c |= DPT_COND_AUDIO;
                else if (!strcmp(tok, "style")) c |= DPT_COND_STYLE;
                else return fail("--cfg-cond", "conditions are 'audio' and 'style'");
            }
            p.cfg_conds = c;
        } else {
            usage(stderr);
            fprintf(stderr, "dpt-generate: unknown option '%s'\n", o);
            return 2;
        }
    }
    if (!model_path || !audio_path || (!out_path && !save_feats) || (out_path && !shape_path)) {
        usage(stderr);
        return fail(NULL, "-m, -a and -o with -c (or --save-audio-features) are required");
    }

    int rc = 1;
    dpt_error err = {0};
    dpt_model *model = NULL;
    float *samples = NULL, *feats = NULL;
    dpt_array draws = {0}, fa = {0};
    dpt_result *res = NULL;
    size_t n_samples = 0;
    int n_feat = 0;
    float shape[100], *style = NULL;

    if (dpt_model_load(model_path, NULL, &model, &err) != DPT_OK) {
        fprintf(stderr, "dpt-generate: %s\n", err.message);
        goto out;
    }
    dpt_model_info info;
    dpt_model_get_info(model, &info);
    if (out_path) {
        if (read_vector(shape_path, "shape", 100, 1, shape)) goto out;
        if (style_path) {
            style = malloc(sizeof(float) * (size_t)(info.d_style > 0 ? info.d_style : 1));
            if (!style) goto out;
            if (!info.use_style) {
                fail(style_path, "the model takes no style input");
                goto out;
            }
            if (read_vector(style_path, "style", info.d_style, 0, style)) goto out;
        }
        dpt_cfg_plan plan;
        if (dpt_gen_check(model, &p, shape, style, &plan, &err) != DPT_OK) {
            fprintf(stderr, "dpt-generate: %s\n", err.message);
            goto out;
        }
    }
    if (dpt_audio_load(audio_path, &samples, &n_samples, &err) != DPT_OK) {
        fprintf(stderr, "dpt-generate: %s\n", err.message);
        goto out;
    }
    dpt_clip_layout lay;
    if (dpt_clip_layout_compute(n_samples, info.fps, info.n_motions, &lay, &err) != DPT_OK) {
        fail(audio_path, err.message);
        goto out;
    }
    if (load_feats) {
        if (dpt_npy_read(load_feats, &fa, &err) != DPT_OK) {
            fprintf(stderr, "dpt-generate: %s\n", err.message);
            goto out;
        }
        if (fa.ndim != 2 || fa.shape[0] != lay.n_frames_total || fa.shape[1] != info.feature_dim) {
            char s[96], msg[256];
            shape_str(&fa, s, sizeof s);
            snprintf(msg, sizeof msg, "expected (%d, %d) audio features for %s, got %s",
                     lay.n_frames_total, info.feature_dim, audio_path, s);
            fail(load_feats, msg);
            goto out;
        }
        feats = fa.data;
        n_feat = (int)fa.shape[0];
    } else {
        if (dpt_encode_audio(model, samples, n_samples, p.n_threads, &feats, &n_feat, &err) != DPT_OK) {
            fail(audio_path, err.message);
            goto out;
        }
    }
    if (save_feats) {
        int64_t shp[2] = {n_feat, info.feature_dim};
        if (dpt_npy_write(save_feats, feats, 2, shp, &err) != DPT_OK) {
            fprintf(stderr, "dpt-generate: %s\n", err.message);
            goto out;
        }
        if (!out_path) {
            rc = 0;
            goto out;
        }
    }
    replay rp = {0};
    if (noise_path) {
        if (dpt_npy_read(noise_path, &draws, &err) != DPT_OK) {
            fprintf(stderr, "dpt-generate: %s\n", err.message);
            goto out;
        }
        size_t n = 1;
        for (int d = 0; d < draws.ndim; d++) n *= (size_t)draws.shape[d];
        rp.data = draws.data;
        rp.n = n;
        p.noise_fn = replay_fn;
        p.noise_user = &rp;
    }
    if (dpt_generate_features(model, feats, n_feat, &lay, shape, style, &p, &res, &err) != DPT_OK) {
        fail(err.status == DPT_ERR_NOISE && noise_path ? noise_path : NULL, err.message);
        goto out;
    }
    if (noise_path && rp.pos != rp.n)
        fprintf(stderr, "dpt-generate: warning: %s: %zu of %zu draws left unused\n", noise_path,
                rp.n - rp.pos, rp.n);

    {
        /* upstream: <out>.npz, or <out>_<iii>.npz per repetition when N > 1 */
        size_t len = strlen(out_path);
        size_t base_len = ends_with(out_path, ".npz") ? len - 4 : len;
        char *name = malloc(base_len + 16);
        if (!name) goto out;
        int F = res->n_frames;
        for (int r = 0; r < res->n_repetitions; r++) {
            if (res->n_repetitions == 1) snprintf(name, base_len + 16, "%.*s.npz", (int)base_len, out_path);
            else snprintf(name, base_len + 16, "%.*s_%03d.npz", (int)base_len, out_path, r);
            const char *keys[3] = {"exp", "pose", "shape"};
            dpt_array arrs[3] = {{2, {F, 50, 0, 0}, res->exp + (size_t)r * F * 50},
                                 {2, {F, 6, 0, 0}, res->pose + (size_t)r * F * 6},
                                 {2, {F, 100, 0, 0}, res->shape}};
            if (dpt_npz_write(name, 3, keys, arrs, 1, &err) != DPT_OK) {
                fprintf(stderr, "dpt-generate: %s\n", err.message);
                free(name);
                goto out;
            }
        }
        free(name);
    }
    rc = 0;
out:
    dpt_result_free(res);
    if (load_feats) dpt_array_free(&fa);
    else dpt_free(feats);
    dpt_array_free(&draws);
    dpt_free(samples);
    free(style);
    dpt_model_free(model);
    return rc;
}
