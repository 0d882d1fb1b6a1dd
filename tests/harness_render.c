/* Renderer and image I/O driven by tests/python/test_render_pyrender.py and tools/bench.py.
 *
 *   harness_render render VERTS.npy FACES.npy OUT.rgb [options]
 *       VERTS (V, 3) or (F, V, 3) float, FACES (n, 3) (float, exact integers): every frame rendered
 *       with dpt_renderer_draw, written as raw bytes F × H × W × 3
 *       options: --size WxH  --ss K  --black-bg  --threads N
 *                --tex IMAGE --vt VT.npy --ft FT.npy   (texture with uv)
 *                --repeat R   render the frames R times; prints "frames_per_second X
 *                             cpu_frames_per_second Y" (wall clock; process CPU time) on stdout
 *   harness_render png-roundtrip IN OUT.png
 *       dpt_image_read IN, dpt_image_write_png OUT.png; prints "W H"
 *
 * Errors: one line on stderr, exit status 1 (2 for bad usage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dpt.h"

static int usage(void) {
    fprintf(stderr, "usage: harness_render render VERTS.npy FACES.npy OUT.rgb [--size WxH] [--ss K] [--black-bg] "
                    "[--threads N] [--tex IMAGE --vt VT.npy --ft FT.npy] [--repeat R] | png-roundtrip IN OUT.png\n");
    return 2;
}

static int fail(const dpt_error *err) {
    fprintf(stderr, "harness_render: %s\n", err->message);
    return 1;
}

static int32_t *to_indices(const dpt_array *a, int *n_rows) {
    if (a->ndim != 2 || a->shape[1] != 3) return NULL;
    int32_t *idx = malloc((size_t)a->shape[0] * 3 * sizeof *idx);
    if (!idx) return NULL;
    for (int64_t i = 0; i < a->shape[0] * 3; i++) idx[i] = (int32_t)a->data[i];
    *n_rows = (int)a->shape[0];
    return idx;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmd_render(int argc, char **argv) {
    if (argc < 5) return usage();
    dpt_render_params p = dpt_render_params_default();
    const char *tex_path = NULL, *vt_path = NULL, *ft_path = NULL;
    int repeat = 0;
    for (int i = 5; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--black-bg")) { p.black_bg = 1; continue; }
        if (!v) return usage();
        if (!strcmp(a, "--size")) { if (sscanf(v, "%dx%d", &p.width, &p.height) != 2) return usage(); }
        else if (!strcmp(a, "--ss")) p.supersample = atoi(v);
        else if (!strcmp(a, "--threads")) p.n_threads = atoi(v);
        else if (!strcmp(a, "--tex")) tex_path = v;
        else if (!strcmp(a, "--vt")) vt_path = v;
        else if (!strcmp(a, "--ft")) ft_path = v;
        else if (!strcmp(a, "--repeat")) repeat = atoi(v);
        else return usage();
        i++;
    }
    dpt_error err = {0};
    dpt_array verts = {0}, faces = {0}, vt = {0}, ft = {0};
    dpt_image tex = {0};
    dpt_renderer *r = NULL;
    uint8_t *img = NULL;
    int32_t *fidx = NULL, *ftidx = NULL;
    int rc = 1, n_faces = 0, n_ft = 0;
    if (dpt_npy_read(argv[2], &verts, &err) != DPT_OK || dpt_npy_read(argv[3], &faces, &err) != DPT_OK) goto done;
    if (!(verts.ndim == 2 || verts.ndim == 3) || verts.shape[verts.ndim - 1] != 3) {
        fprintf(stderr, "harness_render: %s: expected (V, 3) or (F, V, 3)\n", argv[2]);
        goto done;
    }
    int n_frames = verts.ndim == 3 ? (int)verts.shape[0] : 1;
    int n_vertices = (int)verts.shape[verts.ndim - 2];
    if (!(fidx = to_indices(&faces, &n_faces))) {
        fprintf(stderr, "harness_render: %s: expected (n, 3) faces\n", argv[3]);
        goto done;
    }
    if (tex_path) {
        if (!vt_path || !ft_path) return usage();
        if (dpt_image_read(tex_path, &tex, &err) != DPT_OK || dpt_npy_read(vt_path, &vt, &err) != DPT_OK ||
            dpt_npy_read(ft_path, &ft, &err) != DPT_OK)
            goto done;
        if (!(ftidx = to_indices(&ft, &n_ft)) || vt.ndim != 2 || vt.shape[1] != 2 || n_ft != n_faces) {
            fprintf(stderr, "harness_render: uv: expected vt (n, 2) and ft (n_faces, 3)\n");
            goto done;
        }
        p.texture = &tex;
    }
    if (dpt_renderer_new(&p, n_vertices, fidx, n_faces, tex_path ? vt.data : NULL, tex_path ? (int)vt.shape[0] : 0,
                         ftidx, &r, &err) != DPT_OK)
        goto done;
    size_t frame_bytes = (size_t)p.width * p.height * 3;
    img = malloc(frame_bytes * n_frames);
    if (!img) goto done;
    int rounds = repeat > 0 ? repeat : 1;
    double t0 = now(), c0 = cpu_now();
    for (int k = 0; k < rounds; k++)
        for (int f = 0; f < n_frames; f++)
            if (dpt_renderer_draw(r, verts.data + (size_t)f * n_vertices * 3, img + frame_bytes * f, &err) != DPT_OK)
                goto done;
    double dt = now() - t0, dc = cpu_now() - c0;
    /* cpu: frames per second of process CPU time (all threads), less disturbed by other loads */
    if (repeat > 0) printf("frames_per_second %.2f cpu_frames_per_second %.2f\n", rounds * n_frames / dt, rounds * n_frames / dc);
    FILE *o = fopen(argv[4], "wb");
    if (!o || fwrite(img, frame_bytes, n_frames, o) != (size_t)n_frames) {
        fprintf(stderr, "harness_render: %s: cannot write\n", argv[4]);
        if (o) fclose(o);
        goto done;
    }
    if (fclose(o) != 0) goto done;
    rc = 0;
done:
    if (rc && err.message[0]) fail(&err);
    dpt_renderer_free(r);
    free(img);
    free(fidx);
    free(ftidx);
    dpt_array_free(&verts);
    dpt_array_free(&faces);
    dpt_array_free(&vt);
    dpt_array_free(&ft);
    dpt_image_free(&tex);
    return rc;
}

static int cmd_png_roundtrip(int argc, char **argv) {
    if (argc != 4) return usage();
    dpt_error err = {0};
    dpt_image img = {0};
    if (dpt_image_read(argv[2], &img, &err) != DPT_OK) return fail(&err);
    int ok = dpt_image_write_png(argv[3], &img, &err) == DPT_OK;
    if (ok) printf("%d %d\n", img.width, img.height);
    dpt_image_free(&img);
    return ok ? 0 : fail(&err);
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    if (!strcmp(argv[1], "render")) return cmd_render(argc, argv);
    if (!strcmp(argv[1], "png-roundtrip")) return cmd_png_roundtrip(argc, argv);
    return usage();
}
