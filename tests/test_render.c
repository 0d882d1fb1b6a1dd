/* Renderer (lib/render.c) and images (lib/image.c).
 *
 * References computed here, independently of the renderer:
 *  - coverage: a ray from the camera (0, 0, 1) through each pixel centre intersected with the
 *    triangle in double precision (hit between znear and zfar); pixel centres within 1e-3 px of
 *    an edge are left out of the comparison (sub-sample snapping decides those);
 *  - the pinhole projection px = (x / (d·tan 8°) + 1)·W/2, py = (1 − y / (d·tan 8°))·H/2 with
 *    d = 1 − z (image row 0 at the top);
 *  - colours: mesh.frag's BRDF written out in double for a flat surface (4 lights of intensity 2
 *    along −z: pyrender uses 4 of upstream's 5), gamma 1/2.2, ±1 level.
 * Run under ASan/UBSan by `make test-asan`. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "dpt.h"
#include "kernels.h"   /* dpt_k_set_arch: the renderer's SIMD rows against its C code */

#ifndef DPT_NO_IMAGE
#include <jpeglib.h>
#include <png.h>
#endif

#define TAN8 0.14054083470239145   /* tan(16° / 2) */
#define CAM_Z 1.0


/* A point at pixel position (px, py) (pixel units, row 0 top) and camera distance d. */
static void unproject(double px, double py, double d, int w, int h, float *out) {
    out[0] = (float)((2.0 * px / w - 1.0) * TAN8 * d);
    out[1] = (float)((1.0 - 2.0 * py / h) * TAN8 * d);
    out[2] = (float)(CAM_Z - d);
}

static void project(const float *p, int w, int h, double *px, double *py) {
    double d = CAM_Z - p[2];
    *px = (p[0] / (d * TAN8) + 1.0) * w / 2.0;
    *py = (1.0 - p[1] / (d * TAN8)) * h / 2.0;
}

/* Ray through pixel centre (i + 0.5, j + 0.5) against triangle abc: 1 hit, 0 miss, −1 too close
 * to an edge to say; *depth = camera distance of the hit. */
static int ray_hit(const float *a, const float *b, const float *c, int i, int j, int w, int h, double *depth) {
    double dir[3] = {(2.0 * (i + 0.5) / w - 1.0) * TAN8, (1.0 - 2.0 * (j + 0.5) / h) * TAN8, -1.0};
    double o[3] = {0, 0, CAM_Z};
    double e1[3], e2[3], t[3];
    for (int k = 0; k < 3; k++) {
        e1[k] = (double)b[k] - a[k];
        e2[k] = (double)c[k] - a[k];
        t[k] = o[k] - a[k];
    }
    double p[3] = {dir[1] * e2[2] - dir[2] * e2[1], dir[2] * e2[0] - dir[0] * e2[2], dir[0] * e2[1] - dir[1] * e2[0]};
    double det = e1[0] * p[0] + e1[1] * p[1] + e1[2] * p[2];
    if (fabs(det) < 1e-15) return 0;
    double u = (t[0] * p[0] + t[1] * p[1] + t[2] * p[2]) / det;
    double q[3] = {t[1] * e1[2] - t[2] * e1[1], t[2] * e1[0] - t[0] * e1[2], t[0] * e1[1] - t[1] * e1[0]};
    double v = (dir[0] * q[0] + dir[1] * q[1] + dir[2] * q[2]) / det;
    double s = (e2[0] * q[0] + e2[1] * q[1] + e2[2] * q[2]) / det;   /* ray parameter = depth */
    *depth = s;
    if (s <= 0.01 || s >= 3.0) return 0;
    /* distance from the edges in pixels: barycentric × (triangle height in pixels), roughly */
    double margin = 2e-3 / (w * 0.5 / (s * TAN8)) / sqrt(e1[0] * e1[0] + e1[1] * e1[1] + e1[2] * e1[2]);
    double bmin = fmin(u, fmin(v, 1.0 - u - v));
    if (fabs(bmin) < margin) return -1;
    return bmin > 0;
}

static dpt_renderer *make_renderer(int w, int h, int ss, int black, int threads, int nv, const int32_t *faces,
                                   int nf) {
    dpt_render_params p = dpt_render_params_default();
    p.width = w;
    p.height = h;
    p.supersample = ss;
    p.black_bg = black;
    p.n_threads = threads;
    dpt_renderer *r = NULL;
    dpt_error err = {0};
    dpt_status st = dpt_renderer_new(&p, nv, faces, nf, NULL, 0, NULL, &r, &err);
    ck_assert_msg(st == DPT_OK, "dpt_renderer_new: %s", err.message);
    return r;
}

static uint8_t *render(dpt_renderer *r, const float *verts, int w, int h) {
    uint8_t *img = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(img);
    dpt_error err = {0};
    dpt_status st = dpt_renderer_draw(r, verts, img, &err);
    ck_assert_msg(st == DPT_OK, "dpt_renderer_draw: %s", err.message);
    return img;
}

static int is_bg(const uint8_t *img, int w, int i, int j, int bg) {
    const uint8_t *p = img + ((size_t)j * w + i) * 3;
    return p[0] == bg && p[1] == bg && p[2] == bg;
}

/* ---- mesh.frag for one flat surface, in double ---------------------------------------------- */

static double brdf_linear(const double *n_in, const double *v_in, double base, double metallic, double roughness) {
    const double PI = 3.141592653589793;
    double n[3], v[3], l[3] = {0, 0, 1}, h[3];
    double nn = sqrt(n_in[0] * n_in[0] + n_in[1] * n_in[1] + n_in[2] * n_in[2]);
    double vn = sqrt(v_in[0] * v_in[0] + v_in[1] * v_in[1] + v_in[2] * v_in[2]);
    for (int k = 0; k < 3; k++) {
        n[k] = n_in[k] / nn;
        v[k] = v_in[k] / vn;
        h[k] = l[k] + v[k];
    }
    double hn = sqrt(h[0] * h[0] + h[1] * h[1] + h[2] * h[2]);
    for (int k = 0; k < 3; k++) h[k] /= hn;
    double c_diff = base * (1 - 0.04) * (1 - metallic), f0 = 0.04 * (1 - metallic) + base * metallic;
    double nl = fmin(fmax(n[0] * l[0] + n[1] * l[1] + n[2] * l[2], 0.001), 1.0);
    double nv = fmin(fmax(fabs(n[0] * v[0] + n[1] * v[1] + n[2] * v[2]), 0.001), 1.0);
    double nh = fmin(fmax(n[0] * h[0] + n[1] * h[1] + n[2] * h[2], 0.0), 1.0);
    double vh = fmin(fmax(v[0] * h[0] + v[1] * h[1] + v[2] * h[2], 0.0), 1.0);
    double F = f0 + (1 - f0) * pow(1 - vh, 5);
    double k = (roughness + 1) * (roughness + 1) / 8;
    double G = nv / (nv * (1 - k) + k) * nl / (nl * (1 - k) + k);
    double a2 = pow(roughness, 4), den = nh * nh * (a2 - 1) + 1;
    double D = a2 / (PI * den * den);
    double radiance = 4 * 2.0;   /* pyrender's MAX_N_LIGHTS = 4 of upstream's 5 lights, intensity 2 */
    double color = nl * radiance * ((1 - F) * c_diff / PI + F * G * D / (4 * nl * nv + 0.001));
    return color + base * 0.2;
}

static int to_level(double c) {
    c = fmin(fmax(c, 0.0), 1.0);
    return (int)floor(255.0 * pow(c, 1 / 2.2) + 0.5);
}

/* ---- coverage --------------------------------------------------------------------------------- */

static void check_coverage_against_rays(const float *verts, const int32_t *faces, int nf, int w, int h,
                                        const uint8_t *img, int bg, int *n_covered) {
    int covered = 0, skipped = 0;
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            int want = 0, unsure = 0;
            for (int f = 0; f < nf; f++) {
                double d;
                int hit = ray_hit(verts + 3 * faces[3 * f], verts + 3 * faces[3 * f + 1], verts + 3 * faces[3 * f + 2],
                                  i, j, w, h, &d);
                if (hit < 0) unsure = 1;
                if (hit > 0) want = 1;
            }
            if (unsure && !want) {
                skipped++;
                continue;
            }
            int got = !is_bg(img, w, i, j, bg);
            if (want && !unsure) ck_assert_msg(got, "pixel (%d, %d) should be covered", i, j);
            if (!want) ck_assert_msg(!got, "pixel (%d, %d) should be background", i, j);
            covered += got;
        }
    ck_assert_int_lt(skipped, w + h);   /* only the few centres on an edge are left out */
    *n_covered = covered;
}

START_TEST(t_coverage_known_triangles) {
    const int w = 64, h = 48;
    /* triangles given in pixel positions at various depths (not on the sample grid) */
    const double tri_px[][3][3] = {
        {{5.3, 4.1, 1.0}, {40.7, 9.9, 1.0}, {17.2, 30.6, 1.0}},
        {{60.2, 44.8, 0.7}, {33.9, 20.3, 1.2}, {58.1, 2.2, 0.9}},      /* tilted: depths differ */
        {{-10.0, 30.0, 1.0}, {30.0, 60.0, 1.0}, {20.0, 35.5, 1.0}},   /* off screen in part */
    };
    for (size_t t = 0; t < sizeof tri_px / sizeof tri_px[0]; t++)
        for (int winding = 0; winding < 2; winding++) {
            float v[9];
            for (int k = 0; k < 3; k++) unproject(tri_px[t][k][0], tri_px[t][k][1], tri_px[t][k][2], w, h, v + 3 * k);
            int32_t f[3] = {0, winding ? 2 : 1, winding ? 1 : 2};
            dpt_renderer *r = make_renderer(w, h, 1, 1, 1, 3, f, 1);
            uint8_t *img = render(r, v, w, h);
            int n;
            check_coverage_against_rays(v, f, 1, w, h, img, 0, &n);
            ck_assert_int_gt(n, 20);
            free(img);
            dpt_renderer_free(r);
        }
}
END_TEST

/* An axis-aligned quad from pixel x 10.5 … 20.5, y 5.5 … 15.5 has sample centres exactly on all
 * four edges: the top-left rule takes the left column and top row, not the right and bottom: 10 × 10
 * pixels. Its diagonal (shared by the two triangles) passes through centres too: no gap, no double. */
START_TEST(t_fill_rule_and_shared_edges) {
    const int w = 32, h = 24;
    float v[12];
    unproject(10.5, 5.5, 1.0, w, h, v);
    unproject(20.5, 5.5, 1.0, w, h, v + 3);
    unproject(20.5, 15.5, 1.0, w, h, v + 6);
    unproject(10.5, 15.5, 1.0, w, h, v + 9);
    const int32_t f[6] = {0, 1, 2, 0, 2, 3};
    dpt_renderer *r = make_renderer(w, h, 1, 1, 1, 4, f, 2);
    uint8_t *img = render(r, v, w, h);
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            int want = i >= 10 && i < 20 && j >= 5 && j < 15;
            ck_assert_msg(want == !is_bg(img, w, i, j, 0), "pixel (%d, %d): want %d", i, j, want);
        }
    free(img);
    dpt_renderer_free(r);

    /* two triangles folded along a shared vertical edge at x = 16.5 (through centres of column
       16): each centre on it is drawn by exactly the triangle whose left edge it is (the right
       one), recognisable by its shading */
    float u[18];
    unproject(16.5, 2.5, 1.0, w, h, u);        /* shared edge top */
    unproject(16.5, 20.5, 1.0, w, h, u + 3);   /* shared edge bottom */
    unproject(4.25, 11.0, 1.0, w, h, u + 6);   /* left triangle: tilted towards +x */
    unproject(28.75, 11.0, 1.0, w, h, u + 9);
    u[8] -= 0.08f;                              /* left apex farther: the left face turns right */
    memcpy(u + 12, u, 6 * sizeof(float));       /* the edge again for the right face: flat normals */
    const int32_t g[6] = {0, 2, 1, 4, 5, 3};   /* both counter-clockwise seen from the camera */
    r = make_renderer(w, h, 1, 1, 1, 6, g, 2);
    img = render(r, u, w, h);
    /* colours of the two faces, from pixels well inside each */
    const uint8_t *left = img + ((size_t)11 * w + 12) * 3, *right = img + ((size_t)11 * w + 20) * 3;
    ck_assert_msg(abs(left[0] - right[0]) > 3, "faces should differ in shade (%d vs %d)", left[0], right[0]);
    for (int j = 3; j < 20; j++) {
        const uint8_t *p = img + ((size_t)j * w + 16) * 3;
        if (j < 8 || j > 14) continue;   /* near the apexes the faces are thin */
        ck_assert_msg(abs(p[0] - right[0]) <= 1, "row %d: centre on the shared edge shaded %d, right face %d", j, p[0],
                      right[0]);
        const uint8_t *q = img + ((size_t)j * w + 15) * 3;
        ck_assert_msg(abs(q[0] - left[0]) <= 1, "row %d: left of the edge %d, left face %d", j, q[0], left[0]);
    }
    free(img);
    dpt_renderer_free(r);
}
END_TEST

/* A front quad facing the camera and a tilted one behind it: the nearer wins in either draw order,
 * and a pixel's shade is the nearer surface's (known from rendering each alone). */
START_TEST(t_depth_order) {
    const int w = 40, h = 40;
    float v[24];
    /* near quad: x 8 … 24, y 8 … 24 at distance 0.9, facing the camera */
    unproject(8.2, 8.2, 0.9, w, h, v);
    unproject(24.2, 8.2, 0.9, w, h, v + 3);
    unproject(24.2, 24.2, 0.9, w, h, v + 6);
    unproject(8.2, 24.2, 0.9, w, h, v + 9);
    /* far quad: x 16 … 32, y 16 … 32, tilted, distance 1.0 … 1.1 */
    unproject(16.1, 16.1, 1.0, w, h, v + 12);
    unproject(32.1, 16.1, 1.1, w, h, v + 15);
    unproject(32.1, 32.1, 1.1, w, h, v + 18);
    unproject(16.1, 32.1, 1.0, w, h, v + 21);
    /* counter-clockwise seen from the camera (the pixel rows run downwards) */
    const int32_t near_first[12] = {0, 2, 1, 0, 3, 2, 4, 6, 5, 4, 7, 6};
    const int32_t far_first[12] = {4, 6, 5, 4, 7, 6, 0, 2, 1, 0, 3, 2};
    dpt_renderer *r1 = make_renderer(w, h, 1, 0, 1, 8, near_first, 4);
    dpt_renderer *r2 = make_renderer(w, h, 1, 0, 1, 8, far_first, 4);
    dpt_renderer *rn = make_renderer(w, h, 1, 0, 1, 8, near_first, 2);
    dpt_renderer *rf = make_renderer(w, h, 1, 0, 1, 8, near_first + 6, 2);
    uint8_t *a = render(r1, v, w, h), *b = render(r2, v, w, h), *n = render(rn, v, w, h), *f = render(rf, v, w, h);
    ck_assert_int_eq(memcmp(a, b, (size_t)w * h * 3), 0);
    ck_assert_msg(abs(n[(20 * w + 20) * 3] - f[(20 * w + 20) * 3]) > 3, "the quads should shade differently");
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            size_t o = ((size_t)j * w + i) * 3;
            const uint8_t *want = !is_bg(n, w, i, j, 255) ? n + o : f + o;
            ck_assert_msg(!memcmp(a + o, want, 3), "pixel (%d, %d)", i, j);
        }
    free(a);
    free(b);
    free(n);
    free(f);
    dpt_renderer_free(r1);
    dpt_renderer_free(r2);
    dpt_renderer_free(rn);
    dpt_renderer_free(rf);
}
END_TEST

/* Points whose pinhole projection is a pixel centre: a tiny triangle (0.1 px) around each covers
 * exactly that pixel; around points projecting 0.3 px off a centre, none. */
START_TEST(t_projection_of_points) {
    const int w = 640, h = 480;
    const float pts[][3] = {{0, 0, 0}, {0.05f, -0.03f, 0.02f}, {-0.11f, 0.07f, -0.2f}, {0.02f, 0.09f, 0.3f},
                            {0.2f, -0.1f, -0.5f}};
    for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++) {
        double px, py;
        project(pts[k], w, h, &px, &py);
        int ci = (int)floor(px), cj = (int)floor(py);
        double d = CAM_Z - pts[k][2];
        for (int off = 0; off < 2; off++) {
            double cx = ci + 0.5 + (off ? 0.3 : 0.0), cy = cj + 0.5 + (off ? -0.3 : 0.0);
            float v[9];
            unproject(cx - 0.05, cy - 0.05, d, w, h, v);
            unproject(cx + 0.05, cy - 0.04, d, w, h, v + 3);
            unproject(cx, cy + 0.05, d, w, h, v + 6);
            const int32_t f[3] = {0, 1, 2};
            dpt_renderer *r = make_renderer(w, h, 1, 1, 1, 3, f, 1);
            uint8_t *img = render(r, v, w, h);
            int n = 0, at = 0;
            for (int j = 0; j < h; j++)
                for (int i = 0; i < w; i++)
                    if (!is_bg(img, w, i, j, 0)) {
                        n++;
                        at = i == ci && j == cj;
                    }
            if (off) ck_assert_int_eq(n, 0);
            else ck_assert_msg(n == 1 && at, "point %zu: %d pixels covered, at its projection %d", k, n, at);
            free(img);
            dpt_renderer_free(r);
        }
    }
}
END_TEST

/* Shading of a flat surface against mesh.frag written out in double; front and back faces;
 * a closed mesh's two windings give the same picture. */
START_TEST(t_shading_and_windings) {
    const int w = 48, h = 48;
    const double tilt[][2] = {{0.0, 0.0}, {0.4, 0.0}, {0.0, -0.7}, {0.9, 0.5}};
    for (size_t t = 0; t < sizeof tilt / sizeof tilt[0]; t++)
        for (int winding = 0; winding < 2; winding++) {
            /* a large quad through (0, 0, 0) with normal n = (tx, ty, 1) (unnormalised) */
            double n[3] = {tilt[t][0], tilt[t][1], 1.0};
            float v[12];
            const double corner[4][2] = {{-0.05, -0.05}, {0.05, -0.05}, {0.05, 0.05}, {-0.05, 0.05}};
            for (int k = 0; k < 4; k++) {
                double x = corner[k][0], y = corner[k][1];
                v[3 * k] = (float)x;
                v[3 * k + 1] = (float)y;
                v[3 * k + 2] = (float)(-(n[0] * x + n[1] * y) / n[2]);
            }
            const int32_t f_ccw[6] = {0, 1, 2, 0, 2, 3}, f_cw[6] = {0, 2, 1, 0, 3, 2};
            dpt_renderer *r = make_renderer(w, h, 1, 0, 1, 4, winding ? f_cw : f_ccw, 2);
            uint8_t *img = render(r, v, w, h);
            /* the normal seen: counter-clockwise from the camera = +n; clockwise = −n (a back face) */
            double sn[3] = {winding ? -n[0] : n[0], winding ? -n[1] : n[1], winding ? -n[2] : n[2]};
            const int probe[][2] = {{24, 24}, {20, 27}, {28, 21}};
            for (int p = 0; p < 3; p++) {
                int i = probe[p][0], j = probe[p][1];
                double dir[3] = {(2.0 * (i + 0.5) / w - 1.0) * TAN8, (1.0 - 2.0 * (j + 0.5) / h) * TAN8, -1.0};
                double view[3] = {-dir[0], -dir[1], -dir[2]};
                int want = to_level(brdf_linear(sn, view, 0.3, 0.8, 0.8));
                const uint8_t *px = img + ((size_t)j * w + i) * 3;
                ck_assert_msg(abs(px[0] - want) <= 1 && px[0] == px[1] && px[1] == px[2],
                              "tilt %zu winding %d pixel (%d, %d): %d %d %d, mesh.frag gives %d", t, winding, i, j,
                              px[0], px[1], px[2], want);
            }
            free(img);
            dpt_renderer_free(r);
        }
}
END_TEST

START_TEST(t_background_and_clipping) {
    const int w = 32, h = 32;
    const int32_t f[3] = {0, 1, 2};
    /* behind the camera, beyond zfar, entirely off screen: nothing drawn */
    const float hidden[][9] = {
        {-0.1f, -0.1f, 1.5f, 0.1f, -0.1f, 1.5f, 0.0f, 0.1f, 1.5f},
        {-0.9f, -0.9f, -2.5f, 0.9f, -0.9f, -2.5f, 0.0f, 0.9f, -2.5f},
        {1.0f, 1.0f, 0.0f, 1.2f, 1.0f, 0.0f, 1.1f, 1.2f, 0.0f},
    };
    for (int black = 0; black < 2; black++)
        for (size_t t = 0; t < sizeof hidden / sizeof hidden[0]; t++) {
            dpt_renderer *r = make_renderer(w, h, 1, black, 1, 3, f, 1);
            uint8_t *img = render(r, hidden[t], w, h);
            for (int k = 0; k < w * h * 3; k++) ck_assert_int_eq(img[k], black ? 0 : 255);
            free(img);
            dpt_renderer_free(r);
        }
    /* crossing the near plane and zfar, and reaching far outside the screen: clipped exactly */
    const float crossing[][9] = {
        {-0.05f, -0.05f, 0.0f, 0.05f, -0.04f, 0.0f, 0.0f, 0.01f, 1.5f},       /* one vertex behind the camera */
        {-0.3f, -0.2f, -3.0f, 0.02f, -0.01f, 0.5f, 0.03f, 0.05f, -1.0f},      /* beyond zfar in part */
        {-40.0f, -0.02f, 0.0f, 40.0f, -0.01f, 0.0f, 0.0f, 30.0f, 0.2f},       /* huge */
    };
    for (size_t t = 0; t < sizeof crossing / sizeof crossing[0]; t++) {
        dpt_renderer *r = make_renderer(w, h, 1, 0, 1, 3, f, 1);
        uint8_t *img = render(r, crossing[t], w, h);
        int n;
        check_coverage_against_rays(crossing[t], f, 1, w, h, img, 255, &n);
        ck_assert_msg(n > 10, "case %zu: %d pixels", t, n);
        free(img);
        dpt_renderer_free(r);
    }
}
END_TEST

/* Supersampling k: the k²-sample average of the same picture rendered k times larger. */
START_TEST(t_supersample_is_box_average) {
    const int w = 40, h = 30;
    float v[12];
    unproject(3.3, 2.2, 1.0, w, h, v);
    unproject(37.1, 6.7, 1.1, w, h, v + 3);
    unproject(30.4, 27.9, 0.95, w, h, v + 6);
    unproject(5.5, 25.0, 1.0, w, h, v + 9);
    const int32_t f[6] = {0, 1, 2, 0, 2, 3};
    for (int k = 2; k <= 3; k++) {
        dpt_renderer *rs = make_renderer(w, h, k, 0, 2, 4, f, 2);
        dpt_renderer *rb = make_renderer(w * k, h * k, 1, 0, 1, 4, f, 2);
        uint8_t *small = render(rs, v, w, h), *big = render(rb, v, w * k, h * k);
        int edge_pixels = 0;
        for (int j = 0; j < h; j++)
            for (int i = 0; i < w; i++)
                for (int ch = 0; ch < 3; ch++) {
                    int sum = 0;
                    for (int sy = 0; sy < k; sy++)
                        for (int sx = 0; sx < k; sx++) sum += big[(((size_t)j * k + sy) * w * k + (size_t)i * k + sx) * 3 + ch];
                    int want = (sum + k * k / 2) / (k * k);
                    ck_assert_int_eq(small[((size_t)j * w + i) * 3 + ch], want);
                    if (ch == 0 && want != 255 && want != big[(((size_t)j * k) * w * k + (size_t)i * k) * 3]) edge_pixels++;
                }
        ck_assert_int_gt(edge_pixels, 10);   /* some pixels really are mixed */
        free(small);
        free(big);
        dpt_renderer_free(rs);
        dpt_renderer_free(rb);
    }
}
END_TEST

/* Any thread count and repeated frames give the same bytes. */
START_TEST(t_threads_and_repeats_identical) {
    const int w = 96, h = 80, grid = 12;
    int nv = (grid + 1) * (grid + 1), nf = grid * grid * 2;
    float *v = malloc((size_t)nv * 3 * sizeof *v);
    int32_t *f = malloc((size_t)nf * 3 * sizeof *f);
    ck_assert(v && f);
    for (int y = 0; y <= grid; y++)
        for (int x = 0; x <= grid; x++) {   /* a bumpy sheet */
            float *p = v + 3 * (y * (grid + 1) + x);
            p[0] = (x / (float)grid - 0.5f) * 0.25f;
            p[1] = (y / (float)grid - 0.5f) * 0.25f;
            p[2] = 0.03f * sinf(x * 0.9f) * cosf(y * 0.7f);
        }
    for (int y = 0, k = 0; y < grid; y++)
        for (int x = 0; x < grid; x++, k += 6) {
            int a = y * (grid + 1) + x;
            int32_t q[6] = {a, a + 1, a + grid + 2, a, a + grid + 2, a + grid + 1};
            memcpy(f + k, q, sizeof q);
        }
    uint8_t *ref = NULL;
    for (int t = 1; t <= 4; t++) {
        dpt_renderer *r = make_renderer(w, h, 1, 0, t, nv, f, nf);
        for (int rep = 0; rep < 2; rep++) {
            uint8_t *img = render(r, v, w, h);
            if (!ref) ref = img;
            else {
                ck_assert_msg(!memcmp(ref, img, (size_t)w * h * 3), "threads %d repeat %d differ", t, rep);
                free(img);
            }
        }
        dpt_renderer_free(r);
    }
    free(ref);
    free(v);
    free(f);
}
END_TEST

/* Frames of a mesh that moves, shrinks and turns (small triangles of a bumpy sheet, one large
 * triangle, one crossing the near plane, one partly off screen): one renderer across the frames
 * (it clears only where the last frame drew) gives the pictures of a new renderer per frame, at
 * 1 and 3 threads, with and without supersampling, and the C rows (DPT_K_ARCH_SCALAR) give the
 * same bytes as the SIMD rows chosen for this CPU. */
START_TEST(t_moving_mesh_and_simd_rows_identical) {
    const int w = 120, h = 96, grid = 14, n_frames = 5;
    int nv = (grid + 1) * (grid + 1) + 9, nf = grid * grid * 2 + 3;
    float *v = malloc((size_t)n_frames * nv * 3 * sizeof *v);
    int32_t *f = malloc((size_t)nf * 3 * sizeof *f);
    ck_assert(v && f);
    for (int t = 0; t < n_frames; t++) {
        float *fv = v + (size_t)t * nv * 3, s = 1.0f - 0.2f * t, a = 0.4f * t;
        for (int y = 0; y <= grid; y++)
            for (int x = 0; x <= grid; x++) {
                float *p = fv + 3 * (y * (grid + 1) + x);
                float px = (x / (float)grid - 0.5f) * 0.16f * s, py = (y / (float)grid - 0.5f) * 0.16f * s;
                p[0] = px * cosf(a) - py * sinf(a) + 0.02f * t;
                p[1] = px * sinf(a) + py * cosf(a) - 0.01f * t;
                p[2] = 0.04f * sinf(x * 0.9f + t) * cosf(y * 0.7f) + 0.1f * sinf(a) * px;
            }
        float extra[9][3] = {{-0.15f, -0.06f, -0.2f}, {0.12f, -0.04f, -0.25f}, {0.0f, 0.05f, -0.3f},   /* large */
                             {-0.01f, 0.0f, 0.995f}, {0.05f, 0.02f, 0.5f}, {0.0f, 0.06f, 0.98f},      /* near */
                             {0.12f, 0.0f, 0.0f}, {0.6f, 0.05f, 0.0f}, {0.13f, 0.1f, 0.0f}};          /* off */
        for (int k = 0; k < 9; k++)
            for (int d = 0; d < 3; d++)
                fv[3 * ((grid + 1) * (grid + 1) + k) + d] = extra[k][d] * (d == 2 ? 1.0f : s) + (d == 0 ? 0.03f * t : 0);
    }
    int k = 0;
    for (int y = 0; y < grid; y++)
        for (int x = 0; x < grid; x++, k += 6) {
            int a = y * (grid + 1) + x;
            int32_t q[6] = {a, a + 1, a + grid + 2, a, a + grid + 2, a + grid + 1};
            memcpy(f + k, q, sizeof q);
        }
    for (int e = 0; e < 3; e++, k += 3)
        for (int c = 0; c < 3; c++) f[k + c] = (grid + 1) * (grid + 1) + 3 * e + c;
    dpt_k_arch best = dpt_k_arch_active();
    for (int ss = 1; ss <= 2; ss++)
        for (int threads = 1; threads <= 3; threads += 2) {
            dpt_renderer *r = make_renderer(w, h, ss, 0, threads, nv, f, nf);
            ck_assert_int_eq(dpt_k_set_arch(DPT_K_ARCH_SCALAR), 0);
            dpt_renderer *c = make_renderer(w, h, ss, 0, threads, nv, f, nf);
            ck_assert_int_eq(dpt_k_set_arch(best), 0);
            for (int t = 0; t < n_frames; t++) {
                const float *fv = v + (size_t)t * nv * 3;
                dpt_renderer *fresh = make_renderer(w, h, ss, 0, threads, nv, f, nf);
                uint8_t *a = render(r, fv, w, h), *b = render(fresh, fv, w, h), *s = render(c, fv, w, h);
                int bg = 0;
                for (int i = 0; i < w * h; i++) bg += is_bg(a, w, i % w, i / w, 255);
                ck_assert_msg(bg > w * h / 10 && bg < w * h - 100, "frame %d: %d background pixels", t, bg);
                ck_assert_msg(!memcmp(a, b, (size_t)w * h * 3), "ss %d threads %d frame %d: differs from a new renderer",
                              ss, threads, t);
                ck_assert_msg(!memcmp(a, s, (size_t)w * h * 3), "ss %d threads %d frame %d: SIMD and C rows differ",
                              ss, threads, t);
                free(a);
                free(b);
                free(s);
                dpt_renderer_free(fresh);
            }
            dpt_renderer_free(r);
            dpt_renderer_free(c);
        }
    free(v);
    free(f);
}
END_TEST

/* A 4 × 4 checker texture on a quad facing the camera: uv (0, 1) is the top-left corner of the
 * image (pyrender flips the texture rows on upload); colours against mesh.frag's textured material
 * (base = srgb_to_linear(texel), metallic 1, roughness 1). */
static double srgb_to_linear(double x) { return x < 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4); }

START_TEST(t_texture_lookup) {
    const int w = 64, h = 64, tw = 4, th = 4;
    uint8_t texel[4 * 4 * 3];
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++) {
            uint8_t *p = texel + (y * tw + x) * 3;
            int odd = (x + y) & 1;
            p[0] = odd ? 230 : 20;
            p[1] = odd ? 40 : 200;
            p[2] = (uint8_t)(60 + 40 * y);   /* rows told apart */
        }
    dpt_image tex = {tw, th, texel};
    float v[12];
    /* 12 pixels per texel, texel centres on pixel centres 14.5 + 12·c: bilinear gives the texel */
    unproject(8.5, 8.5, 1.0, w, h, v);     /* top-left */
    unproject(56.5, 8.5, 1.0, w, h, v + 3);
    unproject(56.5, 56.5, 1.0, w, h, v + 6);
    unproject(8.5, 56.5, 1.0, w, h, v + 9);
    const float vt[8] = {0, 1, 1, 1, 1, 0, 0, 0};
    const int32_t f[6] = {0, 2, 1, 0, 3, 2}, ft[6] = {0, 2, 1, 0, 3, 2};   /* facing the camera */
    dpt_render_params p = dpt_render_params_default();
    p.width = w;
    p.height = h;
    p.texture = &tex;
    p.n_threads = 1;
    dpt_renderer *r = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_renderer_new(&p, 4, f, 2, vt, 4, ft, &r, &err) == DPT_OK, "%s", err.message);
    uint8_t *img = render(r, v, w, h);
    for (int cy = 0; cy < th; cy++)
        for (int cx = 0; cx < tw; cx++) {
            int i = 14 + 12 * cx, j = 14 + 12 * cy;
            double dir[3] = {(2.0 * (i + 0.5) / w - 1.0) * TAN8, (1.0 - 2.0 * (j + 0.5) / h) * TAN8, -1.0};
            double view[3] = {-dir[0], -dir[1], -dir[2]}, n[3] = {0, 0, 1};
            for (int ch = 0; ch < 3; ch++) {
                double base = srgb_to_linear(texel[(cy * tw + cx) * 3 + ch] / 255.0);
                int want = to_level(brdf_linear(n, view, base, 1.0, 1.0));
                int got = img[((size_t)j * w + i) * 3 + ch];
                ck_assert_msg(abs(got - want) <= 1, "cell (%d, %d) channel %d: %d, want %d", cx, cy, ch, got, want);
            }
        }
    free(img);
    dpt_renderer_free(r);
}
END_TEST

START_TEST(t_argument_errors) {
    const int32_t f[3] = {0, 1, 2}, bad_f[3] = {0, 1, 3}, neg_f[3] = {0, -1, 2};
    const float vt[6] = {0, 0, 1, 0, 0, 1};
    dpt_renderer *r = NULL;
    dpt_error err = {0};
    dpt_render_params p = dpt_render_params_default();
    ck_assert_int_eq(p.width, 640);
    ck_assert_int_eq(p.height, 640);
    ck_assert_int_eq(p.supersample, 1);
    const int sizes[][3] = {{0, 10, 1}, {10, -1, 1}, {9000, 10, 1}, {10, 10, 0}, {10, 10, 9}, {4096, 4096, 8}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        p.width = sizes[k][0];
        p.height = sizes[k][1];
        p.supersample = sizes[k][2];
        ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
        ck_assert_ptr_null(r);
        ck_assert_ptr_nonnull(strstr(err.message, "dpt_renderer_new"));
    }
    p = dpt_render_params_default();
    p.width = p.height = 16;
    ck_assert_int_eq(dpt_renderer_new(&p, 3, bad_f, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "face 0"));
    ck_assert_int_eq(dpt_renderer_new(&p, 3, neg_f, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_renderer_new(&p, 3, NULL, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 0, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_renderer_new(&p, 0, f, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 1, NULL, 0, NULL, NULL, &err), DPT_ERR_INVALID_ARG);
    p.n_threads = -1;
    ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    p.n_threads = 0;
    /* a texture needs uv, in range and finite */
    uint8_t px[3] = {1, 2, 3};
    dpt_image tex = {1, 1, px};
    p.texture = &tex;
    ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "uv"));
    ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 1, vt, 3, bad_f, &r, &err), DPT_ERR_INVALID_ARG);
    const float vt_nan[6] = {0, 0, NAN, 0, 0, 1};
    ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 1, vt_nan, 3, f, &r, &err), DPT_ERR_INVALID_ARG);
    dpt_image empty = {0, 0, NULL};
    p.texture = &empty;
    ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 1, vt, 3, f, &r, &err), DPT_ERR_INVALID_ARG);
    p.texture = NULL;
    /* NaN / Inf vertices */
    ck_assert_int_eq(dpt_renderer_new(&p, 3, f, 1, NULL, 0, NULL, &r, &err), DPT_OK);
    uint8_t img[16 * 16 * 3];
    float v[9] = {0, 0, 0, 0.1f, 0, 0, 0, 0.1f, 0};
    ck_assert_int_eq(dpt_renderer_draw(r, v, img, &err), DPT_OK);
    v[4] = NAN;
    ck_assert_int_eq(dpt_renderer_draw(r, v, img, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "vertex 1"));
    v[4] = INFINITY;
    ck_assert_int_eq(dpt_renderer_draw(r, v, img, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_renderer_draw(r, NULL, img, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_renderer_draw(r, v, NULL, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_renderer_draw(NULL, v, img, &err), DPT_ERR_INVALID_ARG);
    dpt_renderer_free(r);
    dpt_renderer_free(NULL);
}
END_TEST

/* ---- images ----------------------------------------------------------------------------------- */

#ifdef DPT_NO_IMAGE

START_TEST(t_image_unsupported) {
    dpt_image img = {0};
    dpt_error err = {0};
    ck_assert_int_eq(dpt_image_read("x.png", &img, &err), DPT_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.message, "NO_IMAGE"));
    uint8_t px[3] = {0};
    dpt_image one = {1, 1, px};
    ck_assert_int_eq(dpt_image_write_png(dpt_check_tmp_path("x.png"), &one, &err), DPT_ERR_UNSUPPORTED);
}
END_TEST

#else

static void write_file(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(*n ? *n : 1);
    ck_assert_uint_eq(fread(b, 1, *n, fp), *n);
    fclose(fp);
    return b;
}

/* PNG of colour type ct (grey, grey+alpha, RGB, RGBA, palette) and bit depth, written with libpng. */
static void write_png_kind(const char *path, int w, int h, int ct, int depth) {
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    png_init_io(png, fp);
    png_set_IHDR(png, info, w, h, depth, ct, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
        png_set_PLTE(png, info, pal, 4);
    }
    png_write_info(png, info);
    int ch = ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_PALETTE ? 1 : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ct == PNG_COLOR_TYPE_RGB ? 3 : 4;
    size_t rowbytes = (size_t)w * ch * depth / 8 + 1;
    uint8_t *row = calloc(rowbytes, 1);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                int val = (x * 37 + y * 11 + c * 50) & 255;
                if (ct == PNG_COLOR_TYPE_PALETTE) val = (x + y) & 3;
                if (depth == 8) row[x * ch + c] = (uint8_t)val;
                else if (depth == 16) { row[(x * ch + c) * 2] = (uint8_t)val; row[(x * ch + c) * 2 + 1] = 7; }
            }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    fclose(fp);
}

START_TEST(t_png_roundtrip_and_kinds) {
    dpt_error err = {0};
    const int w = 37, h = 23;
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int k = 0; k < w * h * 3; k++) px[k] = (uint8_t)(k * 131 + 7);
    dpt_image img = {w, h, px}, back = {0};
    const char *path = dpt_check_tmp_path("rt.png");
    ck_assert_msg(dpt_image_write_png(path, &img, &err) == DPT_OK, "%s", err.message);
    ck_assert_msg(dpt_image_read(path, &back, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(back.width, w);
    ck_assert_int_eq(back.height, h);
    ck_assert_int_eq(memcmp(back.rgb, px, (size_t)w * h * 3), 0);
    dpt_image_free(&back);
    ck_assert_ptr_null(back.rgb);
    free(px);

    const int kinds[][2] = {{PNG_COLOR_TYPE_GRAY, 8}, {PNG_COLOR_TYPE_GRAY_ALPHA, 8}, {PNG_COLOR_TYPE_RGB, 16},
                            {PNG_COLOR_TYPE_RGBA, 8}, {PNG_COLOR_TYPE_PALETTE, 8}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        write_png_kind(path, 5, 4, kinds[k][0], kinds[k][1]);
        ck_assert_msg(dpt_image_read(path, &back, &err) == DPT_OK, "kind %zu: %s", k, err.message);
        ck_assert_int_eq(back.width, 5);
        ck_assert_int_eq(back.height, 4);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) {
                const uint8_t *p = back.rgb + (y * 5 + x) * 3;
                int v0 = (x * 37 + y * 11) & 255;
                switch (kinds[k][0]) {
                case PNG_COLOR_TYPE_GRAY:
                case PNG_COLOR_TYPE_GRAY_ALPHA:
                    ck_assert(p[0] == v0 && p[1] == v0 && p[2] == v0);
                    break;
                case PNG_COLOR_TYPE_PALETTE: {
                    static const uint8_t pal[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
                    ck_assert(!memcmp(p, pal[(x + y) & 3], 3));
                    break;
                }
                default:
                    for (int c = 0; c < 3; c++) ck_assert_int_eq(p[c], (x * 37 + y * 11 + c * 50) & 255);
                }
            }
        dpt_image_free(&back);
    }
}
END_TEST

static void write_jpeg(const char *path, int w, int h, int grey) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    jpeg_stdio_dest(&c, fp);
    c.image_width = w;
    c.image_height = h;
    c.input_components = grey ? 1 : 3;
    c.in_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    while (c.next_scanline < c.image_height) {
        int y = (int)c.next_scanline;
        for (int x = 0; x < w * (grey ? 1 : 3); x++) row[x] = (uint8_t)(100 + 60 * sin(x * 0.05 + y * 0.08));
        JSAMPROW rp = row;
        jpeg_write_scanlines(&c, &rp, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(fp);
    free(row);
}

START_TEST(t_jpeg_read) {
    dpt_error err = {0};
    dpt_image img = {0};
    for (int grey = 0; grey < 2; grey++) {
        const char *path = dpt_check_tmp_path("t.jpg");
        write_jpeg(path, 48, 32, grey);
        ck_assert_msg(dpt_image_read(path, &img, &err) == DPT_OK, "%s", err.message);
        ck_assert_int_eq(img.width, 48);
        ck_assert_int_eq(img.height, 32);
        double max_err = 0;
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 48; x++)
                for (int c = 0; c < 3; c++) {
                    int xi = grey ? x : x * 3 + c;
                    double want = (uint8_t)(100 + 60 * sin(xi * 0.05 + y * 0.08));
                    max_err = fmax(max_err, fabs(img.rgb[(y * 48 + x) * 3 + c] - want));
                }
        ck_assert_msg(max_err <= 4, "JPEG (quality 100) off by %g", max_err);
        dpt_image_free(&img);
    }
}
END_TEST

START_TEST(t_image_errors) {
    dpt_error err = {0};
    dpt_image img = {0};
    ck_assert_int_eq(dpt_image_read(dpt_check_tmp_path("missing.png"), &img, &err), DPT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, "missing.png"));
    write_file(dpt_check_tmp_path("text.png"), "hello, not an image\n", 20);
    ck_assert_int_eq(dpt_image_read(dpt_check_tmp_path("text.png"), &img, &err), DPT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "not a PNG or JPEG"));
    write_file(dpt_check_tmp_path("empty.png"), "", 0);
    ck_assert_int_eq(dpt_image_read(dpt_check_tmp_path("empty.png"), &img, &err), DPT_ERR_FORMAT);
    ck_assert_int_eq(dpt_image_read(NULL, &img, &err), DPT_ERR_INVALID_ARG);

    /* the side limit (8192), from the header before any pixel is allocated: PNG and JPEG */
    write_png_kind(dpt_check_tmp_path("wide.png"), 8193, 1, PNG_COLOR_TYPE_RGB, 8);
    ck_assert_int_eq(dpt_image_read(dpt_check_tmp_path("wide.png"), &img, &err), DPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.message, "wide.png: image size 8193 x 1 outside 1 ... 8192 per side"), "%s",
                  err.message);
    ck_assert_ptr_null(img.rgb);
    write_jpeg(dpt_check_tmp_path("tall.jpg"), 2, 8193, 0);
    ck_assert_int_eq(dpt_image_read(dpt_check_tmp_path("tall.jpg"), &img, &err), DPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.message, "tall.jpg: image size 2 x 8193 outside 1 ... 8192 per side"), "%s",
                  err.message);
    /* fuzz image finding: a progressive JPEG whose header claims 24581 x 51462 (libjpeg would
     * allocate the whole image's coefficients, 3.8 GB, in jpeg_start_decompress): refused from the
     * header */
    ck_assert_int_eq(dpt_image_read("tests/fuzz/regress/image/progressive-huge-header.jpg", &img, &err),
                     DPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.message, "image size 24581 x 51462 outside 1 ... 8192 per side"), "%s", err.message);
    ck_assert_ptr_null(img.rgb);
    write_png_kind(dpt_check_tmp_path("edge.png"), 8192, 1, PNG_COLOR_TYPE_RGB, 8);
    ck_assert_msg(dpt_image_read(dpt_check_tmp_path("edge.png"), &img, &err) == DPT_OK, "%s", err.message);
    ck_assert_int_eq(img.width, 8192);
    dpt_image_free(&img);

    /* every truncation of a PNG and a JPEG, and byte damage, fail with one line naming the file */
    write_png_kind(dpt_check_tmp_path("good.png"), 40, 30, PNG_COLOR_TYPE_RGB, 8);
    write_jpeg(dpt_check_tmp_path("good.jpg"), 40, 30, 0);
    const char *names[2] = {"good.png", "good.jpg"};
    for (int k = 0; k < 2; k++) {
        size_t n;
        uint8_t *data = read_file(dpt_check_tmp_path(names[k]), &n);
        const char *cut = dpt_check_tmp_path("cut.img");
        int failures = 0, tried = 0;
        for (size_t len = 1; len < n; len += (len < 64 ? 1 : 7)) {
            write_file(cut, data, len);
            dpt_status st = dpt_image_read(cut, &img, &err);
            tried++;
            if (st != DPT_OK) {
                failures++;
                ck_assert_msg(st == DPT_ERR_FORMAT, "%s cut at %zu: status %d (%s)", names[k], len, st, err.message);
                ck_assert_ptr_nonnull(strstr(err.message, "cut.img"));
                ck_assert_ptr_null(strchr(err.message, '\n'));
                ck_assert_ptr_null(img.rgb);
            } else {
                dpt_image_free(&img);
            }
        }
        ck_assert_int_eq(failures, tried);   /* a truncated image is never returned */
        /* damage inside the compressed data */
        for (size_t pos = n / 3; pos < n - 16; pos += n / 7) {
            uint8_t *bad = malloc(n);
            memcpy(bad, data, n);
            for (int b = 0; b < 8; b++) bad[pos + b] ^= 0x5a;
            write_file(cut, bad, n);
            dpt_status st = dpt_image_read(cut, &img, &err);
            if (st == DPT_OK) dpt_image_free(&img);   /* JPEG may decode damaged data: no crash is the point */
            else ck_assert_int_eq(st, DPT_ERR_FORMAT);
            if (k == 0) ck_assert_int_eq(st, DPT_ERR_FORMAT);   /* PNG: CRC / zlib check */
            free(bad);
        }
        free(data);
    }
    /* writing: unwritable path, bad image */
    uint8_t px[3] = {0};
    dpt_image one = {1, 1, px};
    ck_assert_int_eq(dpt_image_write_png("/nonexistent-dir/x.png", &one, &err), DPT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent-dir/x.png"));
    dpt_image zero = {0, 1, px};
    ck_assert_int_eq(dpt_image_write_png(dpt_check_tmp_path("z.png"), &zero, &err), DPT_ERR_INVALID_ARG);
    ck_assert_int_eq(dpt_image_write_png(dpt_check_tmp_path("z.png"), NULL, &err), DPT_ERR_INVALID_ARG);
}
END_TEST

#endif

int main(void) {
    dpt_check_tmp_dir("render");
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("render");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_coverage_known_triangles);
    tcase_add_test(tc, t_fill_rule_and_shared_edges);
    tcase_add_test(tc, t_depth_order);
    tcase_add_test(tc, t_projection_of_points);
    tcase_add_test(tc, t_shading_and_windings);
    tcase_add_test(tc, t_background_and_clipping);
    tcase_add_test(tc, t_supersample_is_box_average);
    tcase_add_test(tc, t_threads_and_repeats_identical);
    tcase_add_test(tc, t_moving_mesh_and_simd_rows_identical);
    tcase_add_test(tc, t_texture_lookup);
    tcase_add_test(tc, t_argument_errors);
#ifdef DPT_NO_IMAGE
    tcase_add_test(tc, t_image_unsupported);
#else
    tcase_add_test(tc, t_png_roundtrip_and_kinds);
    tcase_add_test(tc, t_jpeg_read);
    tcase_add_test(tc, t_image_errors);
#endif
    suite_add_tcase(s, tc);
    int failed = dpt_check_run(s);
    dpt_check_tmp_dir_remove();
    return failed;
}
