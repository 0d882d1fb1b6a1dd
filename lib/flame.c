/* FLAME vertices: linear blend skinning exactly as upstream's FLAME.forward(pose2rot=True)
 * (models/flame.py + models/lbs.py), from a FLAME file (weights/FORMAT.md "FLAME files").
 *
 * Per frame (V vertices, J = 5 joints, betas = [shape 100, exp 50], P = 9·(J−1) = 36):
 *   v_shaped = v_template + shapedirs · betas                       (V, 3)
 *   joints   = J_regressor · v_shaped                               (J, 3)
 *   R_j      = rodrigues(full_pose_j), full pose = [global or 0, neck 0, jaw, eye 0, eye 0]
 *   v_posed  = v_shaped + posedirs · vec(R_1..R_{J−1} − I)          (V, 3)
 *   A_j      = chain of [R_j | joints_j − joints_parent], minus A_j · [joints_j; 0]
 *   v        = (Σ_j w_vj A_j) · [v_posed; 1]
 *
 * Speed: everything linear in the coefficients is one GEMM per thread's block of frames,
 * [shape | exp | pose feature] (frames, K) · [S; E; Pd] (K, 3V) → the output buffer, the shape
 * columns left out (and added once) when one shape serves all frames. The joints are linear in
 * betas too: J_regressor is applied to the template and to each direction once at load
 * (J_regressor · v_shaped = J_t + betas · J_dirs), so no per-frame regression is needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "dpt.h"
#include "kernels.h"
#include "sized.h"
#include "weights.h"

#define FLAME_N_SHAPE 100
#define FLAME_N_EXP 50
#define FLAME_N_JOINTS 5 /* global, neck, jaw, left eye, right eye: the pose layout below */
#define FLAME_JAW 2
#define FLAME_MAX_COUNT (1 << 24) /* vertices, faces, uv coordinates (weights/FORMAT.md "Limits") */

struct dpt_flame {
    char *path;
    char *source;
    int V, F, J, P, n_uv;
    int n_betas;    /* n_shape + n_exp */
    int K;          /* rows of dirs: n_betas + P */
    float *dirs;    /* (K, 3V): shape directions, exp directions, pose directions (transposed) */
    float *v_template;  /* (3V) */
    float *j_template;  /* (J, 3) = J_regressor · v_template */
    float *j_dirs;      /* (n_betas, J·3) = J_regressor applied to each blend direction */
    float *weights;     /* (V, J) */
    int *parents;       /* (J), parents[0] = −1 */
    int32_t *faces;     /* (F, 3) */
    float *vt;          /* (n_uv, 2) or NULL */
    int32_t *ft;        /* (F, 3) or NULL */
};

static const dpt_flame_params flame_defaults = {.struct_size = sizeof(dpt_flame_params)};

void dpt_flame_params_init(dpt_flame_params *p, size_t struct_size) {
    dpt_sized_init(p, struct_size, &flame_defaults, sizeof flame_defaults);
}

void dpt_flame_free(dpt_flame *f) {
    if (!f) return;
    free(f->path);
    free(f->source);
    dpt_alloc_free(f->dirs);
    free(f->v_template);
    free(f->j_template);
    free(f->j_dirs);
    free(f->weights);
    free(f->parents);
    free(f->faces);
    free(f->vt);
    free(f->ft);
    free(f);
}

/* ---- loading ------------------------------------------------------------------------------ */

typedef struct flame_loader {
    const dpt_weights *w;
    const char *path;
    dpt_error *err;
    dpt_status st;
    unsigned char *used;
} flame_loader;

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int shape_str(const dpt_tensor_entry *t, char *buf, size_t n) {
    int k = snprintf(buf, n, "(");
    for (int d = 0; d < t->ndim && k < (int)n; d++)
        k += snprintf(buf + k, n - (size_t)k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (k < (int)n) snprintf(buf + k, n - (size_t)k, ")");
    return 0;
}

/* The tensor `name` with exactly the given dims (n dims), as a malloc'ed float32 copy with every
 * value finite; NULL (and L->st set) otherwise. optional: a missing tensor is not an error. */
static float *read_tensor(flame_loader *L, const char *name, int ndim, const int64_t *dims,
                          const char *what, int optional) {
    if (L->st != DPT_OK) return NULL;
    const dpt_tensor_entry *t = dpt_weights_find(L->w, name);
    if (!t) {
        if (!optional)
            L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: required tensor '%s' is missing", L->path, name);
        return NULL;
    }
    L->used[t - L->w->tensors] = 1;
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == dims[d];
    if (!ok) {
        char got[96], want[96];
        dpt_tensor_entry e = {0};
        e.ndim = ndim;
        for (int d = 0; d < ndim; d++) e.shape[d] = dims[d];
        shape_str(t, got, sizeof got);
        shape_str(&e, want, sizeof want);
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s (%s)",
                         L->path, name, got, want, what);
        return NULL;
    }
    size_t n = (size_t)t->n_elements;
    float *x = malloc(sizeof(float) * (n ? n : 1));
    if (!x) {
        L->st = dpt_fail(L->err, DPT_ERR_NOMEM, "%s: out of memory", L->path);
        return NULL;
    }
    if (t->dtype == DPT_DTYPE_F32) {
        memcpy(x, t->data, sizeof(float) * n);
    } else {
        const uint16_t *h = t->data;
        for (size_t i = 0; i < n; i++) x[i] = dpt_half_to_float(h[i]);
    }
    if (!dpt_all_finite(x, n)) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: tensor '%s' has NaN or infinite values", L->path, name);
        free(x);
        return NULL;
    }
    return x;
}

/* Indices stored as float32 (exact below 2^24): each must be an integer in [lo, hi). */
static int32_t *read_indices(flame_loader *L, const char *name, int64_t rows, int64_t cols,
                             int64_t lo, int64_t hi, const char *what, int optional) {
    int64_t dims[2] = {rows, cols};
    float *x = read_tensor(L, name, cols ? 2 : 1, dims, what, optional);
    if (!x) return NULL;
    size_t n = (size_t)(rows * (cols ? cols : 1));
    int32_t *out = malloc(sizeof(int32_t) * n);
    if (!out) {
        L->st = dpt_fail(L->err, DPT_ERR_NOMEM, "%s: out of memory", L->path);
        free(x);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (x[i] != floorf(x[i]) || x[i] < (float)lo || x[i] >= (float)hi) {
            L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                             "%s: tensor '%s' element %zu is %g, expected an integer in %lld..%lld (%s)",
                             L->path, name, i, (double)x[i], (long long)lo, (long long)hi - 1, what);
            free(out);
            free(x);
            return NULL;
        }
        out[i] = (int32_t)x[i];
    }
    free(x);
    return out;
}

static int meta_int_is(flame_loader *L, const char *key, int64_t want) {
    if (L->st != DPT_OK) return 0;
    const dpt_meta_entry *e = dpt_weights_meta(L->w, key);
    if (!e || e->type != DPT_META_INT || e->i != want) {
        if (!e)
            L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: required metadata '%s' is missing", L->path, key);
        else
            L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: metadata '%s' must be the integer %lld "
                             "(the coefficient layout of DiffPoseTalk)", L->path, key, (long long)want);
        return 0;
    }
    return 1;
}

/* Dimension `d` of tensor `name`, or -1 (st set) if the tensor is missing or too small. */
static int64_t dim_of(flame_loader *L, const char *name, int d) {
    if (L->st != DPT_OK) return -1;
    const dpt_tensor_entry *t = dpt_weights_find(L->w, name);
    if (!t) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: required tensor '%s' is missing", L->path, name);
        return -1;
    }
    if (t->ndim <= d) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: tensor '%s' has %d dimensions, needs %d or more",
                         L->path, name, t->ndim, d + 1);
        return -1;
    }
    if (t->shape[d] > FLAME_MAX_COUNT) { /* FLAME has 5023 vertices and 9976 faces */
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: tensor '%s' has %lld rows, beyond the limit of "
                         "2^24 (vertices, faces, uv coordinates)", L->path, name, (long long)t->shape[d]);
        return -1;
    }
    return t->shape[d];
}

static void build_derived(dpt_flame *f, const float *shapedirs, const float *posedirs,
                          const float *jreg) {
    const int V = f->V, J = f->J, NB = f->n_betas, P = f->P;
    const size_t V3 = (size_t)V * 3;
    /* shapedirs (V, 3, NB) → dirs rows 0..NB−1 (NB, 3V); posedirs (P, 3V) → rows NB.. */
    for (size_t m = 0; m < V3; m++)
        for (int l = 0; l < NB; l++) f->dirs[(size_t)l * V3 + m] = shapedirs[m * NB + l];
    memcpy(f->dirs + (size_t)NB * V3, posedirs, sizeof(float) * (size_t)P * V3);
    /* J_t (J, 3) and J_dirs (NB, J·3), summed in double */
    for (int j = 0; j < J; j++) {
        const float *r = jreg + (size_t)j * V;
        for (int k = 0; k < 3; k++) {
            double s = 0;
            for (int v = 0; v < V; v++)
                if (r[v] != 0.0f) s += (double)r[v] * f->v_template[(size_t)v * 3 + k];
            f->j_template[j * 3 + k] = (float)s;
        }
        for (int l = 0; l < NB; l++) {
            const float *d = f->dirs + (size_t)l * V3;
            for (int k = 0; k < 3; k++) {
                double s = 0;
                for (int v = 0; v < V; v++)
                    if (r[v] != 0.0f) s += (double)r[v] * d[(size_t)v * 3 + k];
                f->j_dirs[(size_t)l * J * 3 + j * 3 + k] = (float)s;
            }
        }
    }
}

dpt_status dpt_flame_load(const char *path, dpt_flame **out, dpt_error *err) {
    if (!out) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_load: out is NULL");
    *out = NULL;
    if (!path) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_load: path is NULL");
    dpt_weights *w = NULL;
    dpt_status s = dpt_weights_open(path, 1, &w, err);
    if (s != DPT_OK) return s;
    const dpt_meta_entry *kind = dpt_weights_meta(w, "kind");
    if (!kind || kind->type != DPT_META_STRING || strcmp(kind->s, "flame") != 0) {
        s = dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: not a FLAME file (metadata kind is %s%s%s; a "
                     "DiffPoseTalk model? FLAME files come from tools/export.py --flame)", path,
                     kind && kind->type == DPT_META_STRING ? "'" : "",
                     kind ? (kind->type == DPT_META_STRING ? kind->s : "not a string") : "absent",
                     kind && kind->type == DPT_META_STRING ? "'" : "");
        dpt_weights_close(w);
        return s;
    }
    dpt_flame *f = calloc(1, sizeof *f);
    flame_loader L = {w, w->path, err, DPT_OK, calloc((size_t)w->n_tensors + 1, 1)};
    if (!f || !L.used) {
        free(f);
        free(L.used);
        dpt_weights_close(w);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    float *shapedirs = NULL, *posedirs = NULL, *jreg = NULL, *parents = NULL;
    meta_int_is(&L, "flame.n_shape", FLAME_N_SHAPE);
    meta_int_is(&L, "flame.n_exp", FLAME_N_EXP);
    const int64_t V = dim_of(&L, "flame.v_template", 0);
    const int64_t J = dim_of(&L, "flame.J_regressor", 0);
    const int64_t F = dim_of(&L, "flame.faces", 0);
    if (L.st == DPT_OK && (V < 3 || F < 1))
        L.st = dpt_fail(err, DPT_ERR_FORMAT, "%s: %lld vertices and %lld faces: not a mesh", path,
                        (long long)V, (long long)F);
    if (L.st == DPT_OK && J != FLAME_N_JOINTS)
        L.st = dpt_fail(err, DPT_ERR_FORMAT, "%s: %lld joints in 'flame.J_regressor'; FLAME's pose "
                        "(global, neck, jaw, eyes) needs %d", path, (long long)J, FLAME_N_JOINTS);
    if (L.st == DPT_OK) {
        f->V = (int)V;
        f->J = (int)J;
        f->F = (int)F;
        f->P = 9 * (f->J - 1);
        f->n_betas = FLAME_N_SHAPE + FLAME_N_EXP;
        f->K = f->n_betas + f->P;
        f->path = dup_str(w->path);
        const dpt_meta_entry *src = dpt_weights_meta(w, "flame_source");
        f->source = dup_str(src && src->type == DPT_META_STRING ? src->s : "");
        if (!f->path || !f->source) L.st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    const int64_t d_vt[2] = {V, 3}, d_sd[3] = {V, 3, FLAME_N_SHAPE + FLAME_N_EXP},
                  d_pd[2] = {9 * (J - 1), 3 * V}, d_jr[2] = {J, V}, d_p[1] = {J}, d_w[2] = {V, J};
    f->v_template = read_tensor(&L, "flame.v_template", 2, d_vt, "vertices × 3", 0);
    shapedirs = read_tensor(&L, "flame.shapedirs", 3, d_sd, "vertices × 3 × (100 shape + 50 exp)", 0);
    posedirs = read_tensor(&L, "flame.posedirs", 2, d_pd, "9·(joints − 1) × 3·vertices", 0);
    jreg = read_tensor(&L, "flame.J_regressor", 2, d_jr, "joints × vertices", 0);
    parents = read_tensor(&L, "flame.parents", 1, d_p, "one parent per joint", 0);
    f->weights = read_tensor(&L, "flame.lbs_weights", 2, d_w, "vertices × joints", 0);
    f->faces = read_indices(&L, "flame.faces", F, 3, 0, V, "faces × 3 vertex indices", 0);
    if (L.st == DPT_OK) {
        f->parents = malloc(sizeof(int) * (size_t)J);
        if (!f->parents) L.st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        for (int j = 0; L.st == DPT_OK && j < J; j++) {
            float p = parents[j];
            int ok = j == 0 ? p == -1.0f : (p == floorf(p) && p >= 0 && p < (float)j);
            if (!ok)
                L.st = dpt_fail(err, DPT_ERR_FORMAT, "%s: joint %d has parent %g; the root's must be -1 "
                                "and every other's an earlier joint", path, j, (double)p);
            else
                f->parents[j] = (int)p;
        }
    }
    /* uv: both or neither */
    const dpt_tensor_entry *tvt = L.st == DPT_OK ? dpt_weights_find(w, "flame.uv.vt") : NULL;
    const dpt_tensor_entry *tft = L.st == DPT_OK ? dpt_weights_find(w, "flame.uv.ft") : NULL;
    if (L.st == DPT_OK && (!tvt) != (!tft))
        L.st = dpt_fail(err, DPT_ERR_FORMAT, "%s: has '%s' without '%s'", path,
                        tvt ? "flame.uv.vt" : "flame.uv.ft", tvt ? "flame.uv.ft" : "flame.uv.vt");
    if (L.st == DPT_OK && tvt) {
        int64_t n_uv = dim_of(&L, "flame.uv.vt", 0);
        const int64_t d_uv[2] = {n_uv, 2};
        f->vt = read_tensor(&L, "flame.uv.vt", 2, d_uv, "uv coordinates × 2", 0);
        for (int64_t k = 0; f->vt && L.st == DPT_OK && k < n_uv * 2; k++)
            if (f->vt[k] < 0.0f || f->vt[k] > 1.0f)
                L.st = dpt_fail(err, DPT_ERR_FORMAT, "%s: tensor 'flame.uv.vt' element %lld is %g, "
                                "outside [0, 1]", path, (long long)k, (double)f->vt[k]);
        f->ft = read_indices(&L, "flame.uv.ft", F, 3, 0, n_uv, "faces × 3 uv indices", 0);
        f->n_uv = (int)n_uv;
    }
    for (int i = 0; L.st == DPT_OK && i < w->n_tensors; i++)
        if (!L.used[i])
            L.st = dpt_fail(err, DPT_ERR_FORMAT, "%s: unexpected tensor '%s' in a FLAME file", path,
                            w->tensors[i].name);
    if (L.st == DPT_OK) {
        size_t n_dirs;
        if (!dpt_mul_ok((size_t)f->K, (size_t)V * 3, &n_dirs) ||
            !(f->dirs = dpt_alloc(sizeof(float) * n_dirs)) ||
            !(f->j_template = malloc(sizeof(float) * (size_t)J * 3)) ||
            !(f->j_dirs = malloc(sizeof(float) * (size_t)f->n_betas * (size_t)J * 3)))
            L.st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        else
            build_derived(f, shapedirs, posedirs, jreg);
    }
    free(shapedirs);
    free(posedirs);
    free(jreg);
    free(parents);
    free(L.used);
    dpt_weights_close(w);
    if (L.st != DPT_OK) {
        dpt_flame_free(f);
        return L.st;
    }
    *out = f;
    return DPT_OK;
}

/* ---- accessors ------------------------------------------------------------------------------ */

void dpt_flame_get_info_sized(const dpt_flame *f, dpt_flame_info *out, size_t struct_size) {
    if (!out) return;
    dpt_flame_info info;
    memset(&info, 0, sizeof info);
    if (f) {
        info.path = f->path;
        info.n_vertices = f->V;
        info.n_faces = f->F;
        info.n_joints = f->J;
        info.n_shape = FLAME_N_SHAPE;
        info.n_exp = FLAME_N_EXP;
        info.has_uv = f->vt != NULL;
        info.n_uv = f->n_uv;
        info.source = f->source;
    }
    dpt_sized_give(out, struct_size, &info, sizeof info);
}

const int32_t *dpt_flame_faces(const dpt_flame *f) { return f ? f->faces : NULL; }

void dpt_flame_uv(const dpt_flame *f, const float **vt, const int32_t **ft) {
    if (vt) *vt = f ? f->vt : NULL;
    if (ft) *ft = f ? f->ft : NULL;
}

/* ---- vertices ------------------------------------------------------------------------------- */

/* batch_rodrigues of one axis-angle vector, in float32 as upstream:
 * angle = ‖r + 1e-8‖ (the epsilon added to each component), axis = r / angle,
 * R = I + sin·K + (1 − cos)·K², K the cross-product matrix of the axis. */
static void rodrigues(const float r[3], float R[9]) {
    const float e0 = r[0] + 1e-8f, e1 = r[1] + 1e-8f, e2 = r[2] + 1e-8f;
    const float angle = sqrtf(e0 * e0 + e1 * e1 + e2 * e2);
    const float x = r[0] / angle, y = r[1] / angle, z = r[2] / angle;
    const float s = sinf(angle), c1 = 1.0f - cosf(angle);
    const float K[9] = {0, -z, y, z, 0, -x, -y, x, 0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            float kk = K[i * 3 + 0] * K[0 * 3 + j] + K[i * 3 + 1] * K[1 * 3 + j] + K[i * 3 + 2] * K[2 * 3 + j];
            R[i * 3 + j] = (i == j ? 1.0f : 0.0f) + s * K[i * 3 + j] + c1 * kk;
        }
}

typedef struct flame_call {
    const dpt_flame *f;
    int n_frames, shape_per_frame, no_head;
    const float *shape, *exp, *pose;
    const float *base;       /* (3V): v_template + shape blend when one shape, else v_template */
    const float *j_base;     /* (J, 3): the joints of `base` */
    float *coef;             /* (n_frames, K): [shape | exp | pose feature] rows */
    float *rel;              /* (n_frames, J, 12): relative transforms A_j (3 × 4, row-major) */
    float *vertices;
} flame_call;

/* Rotations, joints and the relative transforms of frame t; its GEMM coefficient row. */
static void frame_setup(const flame_call *c, int t) {
    const dpt_flame *f = c->f;
    const int J = f->J, K = f->K, NS = FLAME_N_SHAPE, NB = f->n_betas;
    float *row = c->coef + (size_t)t * K;
    const float *sh = c->shape_per_frame ? c->shape + (size_t)t * NS : NULL;
    const float *ex = c->exp + (size_t)t * FLAME_N_EXP;
    const float *po = c->pose + (size_t)t * 6;
    if (sh) memcpy(row, sh, sizeof(float) * NS);
    else memset(row, 0, sizeof(float) * NS);
    memcpy(row + NS, ex, sizeof(float) * FLAME_N_EXP);

    /* full pose: [global (0 with no_head), neck 0, jaw, eyes 0] */
    float R[FLAME_N_JOINTS][9];
    const float zero[3] = {0, 0, 0};
    for (int j = 0; j < J; j++)
        rodrigues(j == 0 && !c->no_head ? po : j == FLAME_JAW ? po + 3 : zero, R[j]);
    /* pose feature (R_j − I) for j ≥ 1, row-major 3 × 3 each */
    float *pf = row + NB;
    for (int j = 1; j < J; j++)
        for (int k = 0; k < 9; k++) pf[(j - 1) * 9 + k] = R[j][k] - (k % 4 == 0 ? 1.0f : 0.0f);

    /* joints = j_base + betas · J_dirs (the rows of the betas present in `row`) */
    float jt[FLAME_N_JOINTS * 3];
    for (int i = 0; i < J * 3; i++) {
        double s = c->j_base[i];
        for (int l = sh ? 0 : NS; l < NB; l++) s += (double)row[l] * f->j_dirs[(size_t)l * J * 3 + i];
        jt[i] = (float)s;
    }
    /* chain: G_j = G_parent · [R_j | joint_j − joint_parent]; rel A_j = [G_R | G_t − G_R · joint_j] */
    float G[FLAME_N_JOINTS][12];
    for (int j = 0; j < J; j++) {
        const int p = f->parents[j];
        float loc[12];
        for (int a = 0; a < 3; a++) {
            for (int b = 0; b < 3; b++) loc[a * 4 + b] = R[j][a * 3 + b];
            loc[a * 4 + 3] = jt[j * 3 + a] - (p >= 0 ? jt[p * 3 + a] : 0.0f);
        }
        if (p < 0) {
            memcpy(G[j], loc, sizeof loc);
        } else {
            for (int a = 0; a < 3; a++) {
                for (int b = 0; b < 4; b++) {
                    float s = G[p][a * 4 + 0] * loc[0 * 4 + b] + G[p][a * 4 + 1] * loc[1 * 4 + b] +
                              G[p][a * 4 + 2] * loc[2 * 4 + b];
                    G[j][a * 4 + b] = s + (b == 3 ? G[p][a * 4 + 3] : 0.0f);
                }
            }
        }
    }
    float *A = c->rel + (size_t)t * J * 12;
    for (int j = 0; j < J; j++)
        for (int a = 0; a < 3; a++) {
            const float *g = G[j] + a * 4;
            A[j * 12 + a * 4 + 0] = g[0];
            A[j * 12 + a * 4 + 1] = g[1];
            A[j * 12 + a * 4 + 2] = g[2];
            A[j * 12 + a * 4 + 3] = g[3] - (g[0] * jt[j * 3] + g[1] * jt[j * 3 + 1] + g[2] * jt[j * 3 + 2]);
        }
}

/* v = (Σ_j w_vj A_j) · [base + offsets; 1], in place on frame t's vertices (which hold the offsets). */
static void frame_skin(const flame_call *c, int t) {
    const dpt_flame *f = c->f;
    const int V = f->V, J = f->J;
    const float *A = c->rel + (size_t)t * J * 12;
    float *v = c->vertices + (size_t)t * V * 3;
    for (int i = 0; i < V; i++) {
        const float *w = f->weights + (size_t)i * J;
        float T[12] = {0};
        for (int j = 0; j < J; j++) {
            const float wj = w[j];
            const float *a = A + j * 12;
            for (int k = 0; k < 12; k++) T[k] += wj * a[k];
        }
        const float x = v[i * 3 + 0] + c->base[i * 3 + 0], y = v[i * 3 + 1] + c->base[i * 3 + 1],
                    z = v[i * 3 + 2] + c->base[i * 3 + 2];
        v[i * 3 + 0] = T[0] * x + T[1] * y + T[2] * z + T[3];
        v[i * 3 + 1] = T[4] * x + T[5] * y + T[6] * z + T[7];
        v[i * 3 + 2] = T[8] * x + T[9] * y + T[10] * z + T[11];
    }
}

static void vertices_task(void *ctx, dpt_k_region *r) {
    const flame_call *c = ctx;
    const dpt_flame *f = c->f;
    int t0, t1;
    dpt_k_region_range(r, c->n_frames, &t0, &t1);
    if (t0 >= t1) return;
    for (int t = t0; t < t1; t++) frame_setup(c, t);
    /* offsets (frames, 3V) = coef (frames, K0..K) · dirs (K0..K, 3V); one shape: K0 = 100 */
    const int k0 = c->shape_per_frame ? 0 : FLAME_N_SHAPE;
    const int n = f->V * 3;
    dpt_k_sgemm(0, t1 - t0, n, f->K - k0, 1.0f, c->coef + (size_t)t0 * f->K + k0, f->K,
                f->dirs + (size_t)k0 * n, n, 0.0f, c->vertices + (size_t)t0 * n, n);
    for (int t = t0; t < t1; t++) frame_skin(c, t);
}

dpt_status dpt_flame_vertices(const dpt_flame *f, int n_frames, const float *shape,
                              int shape_per_frame, const float *exp, const float *pose,
                              const dpt_flame_params *params, float *vertices, dpt_error *err) {
    if (!f) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_vertices: flame is NULL");
    if (n_frames < 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_vertices: n_frames must be >= 1, got %d", n_frames);
    if (!shape || !exp || !pose || !vertices)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_vertices: %s is NULL",
                        !shape ? "shape" : !exp ? "exp" : !pose ? "pose" : "vertices");
    if (shape_per_frame != 0 && shape_per_frame != 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_vertices: shape_per_frame must be 0 or 1, got %d",
                        shape_per_frame);
    dpt_flame_params p = flame_defaults;
    dpt_status ps = dpt_sized_take(params, &p, sizeof p, DPT_SIZE_THROUGH(dpt_flame_params, n_threads),
                                   "dpt_flame_params", err);
    if (ps != DPT_OK) return ps;
    if (p.n_threads < 0 || p.n_threads > DPT_MAX_THREADS)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dpt_flame_vertices: n_threads must be in 0..%d (0 = all cores), got %d",
                        DPT_MAX_THREADS, p.n_threads);
    const size_t T = (size_t)n_frames;
    if (!dpt_all_finite(shape, (shape_per_frame ? T : 1) * FLAME_N_SHAPE))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_vertices: shape coefficients contain NaN or Inf");
    if (!dpt_all_finite(exp, T * FLAME_N_EXP))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_vertices: expression coefficients contain NaN or Inf");
    if (!dpt_all_finite(pose, T * 6))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_flame_vertices: pose coefficients contain NaN or Inf");

    const size_t V3 = (size_t)f->V * 3;
    size_t n_coef, n_rel;
    if (!dpt_mul_ok(T, (size_t)f->K, &n_coef) || !dpt_mul_ok(T, (size_t)f->J * 12, &n_rel))
        return dpt_fail(err, DPT_ERR_NOMEM, "dpt_flame_vertices: %d frames are too many", n_frames);
    float *coef = dpt_alloc(sizeof(float) * n_coef);
    float *rel = malloc(sizeof(float) * n_rel);
    float *base = malloc(sizeof(float) * (V3 + (size_t)f->J * 3));
    if (!coef || !rel || !base) {
        dpt_alloc_free(coef);
        free(rel);
        free(base);
        return dpt_fail(err, DPT_ERR_NOMEM, "dpt_flame_vertices: out of memory for %d frames", n_frames);
    }
    /* the shape part once: base = v_template (+ shape blend), its joints */
    float *j_base = base + V3;
    memcpy(base, f->v_template, sizeof(float) * V3);
    memcpy(j_base, f->j_template, sizeof(float) * (size_t)f->J * 3);
    if (!shape_per_frame) {
        dpt_k_sgemm(0, 1, (int)V3, FLAME_N_SHAPE, 1.0f, shape, FLAME_N_SHAPE, f->dirs, (int)V3, 1.0f,
                    base, (int)V3);
        for (int i = 0; i < f->J * 3; i++) {
            double s = j_base[i];
            for (int l = 0; l < FLAME_N_SHAPE; l++) s += (double)shape[l] * f->j_dirs[(size_t)l * f->J * 3 + i];
            j_base[i] = (float)s;
        }
    }
    flame_call c = {f, n_frames, shape_per_frame, p.no_head != 0, shape, exp, pose, base, j_base,
                    coef, rel, vertices};
    int nt = p.n_threads > 0 ? p.n_threads : dpt_k_cores();
    if (nt > n_frames) nt = n_frames;
    dpt_k_team *team = nt > 1 ? dpt_k_team_new(nt) : NULL;   /* the call's own threads */
    dpt_k_parallel(team, nt, vertices_task, &c);
    dpt_k_team_free(team);
    dpt_alloc_free(coef);
    free(rel);
    free(base);
    return DPT_OK;
}
