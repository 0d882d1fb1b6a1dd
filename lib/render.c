/* Software renderer of upstream's MeshRenderer (DiffPoseTalk utils/renderer.py on pyrender 0.1.45).
 *
 * Scene, as upstream builds it:
 *  - PerspectiveCamera(yfov 16°, znear 0.01, zfar 3, aspectRatio 1) at (0, 0, 1), identity
 *    rotation: it looks down −z. aspectRatio is fixed at 1, so pyrender's projection ignores the
 *    viewport's shape: a non-square image stretches the same ±8° square of view over W × H.
 *  - Five DirectionalLight(colour 1, intensity 2) nodes: _get_light_poses moves only their
 *    translations, so each shines along its node's −z axis, like the camera looks; pyrender uses at
 *    most 4 lights of a type (MAX_N_LIGHTS), so the scene is one light of intensity 8 along −z.
 *  - ambient 0.2; MetallicRoughnessMaterial(base 0.3 grey, metallic 0.8, roughness 0.8), or with a
 *    texture pyrender's defaults (base factor 1, metallic 1, roughness 1) times the texel;
 *  - smooth normals as trimesh's vertex_normals (corner-angle weighted face normals); with uv the
 *    mesh is split at uv seams first (upstream goes through an OBJ that trimesh unmerges by
 *    (vertex, uv) pairs), so normals are averaged per (vertex, uv) pair;
 *  - SKIP_CULL_FACES: both sides drawn. mesh.frag does not flip back-face normals: it clamps
 *    n·l to ≥ 0.001 and uses |n·v|, and so do shade_grey and shade_pbr.
 *
 * Rasterisation: vertices snapped to 1/256 of a sample (as GPUs do), exact integer edge functions
 * evaluated at sample centres (x + 0.5, y + 0.5), row 0 at the top, and the top-left fill rule in
 * image coordinates: a centre exactly on an edge belongs to the triangle whose top or left edge it
 * is, so a shared edge is drawn once. Depth is window z (0 … 1) interpolated linearly in screen
 * space, stored as an integer in units of 2^-30 and tested with "less" against 1 (pyrender:
 * GL_LESS, cleared to 1), so nothing beyond zfar shows; triangles crossing the near plane (or far
 * outside the screen) are clipped in clip space. Triangles of the winding that faces the camera
 * are drawn first; the others are skipped where the depth tiles they cover are already nearer.
 *
 * Deferred shading: pass 1 stores the nearest face per sample, pass 2 shades each visible sample
 * once: perspective-correct interpolation along the eye ray through the sample centre, then the
 * PBR of pyrender's mesh.frag, then pow(1/2.2) and the 8-bit conversion through a table.
 * Supersampling renders k × k samples per pixel and averages the 8-bit colours (a box filter).
 *
 * Threads: a team made at dpt_renderer_new; each thread owns interleaved bands of output rows
 * (rasterising every triangle into its bands only) so that the head in the middle is shared out.
 * Nothing is allocated per frame. */
#include "core.h"
#include "kernels.h"
#include "sized.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* x86-64 with GCC: the two hot loops also built for AVX2 and picked at load time (function
 * clones; the ISO C mode keeps FMA contraction off, so both builds give the same bits). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(DPT_NO_CLONES)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HOT_CLONES
#endif

/* x86-64 (GCC, clang): hand-written AVX-512 versions of the rasteriser's rows, the run-finding of
 * the shading pass and the 8-bit output, chosen per renderer at dpt_renderer_new when the CPU and
 * OS have AVX-512 F/BW/VL/DQ and DPT_ARCH does not ask for scalar. The same operations in the same
 * order as the C code (no FMA), so the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(DPT_NO_AVX512)
#define RENDER_AVX512 1
#include <immintrin.h>
#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,bmi,bmi2,popcnt")))
#endif

#define MAX_SIDE 8192          /* width, height */
#define MAX_SUPERSAMPLE 8
#define MAX_SAMPLE_SIDE 16384  /* width·k, height·k */
#define MAX_THREADS DPT_MAX_THREADS
#define SUB_BITS 8             /* fixed-point sub-sample precision */
#define SUB (1 << SUB_BITS)
#define GUARD (1 << 16)        /* |screen coordinate| bound in samples before guard-band clipping */
#define DEPTH_ONE (1 << 30)   /* depth buffer value of window z = 1 (the clear value) */
#define SMALL 64              /* triangles within SMALL × SMALL samples: the int32 path */
#define TILE 8                /* depth tiles of the hidden-triangle test (divides BAND_ROWS) */
#define BAND_ROWS 8            /* output rows per band handed to one thread */
#define MAX_LIGHTS 8
#define PI_F 3.14159265358979323846f
#define SCRATCH_ROWS 8          /* per-thread shading scratch: 8 arrays of one sample row */

/* ---- upstream's scene --------------------------------------------------------------------- */

static const double CAM_Z = 1.0, ZNEAR = 0.01, ZFAR = 3.0, YFOV_DEG = 16.0, ASPECT = 1.0;
static const float AMBIENT = 0.2f;
/* light direction = −(node rotation)[:, 2] = (0, 0, −1) for all five nodes of _get_light_poses */
#define PYRENDER_MAX_N_LIGHTS 4   /* pyrender's MAX_N_LIGHTS: only 4 lights of a type are used (the 4
                                     nearest the mesh; all five are alike, so any 4) */
static const struct { float dir[3], color[3], intensity; } SCENE_LIGHTS[5] = {
    {{0, 0, -1}, {1, 1, 1}, 2}, {{0, 0, -1}, {1, 1, 1}, 2}, {{0, 0, -1}, {1, 1, 1}, 2},
    {{0, 0, -1}, {1, 1, 1}, 2}, {{0, 0, -1}, {1, 1, 1}, 2},
};

typedef struct light {
    float l[3];          /* unit vector towards the light */
    float radiance[3];   /* colour × intensity (lights with one direction summed) */
} light;

typedef struct material {
    float base[3];       /* baseColorFactor */
    float metallic, roughness;
    /* derived as mesh.frag does */
    float c_diff[3], f0[3];   /* (per unit base colour when textured: see shade) */
    float k;             /* Smith k = (roughness + 1)² / 8 */
    float a2;            /* (roughness²)² of the microfacet distribution */
} material;

/* ---- 8-bit output: round(255 · clamp(c, 0, 1)^(1/2.2)) by table ---------------------------- */

/* Index: the float's exponent and top 8 mantissa bits, for c in [2^-20, 1) (below: 0). Each entry
 * spans less than one output level, so it holds the level at its start and the threshold of the
 * next level (or +inf). */
#define GAMMA_EXP_MIN 107      /* biased exponent of 2^-20 */
#define GAMMA_ENTRIES (20 << 8)
typedef struct gamma_entry { float next; int level; } gamma_entry;
static gamma_entry gamma_table[GAMMA_ENTRIES];
/* The same table in 32 bits for one gather: level | t << 8, where c ≥ next ⇔ (bits of c & 0x7fff) ≥ t
 * (next lies in the entry's range, whose floats share all but their low 15 bits; t = 0 when next is
 * at or below it, 0x8000 when above). Checked against gamma_table for every float of the range. */
static uint32_t gamma_packed[GAMMA_ENTRIES];
static float srgb_table[1025];   /* srgb_to_linear of mesh.frag at i/1024 */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static int gamma_level_exact(double c) {
    if (c <= 0) return 0;
    if (c >= 1) return 255;
    return (int)floor(255.0 * pow(c, 1.0 / 2.2) + 0.5);
}

static void init_tables(void) {
    for (int e = 0; e < GAMMA_ENTRIES; e++) {
        uint32_t bits = (uint32_t)(e + (GAMMA_EXP_MIN << 8)) << 15, bits_end = bits + (1u << 15);
        float lo, hi;
        memcpy(&lo, &bits, 4);
        memcpy(&hi, &bits_end, 4);
        int level = gamma_level_exact(lo);
        gamma_table[e].level = level;
        gamma_table[e].next = INFINITY;
        if (level < 255) {
            double t = pow((level + 0.5) / 255.0, 2.2);   /* where level + 1 begins */
            if (t < hi) gamma_table[e].next = (float)t;
        }
        float next = gamma_table[e].next;
        uint32_t next_bits;
        memcpy(&next_bits, &next, 4);
        uint32_t t = next <= lo ? 0 : next >= hi ? 0x8000 : (next_bits & 0x7fff);
        gamma_packed[e] = (uint32_t)level | t << 8;
    }
    for (int i = 0; i <= 1024; i++) {
        double x = i / 1024.0;
        srgb_table[i] = (float)(x < 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4));
    }
}

static inline int gamma_level(float c) {
    if (!(c >= 9.5367431640625e-07f)) return 0;   /* < 2^-20 (or NaN) */
    if (c >= 1.0f) return 255;
    uint32_t bits;
    memcpy(&bits, &c, 4);
    const gamma_entry *g = &gamma_table[(bits >> 15) - (GAMMA_EXP_MIN << 8)];
    return g->level + (c >= g->next);
}

static inline float srgb_to_linear(float x) {
    float p = x * 1024.0f;
    if (p <= 0) return 0;
    if (p >= 1024.0f) return srgb_table[1024];
    int i = (int)p;
    float f = p - (float)i;
    return srgb_table[i] + f * (srgb_table[i + 1] - srgb_table[i]);
}

/* ---- renderer state ----------------------------------------------------------------------- */

typedef struct proj_vertex {
    int32_t x, y;        /* fixed point, 1/SUB sample (|x|, |y| < GUARD·SUB = 2^24) */
    float z;             /* window depth 0 … 1 */
    int32_t outcode;     /* planes this vertex is outside of (clip needed): then x, y, z unset */
} proj_vertex;

typedef struct face_ray {
    /* eye ray D through a sample: barycentrics u = D·m2 / D·m1, v = D·m3 / D·m1 */
    float m1[3], m2[3], m3[3];
} face_ray;

/* Per face, once the vertex normals are known: for D = (dx, dy, −1), den·(interpolated normal)
 * = dy·y − z + dx·q (den = D·m1, whose sign is kept in m1 for the shading pass). One cache line. */
typedef struct face_shade {
    float y[3], z[3], q[3], m1[3];
    float pad[4];
} face_shade;

struct dpt_renderer {
    int width, height, k, sw, sh;   /* output size, supersampling, sample grid sw × sh */
    int black_bg, n_threads;
    int n_vertices, n_faces;
    int32_t *faces;                  /* n_faces × 3 */
    /* normal vertices: the mesh vertices, or with uv the (vertex, uv) pairs */
    int n_nv;
    int32_t *nv_of_corner;           /* n_faces × 3 → normal vertex */
    int32_t *adj_start, *adj;        /* CSR: normal vertex → its corners (face·3 + corner) */
    const dpt_image *texture;
    float *uv_of_corner;             /* n_faces × 3 × 2 (u, v as in vt) or NULL */
    material mat;
    light lights[MAX_LIGHTS];
    int n_lights;
    double p00, p11, p22, p23;       /* projection matrix entries */
    double guard_x, guard_y;         /* guard band in NDC */
    float *ray_x, *ray_y;            /* eye-ray direction x per sample column, y per sample row */
    /* per frame */
    const float *vertices;
    proj_vertex *proj;               /* n_vertices */
    face_ray *rays;                  /* n_faces */
    face_shade *shades;              /* n_faces */
    float *corner_weight;            /* n_faces × 3 × 3: corner angle × unit face normal */
    float *normals;                  /* n_nv × 3 */
    size_t stride;                   /* row stride of depth and face_id (≥ sw) */
    int32_t *depth;                  /* sh rows × stride, window z in units of 2^-30 (DEPTH_ONE = 1) */
    int32_t *face_id;                /* sh rows × stride, −1 = background */
    uint8_t *samples;                /* sw × sh × 3 when k > 1 */
    uint8_t *out;
    float *scratch;                  /* n_threads × SCRATCH_ROWS × sw */
    int32_t *tile_far;               /* tiles_h × tiles_w farthest depth per tile */
    int32_t *later;                  /* n_threads × n_faces: faces of the second raster pass */
    int tiles_w, tiles_h;
    int first_winding;               /* screen winding (sign of the area) drawn first */
    int64_t winding_samples[MAX_THREADS][2];   /* visible samples of each winding, last frame */
    /* per thread, the samples its rasteriser may have written since its last clear: columns
       [0] … [1], rows [2] … [3] (empty when [0] > [1]); outside, depth and face ids are clear */
    int drawn[MAX_THREADS][4];
    int grey;                        /* untextured grey material, grey lights: shade_grey */
    int avx512;                      /* the AVX-512 row functions (RENDER_AVX512) */
    /* team */
    pthread_t threads[MAX_THREADS];
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    pthread_barrier_t barrier;
    unsigned generation;
    int n_finished, quit, team_ready;
};

static inline int owns_row(const dpt_renderer *r, int sample_row, int tid) {
    return ((sample_row / r->k) / BAND_ROWS) % r->n_threads == tid;
}

/* ---- per-frame geometry ------------------------------------------------------------------- */

/* Clip-space position (x, y, z, w) of vertex i: camera at (0, 0, 1), identity rotation. */
static inline void clip_position(const dpt_renderer *r, int i, double *c) {
    const float *p = r->vertices + (size_t)i * 3;
    double zc = (double)p[2] - CAM_Z;
    c[0] = r->p00 * p[0];
    c[1] = r->p11 * p[1];
    c[2] = r->p22 * zc + r->p23;
    c[3] = -zc;
}

static void project_vertices(dpt_renderer *r, int v0, int v1) {
    for (int i = v0; i < v1; i++) {
        double c[4];
        clip_position(r, i, c);
        proj_vertex *q = &r->proj[i];
        double w = c[3];
        int oc = 0;
        if (c[2] < -w) oc |= 1;
        if (c[0] > r->guard_x * w) oc |= 2;
        if (c[0] < -r->guard_x * w) oc |= 4;
        if (c[1] > r->guard_y * w) oc |= 8;
        if (c[1] < -r->guard_y * w) oc |= 16;
        q->outcode = oc;
        if (!oc) {
            double xs = (c[0] / w * 0.5 + 0.5) * r->sw, ys = (0.5 - c[1] / w * 0.5) * r->sh;
            q->x = (int32_t)llrint(xs * SUB);
            q->y = (int32_t)llrint(ys * SUB);
            q->z = (float)(c[2] / w * 0.5 + 0.5);
        }
    }
}

static inline void sub3(const float *a, const float *b, float *o) {
    o[0] = a[0] - b[0]; o[1] = a[1] - b[1]; o[2] = a[2] - b[2];
}
static inline void cross3(const float *a, const float *b, float *o) {
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}
static inline float dot3(const float *a, const float *b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
/* trimesh's unitize: zero-length vectors stay zero */
static inline void unitize3(float *a) {
    float n2 = dot3(a, a);
    if (n2 > 1e-30f) {
        float s = 1.0f / sqrtf(n2);
        a[0] *= s; a[1] *= s; a[2] *= s;
    } else {
        a[0] = a[1] = a[2] = 0;
    }
}

/* acos on [−1, 1], |error| < 3e-7 (Abramowitz & Stegun 4.4.46) */
static inline float acos_fast(float x) {
    float ax = fabsf(x);
    if (ax > 1.0f) ax = 1.0f;
    float p = -0.0012624911f;
    p = p * ax + 0.0066700901f;
    p = p * ax - 0.0170881256f;
    p = p * ax + 0.0308918810f;
    p = p * ax - 0.0501743046f;
    p = p * ax + 0.0889789874f;
    p = p * ax - 0.2145988016f;
    p = p * ax + 1.5707963050f;
    float a = sqrtf(1.0f - ax) * p;
    return x < 0 ? PI_F - a : a;
}

/* Per face: trimesh's unit face normal weighted by its corner angles (triangles.angles: zero
 * for a degenerate face), and the eye-ray data of the shading pass. */
static void face_geometry(dpt_renderer *r, int f0, int f1) {
    const float cam[3] = {0, 0, (float)CAM_Z};
    for (int f = f0; f < f1; f++) {
        const int32_t *t = r->faces + (size_t)f * 3;
        const float *a = r->vertices + (size_t)t[0] * 3, *b = r->vertices + (size_t)t[1] * 3,
                    *c = r->vertices + (size_t)t[2] * 3;
        float e1[3], e2[3], n[3], u[3], v[3], w[3], tv[3];
        sub3(b, a, e1);
        sub3(c, a, e2);
        cross3(e1, e2, n);
        unitize3(n);
        u[0] = e1[0]; u[1] = e1[1]; u[2] = e1[2];
        v[0] = e2[0]; v[1] = e2[1]; v[2] = e2[2];
        sub3(c, b, w);
        unitize3(u);
        unitize3(v);
        unitize3(w);
        float ang0 = acos_fast(dot3(u, v)), ang1 = acos_fast(-dot3(u, w));
        float ang2 = PI_F - ang0 - ang1;
        if (ang0 < 1e-8f || ang1 < 1e-8f || ang2 < 1e-8f) ang0 = ang1 = ang2 = 0;
        float *cw = r->corner_weight + (size_t)f * 9;
        const float ang[3] = {ang0, ang1, ang2};
        for (int k = 0; k < 3; k++)
            for (int d = 0; d < 3; d++) cw[k * 3 + d] = ang[k] * n[d];
        face_ray *fr = &r->rays[f];
        sub3(cam, a, tv);
        cross3(e2, e1, fr->m1);
        cross3(e2, tv, fr->m2);
        cross3(tv, e1, fr->m3);
    }
}

#ifdef RENDER_AVX512
/* face_geometry for 16 faces at a time: vertices gathered, the same operations lane by lane
 * (unitize3, acos_fast, the degenerate test), corner weights and eye-ray data scattered. */
AVX512_FN static void unitize3_avx512(__m512 *a) {
    __m512 n2 = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(a[0], a[0]), _mm512_mul_ps(a[1], a[1])),
                              _mm512_mul_ps(a[2], a[2]));
    __mmask16 ok = _mm512_cmp_ps_mask(n2, _mm512_set1_ps(1e-30f), _CMP_GT_OQ);
    __m512 s = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_sqrt_ps(n2));
    for (int d = 0; d < 3; d++) a[d] = _mm512_maskz_mul_ps(ok, a[d], s);
}

AVX512_FN static __m512 acos_avx512(__m512 x) {
    static const float c[8] = {-0.0012624911f, 0.0066700901f, -0.0170881256f, 0.0308918810f,
                               -0.0501743046f, 0.0889789874f, -0.2145988016f, 1.5707963050f};
    __m512 ax = _mm512_abs_ps(x);
    ax = _mm512_min_ps(_mm512_set1_ps(1.0f), ax);   /* ax > 1 ? 1 : ax */
    __m512 p = _mm512_set1_ps(c[0]);
    for (int i = 1; i < 8; i++) p = _mm512_add_ps(_mm512_mul_ps(p, ax), _mm512_set1_ps(c[i]));
    __m512 a = _mm512_mul_ps(_mm512_sqrt_ps(_mm512_sub_ps(_mm512_set1_ps(1.0f), ax)), p);
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_sub_ps(a, neg, _mm512_set1_ps(PI_F), a);
}

AVX512_FN static inline void cross_avx512(const __m512 *a, const __m512 *b, __m512 *o) {
    o[0] = _mm512_sub_ps(_mm512_mul_ps(a[1], b[2]), _mm512_mul_ps(a[2], b[1]));
    o[1] = _mm512_sub_ps(_mm512_mul_ps(a[2], b[0]), _mm512_mul_ps(a[0], b[2]));
    o[2] = _mm512_sub_ps(_mm512_mul_ps(a[0], b[1]), _mm512_mul_ps(a[1], b[0]));
}

AVX512_FN static inline __m512 dot_avx512(const __m512 *a, const __m512 *b) {
    return _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(a[0], b[0]), _mm512_mul_ps(a[1], b[1])), _mm512_mul_ps(a[2], b[2]));
}

AVX512_FN static void face_geometry_avx512(dpt_renderer *r, int f0, int f1) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i i3 = _mm512_mullo_epi32(iota, _mm512_set1_epi32(3)), i9 = _mm512_mullo_epi32(iota, _mm512_set1_epi32(9));
    for (int f = f0; f < f1; f += 16) {
        __mmask16 m = f1 - f >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (f1 - f)) - 1);
        const int *tri = r->faces + (size_t)f * 3;
        __m512 p[3][3];   /* corner, coordinate */
        for (int k = 0; k < 3; k++) {
            __m512i t = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, _mm512_add_epi32(i3, _mm512_set1_epi32(k)),
                                                    tri, 4);
            __m512i t3 = _mm512_add_epi32(_mm512_add_epi32(t, t), t);
            for (int d = 0; d < 3; d++)
                p[k][d] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, t3, r->vertices + d, 4);
        }
        __m512 e1[3], e2[3], n[3], u[3], v[3], w[3], tv[3], m1[3], m2[3], m3[3];
        for (int d = 0; d < 3; d++) {
            e1[d] = _mm512_sub_ps(p[1][d], p[0][d]);
            e2[d] = _mm512_sub_ps(p[2][d], p[0][d]);
            w[d] = _mm512_sub_ps(p[2][d], p[1][d]);
            u[d] = e1[d];
            v[d] = e2[d];
            tv[d] = _mm512_sub_ps(_mm512_set1_ps(d == 2 ? (float)CAM_Z : 0.0f), p[0][d]);
        }
        cross_avx512(e1, e2, n);
        unitize3_avx512(n);
        unitize3_avx512(u);
        unitize3_avx512(v);
        unitize3_avx512(w);
        __m512 ang0 = acos_avx512(dot_avx512(u, v));
        __m512 ang1 = acos_avx512(_mm512_xor_ps(dot_avx512(u, w), _mm512_set1_ps(-0.0f)));   /* −u·w */
        __m512 ang2 = _mm512_sub_ps(_mm512_sub_ps(_mm512_set1_ps(PI_F), ang0), ang1);
        const __m512 tiny = _mm512_set1_ps(1e-8f);
        __mmask16 degenerate = _mm512_cmp_ps_mask(ang0, tiny, _CMP_LT_OQ) | _mm512_cmp_ps_mask(ang1, tiny, _CMP_LT_OQ) |
                               _mm512_cmp_ps_mask(ang2, tiny, _CMP_LT_OQ);
        const __m512 ang[3] = {_mm512_maskz_mov_ps((__mmask16)~degenerate, ang0),
                               _mm512_maskz_mov_ps((__mmask16)~degenerate, ang1),
                               _mm512_maskz_mov_ps((__mmask16)~degenerate, ang2)};
        float *cw = r->corner_weight + (size_t)f * 9;
        for (int k = 0; k < 3; k++)
            for (int d = 0; d < 3; d++)
                _mm512_mask_i32scatter_ps(cw, m, _mm512_add_epi32(i9, _mm512_set1_epi32(k * 3 + d)),
                                          _mm512_mul_ps(ang[k], n[d]), 4);
        cross_avx512(e2, e1, m1);
        cross_avx512(e2, tv, m2);
        cross_avx512(tv, e1, m3);
        float *fr = (float *)(r->rays + f);
        const __m512 *rows[3] = {m1, m2, m3};
        for (int k = 0; k < 3; k++)
            for (int d = 0; d < 3; d++)
                _mm512_mask_i32scatter_ps(fr, m, _mm512_add_epi32(i9, _mm512_set1_epi32(k * 3 + d)), rows[k][d], 4);
    }
}
#endif

static void vertex_normals(dpt_renderer *r, int v0, int v1) {
    for (int i = v0; i < v1; i++) {
        float s[3] = {0, 0, 0};
        for (int j = r->adj_start[i]; j < r->adj_start[i + 1]; j++) {
            const float *cw = r->corner_weight + (size_t)r->adj[j] * 3;
            s[0] += cw[0]; s[1] += cw[1]; s[2] += cw[2];
        }
        unitize3(s);
        float *o = r->normals + (size_t)i * 3;
        o[0] = s[0]; o[1] = s[1]; o[2] = s[2];
    }
}

/* The linear forms of the interpolated normal along a row (see face_shade). */
static void face_shading(dpt_renderer *r, int f0, int f1) {
    for (int f = f0; f < f1; f++) {
        const face_ray *fr = &r->rays[f];
        const int32_t *nvi = r->nv_of_corner + (size_t)f * 3;
        const float *n0 = r->normals + (size_t)nvi[0] * 3, *n1 = r->normals + (size_t)nvi[1] * 3,
                    *n2 = r->normals + (size_t)nvi[2] * 3;
        face_shade *fs = &r->shades[f];
        for (int d = 0; d < 3; d++) {
            float e1 = n1[d] - n0[d], e2 = n2[d] - n0[d];
            fs->y[d] = fr->m1[1] * n0[d] + fr->m2[1] * e1 + fr->m3[1] * e2;
            fs->z[d] = fr->m1[2] * n0[d] + fr->m2[2] * e1 + fr->m3[2] * e2;
            fs->q[d] = fr->m1[0] * n0[d] + fr->m2[0] * e1 + fr->m3[0] * e2;
            fs->m1[d] = fr->m1[d];
        }
    }
}

/* ---- rasterisation ------------------------------------------------------------------------ */

typedef struct raster_vertex { int64_t x, y; float z; } raster_vertex;

/* floor(a / b) for b > 0, exact, from an estimate a · (1/b) in doubles (|a| < 2^52). */
static inline int64_t floor_div_inv(int64_t a, int64_t b, double inv_b) {
    int64_t q = (int64_t)((double)a * inv_b);
    while (q * b > a) q--;
    while ((q + 1) * b <= a) q++;
    return q;
}

/* floor(a / SUB), ceil(a / SUB) */
static inline int64_t floor_sub(int64_t a) { return a >= 0 ? a >> SUB_BITS : -((-a + SUB - 1) >> SUB_BITS); }
static inline int64_t ceil_sub(int64_t a) { return -floor_sub(-a); }

/* One edge's bound on the sample column i along the rows: inside is C(j) − S·i ≥ 0 with
 * C(j + 1) = C(j) + T; q = floor(C / |S|) and rem = C − q·|S| are stepped row by row. */
typedef struct edge_walk { int64_t q, rem, tq, tr, abs_s, t; double inv_s; int kind; } edge_walk;

static inline void edge_at(edge_walk *e, int64_t c) {
    e->q = floor_div_inv(c, e->abs_s, e->inv_s);
    e->rem = c - e->q * e->abs_s;
}

static inline void edge_step(edge_walk *e) {
    e->q += e->tq;
    e->rem += e->tr;
    if (e->rem >= e->abs_s) {
        e->rem -= e->abs_s;
        e->q++;
    }
}

/* A sample's depth (units of 2^-30) clamped to [0, DEPTH_ONE] before the conversion: a sliver's
 * extrapolated plane can leave the int range, or be NaN (→ DEPTH_ONE: not drawn). The same result
 * as clamping after it wherever that was defined, since the buffer holds at most DEPTH_ONE (the
 * clear value) and a depth of DEPTH_ONE or more never passes the "less" test. */
static inline int32_t depth_sample(float z) {
    z = z < (float)DEPTH_ONE ? z : (float)DEPTH_ONE;
    z = z > 0.0f ? z : 0.0f;
    return (int32_t)z;
}

#ifdef RENDER_AVX512
/* The small-triangle rows of raster_triangle, 16 samples at a time under masks (see there). */
AVX512_FN static void raster_small_avx512(const dpt_renderer *r, const int32_t *e_row, const int32_t *step_x,
                                          const int32_t *step_y, int n, int64_t i0, int64_t j0, int64_t j1,
                                          double z_origin, double zdx, double zdy, float dz, int32_t face, int tid) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i r0 = _mm512_mullo_epi32(iota, _mm512_set1_epi32(step_x[0]));   /* lane · step_x */
    const __m512i r1 = _mm512_mullo_epi32(iota, _mm512_set1_epi32(step_x[1]));
    const __m512i r2 = _mm512_mullo_epi32(iota, _mm512_set1_epi32(step_x[2]));
    const __m512 vdz = _mm512_set1_ps(dz), one = _mm512_set1_ps((float)DEPTH_ONE), zero = _mm512_setzero_ps();
    const __m512i vface = _mm512_set1_epi32(face);
    for (int64_t j = j0; j <= j1; j++) {
        if (r->n_threads > 1 && !owns_row(r, (int)j, tid)) continue;
        int32_t jy = (int32_t)(j - j0);
        int32_t e0 = e_row[0] + jy * step_y[0], e1 = e_row[1] + jy * step_y[1], e2 = e_row[2] + jy * step_y[2];
        float z0 = (float)((z_origin + (double)i0 * zdx + (double)jy * zdy) * DEPTH_ONE);
        const __m512 vz0 = _mm512_set1_ps(z0);
        size_t row = (size_t)j * r->stride + (size_t)i0;
        int32_t *dep = r->depth + row, *fid = r->face_id + row;
        for (int b = 0; b < n; b += 16) {
            __mmask16 m = n - b >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - b)) - 1);
            /* e − (b + lane)·step_x, in int32 as the C code (wrapping is exact modular arithmetic) */
            __m512i a0 = _mm512_sub_epi32(_mm512_set1_epi32(e0 - b * step_x[0]), r0);
            __m512i a1 = _mm512_sub_epi32(_mm512_set1_epi32(e1 - b * step_x[1]), r1);
            __m512i a2 = _mm512_sub_epi32(_mm512_set1_epi32(e2 - b * step_x[2]), r2);
            __m512i any = _mm512_or_si512(_mm512_or_si512(a0, a1), a2);
            __mmask16 inside = _mm512_mask_cmpge_epi32_mask(m, any, _mm512_setzero_si512());
            if (!inside) continue;
            __m512 fi = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_set1_epi32(b), iota));
            __m512 z = _mm512_add_ps(vz0, _mm512_mul_ps(fi, vdz));
            z = _mm512_min_ps(z, one);    /* z < 1 ? z : 1 (NaN → 1), as depth_sample */
            z = _mm512_max_ps(z, zero);   /* z > 0 ? z : 0 */
            __m512i zi = _mm512_cvttps_epi32(z);
            __m512i d = _mm512_maskz_loadu_epi32(inside, dep + b);
            __mmask16 nearer = _mm512_mask_cmplt_epi32_mask(inside, zi, d);
            _mm512_mask_storeu_epi32(dep + b, nearer, zi);
            _mm512_mask_storeu_epi32(fid + b, nearer, vface);
        }
    }
}

/* One span of the large-triangle path: n samples from dep/fid, depth z0 + i·dz. */
AVX512_FN static void raster_span_avx512(int32_t *dep, int32_t *fid, int n, float z0, float dz, int32_t face) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 vz0 = _mm512_set1_ps(z0), vdz = _mm512_set1_ps(dz), one = _mm512_set1_ps((float)DEPTH_ONE);
    const __m512 zero = _mm512_setzero_ps();
    const __m512i vface = _mm512_set1_epi32(face);
    for (int b = 0; b < n; b += 16) {
        __mmask16 m = n - b >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - b)) - 1);
        __m512 fi = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_set1_epi32(b), iota));
        __m512 z = _mm512_max_ps(_mm512_min_ps(_mm512_add_ps(vz0, _mm512_mul_ps(fi, vdz)), one), zero);
        __m512i zi = _mm512_cvttps_epi32(z);
        __m512i d = _mm512_maskz_loadu_epi32(m, dep + b);
        __mmask16 nearer = _mm512_mask_cmplt_epi32_mask(m, zi, d);
        _mm512_mask_storeu_epi32(dep + b, nearer, zi);
        _mm512_mask_storeu_epi32(fid + b, nearer, vface);
    }
}
#endif

/* Coverage by sample centres, top-left rule, depth "less". */
/* cull: skip the triangle when every depth tile it overlaps is already nearer than all of it
 * (tile_far, filled after the first pass). */
/* (The corners come by pointer: structs passed by value went through the stack, where reading
 * them back in 16-byte pieces defeated store forwarding, a stall per triangle.) */
HOT_CLONES static void raster_triangle(dpt_renderer *r, const raster_vertex *pa, const raster_vertex *pb,
                                       const raster_vertex *pc, int32_t face, int tid, int cull, int *restrict box) {
    raster_vertex a = *pa, b = *pb, c = *pc;
    int64_t area = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
    if (area == 0) return;
    if (area < 0) {
        raster_vertex t = b; b = c; c = t;
    }
    int64_t min_y = a.y < b.y ? (a.y < c.y ? a.y : c.y) : (b.y < c.y ? b.y : c.y);
    int64_t max_y = a.y > b.y ? (a.y > c.y ? a.y : c.y) : (b.y > c.y ? b.y : c.y);
    int64_t min_x = a.x < b.x ? (a.x < c.x ? a.x : c.x) : (b.x < c.x ? b.x : c.x);
    int64_t max_x = a.x > b.x ? (a.x > c.x ? a.x : c.x) : (b.x > c.x ? b.x : c.x);
    /* sample j has its centre at SUB·j + SUB/2 */
    int64_t j0 = ceil_sub(min_y - SUB / 2), j1 = floor_sub(max_y - SUB / 2);
    int64_t i0 = ceil_sub(min_x - SUB / 2), i1 = floor_sub(max_x - SUB / 2);
    if (j0 < 0) j0 = 0;
    if (j1 > r->sh - 1) j1 = r->sh - 1;
    if (i0 < 0) i0 = 0;
    if (i1 > r->sw - 1) i1 = r->sw - 1;
    if (j0 > j1 || i0 > i1) return;
    int chunk = r->k * BAND_ROWS;
    if (r->n_threads > 1) {   /* first row of a band of this thread */
        int64_t band = j0 / chunk, skip = ((tid - band) % r->n_threads + r->n_threads) % r->n_threads;
        if (skip) j0 = (band + skip) * chunk;
        if (j0 > j1) return;
    }
    if (cull) {
        float zmin = a.z < b.z ? (a.z < c.z ? a.z : c.z) : (b.z < c.z ? b.z : c.z);
        /* a margin for the float rounding of the per-sample depth */
        int64_t znear = (int64_t)((double)zmin * DEPTH_ONE) - 256;
        int tw = r->tiles_w, hidden = 1;
        for (int64_t ty = j0 / TILE; ty <= j1 / TILE && hidden; ty++) {
            if (r->n_threads > 1 && !owns_row(r, (int)(ty * TILE), tid)) continue;
            for (int64_t tx = i0 / TILE; tx <= i1 / TILE; tx++)
                if (r->tile_far[ty * tw + tx] > znear) {
                    hidden = 0;
                    break;
                }
        }
        if (hidden) return;
    }
    if (i0 < box[0]) box[0] = (int)i0;
    if (i1 > box[1]) box[1] = (int)i1;
    if (j0 < box[2]) box[2] = (int)j0;
    if (j1 > box[3]) box[3] = (int)j1;

    /* depth plane in samples */
    double ax = a.x / (double)SUB, ay = a.y / (double)SUB;
    double bx = b.x / (double)SUB - ax, by = b.y / (double)SUB - ay;
    double cx = c.x / (double)SUB - ax, cy = c.y / (double)SUB - ay;
    double inv_det = 1.0 / (bx * cy - by * cx);
    double zb = (double)b.z - a.z, zc = (double)c.z - a.z;
    double zdx = (zb * cy - zc * by) * inv_det, zdy = (zc * bx - zb * cx) * inv_det;
    /* z at (column 0, row j0) centre; then + zdx per column, + zdy per row */
    double z_origin = a.z + (0.5 - ax) * zdx + ((double)j0 + 0.5 - ay) * zdy;

    const raster_vertex *ev[3][2] = {{&a, &b}, {&b, &c}, {&c, &a}};
    if (max_x - min_x < SMALL * SUB && max_y - min_y < SMALL * SUB) {
        /* Small triangle (most of a head mesh): edge functions in int32 over its bounding box,
           relative to the sample (i0, j0); |E| < 2·(SMALL·SUB)² there. Branch-free rows. */
        int32_t e_row[3], step_x[3], step_y[3];
        int64_t px0 = SUB * i0 + SUB / 2, py0 = SUB * j0 + SUB / 2;
        for (int e = 0; e < 3; e++) {
            int64_t dx = ev[e][1]->x - ev[e][0]->x, dy = ev[e][1]->y - ev[e][0]->y;
            int64_t bias = (dy < 0 || (dy == 0 && dx > 0)) ? 0 : -1;
            e_row[e] = (int32_t)(dx * (py0 - ev[e][0]->y) - dy * (px0 - ev[e][0]->x) + bias);
            step_x[e] = (int32_t)(dy * SUB);
            step_y[e] = (int32_t)(dx * SUB);
        }
        int n = (int)(i1 - i0 + 1);
        float dz = (float)(zdx * DEPTH_ONE);
#ifdef RENDER_AVX512
        if (r->avx512) {
            raster_small_avx512(r, e_row, step_x, step_y, n, i0, j0, j1, z_origin, zdx, zdy, dz, face, tid);
            return;
        }
#endif
        int32_t ramp[3][SMALL + 1];   /* i · step_x: SSE2 has no 32-bit vector multiply */
        for (int e = 0; e < 3; e++) {
            ramp[e][0] = 0;
            for (int i = 1; i < n; i++) ramp[e][i] = ramp[e][i - 1] + step_x[e];
        }
        for (int64_t j = j0; j <= j1; j++) {
            if (r->n_threads > 1 && !owns_row(r, (int)j, tid)) continue;
            int32_t jy = (int32_t)(j - j0);
            int32_t e0 = e_row[0] + jy * step_y[0], e1 = e_row[1] + jy * step_y[1], e2 = e_row[2] + jy * step_y[2];
            float z0 = (float)((z_origin + (double)i0 * zdx + (double)jy * zdy) * DEPTH_ONE);
            size_t row = (size_t)j * r->stride + (size_t)i0;
            int32_t *restrict dep = r->depth + row;
            int32_t *restrict fid = r->face_id + row;
            for (int i = 0; i < n; i++) {
                int32_t inside = ~((e0 - ramp[0][i]) | (e1 - ramp[1][i]) | (e2 - ramp[2][i])) >> 31;
                int32_t z = depth_sample(z0 + (float)i * dz);
                int32_t nearer = -(int32_t)(z < dep[i]) & inside;
                dep[i] = (dep[i] & ~nearer) | (z & nearer);
                fid[i] = (fid[i] & ~nearer) | (face & nearer);
            }
        }
        return;
    }

    /* edges a→b, b→c, c→a: E(p) = dx·(py − y0) − dy·(px − x0) ≥ 0 inside (> 0 unless top-left);
       at the centre (SUB·i + SUB/2, SUB·j + SUB/2): E = C(j) − S·i with S = dy·SUB, T = dx·SUB */
    edge_walk ew[3];
    int64_t c0[3], c_cur[3];   /* C at row j0 and at the current row */
    for (int e = 0; e < 3; e++) {
        int64_t dx = ev[e][1]->x - ev[e][0]->x, dy = ev[e][1]->y - ev[e][0]->y;
        int64_t bias = (dy < 0 || (dy == 0 && dx > 0)) ? 0 : -1;
        const raster_vertex *p0 = ev[e][0];
        c0[e] = c_cur[e] = dx * (SUB * j0 + SUB / 2 - p0->y) - dy * (SUB / 2 - p0->x) + bias;
        ew[e].t = dx * SUB;
        int64_t s = dy * SUB;
        ew[e].kind = s > 0 ? 1 : (s < 0 ? -1 : 0);   /* 1: i ≤ C/S, −1: i ≥ −C/|S|, 0: C ≥ 0 */
        ew[e].abs_s = s < 0 ? -s : s;
        if (s != 0) {
            ew[e].inv_s = 1.0 / (double)ew[e].abs_s;
            ew[e].tq = floor_div_inv(ew[e].t, ew[e].abs_s, ew[e].inv_s);
            ew[e].tr = ew[e].t - ew[e].tq * ew[e].abs_s;
            edge_at(&ew[e], c0[e]);
        }
    }
    int stepped = 1;   /* the walks are at row j */
    for (int64_t j = j0; j <= j1; j++) {
        if (r->n_threads > 1 && !owns_row(r, (int)j, tid)) {
            j = (j / chunk + 1) * chunk - 1;   /* next band */
            stepped = 0;
            continue;
        }
        if (!stepped) {
            for (int e = 0; e < 3; e++) {
                c_cur[e] = c0[e] + ew[e].t * (j - j0);
                if (ew[e].kind) edge_at(&ew[e], c_cur[e]);
            }
            stepped = 1;
        }
        int64_t lo = i0, hi = i1;
        for (int e = 0; e < 3; e++) {
            if (ew[e].kind > 0) {
                if (ew[e].q < hi) hi = ew[e].q;
            } else if (ew[e].kind < 0) {
                if (-ew[e].q > lo) lo = -ew[e].q;
            } else if (c_cur[e] < 0) {
                hi = lo - 1;
            }
        }
        for (int e = 0; e < 3; e++) {
            if (ew[e].kind) edge_step(&ew[e]);
            else c_cur[e] += ew[e].t;
        }
        if (lo > hi) continue;
        /* depth in units of 2^-30; window z lies in [0, 1.0034] (beyond zfar: > 1) */
        float z0 = (float)((z_origin + (double)lo * zdx + (double)(j - j0) * zdy) * DEPTH_ONE);
        float dz = (float)(zdx * DEPTH_ONE);
        size_t row = (size_t)j * r->stride;
        int32_t *restrict dep = r->depth + row + lo;
        int32_t *restrict fid = r->face_id + row + lo;
        int n = (int)(hi - lo + 1);
#ifdef RENDER_AVX512
        if (r->avx512) {
            raster_span_avx512(dep, fid, n, z0, dz, face);
            continue;
        }
#endif
        for (int i = 0; i < n; i++) {   /* branch-free: vectorised */
            int32_t z = depth_sample(z0 + (float)i * dz);
            int32_t nearer = -(int32_t)(z < dep[i]);
            dep[i] = (dep[i] & ~nearer) | (z & nearer);
            fid[i] = (fid[i] & ~nearer) | (face & nearer);
        }
    }
}

/* Fixed point of a clipped vertex's screen coordinate. Clipping leaves it inside the guard band
 * (|s| ≤ GUARD samples) up to rounding, but far-off vertices (coordinates near the float range)
 * lose that precision in the interpolation: clamped to twice the band (NaN to its edge), so that
 * the rasteriser's int64 products cannot overflow. A no-op for every vertex within the band. */
static int64_t clipped_fixed(double s) {
    const double lim = 2.0 * GUARD * SUB;
    double f = s * SUB;
    if (!(f > -lim)) f = -lim;
    if (f > lim) f = lim;
    return llrint(f);
}

static raster_vertex to_raster(const dpt_renderer *r, const double *clip) {
    raster_vertex v;
    double w = clip[3];
    v.x = clipped_fixed((clip[0] / w * 0.5 + 0.5) * r->sw);
    v.y = clipped_fixed((0.5 - clip[1] / w * 0.5) * r->sh);
    v.z = (float)(clip[2] / w * 0.5 + 0.5);
    return v;
}

/* Sutherland–Hodgman against the near plane and the guard band, then a fan. */
static void raster_clipped(dpt_renderer *r, const int32_t *tri, int32_t face, int tid, int *box) {
    double buf[2][12][4];
    int n = 3;
    for (int i = 0; i < 3; i++) clip_position(r, tri[i], buf[0][i]);
    int cur = 0;
    for (int plane = 0; plane < 5 && n >= 3; plane++) {
        double (*in)[4] = buf[cur], (*out)[4] = buf[cur ^ 1];
        int m = 0;
        for (int i = 0; i < n; i++) {
            const double *p = in[i], *q = in[(i + 1) % n];
            double dp, dq;   /* signed distance, ≥ 0 inside */
            switch (plane) {
            case 0: dp = p[2] + p[3]; dq = q[2] + q[3]; break;
            case 1: dp = r->guard_x * p[3] - p[0]; dq = r->guard_x * q[3] - q[0]; break;
            case 2: dp = r->guard_x * p[3] + p[0]; dq = r->guard_x * q[3] + q[0]; break;
            case 3: dp = r->guard_y * p[3] - p[1]; dq = r->guard_y * q[3] - q[1]; break;
            default: dp = r->guard_y * p[3] + p[1]; dq = r->guard_y * q[3] + q[1]; break;
            }
            if (dp >= 0) memcpy(out[m++], p, sizeof out[0]);
            if ((dp >= 0) != (dq >= 0)) {
                double t = dp / (dp - dq);
                for (int d = 0; d < 4; d++) out[m][d] = p[d] + t * (q[d] - p[d]);
                m++;
            }
        }
        n = m;
        cur ^= 1;
    }
    if (n < 3) return;
    for (int i = 0; i < n; i++)
        if (!(buf[cur][i][3] > 0)) return; /* rounding left a vertex at or behind the eye */
    raster_vertex v0 = to_raster(r, buf[cur][0]);
    for (int i = 1; i + 1 < n; i++) {
        raster_vertex v1 = to_raster(r, buf[cur][i]), v2 = to_raster(r, buf[cur][i + 1]);
        raster_triangle(r, &v0, &v1, &v2, face, tid, 0, box);
    }
}

/* Farthest depth of each TILE × TILE block of the rows this thread owns; blocks outside the
 * samples drawn so far (box) are clear: DEPTH_ONE. */
HOT_CLONES static void tiles_far(dpt_renderer *r, int tid, const int *box) {
    int32_t *colmax = (int32_t *)(r->scratch + (size_t)tid * SCRATCH_ROWS * r->sw);
    int tx0 = box[0] / TILE, tx1 = box[1] / TILE, ty0 = box[2] / TILE, ty1 = box[3] / TILE;
    for (int ty = 0; ty < r->tiles_h; ty++) {
        int j0 = ty * TILE, j1 = j0 + TILE < r->sh ? j0 + TILE : r->sh;
        if (r->n_threads > 1 && !owns_row(r, j0, tid)) continue;
        int32_t *far = r->tile_far + (size_t)ty * r->tiles_w;
        if (box[0] > box[1] || ty < ty0 || ty > ty1) {
            for (int tx = 0; tx < r->tiles_w; tx++) far[tx] = DEPTH_ONE;
            continue;
        }
        int c0 = tx0 * TILE, c1 = (tx1 + 1) * TILE < r->sw ? (tx1 + 1) * TILE : r->sw;
        memcpy(colmax + c0, r->depth + (size_t)j0 * r->stride + c0, (size_t)(c1 - c0) * sizeof(int32_t));
        for (int j = j0 + 1; j < j1; j++) {
            const int32_t *d = r->depth + (size_t)j * r->stride;
            for (int i = c0; i < c1; i++) colmax[i] = colmax[i] > d[i] ? colmax[i] : d[i];
        }
        for (int tx = 0; tx < r->tiles_w; tx++) {
            if (tx < tx0 || tx > tx1) {
                far[tx] = DEPTH_ONE;
                continue;
            }
            int i0 = tx * TILE, i1 = i0 + TILE < r->sw ? i0 + TILE : r->sw;
            int32_t m = colmax[i0];
            for (int i = i0 + 1; i < i1; i++) m = m > colmax[i] ? m : colmax[i];
            far[tx] = m;
        }
    }
}

/* Two passes: first the triangles whose screen winding is r->first_winding (the side facing
 * the camera, learnt from the last frame), then the others, skipping those hidden behind the
 * first pass's depth tile by tile: the back of a head costs a few compares per triangle. The
 * picture is the same in any order (depth "less"), except that of two surfaces at exactly the
 * same depth the first drawn stays. */
static inline void raster_face(dpt_renderer *r, int32_t f, int tid, int pass, int *box) {
    const int32_t *t = r->faces + (size_t)f * 3;
    const proj_vertex *p[3] = {&r->proj[t[0]], &r->proj[t[1]], &r->proj[t[2]]};
    raster_vertex a = {p[0]->x, p[0]->y, p[0]->z}, b = {p[1]->x, p[1]->y, p[1]->z}, c = {p[2]->x, p[2]->y, p[2]->z};
    raster_triangle(r, &a, &b, &c, f, tid, pass, box);
}

static void raster_all(dpt_renderer *r, int tid) {
    int box[4] = {r->sw, -1, r->sh, -1};
    int32_t *later = r->later + (size_t)tid * r->n_faces;   /* the second pass's faces, in order */
    int n_later = 0;
    for (int f = 0; f < r->n_faces; f++) {
        const int32_t *t = r->faces + (size_t)f * 3;
        const proj_vertex *p[3] = {&r->proj[t[0]], &r->proj[t[1]], &r->proj[t[2]]};
        int any = p[0]->outcode | p[1]->outcode | p[2]->outcode;
        if (!any) {
            int64_t area = (int64_t)(p[1]->x - p[0]->x) * (p[2]->y - p[0]->y) -
                           (int64_t)(p[1]->y - p[0]->y) * (p[2]->x - p[0]->x);
            if ((area > 0) != (r->first_winding > 0)) later[n_later++] = f;
            else raster_face(r, f, tid, 0, box);
        } else if (!(p[0]->outcode & p[1]->outcode & p[2]->outcode)) {
            raster_clipped(r, t, f, tid, box);
        }
    }
    tiles_far(r, tid, box);
    for (int k = 0; k < n_later; k++) raster_face(r, later[k], tid, 1, box);
    memcpy(r->drawn[tid], box, sizeof box);
}

/* ---- shading ------------------------------------------------------------------------------ */

/* Bilinear texel (GL_LINEAR, GL_REPEAT) at (u, v); the texture's row 0 is its top, and pyrender
 * uploads it flipped, so v = 0 is the bottom row. Values 0 … 1, before srgb_to_linear. */
static void texture_bilinear(const dpt_image *tex, float u, float v, float *rgb) {
    float x = u * (float)tex->width - 0.5f, y = (1.0f - v) * (float)tex->height - 0.5f;
    float fx = floorf(x), fy = floorf(y);
    float ax = x - fx, ay = y - fy;
    long ix = (long)fx, iy = (long)fy;
    long x0 = ix % tex->width, y0 = iy % tex->height;
    if (x0 < 0) x0 += tex->width;
    if (y0 < 0) y0 += tex->height;
    long x1 = x0 + 1 == tex->width ? 0 : x0 + 1, y1 = y0 + 1 == tex->height ? 0 : y0 + 1;
    const uint8_t *p00 = tex->rgb + ((size_t)y0 * tex->width + x0) * 3;
    const uint8_t *p01 = tex->rgb + ((size_t)y0 * tex->width + x1) * 3;
    const uint8_t *p10 = tex->rgb + ((size_t)y1 * tex->width + x0) * 3;
    const uint8_t *p11 = tex->rgb + ((size_t)y1 * tex->width + x1) * 3;
    for (int ch = 0; ch < 3; ch++) {
        float top = p00[ch] + ax * (float)(p01[ch] - p00[ch]);
        float bot = p10[ch] + ax * (float)(p11[ch] - p10[ch]);
        rgb[ch] = (top + ay * (bot - top)) * (1.0f / 255.0f);
    }
}

/* mesh.frag's compute_brdf summed over the lights, plus base · ambient; linear colour. */
static void shade_pbr(const dpt_renderer *r, const float *n, const float *v, const float *base,
                      const float *c_diff, const float *f0, float *color) {
    const material *m = &r->mat;
    float nv = fabsf(dot3(n, v));
    nv = nv < 0.001f ? 0.001f : (nv > 1 ? 1 : nv);
    for (int ch = 0; ch < 3; ch++) color[ch] = base[ch] * AMBIENT;
    for (int li = 0; li < r->n_lights; li++) {
        const float *l = r->lights[li].l;
        float h[3] = {l[0] + v[0], l[1] + v[1], l[2] + v[2]};
        unitize3(h);
        float nl = dot3(n, l);
        nl = nl < 0.001f ? 0.001f : (nl > 1 ? 1 : nl);
        float nh = dot3(n, h), vh = dot3(v, h);
        nh = nh < 0 ? 0 : (nh > 1 ? 1 : nh);
        vh = vh < 0 ? 0 : (vh > 1 ? 1 : vh);
        float g1 = nv / (nv * (1.0f - m->k) + m->k), g2 = nl / (nl * (1.0f - m->k) + m->k);
        float denom = nh * nh * (m->a2 - 1.0f) + 1.0f;
        float D = m->a2 / (PI_F * denom * denom);
        float s = 1.0f - vh, s2 = s * s, s5 = s2 * s2 * s;
        float gd = g1 * g2 * D / (4.0f * nl * nv + 0.001f);
        for (int ch = 0; ch < 3; ch++) {
            float F = f0[ch] + (1.0f - f0[ch]) * s5;
            float diffuse = (1.0f - F) * c_diff[ch] * (1.0f / PI_F);
            color[ch] += nl * r->lights[li].radiance[ch] * (diffuse + F * gd);
        }
    }
}

/* Grey material, lights of grey colour: mesh.frag's colour for n samples of one row, in a loop
 * without branches or gathers that the compiler vectorises. nx/ny/nz: interpolated normals (not
 * unit), dx: eye-ray x of each sample, dy: the row's; out: linear colour. */
static inline __attribute__((always_inline)) void shade_grey_body(const dpt_renderer *r, int n, const float *restrict nx,
                                                                   const float *restrict ny, const float *restrict nz,
                                                                   const float *restrict dx, float dy, float *restrict out) {
    const material *m = &r->mat;
    const float base = m->base[0], c_diff = m->c_diff[0], f0 = m->f0[0], k = m->k, a2 = m->a2;
    for (int p = 0; p < n; p++) out[p] = base * AMBIENT;
    for (int li = 0; li < r->n_lights; li++) {
        const float lx = r->lights[li].l[0], ly = r->lights[li].l[1], lz = r->lights[li].l[2];
        const float rad = r->lights[li].radiance[0];
        for (int p = 0; p < n; p++) {
            float n2 = nx[p] * nx[p] + ny[p] * ny[p] + nz[p] * nz[p];
            float in = n2 > 1e-30f ? 1.0f / sqrtf(n2) : 0.0f;
            float ux = nx[p] * in, uy = ny[p] * in, uz = nz[p] * in;
            float iv = 1.0f / sqrtf(dx[p] * dx[p] + dy * dy + 1.0f);
            float vx = -dx[p] * iv, vy = -dy * iv, vz = iv;   /* towards the camera */
            float nv = fabsf(ux * vx + uy * vy + uz * vz);
            nv = nv < 0.001f ? 0.001f : (nv > 1.0f ? 1.0f : nv);
            float hx = lx + vx, hy = ly + vy, hz = lz + vz;
            float h2 = hx * hx + hy * hy + hz * hz;
            float ih = h2 > 1e-30f ? 1.0f / sqrtf(h2) : 0.0f;
            float nl = ux * lx + uy * ly + uz * lz;
            nl = nl < 0.001f ? 0.001f : (nl > 1.0f ? 1.0f : nl);
            float nh = (ux * hx + uy * hy + uz * hz) * ih, vh = (vx * hx + vy * hy + vz * hz) * ih;
            nh = nh < 0.0f ? 0.0f : (nh > 1.0f ? 1.0f : nh);
            vh = vh < 0.0f ? 0.0f : (vh > 1.0f ? 1.0f : vh);
            /* G·D/(4·nl·nv + 0.001) as one fraction */
            float den = nh * nh * (a2 - 1.0f) + 1.0f;
            float s = 1.0f - vh, s2 = s * s, s5 = s2 * s2 * s;
            float F = f0 + (1.0f - f0) * s5;
            float spec = F * nv * nl * a2 /
                         ((nv * (1.0f - k) + k) * (nl * (1.0f - k) + k) * (PI_F * den * den) * (4.0f * nl * nv + 0.001f));
            out[p] += nl * rad * ((1.0f - F) * c_diff * (1.0f / PI_F) + spec);
        }
    }
}

HOT_CLONES static void shade_grey(const dpt_renderer *r, int n, const float *restrict nx, const float *restrict ny,
                                  const float *restrict nz, const float *restrict dx, float dy, float *restrict out) {
    shade_grey_body(r, n, nx, ny, nz, dx, dy, out);
}

#ifdef RENDER_AVX512
AVX512_FN static void shade_grey_avx512(const dpt_renderer *r, int n, const float *restrict nx, const float *restrict ny,
                                        const float *restrict nz, const float *restrict dx, float dy, float *restrict out) {
    shade_grey_body(r, n, nx, ny, nz, dx, dy, out);
}
#endif

#ifdef RENDER_AVX512
/* shade_rows for one row [c0, c1] of the grey material (the rest of the row is done): the runs
 * of one face found 16 face ids at a time, the normals' linear forms written under masks,
 * shade_grey, the 8-bit levels through the gamma table by gathers, and the row written as RGB
 * bytes with the background between the visible samples (expand-load, byte permutation). The
 * same operations as the C code in shade_rows and gamma_level. */
AVX512_FN static void shade_row_grey_avx512(const dpt_renderer *r, const int32_t *fid, int c0, int c1, float dy,
                                            uint8_t *dst, float *sc, int64_t *facing) {
    const int sw = r->sw;
    const float *ray_x = r->ray_x;
    const face_shade *shades = r->shades;
    float *nx = sc, *ny = sc + sw, *nz = sc + 2 * (size_t)sw, *dxs = sc + 3 * (size_t)sw, *lin = sc + 4 * (size_t)sw;
    int32_t *lv = (int32_t *)(sc + 5 * (size_t)sw);
    int n = 0;
    for (int i = c0; i <= c1;) {
        int32_t f = fid[i];
        const __m512i vf = _mm512_set1_epi32(f);
        int i_end = i + 1;
        for (;;) {   /* the first sample after i whose face differs, or c1 + 1 */
            int left = c1 + 1 - i_end;
            if (left <= 0) break;
            __mmask16 valid = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __m512i v = _mm512_maskz_loadu_epi32(valid, fid + i_end);
            unsigned ne = (unsigned)_mm512_mask_cmpneq_epi32_mask(valid, v, vf) | (unsigned)(__mmask16)~valid;
            if (ne) {
                i_end += (int)_tzcnt_u32(ne);
                break;
            }
            i_end += 16;
        }
        if (f < 0) {
            i = i_end;
            continue;
        }
        const face_shade *fs = &shades[f];
        float mid = ray_x[(i + i_end - 1) / 2];
        int back = fs->m1[0] * mid + fs->m1[1] * dy - fs->m1[2] < 0;
        float sgn = back ? -1.0f : 1.0f;
        facing[back] += i_end - i;
        float P[3], Q[3];
        for (int d = 0; d < 3; d++) {
            P[d] = sgn * (dy * fs->y[d] - fs->z[d]);
            Q[d] = sgn * fs->q[d];
        }
        const __m512 p0 = _mm512_set1_ps(P[0]), p1 = _mm512_set1_ps(P[1]), p2 = _mm512_set1_ps(P[2]);
        const __m512 q0 = _mm512_set1_ps(Q[0]), q1 = _mm512_set1_ps(Q[1]), q2 = _mm512_set1_ps(Q[2]);
        int n_run = i_end - i;
        for (int t = 0; t < n_run; t += 16) {
            __mmask16 m = n_run - t >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n_run - t)) - 1);
            __m512 dx = _mm512_maskz_loadu_ps(m, ray_x + i + t);
            _mm512_mask_storeu_ps(nx + n + t, m, _mm512_add_ps(p0, _mm512_mul_ps(q0, dx)));
            _mm512_mask_storeu_ps(ny + n + t, m, _mm512_add_ps(p1, _mm512_mul_ps(q1, dx)));
            _mm512_mask_storeu_ps(nz + n + t, m, _mm512_add_ps(p2, _mm512_mul_ps(q2, dx)));
            _mm512_mask_storeu_ps(dxs + n + t, m, dx);
        }
        n += n_run;
        i = i_end;
    }
    shade_grey_avx512(r, n, nx, ny, nz, dxs, dy, lin);
    /* gamma_level */
    const __m512 lo = _mm512_set1_ps(9.5367431640625e-07f), onef = _mm512_set1_ps(1.0f);
    const __m512i base = _mm512_set1_epi32(GAMMA_EXP_MIN << 8), one = _mm512_set1_epi32(1);
    const __m512i low = _mm512_set1_epi32(0x7fff), byte = _mm512_set1_epi32(0xff);
    for (int p = 0; p < n; p += 16) {
        __mmask16 m = n - p >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - p)) - 1);
        __m512 c = _mm512_maskz_loadu_ps(m, lin + p);
        __mmask16 top = _mm512_mask_cmp_ps_mask(m, c, onef, _CMP_GE_OQ);
        __mmask16 in = _mm512_mask_cmp_ps_mask(m, c, lo, _CMP_GE_OQ) & (__mmask16)~top;
        __m512i bits = _mm512_castps_si512(c);
        __m512i idx = _mm512_sub_epi32(_mm512_srli_epi32(bits, 15), base);
        __m512i e = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), in, idx, gamma_packed, 4);
        __m512i level = _mm512_and_si512(e, byte);
        __mmask16 up = _mm512_mask_cmpge_epi32_mask(in, _mm512_and_si512(bits, low), _mm512_srli_epi32(e, 8));
        level = _mm512_mask_add_epi32(level, up, level, one);
        level = _mm512_mask_mov_epi32(level, top, _mm512_set1_epi32(255));
        _mm512_mask_storeu_epi32(lv + p, m, level);
    }
    /* the row's bytes: visible samples take the next level, the others the background */
    const __m512i bgv = _mm512_set1_epi32(r->black_bg ? 0 : 255);
    const __m512i rgb3 = _mm512_set_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 14, 14, 14,
                                         13, 13, 13, 12, 12, 12, 11, 11, 11, 10, 10, 10, 9, 9, 9, 8, 8, 8, 7, 7, 7,
                                         6, 6, 6, 5, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1, 1, 0, 0, 0);
    int k = 0;
    for (int i = c0; i <= c1; i += 16) {
        int left = c1 + 1 - i;
        __mmask16 valid = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512i f = _mm512_maskz_loadu_epi32(valid, fid + i);
        __mmask16 vis = _mm512_mask_cmpge_epi32_mask(valid, f, _mm512_setzero_si512());
        __m512i L = _mm512_mask_expandloadu_epi32(bgv, vis, lv + k);
        k += _mm_popcnt_u32(vis);
        __m512i bytes = _mm512_castsi128_si512(_mm512_cvtepi32_epi8(L));
        __m512i out = _mm512_permutexvar_epi8(rgb3, bytes);
        __mmask64 bm = left >= 16 ? (__mmask64)0xffffffffffffULL : (__mmask64)((1ULL << (3 * left)) - 1);
        _mm512_mask_storeu_epi8(dst + 3 * (size_t)i, bm, out);
    }
}
#endif

/* Pass 2 over the rows this thread owns: background, or for each visible sample its face's
 * perspective-correct barycentrics, the interpolated normal (and uv), then the colour. */
static void shade_rows(dpt_renderer *r, int tid) {
    /* locals: the byte stores below may alias anything, so nothing is re-read through r */
    const int sw = r->sw, sh = r->sh, textured = r->texture != NULL, grey = r->grey;
    const float *restrict ray_x = r->ray_x;
    const face_ray *restrict rays = r->rays;
    const face_shade *restrict shades = r->shades;
    const float *restrict uv_of_corner = r->uv_of_corner;
    const uint8_t bg = r->black_bg ? 0 : 255;
    uint8_t *dst_base = r->k > 1 ? r->samples : r->out;
    float *sc = r->scratch + (size_t)tid * SCRATCH_ROWS * sw;
    float *restrict nx = sc, *restrict ny = sc + sw, *restrict nz = sc + 2 * (size_t)sw;
    float *restrict dxs = sc + 3 * (size_t)sw, *restrict lin = sc + 4 * (size_t)sw;
    float *restrict tu = sc + 5 * (size_t)sw, *restrict tv = sc + 6 * (size_t)sw;
    int32_t *restrict col = (int32_t *)(sc + 7 * (size_t)sw);
    int64_t facing[2] = {0, 0};   /* visible samples with den > 0 (screen area < 0), den < 0 */
    const int *box = r->drawn[tid];   /* outside: background */
    const int c0 = box[0], c1 = box[1];
    for (int j = 0; j < sh; j++) {
        if (r->n_threads > 1 && !owns_row(r, j, tid)) continue;
        size_t row = (size_t)j * r->stride;
        const int32_t *fid = r->face_id + row;
        uint8_t *dst = dst_base + (size_t)j * sw * 3;
        if (c0 > c1 || j < box[2] || j > box[3]) {
            memset(dst, bg, 3 * (size_t)sw);
            continue;
        }
        memset(dst, bg, 3 * (size_t)c0);
        memset(dst + 3 * (size_t)(c1 + 1), bg, 3 * (size_t)(sw - 1 - c1));
        const float dy = r->ray_y[j];
#ifdef RENDER_AVX512
        if (grey && r->avx512) {
            shade_row_grey_avx512(r, fid, c0, c1, dy, dst, sc, facing);
            continue;
        }
#endif
        int n = 0;
        for (int i = c0; i <= c1;) {
            int32_t f = fid[i];
            int i_end = i + 1;
            while (i_end <= c1 && fid[i_end] == f) i_end++;
            if (f < 0) {
                memset(dst + 3 * (size_t)i, bg, 3 * (size_t)(i_end - i));
                i = i_end;
                continue;
            }
            /* Along the row the eye ray is D = (dx, dy, −1): den = D·m1, D·m2 and D·m3 are linear
               in dx, and so is den·(b0·n0 + b1·n1 + b2·n2) = P + Q·dx, the normal up to a factor
               whose sign is den's (constant over a face seen from one side) */
            const face_shade *fs = &shades[f];
            float mid = ray_x[(i + i_end - 1) / 2];
            int back = fs->m1[0] * mid + fs->m1[1] * dy - fs->m1[2] < 0;
            float sgn = back ? -1.0f : 1.0f;
            facing[back] += i_end - i;
            float P[3], Q[3];
            for (int d = 0; d < 3; d++) {
                P[d] = sgn * (dy * fs->y[d] - fs->z[d]);
                Q[d] = sgn * fs->q[d];
            }
            int n_run = i_end - i;
            for (int t = 0; t < n_run; t++) {
                float dx = ray_x[i + t];
                nx[n + t] = P[0] + Q[0] * dx;
                ny[n + t] = P[1] + Q[1] * dx;
                nz[n + t] = P[2] + Q[2] * dx;
                dxs[n + t] = dx;
                col[n + t] = i + t;
            }
            if (textured) {
                const face_ray *fr = &rays[f];
                float a1 = dy * fr->m1[1] - fr->m1[2], a2 = dy * fr->m2[1] - fr->m2[2], a3 = dy * fr->m3[1] - fr->m3[2];
                float q1 = fr->m1[0], q2 = fr->m2[0], q3 = fr->m3[0];
                const float *uv = uv_of_corner + (size_t)f * 6;
                for (int t = 0; t < n_run; t++) {
                    float dx = dxs[n + t];
                    float den = a1 + q1 * dx, bu = a2 + q2 * dx, bv = a3 + q3 * dx;
                    float inv = den != 0 ? 1.0f / den : 0.0f;
                    bu *= inv;
                    bv *= inv;
                    float b0 = 1.0f - bu - bv;
                    tu[n + t] = b0 * uv[0] + bu * uv[2] + bv * uv[4];
                    tv[n + t] = b0 * uv[1] + bu * uv[3] + bv * uv[5];
                }
            }
            n += n_run;
            i = i_end;
        }
        if (grey) {
            shade_grey(r, n, nx, ny, nz, dxs, dy, lin);
            for (int p = 0; p < n; p++) {
                uint8_t level = (uint8_t)gamma_level(lin[p]);
                uint8_t *o = dst + 3 * (size_t)col[p];
                o[0] = o[1] = o[2] = level;
            }
            continue;
        }
        for (int p = 0; p < n; p++) {
            float nrm[3] = {nx[p], ny[p], nz[p]}, v[3] = {-dxs[p], -dy, 1.0f};
            unitize3(nrm);
            unitize3(v);
            float base[3], c_diff[3], f0[3], color[3];
            if (textured) {
                float texel[3];
                texture_bilinear(r->texture, tu[p], tv[p], texel);
                for (int ch = 0; ch < 3; ch++) {
                    base[ch] = r->mat.base[ch] * srgb_to_linear(texel[ch]);
                    c_diff[ch] = base[ch] * (1.0f - 0.04f) * (1.0f - r->mat.metallic);
                    f0[ch] = 0.04f + (base[ch] - 0.04f) * r->mat.metallic;
                }
            } else {
                memcpy(base, r->mat.base, sizeof base);
                memcpy(c_diff, r->mat.c_diff, sizeof c_diff);
                memcpy(f0, r->mat.f0, sizeof f0);
            }
            shade_pbr(r, nrm, v, base, c_diff, f0, color);
            uint8_t *o = dst + 3 * (size_t)col[p];
            for (int ch = 0; ch < 3; ch++) o[ch] = (uint8_t)gamma_level(color[ch]);
        }
    }
    /* den > 0 is a negative screen area (y down) for a face in front of the camera */
    r->winding_samples[tid][0] = facing[0];
    r->winding_samples[tid][1] = facing[1];
}

/* k × k box filter of the sample colours into the output rows this thread owns. */
static void downsample_rows(dpt_renderer *r, int tid) {
    int k = r->k, kk = k * k;
    for (int y = 0; y < r->height; y++) {
        if (r->n_threads > 1 && (y / BAND_ROWS) % r->n_threads != tid) continue;
        uint8_t *dst = r->out + (size_t)y * r->width * 3;
        for (int x = 0; x < r->width; x++) {
            int sum[3] = {0, 0, 0};
            for (int sy = 0; sy < k; sy++) {
                const uint8_t *s = r->samples + ((size_t)(y * k + sy) * r->sw + (size_t)x * k) * 3;
                for (int sx = 0; sx < k; sx++)
                    for (int ch = 0; ch < 3; ch++) sum[ch] += s[sx * 3 + ch];
            }
            for (int ch = 0; ch < 3; ch++) dst[x * 3 + ch] = (uint8_t)((sum[ch] + kk / 2) / kk);
        }
    }
}

/* ---- one frame, on every thread of the team ------------------------------------------------- */

/* Depth and face ids back to clear where the last frame drew (the rest stayed clear). */
HOT_CLONES static void clear_rows(dpt_renderer *r, int tid) {
    const int i0 = r->drawn[tid][0], i1 = r->drawn[tid][1], j0 = r->drawn[tid][2], j1 = r->drawn[tid][3];
    if (i0 > i1) return;
    for (int j = j0; j <= j1; j++) {
        if (r->n_threads > 1 && !owns_row(r, j, tid)) continue;
        size_t row = (size_t)j * r->stride;
        int32_t *restrict d = r->depth + row, *restrict f = r->face_id + row;
        for (int i = i0; i <= i1; i++) d[i] = DEPTH_ONE;
        memset(f + i0, 0xff, (size_t)(i1 - i0 + 1) * sizeof(int32_t));   /* −1 */
    }
}

static void frame_work(dpt_renderer *r, int tid) {
    int n = r->n_threads;
    project_vertices(r, (int)((int64_t)r->n_vertices * tid / n), (int)((int64_t)r->n_vertices * (tid + 1) / n));
    int fa = (int)((int64_t)r->n_faces * tid / n), fb = (int)((int64_t)r->n_faces * (tid + 1) / n);
#ifdef RENDER_AVX512
    if (r->avx512) face_geometry_avx512(r, fa, fb);
    else
#endif
        face_geometry(r, fa, fb);
    clear_rows(r, tid);
    if (n > 1) pthread_barrier_wait(&r->barrier);
    vertex_normals(r, (int)((int64_t)r->n_nv * tid / n), (int)((int64_t)r->n_nv * (tid + 1) / n));
    raster_all(r, tid);
    if (n > 1) pthread_barrier_wait(&r->barrier);
    face_shading(r, (int)((int64_t)r->n_faces * tid / n), (int)((int64_t)r->n_faces * (tid + 1) / n));
    if (n > 1) pthread_barrier_wait(&r->barrier);
    shade_rows(r, tid);
    if (r->k > 1) downsample_rows(r, tid);
}

typedef struct worker_arg { dpt_renderer *r; int tid; } worker_arg;

static void *worker_main(void *arg) {
    dpt_renderer *r = ((worker_arg *)arg)->r;
    int tid = ((worker_arg *)arg)->tid;
    free(arg);
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->generation == seen && !r->quit) pthread_cond_wait(&r->go, &r->mu);
        if (r->quit) {
            pthread_mutex_unlock(&r->mu);
            return NULL;
        }
        seen = r->generation;
        pthread_mutex_unlock(&r->mu);
        frame_work(r, tid);
        pthread_mutex_lock(&r->mu);
        if (++r->n_finished == r->n_threads - 1) pthread_cond_signal(&r->done);
        pthread_mutex_unlock(&r->mu);
    }
}

/* ---- public API --------------------------------------------------------------------------- */

static const dpt_render_params render_defaults = {
    .struct_size = sizeof(dpt_render_params), .width = 640, .height = 640, .supersample = 1};

void dpt_render_params_init(dpt_render_params *p, size_t struct_size) {
    dpt_sized_init(p, struct_size, &render_defaults, sizeof render_defaults);
}

static void material_init(material *m, float base, float metallic, float roughness) {
    m->base[0] = m->base[1] = m->base[2] = base;
    m->metallic = metallic < 0 ? 0 : (metallic > 1 ? 1 : metallic);
    m->roughness = roughness < 0.04f ? 0.04f : (roughness > 1 ? 1 : roughness);
    for (int ch = 0; ch < 3; ch++) {
        m->c_diff[ch] = m->base[ch] * (1.0f - 0.04f) * (1.0f - m->metallic);
        m->f0[ch] = 0.04f + (m->base[ch] - 0.04f) * m->metallic;
    }
    float rk = m->roughness + 1.0f;
    m->k = rk * rk / 8.0f;
    float a = m->roughness * m->roughness;
    m->a2 = a * a;
}

/* The scene's lights, those with one direction summed (mesh.frag's terms are linear in radiance). */
static void lights_init(dpt_renderer *r) {
    r->n_lights = 0;
    size_t n_scene = sizeof SCENE_LIGHTS / sizeof SCENE_LIGHTS[0];
    if (n_scene > PYRENDER_MAX_N_LIGHTS) n_scene = PYRENDER_MAX_N_LIGHTS;
    for (size_t i = 0; i < n_scene; i++) {
        float l[3] = {-SCENE_LIGHTS[i].dir[0], -SCENE_LIGHTS[i].dir[1], -SCENE_LIGHTS[i].dir[2]};
        unitize3(l);
        int j = 0;
        while (j < r->n_lights && memcmp(r->lights[j].l, l, sizeof l) != 0) j++;
        if (j == r->n_lights) {
            if (r->n_lights == MAX_LIGHTS) break;
            memcpy(r->lights[j].l, l, sizeof l);
            memset(r->lights[j].radiance, 0, sizeof r->lights[j].radiance);
            r->n_lights++;
        }
        for (int ch = 0; ch < 3; ch++)
            r->lights[j].radiance[ch] += SCENE_LIGHTS[i].color[ch] * SCENE_LIGHTS[i].intensity;
    }
}

typedef struct corner_key { int32_t v, t, corner; } corner_key;

static int corner_key_cmp(const void *a, const void *b) {
    const corner_key *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return (x->corner > y->corner) - (x->corner < y->corner);
}

/* Normal vertices and their corner lists: the mesh's vertices, or (vertex, uv index) pairs. */
static dpt_status build_normal_vertices(dpt_renderer *r, const int32_t *ft, dpt_error *err) {
    size_t nc = (size_t)r->n_faces * 3;
    r->nv_of_corner = malloc(nc * sizeof(int32_t));
    r->adj = malloc(nc * sizeof(int32_t));
    if (!r->nv_of_corner || !r->adj) return dpt_fail(err, DPT_ERR_NOMEM, "dpt_renderer_new: out of memory");
    if (!ft) {
        memcpy(r->nv_of_corner, r->faces, nc * sizeof(int32_t));
        r->n_nv = r->n_vertices;
    } else {
        corner_key *keys = malloc(nc * sizeof *keys);
        if (!keys) return dpt_fail(err, DPT_ERR_NOMEM, "dpt_renderer_new: out of memory");
        for (size_t c = 0; c < nc; c++) {
            keys[c].v = r->faces[c];
            keys[c].t = ft[c];
            keys[c].corner = (int32_t)c;
        }
        qsort(keys, nc, sizeof *keys, corner_key_cmp);
        int32_t id = -1;
        for (size_t c = 0; c < nc; c++) {
            if (c == 0 || keys[c].v != keys[c - 1].v || keys[c].t != keys[c - 1].t) id++;
            r->nv_of_corner[keys[c].corner] = id;
        }
        r->n_nv = id + 1;
        free(keys);
    }
    r->adj_start = calloc((size_t)r->n_nv + 1, sizeof(int32_t));
    r->normals = malloc((size_t)r->n_nv * 3 * sizeof(float));
    if (!r->adj_start || !r->normals) return dpt_fail(err, DPT_ERR_NOMEM, "dpt_renderer_new: out of memory");
    for (size_t c = 0; c < nc; c++) r->adj_start[r->nv_of_corner[c] + 1]++;
    for (int i = 0; i < r->n_nv; i++) r->adj_start[i + 1] += r->adj_start[i];
    int32_t *fill = malloc((size_t)r->n_nv * sizeof(int32_t));
    if (!fill) return dpt_fail(err, DPT_ERR_NOMEM, "dpt_renderer_new: out of memory");
    memcpy(fill, r->adj_start, (size_t)r->n_nv * sizeof(int32_t));
    for (size_t c = 0; c < nc; c++) r->adj[fill[r->nv_of_corner[c]]++] = (int32_t)c;
    free(fill);
    return DPT_OK;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : (int)n);
}

static dpt_status start_team(dpt_renderer *r, dpt_error *err) {
    if (pthread_mutex_init(&r->mu, NULL) || pthread_cond_init(&r->go, NULL) || pthread_cond_init(&r->done, NULL))
        return dpt_fail(err, DPT_ERR_NOMEM, "dpt_renderer_new: cannot create thread primitives");
    r->team_ready = 1;
    int wanted = r->n_threads;
    for (int t = 1; t < wanted; t++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) break;
        a->r = r;
        a->tid = t;
        if (pthread_create(&r->threads[r->n_started], NULL, worker_main, a) != 0) {
            free(a);
            break;
        }
        r->n_started++;
    }
    r->n_threads = r->n_started + 1;   /* fewer threads if the system gave fewer */
    if (r->n_threads > 1 && pthread_barrier_init(&r->barrier, NULL, (unsigned)r->n_threads) != 0) {
        return dpt_fail(err, DPT_ERR_NOMEM, "dpt_renderer_new: cannot create a thread barrier");
    }
    if (r->n_threads < wanted)
        dpt_log(1, "dpt_renderer_new: started %d of %d threads", r->n_threads, wanted);
    return DPT_OK;
}

dpt_status dpt_renderer_new(const dpt_render_params *params, int n_vertices, const int32_t *faces,
                            int n_faces, const float *vt, int n_vt, const int32_t *ft,
                            dpt_renderer **out, dpt_error *err) {
    if (!out) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: NULL output pointer");
    *out = NULL;
    dpt_render_params p = render_defaults;
    dpt_status ps = dpt_sized_take(params, &p, sizeof p, DPT_SIZE_THROUGH(dpt_render_params, texture),
                                   "dpt_render_params", err);
    if (ps != DPT_OK) return ps;
    if (p.width < 1 || p.height < 1 || p.width > MAX_SIDE || p.height > MAX_SIDE)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: image size %d x %d outside 1 ... %d",
                        p.width, p.height, MAX_SIDE);
    if (p.supersample < 1 || p.supersample > MAX_SUPERSAMPLE)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: supersample %d outside 1 ... %d",
                        p.supersample, MAX_SUPERSAMPLE);
    if ((int64_t)p.width * p.supersample > MAX_SAMPLE_SIDE || (int64_t)p.height * p.supersample > MAX_SAMPLE_SIDE)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dpt_renderer_new: %d x %d with supersample %d exceeds %d samples per side",
                        p.width, p.height, p.supersample, MAX_SAMPLE_SIDE);
    if (p.n_threads < 0 || p.n_threads > MAX_THREADS)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: n_threads %d outside 0 ... %d",
                        p.n_threads, MAX_THREADS);
    if (n_vertices < 1 || n_faces < 1 || !faces)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: need vertices and faces (got %d, %d%s)",
                        n_vertices, n_faces, faces ? "" : ", NULL faces");
    if (n_faces > INT32_MAX / 9)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: %d faces is too many", n_faces);
    for (int64_t i = 0; i < (int64_t)n_faces * 3; i++)
        if (faces[i] < 0 || faces[i] >= n_vertices)
            return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: face %lld has vertex index %d, not in 0 ... %d",
                            (long long)(i / 3), (int)faces[i], n_vertices - 1);
    const dpt_image *tex = p.texture;
    if (tex) {
        if (tex->width < 1 || tex->height < 1 || !tex->rgb)
            return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: empty texture image");
        if (!vt || !ft || n_vt < 1)
            return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: a texture needs uv coordinates (vt and ft)");
        if (!dpt_all_finite(vt, (size_t)n_vt * 2))
            return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: uv coordinates contain NaN or Inf");
        for (int64_t i = 0; i < (int64_t)n_faces * 3; i++)
            if (ft[i] < 0 || ft[i] >= n_vt)
                return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_new: uv face %lld has index %d, not in 0 ... %d",
                                (long long)(i / 3), (int)ft[i], n_vt - 1);
    }
    pthread_once(&tables_once, init_tables);

    dpt_renderer *r = calloc(1, sizeof *r);
    if (!r) return dpt_fail(err, DPT_ERR_NOMEM, "dpt_renderer_new: out of memory");
    r->width = p.width;
    r->height = p.height;
    r->k = p.supersample;
    r->sw = p.width * p.supersample;
    r->sh = p.height * p.supersample;
    r->black_bg = p.black_bg != 0;
    r->n_vertices = n_vertices;
    r->n_faces = n_faces;
    r->texture = tex;
    int n_bands = (p.height + BAND_ROWS - 1) / BAND_ROWS;
    r->n_threads = p.n_threads ? p.n_threads : default_threads();
    if (r->n_threads > n_bands) r->n_threads = n_bands;

    /* projection (pyrender PerspectiveCamera.get_projection_matrix) */
    double t = tan(YFOV_DEG / 180.0 * 3.14159265358979323846 / 2.0);
    r->p00 = 1.0 / (ASPECT * t);
    r->p11 = 1.0 / t;
    r->p22 = (ZFAR + ZNEAR) / (ZNEAR - ZFAR);
    r->p23 = 2.0 * ZFAR * ZNEAR / (ZNEAR - ZFAR);
    r->guard_x = 2.0 * GUARD / r->sw - 1.0;
    r->guard_y = 2.0 * GUARD / r->sh - 1.0;
    if (tex) material_init(&r->mat, 1.0f, 1.0f, 1.0f);          /* pyrender's defaults */
    else material_init(&r->mat, 0.3f, 0.8f, 0.8f);              /* upstream's primitive_material */
    lights_init(r);
    r->grey = !tex && r->mat.base[0] == r->mat.base[1] && r->mat.base[0] == r->mat.base[2];
#ifdef RENDER_AVX512
    r->avx512 = dpt_k_arch_active() != DPT_K_ARCH_SCALAR && __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vbmi");
#endif
    for (int i = 0; i < r->n_lights; i++)
        if (r->lights[i].radiance[0] != r->lights[i].radiance[1] || r->lights[i].radiance[0] != r->lights[i].radiance[2])
            r->grey = 0;

    r->stride = ((size_t)r->sw + 15) & ~(size_t)15;   /* rows start 64-byte aligned */
    size_t nc = (size_t)n_faces * 3, ns = (size_t)r->sw * r->sh, nb = r->stride * r->sh;
    dpt_status st = DPT_OK;
    r->faces = malloc(nc * sizeof(int32_t));
    r->proj = malloc((size_t)n_vertices * sizeof *r->proj);
    r->rays = malloc((size_t)n_faces * sizeof *r->rays);
    r->shades = dpt_alloc((size_t)n_faces * sizeof *r->shades);
    r->corner_weight = malloc(nc * 3 * sizeof(float));
    r->depth = malloc(nb * sizeof(int32_t));
    r->face_id = malloc(nb * sizeof(int32_t));
    r->ray_x = malloc((size_t)r->sw * sizeof(float));
    r->ray_y = malloc((size_t)r->sh * sizeof(float));
    if (r->k > 1) r->samples = malloc(ns * 3);
    r->scratch = malloc((size_t)r->n_threads * SCRATCH_ROWS * r->sw * sizeof(float));
    r->tiles_w = (r->sw + TILE - 1) / TILE;
    r->tiles_h = (r->sh + TILE - 1) / TILE;
    r->tile_far = malloc((size_t)r->tiles_w * r->tiles_h * sizeof(int32_t));
    r->later = malloc((size_t)r->n_threads * n_faces * sizeof(int32_t));
    r->first_winding = 1;
    for (int t = 0; t < MAX_THREADS; t++) {   /* the first frame clears everything */
        r->drawn[t][0] = 0;
        r->drawn[t][1] = r->sw - 1;
        r->drawn[t][2] = 0;
        r->drawn[t][3] = r->sh - 1;
    }
    if (tex) r->uv_of_corner = malloc(nc * 2 * sizeof(float));
    if (!r->faces || !r->proj || !r->rays || !r->shades || !r->corner_weight || !r->depth || !r->face_id || !r->ray_x ||
        !r->ray_y || !r->scratch || !r->tile_far || !r->later || (r->k > 1 && !r->samples) || (tex && !r->uv_of_corner)) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "dpt_renderer_new: out of memory for %d x %d samples", r->sw, r->sh);
        goto fail;
    }
    memcpy(r->faces, faces, nc * sizeof(int32_t));
    if (tex)
        for (size_t c = 0; c < nc; c++) {
            r->uv_of_corner[2 * c] = vt[2 * (size_t)ft[c]];
            r->uv_of_corner[2 * c + 1] = vt[2 * (size_t)ft[c] + 1];
        }
    /* eye ray through sample centre (i + 0.5, j + 0.5): NDC / (P00, P11), z = −1 */
    for (int i = 0; i < r->sw; i++) r->ray_x[i] = (float)((2.0 * (i + 0.5) / r->sw - 1.0) / r->p00);
    for (int j = 0; j < r->sh; j++) r->ray_y[j] = (float)((1.0 - 2.0 * (j + 0.5) / r->sh) / r->p11);
    if ((st = build_normal_vertices(r, tex ? ft : NULL, err)) != DPT_OK) goto fail;
    if ((st = start_team(r, err)) != DPT_OK) goto fail;
    *out = r;
    return DPT_OK;
fail:
    dpt_renderer_free(r);
    return st;
}

void dpt_renderer_free(dpt_renderer *r) {
    if (!r) return;
    if (r->team_ready) {
        pthread_mutex_lock(&r->mu);
        r->quit = 1;
        pthread_cond_broadcast(&r->go);
        pthread_mutex_unlock(&r->mu);
        for (int i = 0; i < r->n_started; i++) pthread_join(r->threads[i], NULL);
        if (r->n_threads > 1) pthread_barrier_destroy(&r->barrier);
        pthread_cond_destroy(&r->go);
        pthread_cond_destroy(&r->done);
        pthread_mutex_destroy(&r->mu);
    }
    free(r->faces);
    free(r->nv_of_corner);
    free(r->adj_start);
    free(r->adj);
    free(r->uv_of_corner);
    free(r->ray_x);
    free(r->ray_y);
    free(r->proj);
    free(r->rays);
    dpt_alloc_free(r->shades);
    free(r->corner_weight);
    free(r->normals);
    free(r->depth);
    free(r->face_id);
    free(r->samples);
    free(r->scratch);
    free(r->tile_far);
    free(r->later);
    free(r);
}

dpt_status dpt_renderer_draw(dpt_renderer *r, const float *vertices, uint8_t *rgb, dpt_error *err) {
    if (!r || !vertices || !rgb)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_draw: NULL %s",
                        !r ? "renderer" : !vertices ? "vertices" : "image");
    for (size_t i = 0; i < (size_t)r->n_vertices * 3; i++)
        if (!isfinite(vertices[i]))
            return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_renderer_draw: vertex %zu has a NaN or Inf coordinate", i / 3);
    r->vertices = vertices;
    r->out = rgb;
    if (r->n_threads == 1) {
        frame_work(r, 0);
    } else {
        pthread_mutex_lock(&r->mu);
        r->n_finished = 0;
        r->generation++;
        pthread_cond_broadcast(&r->go);
        pthread_mutex_unlock(&r->mu);
        frame_work(r, 0);
        pthread_mutex_lock(&r->mu);
        while (r->n_finished < r->n_threads - 1) pthread_cond_wait(&r->done, &r->mu);
        pthread_mutex_unlock(&r->mu);
    }
    int64_t pos = 0, neg = 0;
    for (int t = 0; t < r->n_threads; t++) {
        neg += r->winding_samples[t][0];
        pos += r->winding_samples[t][1];
    }
    if ((r->first_winding > 0 ? neg : pos) > (r->first_winding > 0 ? pos : neg)) r->first_winding = -r->first_winding;
    r->vertices = NULL;
    r->out = NULL;
    return DPT_OK;
}
