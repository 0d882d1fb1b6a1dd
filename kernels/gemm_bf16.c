/* bfloat16 GEMMs from weights packed once (kernels.h, "bfloat16 compute").
 *
 * Native packing (AVX512-BF16 CPUs): B (n, k) rounded to bfloat16, pairs of depths in one 32-bit
 * word, laid out as the micro-kernel (gemm_avx512bf16.c) reads it: depth blocks of kcb (even)
 * depths; in each, the panels of all npad columns one after another, column j0's panel at word
 * (pc / 2) · npad + j0 · kq (kq = ⌈kc / 2⌉ words per column of that block). A GEMM packs its
 * activations per block (rounded to bfloat16) and runs the micro-kernel over its strip of C, on
 * the team of the calling thread like the float32 SGEMM; a C element always sums its depth
 * blocks in the same order, so results do not depend on the thread count.
 * Emulated packing (any CPU): the rounded weights as float32 panels of the float32 micro-kernel;
 * the GEMM rounds a copy of the activations and runs the float32 SGEMM. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kernels.h"
#include "parallel.h"

uint16_t dpt_k_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u); /* zero, denormal: ±0 */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float dpt_k_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static float bf16_round(float x) { return dpt_k_bf16_to_float(dpt_k_bf16_from_float(x)); }

/* ---- selection ------------------------------------------------------------------------------ */

static const dpt_k_ukr_bf16 *native_ukr(void) {
#if defined(DPT_K_HAVE_AVX2_BUILD) && defined(__GNUC__)
    __builtin_cpu_init();
    /* libgcc's checks include the OS's ZMM state support (XCR0) */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512bf16"))
        return &dpt_k_ukr_avx512bf16;
#endif
    return NULL;
}

static atomic_int g_mode; /* 0: not decided, 1: native, 2: emulated */

static int mode(void) {
    int m = atomic_load(&g_mode);
    if (m) return m;
    const char *env = getenv("DPT_BF16");
    m = native_ukr() && dpt_k_arch_active() == DPT_K_ARCH_AVX2 && !(env && !strcmp(env, "emulate"))
            ? DPT_K_BF16_NATIVE
            : DPT_K_BF16_EMULATED;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_mode, &expected, m)) return expected;
    return m;
}

int dpt_k_bf16_native(void) { return mode() == DPT_K_BF16_NATIVE; }

int dpt_k_set_bf16_native(int on) {
    if (on && !native_ukr()) return -1;
    atomic_store(&g_mode, on ? DPT_K_BF16_NATIVE : DPT_K_BF16_EMULATED);
    return 0;
}

/* ---- packing -------------------------------------------------------------------------------- */

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* equal depth blocks ≤ KC, even (pairs) */
static int kc_block_bf16(int k, int KC) {
    int kcb = ceil_div(k, ceil_div(k, KC));
    return kcb + (kcb & 1) > KC ? KC : kcb + (kcb & 1);
}

size_t dpt_k_packed_bf16_bytes(int n, int k) {
    if (mode() == DPT_K_BF16_NATIVE) {
        const dpt_k_ukr_bf16 *u = native_ukr();
        const int kcb = kc_block_bf16(k, u->kc);
        size_t words = 0;
        for (int pc = 0; pc < k; pc += kcb) {
            int kc = k - pc < kcb ? k - pc : kcb;
            words += (size_t)ceil_div(kc, 2);
        }
        return words * (size_t)ceil_div(n, u->nr) * u->nr * sizeof(uint32_t);
    }
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

void dpt_k_pack_bf16(const float *b, const uint16_t *bh, int n, int k, void *buf, dpt_k_packed *out) {
    if (mode() != DPT_K_BF16_NATIVE) {
        /* float panels of the rounded weights, for the float32 micro-kernel */
        float *tmp = malloc(sizeof(float) * (size_t)n * k);
        if (tmp) {
            for (int j = 0; j < n; j++)
                for (int p = 0; p < k; p++) tmp[(size_t)j * k + p] = bf16_round(b_at(b, bh, k, j, p));
            dpt_k_pack(tmp, NULL, n, k, buf, out);
            free(tmp);
        } else { /* row by row would need the panel layout: round in the packed panels instead */
            dpt_k_pack(b, bh, n, k, buf, out);
            size_t nf = dpt_k_packed_floats(n, k);
            for (size_t i = 0; i < nf; i++) out->p[i] = bf16_round(out->p[i]);
        }
        out->bf16 = DPT_K_BF16_EMULATED;
        return;
    }
    const dpt_k_ukr_bf16 *u = native_ukr();
    const int NR = u->nr, kcb = kc_block_bf16(k, u->kc);
    uint32_t *w = buf;
    memset(out, 0, sizeof *out);
    out->ukr = u;
    out->n = n;
    out->k = k;
    out->kcb = kcb;
    out->npad = ceil_div(n, NR) * NR;
    out->p = buf;
    out->bf16 = DPT_K_BF16_NATIVE;
    for (int pc = 0; pc < k; pc += kcb) {
        const int kc = k - pc < kcb ? k - pc : kcb, kq = ceil_div(kc, 2);
        uint32_t *blk = w + (size_t)(pc / 2) * out->npad;
        for (int j = 0; j < out->npad; j++) {
            uint32_t *col = blk + (size_t)(j / NR) * NR * kq + j % NR;
            for (int q = 0; q < kq; q++) {
                uint32_t lo = 0, hi = 0;
                if (j < n) {
                    lo = dpt_k_bf16_from_float(b_at(b, bh, k, j, pc + 2 * q));
                    if (2 * q + 1 < kc) hi = dpt_k_bf16_from_float(b_at(b, bh, k, j, pc + 2 * q + 1));
                }
                col[(size_t)q * NR] = lo | hi << 16;
            }
        }
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
    const int NR = g->u->nr;
    const uint32_t *w = (const uint32_t *)(const void *)b->p;
    for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) {
            const int col = g->col0 + j;
            float *cij = g->c + (size_t)i * g->ldc + j;
            for (int pc = 0; pc < b->k; pc += b->kcb) {
                const int kc = b->k - pc < b->kcb ? b->k - pc : b->kcb, kq = ceil_div(kc, 2);
                const uint32_t *pan = w + (size_t)(pc / 2) * b->npad + (size_t)(col / NR) * NR * kq;
                float acc = 0.0f;
                for (int p = 0; p < kc; p++) {
                    uint32_t word = pan[(size_t)(p / 2) * NR + col % NR];
                    float bv = dpt_k_bf16_to_float((uint16_t)(p & 1 ? word >> 16 : word & 0xffffu));
                    acc += bf16_round(g->a[(size_t)i * g->lda + pc + p]) * bv;
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
    const int MR = u->mr, NR = u->nr, k = pk->k, kcb = pk->kcb;
    if (i1 <= i0 || j1 <= j0) return;
    const int m = i1 - i0;
    const int mcb = m < u->mc ? ceil_div(m, MR) * MR : u->mc;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(uint32_t) * (size_t)mcb * (size_t)(kcb / 2 + 1)) != 0) {
        bf16_block_scalar(g, i0, i1, j0, j1);
        return;
    }
    uint32_t *ap = mem;
    const uint32_t *w = (const uint32_t *)(const void *)pk->p;
    for (int pc = 0; pc < k; pc += kcb) {
        const int kc = k - pc < kcb ? k - pc : kcb, kq = ceil_div(kc, 2);
        const float beta = pc == 0 ? g->beta : 1.0f;
        const uint32_t *blk = w + (size_t)(pc / 2) * pk->npad;
        for (int ic = i0; ic < i1; ic += mcb) {
            const int mc = i1 - ic < mcb ? i1 - ic : mcb;
            for (int ir = 0; ir < mc; ir += MR)
                u->pack_a(g->a + (size_t)(ic + ir) * g->lda + pc, g->lda, mc - ir < MR ? mc - ir : MR,
                          kc, ap + (size_t)ir * kq);
            for (int jr = j0; jr < j1; jr += NR) {
                const int nr = j1 - jr < NR ? j1 - jr : NR;
                const uint32_t *bpan = blk + (size_t)(g->col0 + jr) * kq;
                for (int ir = 0; ir < mc; ir += MR)
                    u->fn(kq, ap + (size_t)ir * kq, bpan, g->c + (size_t)(ic + ir) * g->ldc + jr, g->ldc,
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
