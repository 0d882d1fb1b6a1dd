/* Fuzz target: the FLAME file loader, then vertices of two frames (zero and non-zero
 * coefficients) on what loaded, so that every count the loader accepted is exercised, and one
 * small rendered frame of them (the renderer's int overflows were found this way). */
#define _GNU_SOURCE
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_begin(data, size, path);
    if (fd < 0) return 0;
    dpt_flame *fl = NULL;
    dpt_error err = {0};
    dpt_status st = dpt_flame_load(path, &fl, &err);
    fuzz_check_error(st, &err);
    if (st == DPT_OK) {
        dpt_flame_info info;
        dpt_flame_get_info(fl, &info);
        const float *vt;
        const int32_t *ft;
        dpt_flame_uv(fl, &vt, &ft);
        const int32_t *faces = dpt_flame_faces(fl);
        for (long i = 0; i < 3L * info.n_faces; i++)
            if (faces[i] < 0 || faces[i] >= info.n_vertices) abort();   /* the loader must check */
        if (info.n_vertices <= 100000) {
            float shape[100] = {0}, exp[2 * 50] = {0}, pose[2 * 6] = {0};
            for (int i = 0; i < 50; i++) exp[50 + i] = 0.5f;
            pose[6 + 0] = 0.3f, pose[6 + 3] = 0.2f;
            float *v = malloc(sizeof(float) * 2 * 3 * (size_t)info.n_vertices);
            dpt_flame_params fp = dpt_flame_params_default();
            fp.n_threads = 1;
            if (v) {
                st = dpt_flame_vertices(fl, 2, shape, 0, exp, pose, &fp, v, &err);
                fuzz_check_error(st, &err);
            }
            if (v && st == DPT_OK) {
                dpt_render_params rp = dpt_render_params_default();
                rp.width = rp.height = 16;
                rp.n_threads = 1;
                dpt_renderer *r = NULL;
                uint8_t rgb[16 * 16 * 3];
                st = dpt_renderer_new(&rp, info.n_vertices, faces, info.n_faces, vt, info.n_uv, ft,
                                      &r, &err);
                fuzz_check_error(st, &err);
                if (st == DPT_OK) {
                    for (int f = 0; f < 2; f++) {
                        st = dpt_renderer_draw(r, v + (size_t)f * 3 * (size_t)info.n_vertices, rgb, &err);
                        fuzz_check_error(st, &err);
                    }
                    dpt_renderer_free(r);
                }
            }
            free(v);
        }
        dpt_flame_free(fl);
    }
    close(fd);
    return 0;
}
