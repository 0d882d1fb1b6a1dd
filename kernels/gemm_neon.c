/* NEON SGEMM micro-kernel, register tile 8 × 12 (aarch64). Per depth step: 2 loads of A (8 floats),
 * 3 loads of B (12 floats), 24 lane-indexed FMAs into 24 q-register accumulators; 29 of the 32
 * vector registers in use. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_NEON_BUILD

#include <arm_neon.h>

#define MR 8
#define NR 12

/* C tile (mr ≤ 8, nr ≤ 12) [ldc] = alpha · Ap (kc × 8) · Bp (kc × 12) + beta · C */
static void ukr_8x12(int kc, const float *ap, const float *bp, float *c, int ldc, int mr, int nr,
                     float alpha, float beta) {
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z;
    float32x4_t c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z;
    float32x4_t c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
    for (int p = 0; p < kc; p++) {
        float32x4_t a0 = vld1q_f32(ap), a1 = vld1q_f32(ap + 4);
        float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4), b2 = vld1q_f32(bp + 8);
#define ROW(i, av, l)                                                                              \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, av, l);                                                 \
    c##i##1 = vfmaq_laneq_f32(c##i##1, b1, av, l);                                                 \
    c##i##2 = vfmaq_laneq_f32(c##i##2, b2, av, l)
        ROW(0, a0, 0);
        ROW(1, a0, 1);
        ROW(2, a0, 2);
        ROW(3, a0, 3);
        ROW(4, a1, 0);
        ROW(5, a1, 1);
        ROW(6, a1, 2);
        ROW(7, a1, 3);
#undef ROW
        ap += MR;
        bp += NR;
    }
    float32x4_t acc[MR][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22},
                              {c30, c31, c32}, {c40, c41, c42}, {c50, c51, c52},
                              {c60, c61, c62}, {c70, c71, c72}};
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc;
            for (int v = 0; v < 3; v++) {
                float32x4_t r = vmulq_n_f32(acc[i][v], alpha);
                if (beta != 0.0f) r = vfmaq_n_f32(r, vld1q_f32(ci + 4 * v), beta);
                vst1q_f32(ci + 4 * v, r);
            }
        }
        return;
    }
    float t[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < 3; v++) vst1q_f32(t[i] + 4 * v, vmulq_n_f32(acc[i][v], alpha));
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < nr; j++) ci[j] = t[i][j];
        else
            for (int j = 0; j < nr; j++) ci[j] = t[i][j] + beta * ci[j];
    }
}

/* mc 128 = 16 tiles: Ap 128 KB; kc 256: one Bp panel 12 KB (L1 of Cortex-A72/A76); nc 3072. */
const dpt_k_ukr dpt_k_ukr_neon = {MR, NR, 128, 256, 3072, ukr_8x12, NULL, NULL};

#else
typedef int dpt_k_gemm_neon_unused;
#endif
