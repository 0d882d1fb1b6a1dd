/* aarch64 micro-kernel for weights packed as IEEE half (the f16 precision), register tile 8 × 12.
 *
 * Design: the weights are halves in memory (half the bytes of the float32 panels: half the cache
 * and DRAM traffic of the weight stream) and become float32 in registers (FCVTL / FCVTL2, exact);
 * activations stay float32 and the multiply-adds are the float32 kernel's (gemm_neon.c): per depth
 * step 2 loads of A (8 floats), 2 loads of B (12 halves: 16 + 8 bytes), 3 conversions, 24
 * lane-indexed FMLA into 24 accumulators, in the same order and with the same epilogue as
 * ukr_8x12, so C equals the float32 kernel's on the half-rounded weights bit for bit.
 * Why not half arithmetic: FMLA .8H (FEAT_FP16, Cortex-A76 has it) doubles the multiply-adds per
 * instruction but sums in half precision (11 significant bits): over the models' depths (512 …
 * 3072) that deviates by ~1e-2 of |C| (DEVELOPERS.md has the measurement). FMLAL/FMLAL2
 * (FEAT_FHM: half × half summed into float32) would need the activations rounded to half and give
 * no more multiply-adds per instruction than float32 FMLA; Cortex-A76 does not have it. Only
 * baseline aarch64 instructions are used here (FCVTL is Armv8.0): no CPU check needed. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_NEON_BUILD

#include <arm_neon.h>

#define MR 8
#define NR 12

static void ukr_f16_8x12(int kc, const uint32_t *ap32, const uint32_t *bp32, float *c, int ldc, int mr,
                         int nr, float alpha, float beta) {
    const float *ap = (const float *)(const void *)ap32;
    const uint16_t *bp = (const uint16_t *)(const void *)bp32;
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z;
    float32x4_t c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z;
    float32x4_t c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
    for (int p = 0; p < kc; p++) {
        float32x4_t a0 = vld1q_f32(ap), a1 = vld1q_f32(ap + 4);
        float16x8_t h01 = vreinterpretq_f16_u16(vld1q_u16(bp));
        float16x4_t h2 = vreinterpret_f16_u16(vld1_u16(bp + 8));
        float32x4_t b0 = vcvt_f32_f16(vget_low_f16(h01)), b1 = vcvt_high_f32_f16(h01), b2 = vcvt_f32_f16(h2);
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
    /* the epilogue of ukr_8x12 (gemm_neon.c), operation for operation */
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

/* Rows 0 … mr−1 of a [lda], depths 0 … kc−1 → ap as float32 (kc steps of 8 floats, rows ≥ mr 0):
 * 4 × 4 blocks transposed in registers. */
static void pack_a_f32_8(const float *a, int lda, int mr, int kc, uint32_t *ap32) {
    float *ap = (float *)(void *)ap32;
    if (mr < MR) {
        for (int p = 0; p < kc; p++)
            for (int i = 0; i < MR; i++) ap[p * MR + i] = i < mr ? a[(size_t)i * lda + p] : 0.0f;
        return;
    }
    int p = 0;
    for (; p + 4 <= kc; p += 4)
        for (int h = 0; h < 2; h++) {
            const float *s = a + (size_t)(4 * h) * lda + p;
            float32x4_t r0 = vld1q_f32(s), r1 = vld1q_f32(s + lda), r2 = vld1q_f32(s + 2 * (size_t)lda),
                        r3 = vld1q_f32(s + 3 * (size_t)lda);
            float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1), t2 = vtrn1q_f32(r2, r3),
                        t3 = vtrn2q_f32(r2, r3);
            float *d = ap + p * MR + 4 * h;
            vst1q_f32(d, vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2))));
            vst1q_f32(d + MR, vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3))));
            vst1q_f32(d + 2 * MR, vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2))));
            vst1q_f32(d + 3 * MR, vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3))));
        }
    for (; p < kc; p++)
        for (int i = 0; i < MR; i++) ap[p * MR + i] = a[(size_t)i * lda + p];
}

/* mc 128, kc 256 (the float32 kernel's depth blocks: the same sums), one B panel 256 × 12 halves =
 * 6 KB. */
const dpt_k_ukr_bf16 dpt_k_ukr_neon_f16 = {MR, NR, 128, 256, ukr_f16_8x12, pack_a_f32_8, DPT_K_LAYOUT_ROWS, 1};

#else
typedef int dpt_k_gemm_neon_f16_unused;
#endif
