/* Style encoder / denoiser / sampler harness for the Python parity tests.
 *
 *   harness_denoiser forward  MODEL.dpt INPUTS.npz OUT.npy [--threads N] [--repeat R]
 *       INPUTS.npz: x (B,L,dm), pm (B,Lp,dm), pa (B,Lp,D), af (B,L,D), pf (B,dp) or (B,1,dp),
 *       t (B,), optional ind (B,L). One row each (own memory and person slot), all rows in one
 *       batched call. OUT.npy: (B, L, dm), the last L frames of motion_dec.
 *       Prints "seconds S" (fastest of R calls, slot setup excluded).
 *   harness_denoiser style    MODEL.dpt MOTION.npz START OUT.npy
 *       MOTION.npz: exp (T,50), pose (T,6). OUT.npy: (d_style,).
 *   harness_denoiser schedule KIND T OUT.npz
 *       KIND linear|quadratic|sigmoid|cosine. OUT.npz: betas, alphas, alpha_bars, sigmas_flex,
 *       sigmas_inflex (T+1 each), computed by dpt_schedule_compute.
 *   harness_denoiser rng      SEED N OUT.npy          N draws of the built-in generator
 *   harness_denoiser quantile IN.npy Q OUT.npy        per row of IN (R, n): dpt_quantile → (R,)
 *   harness_denoiser generate MODEL.dpt FEATS.npy N_SAMPLES SHAPE.npy OUT.npz [options]
 *       FEATS.npy (L_tot, D) whole-clip audio features; N_SAMPLES the unpadded 16 kHz sample count
 *       (gives the clip layout); SHAPE.npy (100,). Options: --style S.npy, --noise DRAWS.npy
 *       (flat, replayed in upstream's order), -n K, --seed S, -sa X, -ss X,
 *       --cfg-mode incremental|independent|N (N: raw value), --cfg-cond LIST|default|bits:N,
 *       -dtr R, --dt-min X, --dt-max X, --flex F, --threads N, --steps N, --eta E.
 *       OUT.npz: exp (K,F,50), pose (K,F,6), shape (F,100). Prints "seconds S" and
 *       "draws_used N".
 * Exit status 0 on success, 1 on failure (the library's message on stderr), 2 on bad usage. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio.h"
#include "denoiser.h"
#include "dpt.h"
#include "kernels.h"
#include "model.h"
#include "rng.h"
#include "sampler.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *msg) {
    fprintf(stderr, "harness_denoiser: %s\n", msg);
    return 1;
}

static int usage(void) {
    fprintf(stderr, "usage: see the comment at the top of tests/harness_denoiser.c\n");
    return 2;
}

static size_t count(const dpt_array *a) {
    size_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= (size_t)a->shape[i];
    return n;
}

static int load_model(const char *path, dpt_model **m) {
    dpt_error err = {0};
    dpt_load_params lp = dpt_load_params_default();
    const char *prec = getenv("DPT_TEST_PRECISION"); /* the bf16 parity tests */
    if (prec && !strcmp(prec, "bf16")) lp.precision = DPT_PRECISION_BF16;
    if (prec && !strcmp(prec, "int8")) lp.precision = DPT_PRECISION_INT8;
    if (dpt_model_load(path, &lp, m, &err) != DPT_OK) return die(err.message);
    return 0;
}

/* Read key from npz; require `ndim` dims with the given sizes (-1 = any). */
static int npz_get(const char *path, const char *key, dpt_array *a, int ndim, const int64_t *shape) {
    dpt_error err = {0};
    if (dpt_npz_read(path, key, a, &err) != DPT_OK) return die(err.message);
    if (a->ndim != ndim) {
        fprintf(stderr, "harness_denoiser: %s: '%s' has %d dims, expected %d\n", path, key, a->ndim,
                ndim);
        return 1;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] >= 0 && a->shape[i] != shape[i]) {
            fprintf(stderr, "harness_denoiser: %s: '%s' dim %d is %lld, expected %lld\n", path, key,
                    i, (long long)a->shape[i], (long long)shape[i]);
            return 1;
        }
    return 0;
}

static int cmd_forward(int argc, char **argv) {
    if (argc < 5) return usage();
    int threads = 0, repeat = 1;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
        else return usage();
    }
    dpt_model *m = NULL;
    if (load_model(argv[2], &m)) return 1;
    dpt_k_team *team = dpt_k_team_new(threads);
    const dpt_denoiser *n = &m->den;
    const char *in = argv[3];
    dpt_array x = {0}, pm = {0}, pa = {0}, af = {0}, pf = {0}, t = {0}, ind = {0};
    int rc = 1;
    dpt_den_work *w = NULL;
    float *out = NULL;
    dpt_den_row *rows = NULL;
    int64_t sx[3] = {-1, n->L, n->dm};
    if (npz_get(in, "x", &x, 3, sx)) goto done;
    int64_t B = x.shape[0];
    int64_t spm[3] = {B, n->Lp, n->dm}, spa[3] = {B, n->Lp, n->D}, saf[3] = {B, n->L, n->D},
            st[1] = {B}, sind[2] = {B, n->L};
    if (npz_get(in, "pm", &pm, 3, spm) || npz_get(in, "pa", &pa, 3, spa) ||
        npz_get(in, "af", &af, 3, saf) || npz_get(in, "t", &t, 1, st))
        goto done;
    {
        dpt_error err = {0};
        if (dpt_npz_read(in, "pf", &pf, &err) != DPT_OK) {
            die(err.message);
            goto done;
        }
        if (count(&pf) != (size_t)(B * n->dp)) {
            die("pf must hold B × dp values");
            goto done;
        }
        if (dpt_npz_has(in, "ind", &err) == 1 && npz_get(in, "ind", &ind, 2, sind)) goto done;
    }
    {
        dpt_error err = {0};
        if (dpt_den_work_new(m, team, (int)B, (int)B, (int)B, &w, &err) != DPT_OK) {
            die(err.message);
            goto done;
        }
    }
    rows = calloc((size_t)B, sizeof *rows);
    out = malloc(sizeof(float) * (size_t)B * n->L * n->dm);
    if (!rows || !out) goto done;
    for (int64_t b = 0; b < B; b++) {
        dpt_den_set_memory(w, (int)b, pa.data + (size_t)b * n->Lp * n->D,
                           af.data + (size_t)b * n->L * n->D);
        dpt_den_set_person(w, (int)b, pf.data + (size_t)b * n->dp);
        float tv = t.data[b];
        if (!(tv >= 0 && tv <= n->T) || tv != floorf(tv)) {
            die("t must be integers in 0..T");
            goto done;
        }
        rows[b] = (dpt_den_row){x.data + (size_t)b * n->L * n->dm, pm.data + (size_t)b * n->Lp * n->dm,
                                ind.data ? ind.data + (size_t)b * n->L : NULL, (int)b, (int)b, (int)tv};
    }
    double best = 1e30;
    for (int r = 0; r < (repeat > 0 ? repeat : 1); r++) {
        double t0 = now();
        dpt_den_forward(w, (int)B, rows, out);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    {
        int64_t so[3] = {B, n->L, n->dm};
        dpt_error err = {0};
        if (dpt_npy_write(argv[4], out, 3, so, &err) != DPT_OK) {
            die(err.message);
            goto done;
        }
    }
    printf("seconds %.6f\n", best);
    rc = 0;
done:
    dpt_array_free(&x);
    dpt_array_free(&pm);
    dpt_array_free(&pa);
    dpt_array_free(&af);
    dpt_array_free(&pf);
    dpt_array_free(&t);
    dpt_array_free(&ind);
    dpt_den_work_free(w);
    dpt_k_team_free(team);
    free(rows);
    free(out);
    dpt_model_free(m);
    return rc;
}

static int cmd_style(int argc, char **argv) {
    if (argc != 6) return usage();
    dpt_model *m = NULL;
    if (load_model(argv[2], &m)) return 1;
    dpt_array e = {0}, p = {0};
    int rc = 1;
    float *s = NULL;
    int64_t se[2] = {-1, 50}, sp[2] = {-1, 6};
    if (npz_get(argv[3], "exp", &e, 2, se) || npz_get(argv[3], "pose", &p, 2, sp)) goto done;
    {
        s = malloc(sizeof(float) * (size_t)(m->style.D > 0 ? m->style.D : 1));
        dpt_error err = {0};
        if (!s) goto done;
        if (dpt_model_extract_style(m, e.data, p.data, (int)e.shape[0], atoi(argv[4]), s, &err) != DPT_OK) {
            die(err.message);
            goto done;
        }
        int64_t so[1] = {m->style.D};
        if (dpt_npy_write(argv[5], s, 1, so, &err) != DPT_OK) {
            die(err.message);
            goto done;
        }
    }
    rc = 0;
done:
    free(s);
    dpt_array_free(&e);
    dpt_array_free(&p);
    dpt_model_free(m);
    return rc;
}

static int cmd_schedule(int argc, char **argv) {
    if (argc != 5) return usage();
    static const char *const kinds[] = {"linear", "quadratic", "sigmoid", "cosine"};
    int kind = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(argv[2], kinds[i])) kind = i;
    int T = atoi(argv[3]);
    if (kind < 0 || T < 1) return usage();
    size_t n = (size_t)T + 1;
    float *buf = malloc(sizeof(float) * 5 * n);
    if (!buf) return die("out of memory");
    dpt_error err = {0};
    if (dpt_schedule_compute((dpt_schedule_kind)kind, T, buf, buf + n, buf + 2 * n, buf + 3 * n,
                             buf + 4 * n, &err) != DPT_OK) {
        free(buf);
        return die(err.message);
    }
    const char *keys[5] = {"betas", "alphas", "alpha_bars", "sigmas_flex", "sigmas_inflex"};
    dpt_array arr[5];
    for (int i = 0; i < 5; i++) arr[i] = (dpt_array){1, {(int64_t)n, 0, 0, 0}, buf + i * n};
    int rc = dpt_npz_write(argv[4], 5, keys, arr, 0, &err) == DPT_OK ? 0 : die(err.message);
    free(buf);
    return rc;
}

static int cmd_rng(int argc, char **argv) {
    if (argc != 5) return usage();
    uint64_t seed = strtoull(argv[2], NULL, 10);
    size_t n = strtoull(argv[3], NULL, 10);
    float *x = malloc(sizeof(float) * (n ? n : 1));
    if (!x) return die("out of memory");
    dpt_rng r;
    dpt_rng_seed(&r, seed);
    dpt_rng_normal(&r, x, n);
    int64_t s[1] = {(int64_t)n};
    dpt_error err = {0};
    int rc = dpt_npy_write(argv[4], x, 1, s, &err) == DPT_OK ? 0 : die(err.message);
    free(x);
    return rc;
}

static int cmd_quantile(int argc, char **argv) {
    if (argc != 5) return usage();
    dpt_array a = {0};
    dpt_error err = {0};
    if (dpt_npy_read(argv[2], &a, &err) != DPT_OK) return die(err.message);
    if (a.ndim != 2 || a.shape[1] < 1) {
        dpt_array_free(&a);
        return die("quantile input must be (rows, n)");
    }
    size_t R = (size_t)a.shape[0], n = (size_t)a.shape[1];
    float q = (float)atof(argv[3]);
    float *out = malloc(sizeof(float) * (R ? R : 1)), *scr = malloc(sizeof(float) * n);
    for (size_t r = 0; r < R; r++) out[r] = dpt_quantile(a.data + r * n, n, q, scr);
    int64_t s[1] = {(int64_t)R};
    int rc = dpt_npy_write(argv[4], out, 1, s, &err) == DPT_OK ? 0 : die(err.message);
    free(out);
    free(scr);
    dpt_array_free(&a);
    return rc;
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

static int cmd_generate(int argc, char **argv) {
    if (argc < 7) return usage();
    dpt_gen_params p = dpt_gen_params_default();
    const char *style_path = NULL, *noise_path = NULL;
    for (int i = 7; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc) return usage();
        const char *v = argv[++i];
        if (!strcmp(o, "--style")) style_path = v;
        else if (!strcmp(o, "--noise")) noise_path = v;
        else if (!strcmp(o, "-n")) p.n_repetitions = atoi(v);
        else if (!strcmp(o, "--seed")) p.seed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "-sa")) p.scale_audio = (float)atof(v);
        else if (!strcmp(o, "-ss")) p.scale_style = (float)atof(v);
        else if (!strcmp(o, "-dtr")) p.dt_ratio = (float)atof(v);
        else if (!strcmp(o, "--dt-min")) p.dt_min = (float)atof(v);
        else if (!strcmp(o, "--dt-max")) p.dt_max = (float)atof(v);
        else if (!strcmp(o, "--flex")) p.flexibility = (float)atof(v);
        else if (!strcmp(o, "--threads")) p.n_threads = atoi(v);
        else if (!strcmp(o, "--steps")) p.steps = atoi(v);
        else if (!strcmp(o, "--eta")) p.eta = (float)atof(v);
        else if (!strcmp(o, "--cfg-mode")) {
            if (!strcmp(v, "incremental")) p.cfg_mode = DPT_CFG_INCREMENTAL;
            else if (!strcmp(v, "independent")) p.cfg_mode = DPT_CFG_INDEPENDENT;
            else p.cfg_mode = atoi(v);
        } else if (!strcmp(o, "--cfg-cond")) {
            if (!strcmp(v, "default")) p.cfg_conds = DPT_COND_MODEL_DEFAULT;
            else if (!strncmp(v, "bits:", 5)) p.cfg_conds = (unsigned)strtoul(v + 5, NULL, 0);
            else {
                unsigned c = 0;
                if (strstr(v, "audio")) c |= DPT_COND_AUDIO;
                if (strstr(v, "style")) c |= DPT_COND_STYLE;
                p.cfg_conds = c;
            }
        } else return usage();
    }
    dpt_model *m = NULL;
    if (load_model(argv[2], &m)) return 1;
    dpt_array feats = {0}, shape = {0}, style = {0}, noise = {0};
    dpt_result *res = NULL;
    dpt_error err = {0};
    int rc = 1;
    replay rp = {0};
    if (dpt_npy_read(argv[3], &feats, &err) != DPT_OK || dpt_npy_read(argv[5], &shape, &err) != DPT_OK ||
        (style_path && dpt_npy_read(style_path, &style, &err) != DPT_OK) ||
        (noise_path && dpt_npy_read(noise_path, &noise, &err) != DPT_OK)) {
        die(err.message);
        goto done;
    }
    if (count(&shape) != 100) {
        die("shape must hold 100 values");
        goto done;
    }
    if (style_path && count(&style) != (size_t)m->den.ds) {
        die("style vector length differs from the model's d_style");
        goto done;
    }
    dpt_clip_layout lay;
    if (dpt_clip_layout_compute((size_t)strtoull(argv[4], NULL, 10), m->info.fps, m->info.n_motions,
                                &lay, &err) != DPT_OK) {
        die(err.message);
        goto done;
    }
    if (feats.ndim != 2 || feats.shape[1] != m->den.D) {
        die("features must be (L_tot, D)");
        goto done;
    }
    if (noise_path) {
        rp.data = noise.data;
        rp.n = count(&noise);
        p.noise_fn = replay_fn;
        p.noise_user = &rp;
    }
    double t0 = now();
    if (dpt_generate_features(m, feats.data, (int)feats.shape[0], &lay, shape.data,
                              style_path ? style.data : NULL, &p, &res, &err) != DPT_OK) {
        die(err.message);
        goto done;
    }
    double secs = now() - t0;
    {
        int K = res->n_repetitions, F = res->n_frames;
        const char *keys[3] = {"exp", "pose", "shape"};
        dpt_array arr[3] = {{3, {K, F, 50, 0}, res->exp}, {3, {K, F, 6, 0}, res->pose},
                            {2, {F, 100, 0, 0}, res->shape}};
        if (dpt_npz_write(argv[6], 3, keys, arr, 0, &err) != DPT_OK) {
            die(err.message);
            goto done;
        }
    }
    printf("seconds %.6f\ndraws_used %zu\n", secs, rp.pos);
    rc = 0;
done:
    dpt_result_free(res);
    dpt_array_free(&feats);
    dpt_array_free(&shape);
    dpt_array_free(&style);
    dpt_array_free(&noise);
    dpt_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *c = argv[1];
    if (!strcmp(c, "forward")) return cmd_forward(argc, argv);
    if (!strcmp(c, "style")) return cmd_style(argc, argv);
    if (!strcmp(c, "schedule")) return cmd_schedule(argc, argv);
    if (!strcmp(c, "rng")) return cmd_rng(argc, argv);
    if (!strcmp(c, "quantile")) return cmd_quantile(argc, argv);
    if (!strcmp(c, "generate")) return cmd_generate(argc, argv);
    return usage();
}
