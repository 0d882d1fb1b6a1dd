/* NEON SGEMM micro-kernel, register tile 8 × 12 (aarch64). Per depth step: 2 loads of A (8 floats),
 * 3 loads of B (12 floats), 24 lane-indexed FMAs into 24 q-register accumulators; 29 of the 32
 * vector registers in use. And the vectorised transposed packing of B panels (pack_bt_12). */
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

/* 4 × 4 block transposed: r[i] = row i (4 depths) → r[q] = depth q (4 rows). */
static inline void tr4(float32x4_t r[4]) {
    float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]), t2 = vtrn1q_f32(r[2], r[3]),
                t3 = vtrn2q_f32(r[2], r[3]);
    r[0] = vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

/* One full panel of Bᵀ (dispatch.h dpt_k_pack_bt_fn): rows j0 … j0+11 of B (n, k) [ldb], depths
 * 0 … kc−1 → bp[p·12 + j], float or half (converted exactly, as half_to_float_neon): 4 depths of 4
 * rows at a time transposed in registers, the last kc mod 4 depths element by element. Pure data
 * movement: the same panels as the scalar packing, bit for bit. */
static void pack_bt_12(const float *b, const uint16_t *bh, int ldb, int kc, float *bp) {
    int p = 0;
    for (; p + 4 <= kc; p += 4)
        for (int g = 0; g < NR / 4; g++) {
            float32x4_t r[4];
            for (int i = 0; i < 4; i++) {
                const size_t o = (size_t)(4 * g + i) * ldb + p;
                r[i] = bh ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(bh + o))) : vld1q_f32(b + o);
            }
            tr4(r);
            for (int q = 0; q < 4; q++) vst1q_f32(bp + (size_t)(p + q) * NR + 4 * g, r[q]);
        }
    for (; p < kc; p++)
        for (int j = 0; j < NR; j++) {
            const size_t o = (size_t)j * ldb + p;
            bp[(size_t)p * NR + j] =
                bh ? vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_dup_u16(bh + o))), 0) : b[o];
        }
}

/* mc 128 = 16 tiles: Ap 128 KB; kc 256: one Bp panel 12 KB (L1 of Cortex-A72/A76); nc 3072. */
const dpt_k_ukr dpt_k_ukr_neon = {MR, NR, 128, 256, 3072, ukr_8x12, pack_bt_12, NULL};

#else
typedef int dpt_k_gemm_neon_unused;
#endif
