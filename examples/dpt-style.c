/* dpt-style: a FLAME motion clip → style vector, as upstream's extract_style.py. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: dpt-style -m MODEL.dpt -c MOTION.npz [--start N] -o STYLE.npy\n"
            "  -m MODEL.dpt     model with a style encoder (tools/export.py --style-encoder)\n"
            "  -c MOTION.npz    FLAME coefficients: exp (frames, 50) and pose (frames, 6)\n"
            "  --start N        first frame (default 0); the encoder takes n_motions frames from it\n"
            "                   (fewer, with a warning, when the clip is shorter)\n"
            "  -o STYLE.npy     output style vector (d_style,) float32\n"
            "  -h, --help       this help\n");
}

static int read_coef(const char *path, const char *key, int cols, dpt_array *a) {
    dpt_error err = {0};
    if (dpt_npz_read(path, key, a, &err) != DPT_OK) {
        fprintf(stderr, "dpt-style: %s\n", err.message);
        return 1;
    }
    if (a->ndim != 2 || a->shape[1] != cols) {
        fprintf(stderr, "dpt-style: %s: '%s' must have shape (frames, %d), got %d dimensions%s\n",
                path, key, cols, a->ndim, a->ndim == 2 ? " with another width" : "");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *motion_path = NULL, *out_path = NULL;
    long start = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            fprintf(stderr, "dpt-style: option '%s' needs a value\n", o);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(o, "-m")) model_path = v;
        else if (!strcmp(o, "-c")) motion_path = v;
        else if (!strcmp(o, "-o")) out_path = v;
        else if (!strcmp(o, "--start")) {
            char *end;
            errno = 0;
            start = strtol(v, &end, 10);
            if (errno || end == v || *end || start < 0 || start > 100000000) {
                fprintf(stderr, "dpt-style: --start: '%s' is not a frame index\n", v);
                return 2;
            }
        } else {
            usage(stderr);
            fprintf(stderr, "dpt-style: unknown option '%s'\n", o);
            return 2;
        }
    }
    if (!model_path || !motion_path || !out_path) {
        usage(stderr);
        fprintf(stderr, "dpt-style: -m, -c and -o are required\n");
        return 2;
    }
    int rc = 1;
    dpt_error err = {0};
    dpt_model *model = NULL;
    dpt_array exp = {0}, pose = {0};
    float *style = NULL;
    if (dpt_model_load(model_path, NULL, &model, &err) != DPT_OK) {
        fprintf(stderr, "dpt-style: %s\n", err.message);
        goto out;
    }
    if (read_coef(motion_path, "exp", 50, &exp) || read_coef(motion_path, "pose", 6, &pose)) goto out;
    if (exp.shape[0] != pose.shape[0]) {
        fprintf(stderr, "dpt-style: %s: exp has %lld frames but pose %lld\n", motion_path,
                (long long)exp.shape[0], (long long)pose.shape[0]);
        goto out;
    }
    dpt_model_info info;
    dpt_model_get_info(model, &info);
    style = malloc(sizeof(float) * (size_t)(info.style_feature_dim > 0 ? info.style_feature_dim : 1));
    if (!style) goto out;
    if (dpt_extract_style(model, exp.data, pose.data, (int)exp.shape[0], (int)start, style, &err) !=
        DPT_OK) {
        fprintf(stderr, "dpt-style: %s: %s\n", motion_path, err.message);
        goto out;
    }
    int64_t shp[1] = {info.style_feature_dim};
    if (dpt_npy_write(out_path, style, 1, shp, &err) != DPT_OK) {
        fprintf(stderr, "dpt-style: %s\n", err.message);
        goto out;
    }
    rc = 0;
out:
    free(style);
    dpt_array_free(&exp);
    dpt_array_free(&pose);
    dpt_model_free(model);
    return rc;
}
