/* bfloat16 and half-precision GEMMs from weights packed once (kernels.h, "bfloat16 compute",
 * "half-precision weights").
 *
 * Native packings: B (n, k) as 16-bit elements (bfloat16, or IEEE half for the f16 kind) in the
 * layout of the micro-kernel (dispatch.h, dpt_k_ukr_bf16.layout: pairs of depths for
 * gemm_avx512bf16.c, BFMMLA's 2 × 4 blocks for gemm_neon_bf16.c, rows of halves for
 * gemm_neon_f16.c): depth blocks of kcb depths (a multiple of the layout's step); in each, the
 * panels of all npad columns one after another, column j0's panel at element pc · npad + j0 · kp
 * (kp = kc rounded up to the step). A GEMM packs its activations per block (rounded to bfloat16,
 * or float32 as they are for f16) and runs the micro-kernel over its strip of C, on the team of
 * the calling thread like the float32 SGEMM; a C element always sums its depth blocks in the same
 * order, so results do not depend on the thread count.
 * Emulated packings (any CPU): the rounded weights as float32 panels of the float32 micro-kernel;
 * for bf16 the GEMM rounds a copy of the activations and runs the float32 SGEMM. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kernels.h"
#include "parallel.h"

static float bf16_round(float x) { return dpt_k_bf16_to_float(dpt_k_bf16_from_float(x)); }

static float half_value(uint16_t h) {
    float v;
    dpt_k_half_to_float_ref(&h, &v, 1);
    return v;
}

/* ---- selection ------------------------------------------------------------------------------ */

#if defined(DPT_K_HAVE_NEON_BUILD) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1ul << 14)
#endif
#endif

static const dpt_k_ukr_bf16 *native_ukr_bf16(void) {
#if defined(DPT_K_HAVE_AVX2_BUILD) && defined(__GNUC__)
    __builtin_cpu_init();
    /* libgcc's checks include the OS's ZMM state support (XCR0) */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512bf16"))
        return &dpt_k_ukr_avx512bf16;
#endif
#if defined(DPT_K_HAVE_NEON_BUILD) && defined(__linux__)
    if (getauxval(AT_HWCAP2) & HWCAP2_BF16) return &dpt_k_ukr_neon_bf16;
#endif
    return NULL;
}

static const dpt_k_ukr_bf16 *native_ukr_f16(void) {
#ifdef DPT_K_HAVE_NEON_BUILD
    return &dpt_k_ukr_neon_f16; /* FCVTL and FMLA: baseline aarch64 */
#else
    return NULL;
#endif
}

static int have_bf16(void) { return native_ukr_bf16() != NULL; }
static int have_f16(void) { return native_ukr_f16() != NULL; }

static dpt_k_choice g_bf16 = {0, "DPT_BF16", "emulate", DPT_K_BF16_NATIVE, DPT_K_BF16_EMULATED, have_bf16};
static dpt_k_choice g_f16 = {0, "DPT_F16", "emulate", DPT_K_F16_NATIVE, DPT_K_F16_EMULATED, have_f16};

int dpt_k_bf16_native(void) { return dpt_k_choice_get(&g_bf16) == DPT_K_BF16_NATIVE; }
int dpt_k_set_bf16_native(int on) { return dpt_k_choice_set(&g_bf16, on); }
int dpt_k_f16_native(void) { return dpt_k_choice_get(&g_f16) == DPT_K_F16_NATIVE; }
int dpt_k_set_f16_native(int on) { return dpt_k_choice_set(&g_f16, on); }

/* ---- packing -------------------------------------------------------------------------------- */

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

static int layout_step(const dpt_k_ukr_bf16 *u) {
    return u->layout == DPT_K_LAYOUT_MMLA ? 4 : u->layout == DPT_K_LAYOUT_ROWS ? 1 : 2;
}

/* equal depth blocks ≤ KC, a multiple of the layout's step */
static int kc_block_native(int k, const dpt_k_ukr_bf16 *u) {
    const int st = layout_step(u);
    int kcb = ceil_div(k, ceil_div(k, u->kc));
    kcb = ceil_div(kcb, st) * st;
    return kcb > u->kc ? u->kc / st * st : kcb;
}

/* element (16-bit) of depth p, column j within a panel */
static size_t elem_index(const dpt_k_ukr_bf16 *u, int p, int j) {
    const size_t NR = (size_t)u->nr;
    switch (u->layout) {
    case DPT_K_LAYOUT_MMLA: return (size_t)(p / 4) * 4 * NR + (size_t)(j / 2) * 8 + (size_t)(j % 2) * 4 + (size_t)(p % 4);
    case DPT_K_LAYOUT_ROWS: return (size_t)p * NR + (size_t)j;
    default: return (size_t)(p / 2) * 2 * NR + 2 * (size_t)j + (size_t)(p % 2);
    }
}

static size_t native_bytes(const dpt_k_ukr_bf16 *u, int n, int k) {
    const int kcb = kc_block_native(k, u), st = layout_step(u);
    size_t elems = 0;
    for (int pc = 0; pc < k; pc += kcb) {
        int kc = k - pc < kcb ? k - pc : kcb;
        elems += (size_t)ceil_div(kc, st) * st;
    }
    elems *= (size_t)ceil_div(n, u->nr) * u->nr;
    return (elems * sizeof(uint16_t) + 3) / 4 * 4;
}

size_t dpt_k_packed_bf16_bytes(int n, int k) {
    if (dpt_k_choice_get(&g_bf16) == DPT_K_BF16_NATIVE) return native_bytes(native_ukr_bf16(), n, k);
    return dpt_k_packed_floats(n, k) * sizeof(float);
}

size_t dpt_k_packed_f16_bytes(int n, int k) {
    if (dpt_k_choice_get(&g_f16) == DPT_K_F16_NATIVE) return native_bytes(native_ukr_f16(), n, k);
    return dpt_k_packed_floats(n, k) * sizeof(float);
}

static float b_at(const float *b, const uint16_t *bh, int k, int j, int p) {
    float v;
    if (bh)
        dpt_k_half_to_float_ref(bh + (size_t)j * k + p, &v, 1);
    else
        v = b[(size_t)j * k + p];
    return v;
}

static float half_round(float x) { return half_value(dpt_k_half_from_float(x)); }

/* float panels of the rounded weights, for the float32 micro-kernel */
static void pack_emulated(const float *b, const uint16_t *bh, int n, int k, void *buf, dpt_k_packed *out,
                          float (*rnd)(float), int kind) {
    float *tmp = malloc(sizeof(float) * (size_t)n * k);
    if (tmp) {
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++) tmp[(size_t)j * k + p] = rnd(b_at(b, bh, k, j, p));
        dpt_k_pack(tmp, NULL, n, k, buf, out);
        free(tmp);
    } else { /* row by row would need the panel layout: round in the packed panels instead */
        dpt_k_pack(b, bh, n, k, buf, out);
        size_t nf = dpt_k_packed_floats(n, k);
        for (size_t i = 0; i < nf; i++) out->p[i] = rnd(out->p[i]);
    }
    out->bf16 = kind;
}

static void pack_native(const dpt_k_ukr_bf16 *u, const float *b, const uint16_t *bh, int n, int k,
                        void *buf, dpt_k_packed *out, int kind) {
    const int NR = u->nr, kcb = kc_block_native(k, u), st = layout_step(u);
    uint16_t *w = buf;
    memset(out, 0, sizeof *out);
    out->ukr = u;
    out->n = n;
    out->k = k;
    out->kcb = kcb;
    out->npad = ceil_div(n, NR) * NR;
    out->p = buf;
    out->bf16 = kind;
    for (int pc = 0; pc < k; pc += kcb) {
        const int kc = k - pc < kcb ? k - pc : kcb, kp = ceil_div(kc, st) * st;
        uint16_t *blk = w + (size_t)pc * out->npad;
        for (int j = 0; j < out->npad; j++) {
            uint16_t *pan = blk + (size_t)(j / NR) * NR * kp;
            for (int p = 0; p < kp; p++) {
                uint16_t v = 0;
                if (j < n && p < kc) {
                    if (u->half)
                        v = bh ? bh[(size_t)j * k + pc + p] : dpt_k_half_from_float(b[(size_t)j * k + pc + p]);
                    else
                        v = dpt_k_bf16_from_float(b_at(b, bh, k, j, pc + p));
                }
                pan[elem_index(u, p, j % NR)] = v;
            }
        }
    }
}

void dpt_k_pack_bf16(const float *b, const uint16_t *bh, int n, int k, void *buf, dpt_k_packed *out) {
    if (dpt_k_choice_get(&g_bf16) != DPT_K_BF16_NATIVE)
        pack_emulated(b, bh, n, k, buf, out, bf16_round, DPT_K_BF16_EMULATED);
    else
        pack_native(native_ukr_bf16(), b, bh, n, k, buf, out, DPT_K_BF16_NATIVE);
}

void dpt_k_pack_f16(const float *b, const uint16_t *bh, int n, int k, void *buf, dpt_k_packed *out) {
    if (dpt_k_choice_get(&g_f16) != DPT_K_F16_NATIVE) {
        if (bh) { /* halves already: plain float panels, exact */
            dpt_k_pack(NULL, bh, n, k, buf, out);
            out->bf16 = DPT_K_F16_EMULATED;
        } else {
            pack_emulated(b, bh, n, k, buf, out, half_round, DPT_K_F16_EMULATED);
        }
    } else {
        pack_native(native_ukr_f16(), b, bh, n, k, buf, out, DPT_K_F16_NATIVE);
    }
}

/* ---- GEMM from a native packing ------------------------------------------------------------- */

typedef struct bf16_args {
    int m, n, col0, lda, ldc;
    float alpha, beta;
    const float *a;
    float *c;
    const dpt_k_packed *pk;
    const dpt_k_ukr_bf16 *u;
    int split_n;
} bf16_args;

/* C[i0:i1, j0:j1] element by element from the packed panels (no memory for the A panels). */
static void bf16_block_scalar(const bf16_args *g, int i0, int i1, int j0, int j1) {
    const dpt_k_packed *b = g->pk;
    const dpt_k_ukr_bf16 *u = g->u;
    const int NR = u->nr, st = layout_step(u);
    const uint16_t *w = (const uint16_t *)(const void *)b->p;
    for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) {
            const int col = g->col0 + j;
            float *cij = g->c + (size_t)i * g->ldc + j;
            for (int pc = 0; pc < b->k; pc += b->kcb) {
                const int kc = b->k - pc < b->kcb ? b->k - pc : b->kcb, kp = ceil_div(kc, st) * st;
                const uint16_t *pan = w + (size_t)pc * b->npad + (size_t)(col / NR) * NR * kp;
                float acc = 0.0f;
                for (int p = 0; p < kc; p++) {
                    const uint16_t e = pan[elem_index(u, p, col % NR)];
                    const float av = g->a[(size_t)i * g->lda + pc + p];
                    acc += u->half ? av * half_value(e) : bf16_round(av) * dpt_k_bf16_to_float(e);
                }
                const float beta = pc == 0 ? g->beta : 1.0f;
                *cij = beta == 0.0f ? g->alpha * acc : g->alpha * acc + beta * *cij;
            }
        }
}

/* C[i0:i1, j0:j1] (j relative to col0), the loop nest of gemm.c with B packed beforehand. */
static void bf16_block(const bf16_args *g, int i0, int i1, int j0, int j1) {
    const dpt_k_ukr_bf16 *u = g->u;
    const dpt_k_packed *pk = g->pk;
    const int MR = u->mr, NR = u->nr, k = pk->k, kcb = pk->kcb, st = layout_step(u);
    if (i1 <= i0 || j1 <= j0) return;
    const int m = i1 - i0;
    const int mcb = m < u->mc ? ceil_div(m, MR) * MR : u->mc;
    /* A: 32-bit words per row and depth block (float32 per depth for halves, else bf16 pairs) */
    const size_t a_row_words = u->half ? (size_t)kcb : (size_t)(kcb / 2 + 1);
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(uint32_t) * (size_t)mcb * a_row_words) != 0) {
        bf16_block_scalar(g, i0, i1, j0, j1);
        return;
    }
    uint32_t *ap = mem;
    const uint16_t *w = (const uint16_t *)(const void *)pk->p;
    for (int pc = 0; pc < k; pc += kcb) {
        const int kc = k - pc < kcb ? k - pc : kcb, kp = ceil_div(kc, st) * st, kq = kp / st;
        const size_t aw = u->half ? (size_t)kp : (size_t)kp / 2; /* words per row of this block */
        const float beta = pc == 0 ? g->beta : 1.0f;
        const uint16_t *blk = w + (size_t)pc * pk->npad;
        for (int ic = i0; ic < i1; ic += mcb) {
            const int mc = i1 - ic < mcb ? i1 - ic : mcb;
            for (int ir = 0; ir < mc; ir += MR)
                u->pack_a(g->a + (size_t)(ic + ir) * g->lda + pc, g->lda, mc - ir < MR ? mc - ir : MR,
                          kc, ap + (size_t)ir * aw);
            for (int jr = j0; jr < j1; jr += NR) {
                const int nr = j1 - jr < NR ? j1 - jr : NR;
                const uint32_t *bpan = (const uint32_t *)(const void *)(blk + (size_t)(g->col0 + jr) * kp);
                for (int ir = 0; ir < mc; ir += MR)
                    u->fn(kq, ap + (size_t)ir * aw, bpan, g->c + (size_t)(ic + ir) * g->ldc + jr, g->ldc,
                          mc - ir < MR ? mc - ir : MR, nr, g->alpha, beta);
            }
        }
    }
    free(mem);
}

static void bf16_task(void *ctx, int tid, int nt) {
    const bf16_args *g = ctx;
    int i0, i1, j0, j1;
    dpt_k_gemm_strip(g->m, g->n, g->u->mr, g->u->nr, g->split_n, tid, nt, &i0, &i1, &j0, &j1);
    bf16_block(g, i0, i1, j0, j1);
}

int dpt_k_bf16_gemm_packed(int m, int n0, int n1, float alpha, const float *a, int lda,
                           const dpt_k_packed *b, float beta, float *c, int ldc) {
    const dpt_k_ukr_bf16 *u = b->ukr;
    if (n0 < 0 || n1 > b->n || n0 > n1 || n0 % u->nr) return -1;
    const int n = n1 - n0;
    if (m <= 0 || n <= 0) return 0;
    bf16_args g = {.m = m, .n = n, .col0 = n0, .lda = lda, .ldc = ldc, .alpha = alpha, .beta = beta,
                   .a = a, .c = c, .pk = b, .u = u};
    dpt_k_team *team = dpt_k_gemm_team();
    const int nt = dpt_k_gemm_split(team, m, n, b->k, u->mr, u->nr, &g.split_n);
    dpt_k_team_run(team, nt, bf16_task, &g);
    return 0;
}

/* ---- reference ------------------------------------------------------------------------------ */

void dpt_k_gemm_bf16_ref(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                         int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += (double)bf16_round(a[(size_t)i * lda + p]) * (double)bf16_round(b[(size_t)j * ldb + p]);
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * *cij);
        }
}
