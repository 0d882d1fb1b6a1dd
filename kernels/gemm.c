/* Own SGEMM: blocked and packed (Goto's loop nest), a register-tile micro-kernel per architecture
 * (scalar in gemm_scalar.c, AVX2+FMA in gemm_avx2.c, NEON in gemm_neon.c) on the calling thread's
 * team (parallel.c). Packed-B GEMMs of other kinds are routed by ops.c, not from here.
 *
 *   C (m, n) [ldc] = alpha · A (m, k) [lda] · op(B) + beta · C,  op(B) = Bᵀ (B (n, k)) or B (k, n)
 * B may also be IEEE half precision (op(B) = Bᵀ only: an f16 model's weight matrix), converted
 * to float while it is packed; the packed panels, and everything after them, are the same.
 *
 * Loop nest of one thread over its part C[i0:i1, j0:j1]:
 *   for jc in steps of NC (columns):
 *     for pc in steps of KC (depth):            beta for this pass: beta at pc = 0, then 1
 *       pack B[pc:pc+kc, jc:jc+nc] → Bp: nc/NR panels, each kc steps of NR floats (zero-padded)
 *       for ic in steps of MC (rows):
 *         pack A[ic:ic+mc, pc:pc+kc] → Ap: mc/MR panels, each kc steps of MR floats (zero-padded)
 *         for jr in steps of NR: for ir in steps of MR: micro-kernel (MR, NR) tile of C
 * Ap (MC·KC floats) is sized for L2, one Bp panel (KC·NR) for L1, Bp (KC·NC) for L3.
 *
 * Threads: C is split into nt contiguous strips along its longer side (in whole tiles); each
 * thread packs what its strip needs. Inside a parallel region a GEMM runs on its own thread
 * alone (the region already splits the work).
 * Packing buffers come from a small set of slots kept between calls (no allocation in steady
 * state); if every slot is busy, or an allocation fails, the call allocates its own or, failing
 * that, falls back to an unpacked loop. Nothing here can fail. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kernels.h"
#include "parallel.h"

/* ---- packing -------------------------------------------------------------------------------- */

/* A[i0:i0+mc, p0:p0+kc] → ap: ⌈mc/MR⌉ panels of kc·MR floats, rows past mc zero. */
static inline void pack_a_t(const float *a, int lda, int mc, int kc, float *ap, const int MR) {
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        const float *src = a + (size_t)ir * lda;
        if (mr == MR) {
            for (int p = 0; p < kc; p++)
                for (int i = 0; i < MR; i++) ap[p * MR + i] = src[(size_t)i * lda + p];
        } else {
            for (int p = 0; p < kc; p++)
                for (int i = 0; i < MR; i++)
                    ap[p * MR + i] = i < mr ? src[(size_t)i * lda + p] : 0.0f;
        }
        ap += (size_t)kc * MR;
    }
}

static void pack_a(const float *a, int lda, int mc, int kc, float *ap, int MR) {
    switch (MR) { /* constant tile heights get unrolled copies */
    case 4: pack_a_t(a, lda, mc, kc, ap, 4); break;
    case 6: pack_a_t(a, lda, mc, kc, ap, 6); break;
    case 8: pack_a_t(a, lda, mc, kc, ap, 8); break;
    default: pack_a_t(a, lda, mc, kc, ap, MR); break;
    }
}

/* op(B)[p0:p0+kc, j0:j0+nc] → bp: ⌈nc/NR⌉ panels of kc·NR floats, columns past nc zero.
 * b points at op(B)[p0, j0]: B[j0, p0] if trans_b (B (n, k)), else B[p0, j0] (B (k, n)). */
static inline void pack_b_t(int trans_b, const float *b, int ldb, int kc, int nc, float *bp,
                            const int NR) {
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        if (trans_b) {
            const float *src = b + (size_t)jr * ldb;
            if (nr == NR) {
                /* blocks of 8 depth steps keep the NR source rows' lines in use together */
                int p = 0;
                for (; p + 8 <= kc; p += 8)
                    for (int j = 0; j < NR; j++)
                        for (int q = 0; q < 8; q++)
                            bp[(p + q) * NR + j] = src[(size_t)j * ldb + p + q];
                for (; p < kc; p++)
                    for (int j = 0; j < NR; j++) bp[p * NR + j] = src[(size_t)j * ldb + p];
            } else {
                for (int p = 0; p < kc; p++)
                    for (int j = 0; j < NR; j++)
                        bp[p * NR + j] = j < nr ? src[(size_t)j * ldb + p] : 0.0f;
            }
        } else {
            const float *src = b + jr;
            if (nr == NR) {
                for (int p = 0; p < kc; p++)
                    memcpy(bp + (size_t)p * NR, src + (size_t)p * ldb, sizeof(float) * NR);
            } else {
                for (int p = 0; p < kc; p++) {
                    for (int j = 0; j < nr; j++) bp[p * NR + j] = src[(size_t)p * ldb + j];
                    for (int j = nr; j < NR; j++) bp[p * NR + j] = 0.0f;
                }
            }
        }
        bp += (size_t)kc * NR;
    }
}

static void pack_b(int trans_b, const float *b, int ldb, int kc, int nc, float *bp, int NR) {
    switch (NR) {
    case 8: pack_b_t(trans_b, b, ldb, kc, nc, bp, 8); break;
    case 12: pack_b_t(trans_b, b, ldb, kc, nc, bp, 12); break;
    case 16: pack_b_t(trans_b, b, ldb, kc, nc, bp, 16); break;
    default: pack_b_t(trans_b, b, ldb, kc, nc, bp, NR); break;
    }
}

/* B (n, k) half precision, rows [j0, j0+nc) and depth [p0, p0+kc) (b points at B[j0, p0]) → bp as
 * pack_b with trans_b: each row segment is converted (vectorised) into tmp (NR·kc floats), then
 * transposed into the panel. */
static void pack_b_half(const uint16_t *b, int ldb, int kc, int nc, float *bp, int NR, float *tmp,
                        void (*h2f)(const uint16_t *, float *, size_t)) {
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        for (int j = 0; j < nr; j++) h2f(b + (size_t)(jr + j) * ldb, tmp + (size_t)j * kc, (size_t)kc);
        for (int p = 0; p < kc; p++) {
            for (int j = 0; j < nr; j++) bp[p * NR + j] = tmp[(size_t)j * kc + p];
            for (int j = nr; j < NR; j++) bp[p * NR + j] = 0.0f;
        }
        bp += (size_t)kc * NR;
    }
}

/* ---- packing buffers ------------------------------------------------------------------------ */

#define N_SLOTS 32
static struct slot {
    atomic_int busy;
    float *buf;
    size_t cap; /* floats */
} g_slots[N_SLOTS];

typedef struct pack_buf {
    float *p;
    struct slot *slot; /* NULL: owned by the call, freed at the end */
} pack_buf;

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float) + 64) != 0) return NULL;
    return p;
}

static pack_buf buf_get(size_t n) {
    pack_buf r = {NULL, NULL};
    for (int i = 0; i < N_SLOTS; i++) {
        struct slot *s = &g_slots[i];
        if (atomic_load_explicit(&s->busy, memory_order_relaxed) ||
            atomic_exchange_explicit(&s->busy, 1, memory_order_acquire))
            continue;
        if (s->cap < n) {
            free(s->buf);
            s->buf = alloc_floats(n);
            s->cap = s->buf ? n : 0;
        }
        if (!s->buf) {
            atomic_store_explicit(&s->busy, 0, memory_order_release);
            return r;
        }
        r.p = s->buf;
        r.slot = s;
        return r;
    }
    r.p = alloc_floats(n);
    return r;
}

static void buf_put(pack_buf b) {
    if (b.slot)
        atomic_store_explicit(&b.slot->busy, 0, memory_order_release);
    else
        free(b.p);
}

/* ---- one thread's block --------------------------------------------------------------------- */

typedef struct gemm_args {
    int trans_b, m, n, k;
    float alpha, beta;
    const float *a, *b;
    const uint16_t *bh; /* B as half precision (trans_b), instead of b; or NULL */
    const dpt_k_packed *pk; /* B packed beforehand (trans_b), columns from pk_col0; or NULL */
    int pk_col0;
    float *c;
    int lda, ldb, ldc;
    const dpt_k_ukr *u;
    void (*h2f)(const uint16_t *, float *, size_t);
    int split_n; /* 1: threads split columns, 0: rows */
} gemm_args;

/* B[j, p] of a matrix packed beforehand (layout at dpt_k_pack). */
static float packed_at(const dpt_k_packed *pk, int j, int p) {
    const dpt_k_ukr *u = pk->ukr;
    int pc = p / pk->kcb * pk->kcb, kc = pk->k - pc < pk->kcb ? pk->k - pc : pk->kcb;
    size_t panel = (size_t)(j / u->nr) * u->nr;
    return pk->p[(size_t)pc * pk->npad + panel * kc + (size_t)(p - pc) * u->nr + j % u->nr];
}

/* Unpacked fallback (no memory for the packing buffers): C[i0:i1, j0:j1]. */
static void block_unpacked(const gemm_args *g, int i0, int i1, int j0, int j1) {
    for (int i = i0; i < i1; i++) {
        const float *ai = g->a + (size_t)i * g->lda;
        for (int j = j0; j < j1; j++) {
            float s = 0.0f;
            for (int p = 0; p < g->k; p++) {
                float bv;
                if (g->pk)
                    bv = packed_at(g->pk, g->pk_col0 + j, p);
                else if (g->bh)
                    dpt_k_half_to_float_ref(g->bh + (size_t)j * g->ldb + p, &bv, 1);
                else
                    bv = g->trans_b ? g->b[(size_t)j * g->ldb + p] : g->b[(size_t)p * g->ldb + j];
                s += ai[p] * bv;
            }
            float *cij = g->c + (size_t)i * g->ldc + j;
            *cij = g->beta == 0.0f ? g->alpha * s : g->alpha * s + g->beta * *cij;
        }
    }
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* The loop nest of the file comment over C[i0:i1, j0:j1]. */
static void gemm_block(const gemm_args *g, int i0, int i1, int j0, int j1) {
    const dpt_k_ukr *u = g->u;
    const int MR = u->mr, NR = u->nr;
    const int m = i1 - i0, n = j1 - j0, k = g->k;
    if (m <= 0 || n <= 0) return;
    /* equal depth blocks ≤ KC, and MC / NC no larger than needed */
    const int kcb = ceil_div(k, ceil_div(k, u->kc));
    const int mcb = m < u->mc ? ceil_div(m, MR) * MR : u->mc;
    const int ncb = n < u->nc ? ceil_div(n, NR) * NR : u->nc;
    const size_t a_floats = ((size_t)kcb * mcb + 15) / 16 * 16; /* Bp 64-byte aligned */
    const size_t b_floats = ((size_t)kcb * ncb + 15) / 16 * 16;
    pack_buf buf = buf_get(a_floats + (g->pk ? 0 : b_floats + (g->bh ? (size_t)kcb * NR : 0)));
    if (!buf.p) {
        block_unpacked(g, i0, i1, j0, j1);
        return;
    }
    float *ap = buf.p, *bp_own = buf.p + a_floats, *tmp = bp_own + b_floats, *bp = bp_own;
    for (int jc = j0; jc < j1; jc += ncb) {
        int nc = j1 - jc < ncb ? j1 - jc : ncb;
        for (int pc = 0; pc < k; pc += kcb) {
            int kc = k - pc < kcb ? k - pc : kcb;
            float beta = pc == 0 ? g->beta : 1.0f;
            if (g->pk) { /* packed beforehand: this block's panels are in place */
                bp = g->pk->p + (size_t)pc * g->pk->npad + (size_t)(g->pk_col0 + jc) * kc;
            } else if (g->trans_b && u->pack_bt) { /* full panels vectorised, a ragged last one not */
                bp = bp_own;
                int jr = 0;
                for (; jr + NR <= nc; jr += NR) {
                    size_t o = (size_t)(jc + jr) * g->ldb + pc;
                    u->pack_bt(g->bh ? NULL : g->b + o, g->bh ? g->bh + o : NULL, g->ldb, kc,
                               bp + (size_t)jr * kc);
                }
                if (jr < nc) {
                    size_t o = (size_t)(jc + jr) * g->ldb + pc;
                    if (g->bh)
                        pack_b_half(g->bh + o, g->ldb, kc, nc - jr, bp + (size_t)jr * kc, NR, tmp,
                                    g->h2f);
                    else
                        pack_b(1, g->b + o, g->ldb, kc, nc - jr, bp + (size_t)jr * kc, NR);
                }
            } else if (g->bh) {
                bp = bp_own;
                pack_b_half(g->bh + (size_t)jc * g->ldb + pc, g->ldb, kc, nc, bp, NR, tmp, g->h2f);
            } else {
                bp = bp_own;
                const float *bsrc = g->trans_b ? g->b + (size_t)jc * g->ldb + pc
                                               : g->b + (size_t)pc * g->ldb + jc;
                pack_b(g->trans_b, bsrc, g->ldb, kc, nc, bp, NR);
            }
            for (int ic = i0; ic < i1; ic += mcb) {
                int mc = i1 - ic < mcb ? i1 - ic : mcb;
                if (u->pack_a_full) {
                    int ir = 0;
                    for (; ir + MR <= mc; ir += MR)
                        u->pack_a_full(g->a + (size_t)(ic + ir) * g->lda + pc, g->lda, kc,
                                       ap + (size_t)ir * kc);
                    if (ir < mc)
                        pack_a(g->a + (size_t)(ic + ir) * g->lda + pc, g->lda, mc - ir, kc,
                               ap + (size_t)ir * kc, MR);
                } else {
                    pack_a(g->a + (size_t)ic * g->lda + pc, g->lda, mc, kc, ap, MR);
                }
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const float *bpan = bp + (size_t)jr * kc;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        u->fn(kc, ap + (size_t)ir * kc, bpan,
                              g->c + (size_t)(ic + ir) * g->ldc + jc + jr, g->ldc, mr, nr,
                              g->alpha, beta);
                    }
                }
            }
        }
    }
    buf_put(buf);
}

/* Thread tid of nt: its strip of whole tiles. */
static void gemm_task(void *ctx, int tid, int nt) {
    const gemm_args *g = ctx;
    int i0, i1, j0, j1;
    dpt_k_gemm_strip(g->m, g->n, g->u->mr, g->u->nr, g->split_n, tid, nt, &i0, &i1, &j0, &j1);
    gemm_block(g, i0, i1, j0, j1);
}

void dpt_k_gemm_strip(int m, int n, int mr, int nr, int split_n, int tid, int nt, int *i0, int *i1,
                      int *j0, int *j1) {
    *i0 = 0, *i1 = m, *j0 = 0, *j1 = n;
    if (split_n) {
        int nb = ceil_div(n, nr);
        int b0 = (int)((long)nb * tid / nt), b1 = (int)((long)nb * (tid + 1) / nt);
        *j0 = b0 * nr;
        *j1 = b1 * nr < n ? b1 * nr : n;
    } else {
        int mb = ceil_div(m, mr);
        int b0 = (int)((long)mb * tid / nt), b1 = (int)((long)mb * (tid + 1) / nt);
        *i0 = b0 * mr;
        *i1 = b1 * mr < m ? b1 * mr : m;
    }
}

/* Packing slots held by other threads at fork() stay taken in the child: free them all. */
static void slots_after_fork_child(void) {
    for (int i = 0; i < N_SLOTS; i++) atomic_store(&g_slots[i].busy, 0);
}
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, slots_after_fork_child); }

/* ---- entry point ---------------------------------------------------------------------------- */

/* Work below which an extra thread does not pay for waking it (flops per thread). */
#define MIN_FLOPS_PER_THREAD 4.0e6

int dpt_k_gemm_split(const dpt_k_team *team, int m, int n, int k, int mr, int nr, int *split_n) {
    int nt = dpt_k_team_size(team);
    double flops = 2.0 * m * n * (double)k;
    if (flops / MIN_FLOPS_PER_THREAD < nt) nt = (int)(flops / MIN_FLOPS_PER_THREAD);
    int nb = ceil_div(n, nr), mb = ceil_div(m, mr);
    /* split the side with more tiles (the other operand is packed by every thread) */
    *split_n = nb >= mb;
    int parts = *split_n ? nb : mb;
    if (nt > parts) nt = parts;
    return nt < 1 ? 1 : nt;
}

static void sgemm(gemm_args *g) {
    const int m = g->m, n = g->n, k = g->k;
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || g->alpha == 0.0f) { /* C = beta · C, C not read when beta = 0 */
        for (int i = 0; i < m; i++) {
            float *ci = g->c + (size_t)i * g->ldc;
            if (g->beta == 0.0f)
                memset(ci, 0, sizeof(float) * (size_t)n);
            else if (g->beta != 1.0f)
                for (int j = 0; j < n; j++) ci[j] *= g->beta;
        }
        return;
    }
    const dpt_k_ops *ops = dpt_k_ops_active();
    g->u = ops->ukr;
    g->h2f = ops->half_to_float;
    pthread_once(&g_atfork_once, register_atfork);
    /* inside a region: this thread alone; outside: the calling thread's GEMM team (tests) */
    dpt_k_team *team = dpt_k_gemm_team();
    int nt = dpt_k_gemm_split(team, m, n, k, g->u->mr, g->u->nr, &g->split_n);
    dpt_k_team_run(team, nt, gemm_task, g);
}

void dpt_k_sgemm(int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc) {
    gemm_args g = {.trans_b = trans_b, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
                   .a = a, .b = b, .c = c, .lda = lda, .ldb = ldb, .ldc = ldc};
    sgemm(&g);
}

static int kc_block(int k, const dpt_k_ukr *u) { return ceil_div(k, ceil_div(k, u->kc)); }

size_t dpt_k_packed_floats(int n, int k) {
    const dpt_k_ukr *u = dpt_k_ops_active()->ukr;
    return (size_t)ceil_div(n, u->nr) * u->nr * (size_t)k;
}

/* Layout: depth blocks pc = 0, kcb, 2·kcb, … (as gemm_block cuts them); in each, the panels of all
 * npad columns one after another: panel of column j0 at p + pc·npad + j0·kc (kc of that block). */
void dpt_k_pack(const float *b, const uint16_t *bh, int n, int k, float *buf, dpt_k_packed *out) {
    const dpt_k_ops *ops = dpt_k_ops_active();
    const dpt_k_ukr *u = ops->ukr;
    const int NR = u->nr, kcb = kc_block(k, u);
    memset(out, 0, sizeof *out);
    out->ukr = u;
    out->n = n;
    out->k = k;
    out->kcb = kcb;
    out->npad = ceil_div(n, NR) * NR;
    out->p = buf;
    float tmp[16 * 256];
    for (int pc = 0; pc < k; pc += kcb) {
        int kc = k - pc < kcb ? k - pc : kcb;
        float *blk = buf + (size_t)pc * out->npad;
        for (int jr = 0; jr < n; jr += NR) {
            int nr = n - jr < NR ? n - jr : NR;
            size_t o = (size_t)jr * k + pc;
            if (nr == NR && u->pack_bt)
                u->pack_bt(bh ? NULL : b + o, bh ? bh + o : NULL, k, kc, blk + (size_t)jr * kc);
            else if (bh && NR <= 16 && kc <= 256)
                pack_b_half(bh + o, k, kc, nr, blk + (size_t)jr * kc, NR, tmp, ops->half_to_float);
            else if (!bh)
                pack_b(1, b + o, k, kc, nr, blk + (size_t)jr * kc, NR);
            else /* larger tiles than any micro-kernel here has: element by element */
                for (int p = 0; p < kc; p++)
                    for (int j = 0; j < NR; j++) {
                        float v = 0.0f;
                        if (j < nr) dpt_k_half_to_float_ref(bh + o + (size_t)j * k + p, &v, 1);
                        blk[(size_t)jr * kc + (size_t)p * NR + j] = v;
                    }
        }
    }
}

int dpt_k_f32_gemm_packed(int m, int n0, int n1, float alpha, const float *a, int lda,
                          const dpt_k_packed *b, float beta, float *c, int ldc) {
    const dpt_k_ukr *u = dpt_k_ops_active()->ukr;
    if (b->ukr != u || n0 < 0 || n1 > b->n || n0 > n1 || n0 % u->nr) return -1;
    float *ar = NULL;
    if (b->bf16 == DPT_K_BF16_EMULATED && m > 0) { /* the activations rounded as the native kernel does */
        ar = alloc_floats((size_t)m * b->k);
        if (!ar) return -1;
        for (int i = 0; i < m; i++)
            for (int p = 0; p < b->k; p++)
                ar[(size_t)i * b->k + p] = dpt_k_bf16_to_float(dpt_k_bf16_from_float(a[(size_t)i * lda + p]));
        a = ar;
        lda = b->k;
    }
    gemm_args g = {.trans_b = 1, .m = m, .n = n1 - n0, .k = b->k, .alpha = alpha, .beta = beta,
                   .a = a, .pk = b, .pk_col0 = n0, .c = c, .lda = lda, .ldc = ldc};
    sgemm(&g);
    free(ar);
    return 0;
}

void dpt_k_sgemm_h(int m, int n, int k, float alpha, const float *a, int lda, const uint16_t *b,
                   int ldb, float beta, float *c, int ldc) {
    gemm_args g = {.trans_b = 1, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta, .a = a,
                   .bh = b, .c = c, .lda = lda, .ldb = ldb, .ldc = ldc};
    sgemm(&g);
}
