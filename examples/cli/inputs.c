/* Input files of the programs: speech, shape templates, style vectors, motion clips. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

void cli_shape_str(const dpt_array *a, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < a->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (k < n) snprintf(buf + k, n - k, a->ndim == 1 ? ",)" : ")");
}

int cli_is_npz(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char m[4] = {0};
    size_t got = fread(m, 1, 4, f);
    fclose(f);
    /* local file header, or the end record of an empty archive */
    return got == 4 && m[0] == 'P' && m[1] == 'K' && ((m[2] == 3 && m[3] == 4) || (m[2] == 5 && m[3] == 6));
}

int cli_make_parents(const char *path, cli_err *e) {
    char *dir = strdup(path);
    if (!dir) return cli_fail(e, "out of memory");
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *c = dir + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char keep = *c;
            *c = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
                int rc = cli_fail(e, "%s: cannot create directory %s: %s", path, dir, strerror(errno));
                free(dir);
                return rc;
            }
            *c = keep;
            if (!keep) break;
        }
    }
    free(dir);
    return 0;
}

/* Read an array from a .npy, or from an .npz at key (the file's contents decide, as np.load). */
static int read_array(const char *path, const char *key, dpt_array *a, cli_err *e) {
    dpt_error err = {0};
    dpt_status st = cli_is_npz(path) ? dpt_npz_read(path, key, a, &err) : dpt_npy_read(path, a, &err);
    if (st != DPT_OK) return cli_fail(e, "%s", err.message);
    return 0;
}

static int check_finite(const char *path, const char *what, const float *v, int n, cli_err *e) {
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return cli_fail(e, "%s: the %s contains NaN or Inf (value %d is %s)", path, what, i,
                            isnan(v[i]) ? "NaN" : "infinite");
    return 0;
}

int cli_load_shape(const char *path, float shape[100], cli_err *e) {
    dpt_array a = {0};
    if (read_array(path, "shape", &a, e)) return 1;
    char s[96];
    cli_shape_str(&a, s, sizeof s);
    int ok = (a.ndim == 1 && a.shape[0] == 100) || (a.ndim == 2 && a.shape[1] == 100 && a.shape[0] >= 1);
    if (!ok) {
        dpt_array_free(&a);
        return cli_fail(e, "%s: a shape template has 100 FLAME shape values, (100,) or (frames, 100); got %s",
                        path, s);
    }
    memcpy(shape, a.data, sizeof(float) * 100);   /* (frames, 100): the first frame, as upstream */
    dpt_array_free(&a);
    return check_finite(path, "shape", shape, 100, e);
}

int cli_load_features(const char *path, int dim, dpt_array *out, cli_err *e) {
    dpt_error err = {0};
    if (dpt_npy_read(path, out, &err) != DPT_OK) return cli_fail(e, "%s", err.message);
    char s[96];
    cli_shape_str(out, s, sizeof s);
    if (out->ndim != 2 || out->shape[1] != dim || out->shape[0] < 1 || out->shape[0] > INT_MAX / dim) {
        dpt_array_free(out);
        return cli_fail(e, "%s: audio features are (frames, %d) for this model; got %s", path, dim, s);
    }
    if (check_finite(path, "audio features", out->data, (int)out->shape[0] * dim, e)) {
        dpt_array_free(out);
        return 1;
    }
    return 0;
}

int cli_load_motion(const char *path, dpt_array *exp, dpt_array *pose, cli_err *e) {
    dpt_error err = {0};
    const char *keys[2] = {"exp", "pose"};
    const int cols[2] = {50, 6};
    dpt_array *arr[2] = {exp, pose};
    if (!cli_is_npz(path)) {
        FILE *f = fopen(path, "rb");
        if (!f) return cli_fail(e, "%s: cannot open: %s", path, strerror(errno));
        fclose(f);
        return cli_fail(e, "%s: a motion clip is an .npz with 'exp' (frames, 50) and 'pose' (frames, 6)",
                        path);
    }
    for (int k = 0; k < 2; k++) {
        if (dpt_npz_read(path, keys[k], arr[k], &err) != DPT_OK) {
            if (k) dpt_array_free(exp);
            return cli_fail(e, "%s", err.message);
        }
        if (arr[k]->ndim != 2 || arr[k]->shape[1] != cols[k] || arr[k]->shape[0] < 1) {
            char s[96];
            cli_shape_str(arr[k], s, sizeof s);
            dpt_array_free(exp);
            dpt_array_free(pose);
            return cli_fail(e, "%s: '%s' must have shape (frames, %d), got %s", path, keys[k], cols[k], s);
        }
    }
    if (exp->shape[0] != pose->shape[0]) {
        int rc = cli_fail(e, "%s: 'exp' has %lld frames but 'pose' %lld", path, (long long)exp->shape[0],
                          (long long)pose->shape[0]);
        dpt_array_free(exp);
        dpt_array_free(pose);
        return rc;
    }
    if (exp->shape[0] > 100000000) {
        dpt_array_free(exp);
        dpt_array_free(pose);
        return cli_fail(e, "%s: too many frames", path);
    }
    return 0;
}

int cli_load_style(const dpt_model *model, const char *path, int start, float *style, cli_err *e) {
    dpt_model_info info;
    dpt_model_get_info(model, &info);
    if (!info.use_style)
        return cli_fail(e, "%s: the model %s takes no style input (trained without a style encoder)",
                        path, info.path ? info.path : "");
    const int ds = info.d_style;
    if (cli_is_npz(path)) {
        dpt_error err = {0};
        int has_exp = dpt_npz_has(path, "exp", &err);
        if (has_exp < 0) return cli_fail(e, "%s", err.message);
        if (has_exp) {   /* a motion clip: extract the style on the fly */
            if (!info.has_style_encoder)
                return cli_fail(e, "%s: a motion clip needs a model with a style encoder; %s has none "
                                   "(give a style .npy made by dpt-style instead)",
                                path, info.path ? info.path : "the model");
            dpt_array exp = {0}, pose = {0};
            if (cli_load_motion(path, &exp, &pose, e)) return 1;
            if (start < 0 || start >= exp.shape[0]) {
                int rc = cli_fail(e, "%s: style start frame %d is outside the clip's %lld frames", path,
                                  start, (long long)exp.shape[0]);
                dpt_array_free(&exp);
                dpt_array_free(&pose);
                return rc;
            }
            dpt_status st = dpt_model_extract_style(model, exp.data, pose.data, (int)exp.shape[0], start, style, &err);
            dpt_array_free(&exp);
            dpt_array_free(&pose);
            if (st != DPT_OK) return cli_fail(e, "%s: %s", path, err.message);
            return check_finite(path, "extracted style", style, ds, e);
        }
    }
    dpt_array a = {0};
    if (read_array(path, "style", &a, e)) return 1;
    int ok = (a.ndim == 1 && a.shape[0] == ds) || (a.ndim == 2 && a.shape[0] == 1 && a.shape[1] == ds);
    if (!ok) {
        char s[96];
        cli_shape_str(&a, s, sizeof s);
        dpt_array_free(&a);
        return cli_fail(e, "%s: the model's style vector has %d values, (%d,); got %s", path, ds, ds, s);
    }
    memcpy(style, a.data, sizeof(float) * (size_t)ds);
    dpt_array_free(&a);
    return check_finite(path, "style", style, ds, e);
}

int cli_is_npy(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char m[6] = {0};
    size_t got = fread(m, 1, 6, f);
    fclose(f);
    return got == 6 && memcmp(m, "\x93NUMPY", 6) == 0;
}

int cli_load_audio(const char *path, float **samples, size_t *n_samples, cli_err *e) {
    dpt_error err = {0};
    *samples = NULL;
    *n_samples = 0;
    if (!cli_is_npy(path)) {
        dpt_status st = dpt_audio_load(path, samples, n_samples, &err);
        if (st == DPT_OK) return 0;
        if (st == DPT_ERR_UNSUPPORTED && strstr(err.message, "NO_SNDFILE"))
            return cli_fail(e, "%s: not a .npy, and this build reads no audio files (NO_SNDFILE=1, no "
                            "libsndfile): give a .npy of 16 kHz float32 samples", path);
        return cli_fail(e, "%s", err.message);
    }
    dpt_array a = {0};
    if (dpt_npy_read(path, &a, &err) != DPT_OK) return cli_fail(e, "%s", err.message);
    char s[96];
    cli_shape_str(&a, s, sizeof s);
    if (!(a.ndim == 1 || a.ndim == 2) || a.shape[0] < 1 || (a.ndim == 2 && (a.shape[1] < 1 || a.shape[1] > INT_MAX))) {
        dpt_array_free(&a);
        return cli_fail(e, "%s: speech as .npy is 16 kHz samples, (n,) or (n, channels); got %s", path, s);
    }
    int ch = a.ndim == 2 ? (int)a.shape[1] : 1;
    dpt_status st = dpt_audio_to_16k(a.data, (size_t)a.shape[0], ch, 16000.0, samples, n_samples, &err);
    dpt_array_free(&a);
    if (st != DPT_OK) return cli_fail(e, "%s: %s", path, err.message);
    return 0;
}

void cli_replay_init(cli_replay *r, const dpt_array *draws) {
    r->data = draws->data;
    r->n = 1;
    for (int i = 0; i < draws->ndim; i++) r->n *= (size_t)draws->shape[i];
    r->pos = 0;
}

int cli_replay_fn(void *user, float *dst, size_t n) {
    cli_replay *r = user;
    if (r->n - r->pos < n) return 1;
    memcpy(dst, r->data + r->pos, sizeof(float) * n);
    r->pos += n;
    return 0;
}
