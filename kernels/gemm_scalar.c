/* Scalar GEMM micro-kernel (the own SGEMM's tile for CPUs without AVX2 / NEON, DPT_ARCH=scalar),
 * beside gemm_avx2.c and gemm_neon.c: a leaf the dispatch tables point at. */
#include <stddef.h>

#include "dispatch.h"

#define S_MR 4
#define S_NR 8

/* C tile (mr ≤ 4, nr ≤ 8) = alpha · Ap (kc × 4) · Bp (kc × 8) + beta · C */
static void ukr_scalar(int kc, const float *ap, const float *bp, float *c, int ldc, int mr, int nr,
                       float alpha, float beta) {
    float acc[S_MR][S_NR] = {{0}};
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < S_MR; i++) {
            float a = ap[p * S_MR + i];
            for (int j = 0; j < S_NR; j++) acc[i][j] += a * bp[p * S_NR + j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < nr; j++) ci[j] = alpha * acc[i][j];
        else
            for (int j = 0; j < nr; j++) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
}

const dpt_k_ukr dpt_k_ukr_scalar = {S_MR, S_NR, 128, 256, 2048, ukr_scalar, NULL, NULL};
