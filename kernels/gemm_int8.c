/* int8 GEMMs from weights quantised once (kernels.h, "int8 compute").
 *
 * Weights: per output column j, symmetric s8 with scale sb[j] = max|B[j, :]| / 127. Activations:
 * per row i of A (one token), asymmetric u8 over [min(0, min A[i, :]), max(0, max A[i, :])] with
 * scale sa[i] and zero point zp[i]. Integer products are summed exactly in int32 (|sum| ≤ 255 ·
 * 127 · k < 2^31 for k ≤ DPT_K_INT8_MAX_K), then
 *   C[i, j] = alpha · (float(acc − zp[i] · colsum[j]) · (sa[i] · sb[j])) + beta · C[i, j]
 * in that order, unfused, in every micro-kernel and in the reference: results are the same bits
 * on every path (AVX512-VNNI, aarch64 SDOT / I8MM, portable) and for every thread count.
 *
 * Packing (one depth block: the whole k): panels of NR = 32 columns, each ⌈k/4⌉ steps of 32 words,
 * a word the 4 bytes of depths 4q … 4q+3 of one column (zero-padded); then colsum (int32, npad)
 * and sb (float, npad). The layout does not depend on the micro-kernel, so the kernel is chosen
 * per call. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kernels.h"
#include "parallel.h"

#define NR 32
#define MR 12

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* ---- quantisation (the rules every path follows) --------------------------------------------- */

static inline uint8_t quant_u8(float a, float inv, int32_t zp) {
    const float f = a * inv;
    /* NaN or out of int32 (the vector conversion gives INT_MIN there, clamped to 0) */
    if (!(f > -2147483648.0f && f < 2147483648.0f)) return 0;
    int32_t v = (int32_t)nearbyintf(f) + zp;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void row_extremes(const float *a, int k, float *lo, float *hi) {
    float l = 0.0f, h = 0.0f;
    for (int p = 0; p < k; p++) { /* NaN is skipped, as by vminps / vmaxps with the running value second */
        l = a[p] < l ? a[p] : l;
        h = a[p] > h ? a[p] : h;
    }
    *lo = l;
    *hi = h;
}

/* Portable A packing: rows 0 … mr−1 of a [lda], all k depths, quantised → ap (⌈k/4⌉ × MR words;
 * rows ≥ mr zero, their sa and zp 0). */
static void pack_a_portable(const float *a, int lda, int mr, int k, uint32_t *ap, float *sa, int32_t *zp) {
    const int kq = ceil_div(k, 4);
    uint8_t *bytes = (uint8_t *)ap;
    for (int i = 0; i < MR; i++) {
        if (i >= mr) {
            sa[i] = 0.0f;
            zp[i] = 0;
            for (int q = 0; q < kq; q++) memset(bytes + ((size_t)q * MR + i) * 4, 0, 4);
            continue;
        }
        const float *row = a + (size_t)i * lda;
        float lo, hi, inv;
        row_extremes(row, k, &lo, &hi);
        dpt_k_int8_row_params(lo, hi, &sa[i], &inv, &zp[i]);
        for (int q = 0; q < kq; q++)
            for (int t = 0; t < 4; t++) {
                const int p = 4 * q + t;
                bytes[((size_t)q * MR + i) * 4 + t] = p < k ? quant_u8(row[p], inv, zp[i]) : 0;
            }
    }
}

/* C element from the exact integer sum (shared by the portable kernel and the reference). */
static inline float epilogue(int32_t acc, int32_t zp, int32_t cs, float sa, float sb, float alpha,
                             float beta, float c) {
    const float s = sa * sb;
    float r = (float)(acc - zp * cs) * s;
    r = alpha * r;
    if (beta != 0.0f) {
        const float bc = beta * c;
        r = r + bc;
    }
    return r;
}

static void ukr_portable(int kq, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr,
                         int nr, float alpha, float beta, const float *sa, const int32_t *zp,
                         const float *sb, const int32_t *cs) {
    int32_t acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int q = 0; q < kq; q++) {
        const uint8_t *a = (const uint8_t *)(ap + (size_t)q * MR);
        const int8_t *b = (const int8_t *)(bp + (size_t)q * NR);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] += a[4 * i] * b[4 * j] + a[4 * i + 1] * b[4 * j + 1] +
                             a[4 * i + 2] * b[4 * j + 2] + a[4 * i + 3] * b[4 * j + 3];
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *cij = c + (size_t)i * ldc + j;
            *cij = epilogue(acc[i][j], zp[i], cs[j], sa[i], sb[j], alpha, beta, beta != 0.0f ? *cij : 0.0f);
        }
}

static const dpt_k_ukr_int8 ukr_int8_portable = {MR, NR, 120, ukr_portable, pack_a_portable};

/* ---- selection ------------------------------------------------------------------------------ */

#if defined(DPT_K_HAVE_NEON_BUILD) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1ul << 13)
#endif
#endif

/* The native kernels of this build, best first; a CPU gets the first it has. */
typedef struct int8_kernel {
    const char *name, *label; /* dpt_k_int8_kernel, model info's precision_name */
    const dpt_k_ukr_int8 *u;
    int (*has)(void);
} int8_kernel;

#if defined(DPT_K_HAVE_AVX2_BUILD) && defined(__GNUC__)
static int has_vnni(void) {
    __builtin_cpu_init();
    /* libgcc's checks include the OS's ZMM state support (XCR0) */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}
#endif
#if defined(DPT_K_HAVE_NEON_BUILD) && defined(__linux__)
static int has_i8mm(void) { return (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0; }
static int has_sdot(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }
#endif

static const int8_kernel kernels[] = {
#if defined(DPT_K_HAVE_AVX2_BUILD) && defined(__GNUC__)
    {"AVX512-VNNI", "int8 (AVX512-VNNI)", &dpt_k_ukr_avx512vnni, has_vnni},
#endif
#if defined(DPT_K_HAVE_NEON_BUILD) && defined(__linux__)
    {"I8MM", "int8 (I8MM)", &dpt_k_ukr_neon_i8mm, has_i8mm},
    {"SDOT", "int8 (SDOT)", &dpt_k_ukr_neon_sdot, has_sdot},
#endif
    {NULL, NULL, NULL, NULL},
};

/* index of the first native kernel considered (tests pick a weaker one by dpt_k_set_int8_kernel) */
static atomic_int g_first;

static const int8_kernel *native_kernel(void) {
    for (int i = atomic_load(&g_first); kernels[i].name; i++)
        if (kernels[i].has()) return &kernels[i];
    return NULL;
}

static int have_native(void) { return native_kernel() != NULL; }

static dpt_k_choice g_int8 = {0, "DPT_INT8", "portable", DPT_K_INT8_NATIVE, DPT_K_INT8_PORTABLE, have_native};

int dpt_k_int8_native(void) { return dpt_k_choice_get(&g_int8) == DPT_K_INT8_NATIVE; }

int dpt_k_set_int8_native(int on) {
    if (on) atomic_store(&g_first, 0);
    return dpt_k_choice_set(&g_int8, on);
}

static const int8_kernel *active_kernel(void) { return dpt_k_int8_native() ? native_kernel() : NULL; }

const char *dpt_k_int8_kernel(void) {
    const int8_kernel *k = active_kernel();
    return k ? k->name : "portable";
}

const char *dpt_k_int8_label(void) {
    const int8_kernel *k = active_kernel();
    return k ? k->label : "int8 (portable)";
}

int dpt_k_set_int8_kernel(const char *name) {
    if (!strcmp(name, "portable")) return dpt_k_set_int8_native(0);
    for (int i = 0; kernels[i].name; i++)
        if (!strcmp(name, kernels[i].name)) {
            if (!kernels[i].has()) return -1;
            atomic_store(&g_first, i);
            return dpt_k_choice_set(&g_int8, 1);
        }
    return -1;
}

static const dpt_k_ukr_int8 *active_ukr(void) {
    const int8_kernel *k = active_kernel();
    return k ? k->u : &ukr_int8_portable;
}

/* ---- packing -------------------------------------------------------------------------------- */

static size_t panel_bytes(int n, int k) { return (size_t)ceil_div(n, NR) * NR * (size_t)ceil_div(k, 4) * 4; }

size_t dpt_k_packed_int8_bytes(int n, int k) {
    return panel_bytes(n, k) + (size_t)ceil_div(n, NR) * NR * (sizeof(int32_t) + sizeof(float));
}

static float b_at(const float *b, const uint16_t *bh, int k, int j, int p) {
    float v;
    if (bh)
        dpt_k_half_to_float_ref(bh + (size_t)j * k + p, &v, 1);
    else
        v = b[(size_t)j * k + p];
    return v;
}

int dpt_k_pack_int8(const float *b, const uint16_t *bh, int n, int k, void *buf, dpt_k_packed *out) {
    if (n < 1 || k < 1 || k > DPT_K_INT8_MAX_K) return -1;
    const int kq = ceil_div(k, 4), npad = ceil_div(n, NR) * NR;
    uint8_t *w = buf;
    int32_t *colsum = (int32_t *)(void *)(w + panel_bytes(n, k));
    float *scale = (float *)(void *)(colsum + npad);
    memset(buf, 0, dpt_k_packed_int8_bytes(n, k));
    for (int j = 0; j < n; j++) {
        float mx = 0.0f;
        for (int p = 0; p < k; p++) {
            const float v = fabsf(b_at(b, bh, k, j, p));
            mx = v > mx ? v : mx;
        }
        const float inv = mx > 0.0f ? 127.0f / mx : 0.0f;
        scale[j] = mx / 127.0f;
        uint8_t *col = w + (size_t)(j / NR) * NR * kq * 4 + (size_t)(j % NR) * 4;
        int32_t s = 0;
        for (int p = 0; p < k; p++) {
            float f = nearbyintf(b_at(b, bh, k, j, p) * inv);
            const int v = f < -127.0f ? -127 : f > 127.0f ? 127 : (int)f;
            col[(size_t)(p / 4) * NR * 4 + p % 4] = (uint8_t)(int8_t)v;
            s += v;
        }
        colsum[j] = s;
    }
    memset(out, 0, sizeof *out);
    out->n = n;
    out->k = k;
    out->kcb = k;
    out->npad = npad;
    out->p = buf;
    out->int8 = 1;
    out->colsum = colsum;
    out->scale = scale;
    return 0;
}

/* ---- GEMM ----------------------------------------------------------------------------------- */

typedef struct int8_args {
    int m, n, col0, lda, ldc;
    float alpha, beta;
    const float *a;
    float *c;
    const dpt_k_packed *pk;
    const dpt_k_ukr_int8 *u;
    int split_n;
    int failed; /* a thread could not get its A buffer (set before any C element is written) */
} int8_args;

/* rows per A block: the quantised panels of all its rows stay in L2 (≤ 256 KiB) */
static int block_rows(const dpt_k_ukr_int8 *u, int k, int m) {
    int mc = (256 << 10) / (k > 0 ? k : 1) / u->mr * u->mr;
    if (mc < u->mr) mc = u->mr;
    if (mc > u->mc) mc = u->mc;
    if (m < mc) mc = ceil_div(m, u->mr) * u->mr;
    return mc;
}

static void int8_block(int8_args *g, int i0, int i1, int j0, int j1, void *mem) {
    const dpt_k_ukr_int8 *u = g->u;
    const dpt_k_packed *pk = g->pk;
    const int MRu = u->mr, kq = ceil_div(pk->k, 4);
    const int mcb = block_rows(u, pk->k, i1 - i0);
    uint32_t *ap = mem;
    float *sa = (float *)(void *)(ap + (size_t)mcb * kq);
    int32_t *zp = (int32_t *)(void *)(sa + mcb);
    const uint8_t *w = (const uint8_t *)(const void *)pk->p;
    for (int ic = i0; ic < i1; ic += mcb) {
        const int mc = i1 - ic < mcb ? i1 - ic : mcb;
        for (int ir = 0; ir < mc; ir += MRu)
            u->pack_a(g->a + (size_t)(ic + ir) * g->lda, g->lda, mc - ir < MRu ? mc - ir : MRu, pk->k,
                      ap + (size_t)ir * kq, sa + ir, zp + ir);
        for (int jr = j0; jr < j1; jr += NR) {
            const int nr = j1 - jr < NR ? j1 - jr : NR, col = g->col0 + jr;
            const uint32_t *bpan = (const uint32_t *)(const void *)(w + (size_t)col * kq * 4);
            for (int ir = 0; ir < mc; ir += MRu)
                u->fn(kq, ap + (size_t)ir * kq, bpan, g->c + (size_t)(ic + ir) * g->ldc + jr, g->ldc,
                      mc - ir < MRu ? mc - ir : MRu, nr, g->alpha, g->beta, sa + ir, zp + ir,
                      pk->scale + col, pk->colsum + col);
        }
    }
}

static size_t block_mem(const dpt_k_ukr_int8 *u, int k, int m) {
    const size_t mcb = (size_t)block_rows(u, k, m);
    return mcb * (size_t)ceil_div(k, 4) * 4 + mcb * (sizeof(float) + sizeof(int32_t));
}

typedef struct int8_task_ctx {
    int8_args *g;
    void **mem; /* one buffer per thread, allocated before the team runs */
} int8_task_ctx;

static void int8_task(void *ctx, int tid, int nt) {
    const int8_task_ctx *t = ctx;
    int i0, i1, j0, j1;
    dpt_k_gemm_strip(t->g->m, t->g->n, t->g->u->mr, NR, t->g->split_n, tid, nt, &i0, &i1, &j0, &j1);
    if (i1 > i0 && j1 > j0) int8_block(t->g, i0, i1, j0, j1, t->mem[tid]);
}

int dpt_k_int8_gemm_packed(int m, int n0, int n1, float alpha, const float *a, int lda,
                           const dpt_k_packed *b, float beta, float *c, int ldc) {
    if (!b->int8 || n0 < 0 || n1 > b->n || n0 > n1 || n0 % NR) return -1;
    const int n = n1 - n0;
    if (m <= 0 || n <= 0) return 0;
    const dpt_k_ukr_int8 *u = active_ukr();
    int8_args g = {.m = m, .n = n, .col0 = n0, .lda = lda, .ldc = ldc, .alpha = alpha, .beta = beta,
                   .a = a, .c = c, .pk = b, .u = u};
    dpt_k_team *team = dpt_k_gemm_team();
    const int nt = dpt_k_gemm_split(team, m, n, b->k, u->mr, NR, &g.split_n);
    void *mem[DPT_K_MAX_THREADS] = {0};
    /* each thread's A buffer for its own rows (at most all m of them) */
    const size_t bytes = block_mem(u, b->k, m);
    int ok = 1;
    for (int t = 0; t < nt && ok; t++) ok = posix_memalign(&mem[t], 64, bytes) == 0;
    if (ok) {
        int8_task_ctx ctx = {&g, mem};
        dpt_k_team_run(team, nt, int8_task, &ctx);
    }
    for (int t = 0; t < nt; t++) free(mem[t]);
    return ok ? 0 : -1;
}

/* ---- reference ------------------------------------------------------------------------------ */

void dpt_k_gemm_int8_ref(int m, int n, int k, float alpha, const float *a, int lda, const dpt_k_packed *b,
                         int n0, float beta, float *c, int ldc) {
    const int kq = ceil_div(k, 4);
    const uint8_t *w = (const uint8_t *)(const void *)b->p;
    uint8_t *qa = malloc((size_t)k + 1);
    if (!qa) return;
    for (int i = 0; i < m; i++) {
        const float *row = a + (size_t)i * lda;
        float lo, hi, sa, inv;
        int32_t zp;
        row_extremes(row, k, &lo, &hi);
        dpt_k_int8_row_params(lo, hi, &sa, &inv, &zp);
        for (int p = 0; p < k; p++) qa[p] = quant_u8(row[p], inv, zp);
        for (int j = 0; j < n; j++) {
            const int col = n0 + j;
            const uint8_t *cb = w + (size_t)(col / NR) * NR * kq * 4 + (size_t)(col % NR) * 4;
            int32_t acc = 0;
            for (int p = 0; p < k; p++) acc += qa[p] * (int8_t)cb[(size_t)(p / 4) * NR * 4 + p % 4];
            float *cij = c + (size_t)i * ldc + j;
            *cij = epilogue(acc, zp, b->colsum[col], sa, b->scale[col], alpha, beta, beta != 0.0f ? *cij : 0.0f);
        }
    }
    free(qa);
}
