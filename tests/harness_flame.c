/* FLAME vertices (lib/flame.c) driven by tests/python/test_flame.py and tools/bench.py.
 *
 *   harness_flame vertices FLAME.dpt COEF.npz OUT.npy [--no-head] [--threads N]
 *       COEF.npz: exp (T, 50), pose (T, 6), shape (T, 100) per frame or (100,) for all frames;
 *       OUT.npy: vertices (T, V, 3) from dpt_flame_vertices
 *   harness_flame info FLAME.dpt
 *       one line: n_vertices n_faces n_joints n_shape n_exp has_uv n_uv
 *   harness_flame mesh FLAME.dpt FACES.npy [VT.npy FT.npy]
 *       faces (F, 3) (and vt, ft when the file has uv) as float32
 *   harness_flame bench FLAME.dpt FRAMES THREADS REPEAT
 *       frames/s of dpt_flame_vertices (random coefficients, one shape), best of REPEAT calls
 *
 * Errors: one line on stderr, exit status 1 (2 for bad usage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dpt.h"

static int usage(void) {
    fprintf(stderr, "usage: harness_flame vertices FLAME.dpt COEF.npz OUT.npy [--no-head] [--threads N] | "
                    "info FLAME.dpt | mesh FLAME.dpt FACES.npy [VT.npy FT.npy] | "
                    "bench FLAME.dpt FRAMES THREADS REPEAT\n");
    return 2;
}

static int fail(const dpt_error *err) {
    fprintf(stderr, "harness_flame: %s\n", err->message);
    return 1;
}

static int cmd_vertices(int argc, char **argv) {
    if (argc < 5) return usage();
    dpt_flame_params p = dpt_flame_params_default();
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--no-head")) p.no_head = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) p.n_threads = atoi(argv[++i]);
        else return usage();
    }
    dpt_error err = {0};
    dpt_flame *f = NULL;
    if (dpt_flame_load(argv[2], &f, &err) != DPT_OK) return fail(&err);
    dpt_array shape = {0}, exp = {0}, pose = {0};
    int rc = 1;
    float *v = NULL;
    if (dpt_npz_read(argv[3], "shape", &shape, &err) != DPT_OK ||
        dpt_npz_read(argv[3], "exp", &exp, &err) != DPT_OK ||
        dpt_npz_read(argv[3], "pose", &pose, &err) != DPT_OK) {
        fail(&err);
        goto done;
    }
    int T = exp.ndim == 2 ? (int)exp.shape[0] : 0;
    int per_frame = shape.ndim == 2;
    if (exp.ndim != 2 || exp.shape[1] != 50 || pose.ndim != 2 || pose.shape[0] != T || pose.shape[1] != 6 ||
        (per_frame ? shape.shape[0] != T || shape.shape[1] != 100 : shape.ndim != 1 || shape.shape[0] != 100)) {
        fprintf(stderr, "harness_flame: %s: expected exp (T, 50), pose (T, 6), shape (T, 100) or (100,)\n", argv[3]);
        goto done;
    }
    dpt_flame_info info;
    dpt_flame_get_info(f, &info);
    v = malloc(sizeof(float) * (size_t)T * (size_t)info.n_vertices * 3);
    if (!v) goto done;
    if (dpt_flame_vertices(f, T, shape.data, per_frame, exp.data, pose.data, &p, v, &err) != DPT_OK) {
        fail(&err);
        goto done;
    }
    int64_t dims[3] = {T, info.n_vertices, 3};
    if (dpt_npy_write(argv[4], v, 3, dims, &err) != DPT_OK) {
        fail(&err);
        goto done;
    }
    rc = 0;
done:
    free(v);
    dpt_array_free(&shape);
    dpt_array_free(&exp);
    dpt_array_free(&pose);
    dpt_flame_free(f);
    return rc;
}

static int cmd_info(int argc, char **argv) {
    if (argc != 3) return usage();
    dpt_error err = {0};
    dpt_flame *f = NULL;
    if (dpt_flame_load(argv[2], &f, &err) != DPT_OK) return fail(&err);
    dpt_flame_info i;
    dpt_flame_get_info(f, &i);
    printf("%d %d %d %d %d %d %d\n", i.n_vertices, i.n_faces, i.n_joints, i.n_shape, i.n_exp, i.has_uv, i.n_uv);
    dpt_flame_free(f);
    return 0;
}

static int write_ints(const char *path, const int32_t *x, int64_t rows, int64_t cols, dpt_error *err) {
    float *t = malloc(sizeof(float) * (size_t)(rows * cols));
    if (!t) return 0;
    for (int64_t i = 0; i < rows * cols; i++) t[i] = (float)x[i];
    int64_t dims[2] = {rows, cols};
    int ok = dpt_npy_write(path, t, 2, dims, err) == DPT_OK;
    free(t);
    return ok;
}

static int cmd_mesh(int argc, char **argv) {
    if (argc != 4 && argc != 6) return usage();
    dpt_error err = {0};
    dpt_flame *f = NULL;
    if (dpt_flame_load(argv[2], &f, &err) != DPT_OK) return fail(&err);
    dpt_flame_info i;
    dpt_flame_get_info(f, &i);
    int ok = write_ints(argv[3], dpt_flame_faces(f), i.n_faces, 3, &err);
    if (ok && argc == 6) {
        const float *vt;
        const int32_t *ft;
        dpt_flame_uv(f, &vt, &ft);
        int64_t dims[2] = {i.n_uv, 2};
        ok = vt && ft && dpt_npy_write(argv[4], vt, 2, dims, &err) == DPT_OK &&
             write_ints(argv[5], ft, i.n_faces, 3, &err);
        if (!vt) snprintf(err.message, sizeof err.message, "%s: no uv", argv[2]);
    }
    dpt_flame_free(f);
    return ok ? 0 : fail(&err);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmd_bench(int argc, char **argv) {
    if (argc != 6) return usage();
    int T = atoi(argv[3]), nt = atoi(argv[4]), rep = atoi(argv[5]);
    if (T < 1 || nt < 1 || rep < 1) return usage();
    dpt_error err = {0};
    dpt_flame *f = NULL;
    if (dpt_flame_load(argv[2], &f, &err) != DPT_OK) return fail(&err);
    dpt_flame_info i;
    dpt_flame_get_info(f, &i);
    float *shape = malloc(sizeof(float) * 100), *exp = malloc(sizeof(float) * (size_t)T * 50),
          *pose = malloc(sizeof(float) * (size_t)T * 6),
          *v = malloc(sizeof(float) * (size_t)T * (size_t)i.n_vertices * 3);
    int rc = 1;
    if (!shape || !exp || !pose || !v) goto done;
    unsigned s = 12345;
#define RND() ((float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f)
    for (int k = 0; k < 100; k++) shape[k] = RND();
    for (int k = 0; k < T * 50; k++) exp[k] = RND();
    for (int k = 0; k < T * 6; k++) pose[k] = 0.4f * RND();
    dpt_flame_params p = dpt_flame_params_default();
    p.n_threads = nt;
    double best = 1e30;
    for (int r = 0; r < rep; r++) {
        double t0 = now();
        if (dpt_flame_vertices(f, T, shape, 0, exp, pose, &p, v, &err) != DPT_OK) {
            fail(&err);
            goto done;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%.1f\n", T / best);
    rc = 0;
done:
    free(shape);
    free(exp);
    free(pose);
    free(v);
    dpt_flame_free(f);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    if (!strcmp(argv[1], "vertices")) return cmd_vertices(argc, argv);
    if (!strcmp(argv[1], "info")) return cmd_info(argc, argv);
    if (!strcmp(argv[1], "mesh")) return cmd_mesh(argc, argv);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc, argv);
    return usage();
}
