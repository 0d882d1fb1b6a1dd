/* Internal to kernels/: the per-architecture function tables behind the dispatched kernels of
 * kernels.h. Each SIMD file defines one table (dpt_k_ops_avx2 in avx2.c, dpt_k_ops_neon in
 * neon.c) and one GEMM micro-kernel description (gemm_avx2.c, gemm_neon.c); on a target without
 * that instruction set the file compiles to nothing and dispatch.c does not reference it. */
#ifndef DPT_K_DISPATCH_H
#define DPT_K_DISPATCH_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define DPT_K_HAVE_AVX2_BUILD 1
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#define DPT_K_HAVE_NEON_BUILD 1
#endif

/* GEMM micro-kernel: C tile (mr, nr) [ldc] = alpha · Ap · Bp + beta · C tile, where
 *   Ap is a packed A panel: kc steps of MR floats (row i of step p at ap[p·MR + i]),
 *   Bp is a packed B panel: kc steps of NR floats (column j of step p at bp[p·NR + j]),
 * both zero-padded to MR / NR; only the leading mr ≤ MR rows and nr ≤ NR columns of C are
 * touched. beta = 0: C is not read. kc ≥ 1. */
typedef void (*dpt_k_ukr_fn)(int kc, const float *ap, const float *bp, float *c, int ldc, int mr,
                             int nr, float alpha, float beta);

/* Packs one full panel of op(B) = Bᵀ: rows j0…j0+NR−1 of B (n, k) [ldb], depths 0…kc−1 (b points
 * at B[j0, p0]) → bp (kc × NR, 32-byte aligned): bp[p·NR + j] = B[j0 + j, p0 + p]. B is float (b) or
 * IEEE half (bh, when not NULL; b unused). */
typedef void (*dpt_k_pack_bt_fn)(const float *b, const uint16_t *bh, int ldb, int kc, float *bp);

typedef struct dpt_k_ukr {
    int mr, nr;       /* register tile */
    int mc, kc, nc;   /* cache blocks: mc multiple of mr, nc multiple of nr */
    dpt_k_ukr_fn fn;
    dpt_k_pack_bt_fn pack_bt; /* vectorised transposed packing of full B panels, or NULL */
    /* vectorised packing of one full A panel: rows 0…MR−1 of a [lda], depths 0…kc−1 → ap
     * (kc × MR), ap[p·MR + i] = a[i·lda + p]; or NULL */
    void (*pack_a_full)(const float *a, int lda, int kc, float *ap);
} dpt_k_ukr;

typedef struct dpt_k_ops {
    dpt_k_arch arch;
    void (*gelu)(float *x, size_t n);
    void (*layernorm)(float *x, int rows, int cols, const float *gamma, const float *beta,
                      float eps);
    void (*add_layernorm)(float *x, const float *r, int rows, int cols, const float *gamma,
                          const float *beta, float eps);
    void (*add)(float *y, const float *x, size_t n);
    void (*softmax)(float *x, int rows, int cols);
    void (*erf)(const float *x, float *y, size_t n);
    void (*exp)(const float *x, float *y, size_t n);
    void (*half_to_float)(const uint16_t *src, float *dst, size_t n);
    const dpt_k_ukr *ukr;
} dpt_k_ops;

extern const dpt_k_ops dpt_k_ops_scalar;  /* ref.c */
extern const dpt_k_ukr dpt_k_ukr_scalar;  /* gemm_scalar.c */
#ifdef DPT_K_HAVE_AVX2_BUILD
extern const dpt_k_ops dpt_k_ops_avx2;    /* avx2.c */
extern const dpt_k_ukr dpt_k_ukr_avx2;    /* gemm_avx2.c */
#endif
#ifdef DPT_K_HAVE_NEON_BUILD
extern const dpt_k_ops dpt_k_ops_neon;    /* neon.c */
extern const dpt_k_ukr dpt_k_ukr_neon;    /* gemm_neon.c */
#endif

/* bfloat16 micro-kernel: C tile (mr ≤ MR, nr ≤ NR) = alpha · Ap · Bp + beta · C, where Ap holds kq
 * steps of MR words and Bp kq steps of NR words, each word a pair of bfloat16 (depth 2q in the
 * low half, 2q + 1 in the high half; zero-padded). pack_a: rows 0 … mr−1 of a [lda], depths
 * 0 … kc−1 (kc ≤ kc block) → ap (⌈kc/2⌉ × MR words, rows ≥ mr zero), rounded as
 * dpt_k_bf16_from_float. */
typedef struct dpt_k_ukr_bf16 {
    int mr, nr, mc, kc;
    void (*fn)(int kq, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr, int nr,
               float alpha, float beta);
    void (*pack_a)(const float *a, int lda, int mr, int kc, uint32_t *ap);
    /* Panel layout of B (and A), in 16-bit elements of a panel of NR columns and kp depths (kp = kc
     * rounded up to a multiple of the layout's step; fn's kq counts steps):
     *   DPT_K_LAYOUT_PAIRS (0, step 2): depth p of column j at (p/2)·2NR + 2j + p%2 (above);
     *   DPT_K_LAYOUT_MMLA (step 4): (p/4)·4NR + (j/2)·8 + (j%2)·4 + p%4 — the 2×4 blocks of
     *     BFMMLA; A likewise with rows for columns;
     *   DPT_K_LAYOUT_ROWS (step 1): p·NR + j, IEEE halves (half = 1), A as float32 panels
     *     (kc steps of MR floats, not rounded: pack_a writes floats into the words). */
    int layout, half;
} dpt_k_ukr_bf16;
#define DPT_K_LAYOUT_PAIRS 0
#define DPT_K_LAYOUT_MMLA 1
#define DPT_K_LAYOUT_ROWS 2
#ifdef DPT_K_HAVE_AVX2_BUILD
extern const dpt_k_ukr_bf16 dpt_k_ukr_avx512bf16; /* gemm_avx512bf16.c */
#endif
/* int8 micro-kernel: C tile (mr ≤ MR, nr ≤ NR) from Ap (kq steps of MR words, each the 4 u8 of
 * depths 4q … 4q+3 of a row) and Bp (kq steps of NR words of 4 s8), by gemm_int8.c's epilogue with
 * the rows' sa / zp and the columns' sb / cs. pack_a quantises rows 0 … mr−1 of a [lda] over all k
 * depths into ap and writes their sa, zp (rows ≥ mr: zeros). */
typedef struct dpt_k_ukr_int8 {
    int mr, nr, mc;
    void (*fn)(int kq, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr, int nr,
               float alpha, float beta, const float *sa, const int32_t *zp, const float *sb,
               const int32_t *cs);
    void (*pack_a)(const float *a, int lda, int mr, int k, uint32_t *ap, float *sa, int32_t *zp);
} dpt_k_ukr_int8;
#ifdef DPT_K_HAVE_AVX2_BUILD
extern const dpt_k_ukr_int8 dpt_k_ukr_avx512vnni; /* gemm_avx512vnni.c */
#endif
/* int8 GEMM from a packing (gemm_int8.c), called by dpt_k_sgemm_packed. */
int dpt_k_int8_gemm_packed(int m, int n0, int n1, float alpha, const float *a, int lda,
                           const dpt_k_packed *b, float beta, float *c, int ldc);

#ifdef DPT_K_HAVE_NEON_BUILD
extern const dpt_k_ukr_bf16 dpt_k_ukr_neon_bf16; /* gemm_neon_bf16.c: BFMMLA 12 × 8 (FEAT_BF16) */
extern const dpt_k_ukr_bf16 dpt_k_ukr_neon_f16;  /* gemm_neon_f16.c: half panels, 8 × 12 */
extern const dpt_k_ukr_int8 dpt_k_ukr_neon_sdot; /* gemm_neon_int8.c: SDOT 12 × 32 (FEAT_DotProd) */
extern const dpt_k_ukr_int8 dpt_k_ukr_neon_i8mm; /* gemm_neon_int8.c: USMMLA 12 × 32 (FEAT_I8MM) */
#endif
/* Which kernel a reduced-precision kind runs (gemm_bf16.c's bf16 / f16, gemm_int8.c's int8): the
 * native one if `available` and the arch whose float32 tables it belongs with is active, unless
 * the environment variable `env` equals `off`; decided once, changed by dpt_k_choice_set (tests). */
typedef struct dpt_k_choice {
    atomic_int mode; /* 0: not decided, else native or fallback */
    const char *env, *off;
    int native, fallback;
    int (*available)(void);
} dpt_k_choice;
int dpt_k_choice_get(dpt_k_choice *c);
/* 0, or −1 (nothing changes) if on and the native kernel is not available */
int dpt_k_choice_set(dpt_k_choice *c, int on);

/* How the GEMM drivers (gemm.c, gemm_bf16.c) share C out over a team: the thread count for an
 * (m, n, k) product with (mr, nr) tiles, and whether columns (*split_n = 1) or rows are split;
 * then thread tid's strip [i0, i1) × [j0, j1) of whole tiles. */
int dpt_k_gemm_split(const dpt_k_team *team, int m, int n, int k, int mr, int nr, int *split_n);
void dpt_k_gemm_strip(int m, int n, int mr, int nr, int split_n, int tid, int nt, int *i0, int *i1,
                      int *j0, int *j1);

/* float32 GEMM from a float32 or emulated bf16 / f16 packing (gemm.c), called by dpt_k_sgemm_packed
 * (ops.c). */
int dpt_k_f32_gemm_packed(int m, int n0, int n1, float alpha, const float *a, int lda,
                          const dpt_k_packed *b, float beta, float *c, int ldc);
/* bf16 / f16 GEMM from a native packing (gemm_bf16.c), called by dpt_k_sgemm_packed. */
int dpt_k_bf16_gemm_packed(int m, int n0, int n1, float alpha, const float *a, int lda,
                           const dpt_k_packed *b, float beta, float *c, int ldc);

/* The table in use (dispatch.c); never NULL. */
const dpt_k_ops *dpt_k_ops_active(void);

/* Scalar erf / exp of the reference table (ref.c): libm's erff / expf. */
void dpt_k_erf_ref(const float *x, float *y, size_t n);
void dpt_k_exp_ref(const float *x, float *y, size_t n);

/* Approximations shared by the SIMD variants (fitted by weighted least squares — Lawson's
 * iteration towards minimax — against 40-digit erf/exp; coefficients rounded to float):
 *
 * erf(z), z = |x| (odd function, sign restored at the end):
 *   0 ≤ z < 1:     erf(z) = z + z·P(z²), P degree 6 (rel. error of the fit 1.4e-9);
 *                  z + z·P rather than z·(1 + P) so that the last rounding is of a small term.
 *   1 ≤ z < 3.92:  erf(z) = 1 − e^{−z²}·G(t), t = 1/(1 + z/2), G degree 7 approximating
 *                  erfc(z)·e^{z²} (rel. error 4.5e-10); erfc(z) ≤ 0.16 here, so the float
 *                  errors of e^{−z²} and G shrink by that factor in the result.
 *   z ≥ 3.92:      erf(z) = 1 in float (erfc(3.92) < half an ulp of 1).
 *   Simulated in float: ≤ 1.6 ulp of the exact erf; abs error < 1e-7.
 * e^x: n = round(x·log₂e), r = x − n·ln2 (Cody–Waite split ln2 = LN2_HI + LN2_LO, LN2_HI with
 *   9 significant bits so n·LN2_HI is exact), e^r = 1 + r + r²·Q(r), Q degree 4 (rel. error
 *   3.1e-9), times 2ⁿ built in the exponent field. ≤ 1.1 ulp in float simulation. */
#define DPT_K_ERF_P0 0.12837916612625122f
#define DPT_K_ERF_P1 (-0.3761262595653534f)
#define DPT_K_ERF_P2 0.11283600330352783f
#define DPT_K_ERF_P3 (-0.026854442432522774f)
#define DPT_K_ERF_P4 0.005189531948417425f
#define DPT_K_ERF_P5 (-0.0008020806708373129f)
#define DPT_K_ERF_P6 7.888986874604598e-05f
#define DPT_K_ERF_G0 (-0.00016016289009712636f)
#define DPT_K_ERF_G1 0.2849997878074646f
#define DPT_K_ERF_G2 0.2591489553451538f
#define DPT_K_ERF_G3 0.349625825881958f
#define DPT_K_ERF_G4 (-0.107264444231987f)
#define DPT_K_ERF_G5 0.5676029920578003f
#define DPT_K_ERF_G6 (-0.47402092814445496f)
#define DPT_K_ERF_G7 0.12012595683336258f
#define DPT_K_ERF_SPLIT 1.0f
#define DPT_K_ERF_ONE 3.92f     /* erf rounds to 1 from here on */

#define DPT_K_EXP_Q0 0.4999999403953552f
#define DPT_K_EXP_Q1 0.1666652113199234f
#define DPT_K_EXP_Q2 0.04166838899254799f
#define DPT_K_EXP_Q3 0.008368710987269878f
#define DPT_K_EXP_Q4 0.0013814567355439067f
#define DPT_K_LOG2E 1.44269504088896341f
#define DPT_K_LN2_HI 0.693359375f
#define DPT_K_LN2_LO (-2.12194440e-4f)
#define DPT_K_EXP_LO (-87.33654f) /* below: e^x < FLT_MIN, returned as 0 */
#define DPT_K_EXP_HI 88.3762626647949f /* above: +Inf (n would reach 128) */

#endif
