/* AVX2+FMA SGEMM micro-kernel, register tile 6 × 16 (x86-64; built with -mavx2 -mfma, called only
 * after dispatch.c checked the CPU). Per depth step: 2 loads of B (16 floats), 6 broadcasts of A,
 * 12 FMAs into 12 ymm accumulators — enough independent chains to cover the FMA latency on two
 * FMA ports; 15 of the 16 ymm registers in use. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_AVX2_BUILD

#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/gemm_avx2.c must be compiled with -mavx2 -mfma (see the Makefile)"
#endif

#include <immintrin.h>

#define MR 6
#define NR 16

/* C tile (mr ≤ 6, nr ≤ 16) [ldc] = alpha · Ap (kc × 6) · Bp (kc × 16) + beta · C */
static void ukr_6x16(int kc, const float *ap, const float *bp, float *c, int ldc, int mr, int nr,
                     float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define STEP(p)                                                                                    \
    do {                                                                                           \
        __m256 b0 = _mm256_load_ps(bp + (p) * NR), b1 = _mm256_load_ps(bp + (p) * NR + 8), a;    \
        a = _mm256_broadcast_ss(ap + (p) * MR + 0);                                                \
        c00 = _mm256_fmadd_ps(a, b0, c00);                                                         \
        c01 = _mm256_fmadd_ps(a, b1, c01);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 1);                                                \
        c10 = _mm256_fmadd_ps(a, b0, c10);                                                         \
        c11 = _mm256_fmadd_ps(a, b1, c11);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 2);                                                \
        c20 = _mm256_fmadd_ps(a, b0, c20);                                                         \
        c21 = _mm256_fmadd_ps(a, b1, c21);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 3);                                                \
        c30 = _mm256_fmadd_ps(a, b0, c30);                                                         \
        c31 = _mm256_fmadd_ps(a, b1, c31);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 4);                                                \
        c40 = _mm256_fmadd_ps(a, b0, c40);                                                         \
        c41 = _mm256_fmadd_ps(a, b1, c41);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 5);                                                \
        c50 = _mm256_fmadd_ps(a, b0, c50);                                                         \
        c51 = _mm256_fmadd_ps(a, b1, c51);                                                         \
    } while (0)
    /* the C tile is needed only at the end: fetch it now (both lines of each 16-float row);
     * the Bp panel stays in L1, the Ap panel streams from L2: fetch it 8 steps ahead */
    for (int i = 0; i < MR; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 15), _MM_HINT_T0);
    }
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        _mm_prefetch((const char *)(ap + 8 * 4 * MR), _MM_HINT_T0);
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
        ap += 4 * MR;
        bp += 4 * NR;
    }
    for (; p < kc; p++) {
        STEP(0);
        ap += MR;
        bp += NR;
    }
#undef STEP
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc;
            __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        }
        return;
    }
    _Alignas(32) float t[MR][NR];
    for (int i = 0; i < MR; i++) {
        _mm256_store_ps(t[i], _mm256_mul_ps(va, acc[i][0]));
        _mm256_store_ps(t[i] + 8, _mm256_mul_ps(va, acc[i][1]));
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < nr; j++) ci[j] = t[i][j];
        else
            for (int j = 0; j < nr; j++) ci[j] = t[i][j] + beta * ci[j];
    }
}

/* mc 168 = 28 tiles: Ap 168·256·4 B = 168 KB (L2); kc 256: one Bp panel 16 KB (L1);
 * nc 4080: Bp ≤ 4 MB (L3). */
const dpt_k_ukr dpt_k_ukr_avx2 = {MR, NR, 168, 256, 4080, ukr_6x16};

#else
typedef int dpt_k_gemm_avx2_unused;
#endif
