/* Compute kernels used by the models. All arrays row-major.
 *
 * Organisation (one implementation per file, selected at run time):
 *   kernels/ref.c        scalar reference of every element-wise / reduction kernel (dpt_k_*_ref)
 *   kernels/avx2.c       AVX2+FMA versions (x86-64; the only files built with -mavx2 -mfma are
 *   kernels/gemm_avx2.c    these two, so the library runs on any x86-64 CPU)
 *   kernels/neon.c       NEON versions (aarch64, where NEON is baseline)
 *   kernels/gemm_neon.c
 *   kernels/gemm.c       own blocked, packed SGEMM driver (scalar micro-kernel: gemm_scalar.c)
 *   kernels/dispatch.c   CPU detection, DPT_ARCH override, the element-wise entry points, dpt_k_choice
 *   kernels/parallel.c   thread teams, parallel regions
 *   kernels/formats.c    bf16 / half rounding, the int8 row rule
 *   kernels/ops.c        composite ops: GEMM routing (BLAS / own), linear layers, attention, MHA
 * No call cycle between these files (tools/check_kernel_deps.sh).
 * The architecture is chosen on first use: the best the CPU supports, or the environment variable
 * DPT_ARCH=scalar|avx2|neon (an unsupported or unknown value falls back to the best supported).
 * GEMMs go through CBLAS when the library is built with a BLAS (DPT_HAVE_CBLAS), otherwise through
 * the own SGEMM (make BLAS=none). Every kernel here is safe to call from several threads at once. */
#ifndef DPT_KERNELS_H
#define DPT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- Threads: teams and parallel regions (kernels/parallel.c) -------------------------------
 * A team is a set of worker threads owned by one caller (a dpt_state, or one library call): the
 * thread count travels with the team, never through a process-wide setting, and the library
 * never changes BLAS's own thread count. DPT_K_MAX_THREADS is the one cap on thread counts. */
#define DPT_K_MAX_THREADS 256
typedef struct dpt_k_team dpt_k_team;
/* A team of n_threads threads, the caller's included (0 = all cores); workers start on first
 * use. NULL when out of memory (callers then run alone: pass NULL on). */
dpt_k_team *dpt_k_team_new(int n_threads);
void dpt_k_team_free(dpt_k_team *team);          /* joins the workers; NULL is ignored */
int dpt_k_team_size(const dpt_k_team *team);     /* 1 for NULL */
int dpt_k_cores(void);                           /* online CPUs, 1 … DPT_K_MAX_THREADS */

/* dpt_k_parallel runs fn(ctx, r) once on each of min(n_threads, team size) threads of the team
 * (the caller is thread 0; NULL team: the caller alone) and returns when all have returned.
 * Inside a region every GEMM (dpt_k_gemm_*, dpt_k_lin_rows, dpt_k_linear, dpt_k_sgemm*) runs
 * single-threaded on the own SGEMM, so a model splits its own work (rows, heads) with no BLAS
 * threads underneath and one wake-up per region. fn must be correct for any thread count (a region
 * inside a region, or a team used from two threads at once, runs serialised). */
typedef struct dpt_k_region dpt_k_region;
void dpt_k_parallel(dpt_k_team *team, int n_threads, void (*fn)(void *ctx, dpt_k_region *r),
                    void *ctx);
int dpt_k_region_tid(const dpt_k_region *r);
int dpt_k_region_nt(const dpt_k_region *r);
/* Barrier of all threads of the region. */
void dpt_k_region_sync(dpt_k_region *r);
/* This thread's share [*lo, *hi) of n items split evenly. */
void dpt_k_region_range(const dpt_k_region *r, int n, int *lo, int *hi);
/* 1 on a thread that is running a region. */
int dpt_k_in_region(void);

/* Threads of the own SGEMM called OUTSIDE regions, for the calling thread only (default 1;
 * 0 = all cores): for tests and benchmarks of the kernels. The library never calls it (its
 * GEMMs run inside regions of an explicit team); BLAS's thread count is not touched. */
void dpt_k_set_threads(int n_threads);
int dpt_k_get_threads(void);

/* y (rows, n_out) = x (rows, n_in) · W (n_out, n_in)ᵀ + b (n_out, may be NULL). */
void dpt_k_linear(const float *x, int rows, int n_in, const float *w, const float *b, int n_out,
                  float *y);

/* General C (m, n) = alpha · A (m, k) · B(n, k)ᵀ + beta · C, with leading dimensions. */
void dpt_k_gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc);
/* C (m, n) = alpha · A (m, k) · B (k, n) + beta · C */
void dpt_k_gemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc);


/* IEEE half → float, n elements (exact). */
void dpt_k_half_to_float(const uint16_t *src, float *dst, size_t n);

/* Exact GELU 0.5·x·(1 + erf(x/√2)), in place. */
void dpt_k_gelu(float *x, size_t n);

/* LayerNorm over the last axis (biased variance), in place: x = (x−μ)/√(σ²+eps)·γ + β. */
void dpt_k_layernorm(float *x, int rows, int cols, const float *gamma, const float *beta,
                     float eps);

/* x = LayerNorm(x + r), in place (post-LN residual). */
void dpt_k_add_layernorm(float *x, const float *r, int rows, int cols, const float *gamma,
                         const float *beta, float eps);

/* y += x */
void dpt_k_add(float *y, const float *x, size_t n);

/* Row-wise softmax over cols, in place; entries equal to -INFINITY get probability 0. */
void dpt_k_softmax(float *x, int rows, int cols);

/* Single-head scaled dot-product attention:
 * out (nq, dh) [row stride ldo] = softmax(scale · q kᵀ + mask) v, q (nq, dh) [ldq], k (nk, dh) [ldk],
 * v (nk, dh) [ldv]. mask (nq, nk) with 1.0 = blocked, or NULL. scratch holds nq·nk floats. */
void dpt_k_attention(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                     int nq, int nk, int dh, float scale, const float *mask, float *out, int ldo,
                     float *scratch);

/* Multi-head scaled dot-product attention of one sequence (no projections):
 * out (nq, h·dh) [ldo] = concat_j softmax(q_j k_jᵀ/√dh + mask) v_j, with q (nq, h·dh) [ldq],
 * k (nk, h·dh) [ldk], v (nk, h·dh) [ldv]; head j uses columns [j·dh, (j+1)·dh).
 * mask (nq, nk), 1.0 = blocked, or NULL. scratch: nq·nk floats. */
void dpt_k_mha(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv, int nq,
               int nk, int n_heads, int dh, const float *mask, float *out, int ldo,
               float *scratch);

/* ---- Variants, architecture selection (tests, benchmarks) -------------------------------- */

typedef enum dpt_k_arch { DPT_K_ARCH_SCALAR = 0, DPT_K_ARCH_AVX2 = 1, DPT_K_ARCH_NEON = 2 } dpt_k_arch;
#define DPT_K_N_ARCH 3

/* Architecture in use (chosen on first call of any kernel, see top). */
dpt_k_arch dpt_k_arch_active(void);
/* "scalar", "avx2", "neon"; NULL for an unknown value. */
const char *dpt_k_arch_name(dpt_k_arch arch);
/* 1 if this build has the variant and this CPU can run it. */
int dpt_k_arch_supported(dpt_k_arch arch);
/* Switch every dispatched kernel (and the own SGEMM's micro-kernel) to arch; returns 0, or -1 if
 * unsupported (nothing changes). Kernels already running finish with the previous variant. */
int dpt_k_set_arch(dpt_k_arch arch);

/* 1 if dpt_k_gemm_* / dpt_k_linear go through a BLAS library, 0 if through dpt_k_sgemm. */
int dpt_k_have_blas(void);

/* Own blocked, packed SGEMM (whatever the build's BLAS), with the micro-kernel of the active
 * architecture and dpt_k_get_threads() threads:
 *   C (m, n) [ldc] = alpha · A (m, k) [lda] · op(B) + beta · C
 * op(B) = B (n, k)ᵀ [ldb] if trans_b, else B (k, n) [ldb]. beta = 0: C is only written (NaN/Inf
 * in C do not propagate), as BLAS. m, n or k = 0 are legal (k = 0: C = beta · C). */
void dpt_k_sgemm(int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);

/* dpt_k_sgemm with op(B) = Bᵀ, B (n, k) [ldb] stored as IEEE half precision. */
void dpt_k_sgemm_h(int m, int n, int k, float alpha, const float *a, int lda, const uint16_t *b,
                   int ldb, float beta, float *c, int ldc);

/* A weight matrix B (n, k) packed once into the own SGEMM's panels for the active micro-kernel, so
 * that the GEMMs that use it skip packing B (a model's weights are streamed from memory on every
 * use otherwise: packing them was a sixth of the denoiser's time). */
typedef struct dpt_k_packed {
    const void *ukr;  /* micro-kernel the panels are laid out for */
    int n, k, kcb, npad;
    float *p;         /* dpt_k_packed_floats(n, k) floats, 64-byte aligned (the caller's) */
    int bf16;         /* 0: float32; DPT_K_BF16_NATIVE / DPT_K_BF16_EMULATED (dpt_k_pack_bf16),
                       * DPT_K_F16_NATIVE / DPT_K_F16_EMULATED (dpt_k_pack_f16) */
    int int8;         /* 1: quantised by dpt_k_pack_int8 (then colsum and scale are set) */
    const int32_t *colsum; /* int8: per column, the sum of its quantised weights */
    const float *scale;    /* int8: per column, the weights' scale */
} dpt_k_packed;

/* Floats needed to pack an (n, k) matrix for the active micro-kernel. */
size_t dpt_k_packed_floats(int n, int k);
/* Pack B (n, k) [ldb = k], float (b) or half (bh when not NULL), into buf. */
void dpt_k_pack(const float *b, const uint16_t *bh, int n, int k, float *buf, dpt_k_packed *out);
/* C (m, n1 − n0) [ldc] = alpha · A (m, k) [lda] · B[n0:n1]ᵀ + beta · C from packed B. Returns 0, or
 * −1 if the packing does not fit (another micro-kernel active, n0 not on a panel boundary): the
 * caller then uses the unpacked matrix. Bit-identical to dpt_k_sgemm on the unpacked B. */
int dpt_k_sgemm_packed(int m, int n0, int n1, float alpha, const float *a, int lda,
                       const dpt_k_packed *b, float beta, float *c, int ldc);
/* 1 if dpt_k_sgemm_packed can use b with the kernels active now (column ranges on its panel
 * boundaries): int8 and native bf16/f16 packings always, float panels only with the micro-kernel
 * they were laid out for. Callers without an unpacked fallback decide with it beforehand. */
int dpt_k_packed_usable(const dpt_k_packed *b);

/* A linear layer y = x · Wᵀ + b (ops.c), W (n_out, n_in) row-major, b (n_out) or NULL, in the forms
 * a model keeps it: float32 (w), or IEEE halves used in place (wh, w NULL: an f16 file's matrix,
 * converted while the own SGEMM packs it, so no float32 copy is kept); and optionally packed
 * at load (pk: one packing of all rows, or with pk_seg one per segment of pk_seg rows), used when
 * the packing fits the active micro-kernel, else w / wh. */
typedef struct dpt_k_lin {
    const float *w;
    const uint16_t *wh;
    const float *b;
    int n_out, n_in;
    dpt_k_packed *pk;
    int pk_seg;
} dpt_k_lin;
/* y (rows, n) [ldy] = x (rows, n_in) · W[row0 : row0+n]ᵀ + b[row0 : row0+n]: output columns
 * row0 … row0+n−1 of the layer (a slice of an in_proj, say). The bias is copied into y and the
 * product added onto it, the same operations for every form. */
void dpt_k_lin_rows(const dpt_k_lin *lin, int row0, int n, const float *x, int rows, float *y,
                    int ldy);

/* ---- bfloat16 compute (kernels/gemm_bf16.c, kernels/gemm_avx512bf16.c) ----------------------
 * A weight matrix rounded to bfloat16 once (dpt_k_pack_bf16) and activations rounded to bfloat16
 * when a GEMM packs them; the products of two bfloat16 values are exact in float32 and are summed
 * in float32. Rounding: to nearest even, float32 denormals to zero (as the AVX512-BF16
 * conversion does). Native: the AVX512-BF16 micro-kernel (vdpbf16ps, 12 × 32 tile, pairs of
 * depths) on x86-64, the BFMMLA micro-kernel (12 × 8 tile, groups of 4 depths; its sums round to
 * odd, see gemm_neon_bf16.c for the bound) on aarch64 with FEAT_BF16; emulated: the same rounded
 * operands through the float32 micro-kernel (another summation order: results agree to float32
 * rounding, not bit for bit). */
#define DPT_K_BF16_NATIVE 1
#define DPT_K_BF16_EMULATED 2
/* float → bfloat16 bits (round to nearest even, denormals to ±0, NaN stays NaN). */
uint16_t dpt_k_bf16_from_float(float x);
float dpt_k_bf16_to_float(uint16_t h);
/* 1 if new bf16 packings use the native micro-kernel (CPU has AVX512-BF16 and active arch avx2, or
 * FEAT_BF16 (HWCAP2_BF16) and arch neon; not disabled by DPT_BF16=emulate or
 * dpt_k_set_bf16_native(0)). */
int dpt_k_bf16_native(void);
/* Tests: 0 forces the emulation for new packings, 1 asks for the native kernel (−1 if the CPU or
 * build has none). Packings made before keep their kind. */
int dpt_k_set_bf16_native(int on);
/* Bytes needed to pack an (n, k) matrix with dpt_k_pack_bf16 (for the kind it would use now). */
size_t dpt_k_packed_bf16_bytes(int n, int k);
/* Pack B (n, k) [ldb = k], float (b) or half (bh when not NULL), rounded to bfloat16, into buf
 * (64-byte aligned). dpt_k_sgemm_packed then computes with bfloat16 operands. */
void dpt_k_pack_bf16(const float *b, const uint16_t *bh, int n, int k, void *buf, dpt_k_packed *out);
/* ---- half-precision weights (kernels/gemm_bf16.c, kernels/gemm_neon_f16.c) ----------------
 * A weight matrix rounded to IEEE half once (dpt_k_pack_f16; exact for an f16 file's halves),
 * activations float32 (not rounded), products and sums float32. Native (aarch64): half panels
 * converted to float in registers by the NEON micro-kernel (FCVTL; 8 × 12 tile, the float32
 * kernel's FMAs in the same order, so results equal the float32 kernel on the rounded weights
 * bit for bit, at half the weight memory); emulated (elsewhere): float panels of the rounded
 * weights through the float32 micro-kernel. */
#define DPT_K_F16_NATIVE 3
#define DPT_K_F16_EMULATED 4
/* float → IEEE half bits (round to nearest even, subnormal halves kept, overflow to ±Inf, NaN
 * stays NaN). */
uint16_t dpt_k_half_from_float(float x);
/* 1 if new f16 packings use the native micro-kernel (aarch64, active arch neon, not disabled by
 * DPT_F16=emulate or dpt_k_set_f16_native(0)). */
int dpt_k_f16_native(void);
/* Tests: as dpt_k_set_bf16_native for the f16 packings. */
int dpt_k_set_f16_native(int on);
size_t dpt_k_packed_f16_bytes(int n, int k);
void dpt_k_pack_f16(const float *b, const uint16_t *bh, int n, int k, void *buf, dpt_k_packed *out);

/* Reference: C = alpha · round(A) · round(B)ᵀ + beta · C, B (n, k), products summed in double. */
void dpt_k_gemm_bf16_ref(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                         int ldb, float beta, float *c, int ldc);

/* ---- int8 compute (kernels/gemm_int8.c, gemm_avx512vnni.c, gemm_neon_int8.c) --------------
 * A weight matrix quantised once (dpt_k_pack_int8): per output column, symmetric signed 8-bit with
 * scale max|column| / 127. Activations quantised per row when a GEMM packs them: unsigned 8-bit
 * over [min(0, row min), max(0, row max)] with a zero point (scale range / 255, nearest even).
 * Integer products summed exactly in int32, then scaled in float32 (gemm_int8.c gives the order).
 * Every path (AVX512-VNNI vpdpbusd, aarch64 SDOT / USMMLA, the portable C kernel) and every thread
 * count give the same
 * bits; dpt_k_gemm_int8_ref computes the same formula element by element. */
#define DPT_K_INT8_NATIVE 1
#define DPT_K_INT8_PORTABLE 2
#define DPT_K_INT8_MAX_K 65536 /* |int32 sums| ≤ 255 · 127 · k stay below 2^31 */
/* 1 if int8 GEMMs use a native kernel — AVX512-VNNI on x86-64; I8MM, else SDOT on aarch64 — (CPU
 * has it, active arch avx2 / neon, not disabled by DPT_INT8=portable or dpt_k_set_int8_native(0)). */
int dpt_k_int8_native(void);
/* Tests: 0 forces the portable kernel, 1 asks for the best native one (−1 if the CPU or build has
 * none). */
int dpt_k_set_int8_native(int on);
/* The kernel int8 GEMMs use: "AVX512-VNNI", "I8MM", "SDOT" or "portable"; and as model info's
 * precision_name, "int8 (SDOT)" etc. */
const char *dpt_k_int8_kernel(void);
const char *dpt_k_int8_label(void);
/* Tests: use the named kernel (a name of dpt_k_int8_kernel); −1 if this build or CPU has not got it
 * (nothing changes). */
int dpt_k_set_int8_kernel(const char *name);
/* Bytes needed to pack an (n, k) matrix with dpt_k_pack_int8 (64-byte aligned buffer). */
size_t dpt_k_packed_int8_bytes(int n, int k);
/* Quantise B (n, k) [ldb = k], float (b) or half (bh when not NULL), into buf; −1 if k is not in
 * 1 … DPT_K_INT8_MAX_K or n < 1. dpt_k_sgemm_packed then computes in int8. */
int dpt_k_pack_int8(const float *b, const uint16_t *bh, int n, int k, void *buf, dpt_k_packed *out);
/* The activation rule: row scale, its reciprocal as used for rounding and the zero point, from the
 * row's extremes. */
void dpt_k_int8_row_params(float lo, float hi, float *sa, float *inv, int32_t *zp);
/* Reference: C (m, n) = the int8 formula on A (m, k) and columns n0 … n0+n−1 of a packing. */
void dpt_k_gemm_int8_ref(int m, int n, int k, float alpha, const float *a, int lda, const dpt_k_packed *b,
                         int n0, float beta, float *c, int ldc);

/* Scalar references (kernels/ref.c). Same contracts as the dispatched kernels above;
 * dpt_k_gemm_ref is a plain triple loop with a double accumulator (tests only: slow). */
void dpt_k_gemm_ref(int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc);
void dpt_k_gelu_ref(float *x, size_t n);
void dpt_k_layernorm_ref(float *x, int rows, int cols, const float *gamma, const float *beta,
                         float eps);
void dpt_k_add_layernorm_ref(float *x, const float *r, int rows, int cols, const float *gamma,
                             const float *beta, float eps);
void dpt_k_add_ref(float *y, const float *x, size_t n);
void dpt_k_softmax_ref(float *x, int rows, int cols);
void dpt_k_half_to_float_ref(const uint16_t *src, float *dst, size_t n);

/* erf of each element (y may equal x): the vectorised erf behind the dispatched GELU, exposed for
 * tests (the scalar variant is libm's erff). |error| ≤ 2 ulp of erf, i.e. < 1.3e-7 absolute. */
void dpt_k_erf(const float *x, float *y, size_t n);
/* e^x of each element (y may equal x): the vectorised exp behind the dispatched softmax;
 * relative error ≤ 2 ulp for x in [−87.33, 88.37], 0 below, +Inf above (the scalar
 * variant is libm expf). */
void dpt_k_exp(const float *x, float *y, size_t n);

#endif
