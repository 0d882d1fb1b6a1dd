/* aarch64 BF16 micro-kernel (FEAT_BF16, Armv8.6; built with -march=armv8.2-a+bf16 for this file
 * only and called only after gemm_bf16.c saw HWCAP2_BF16), register tile 12 × 8.
 *
 * BFMMLA Vd.4S, Vn.8H, Vm.8H adds to the 2 × 2 float32 block Vd the product of a 2 × 4 bfloat16
 * block of A (rows i, i+1 × 4 depths) and a 4 × 2 block of B (4 depths × columns j, j+1; stored as
 * two columns of 4): 16 multiply-adds per instruction. Panels (dispatch.h DPT_K_LAYOUT_MMLA), per
 * group of 4 depths: A 6 row pairs × 8 bfloat16 (6 q registers), B 4 column pairs × 8 (4 q
 * registers). Per group: 4 + 6 loads, 24 BFMMLA into 24 accumulators (each a 2 × 2 block of C),
 * 29 of the 32 vector registers live (built with -fno-schedule-insns: GCC's pre-allocation
 * scheduler would hoist all 6 A loads and spill 3 accumulators); 384 multiply-adds per 10 loads,
 * 2 pointer adds, a compare and a branch.
 *
 * Arithmetic (Arm ARM, BFMMLA, without FEAT_EBF16 or with FPCR.EBF = 0, which is the state this
 * library leaves FPCR in): each element of C adds per group two "2-way unfused dot products":
 * t = RO(p₀ + p₁), acc = RO(acc + t), with the products p of two bfloat16 values exact in float32
 * (8 × 8 significant bits), RO = round to odd (|RO(x) − x| < ulp(x) ≤ 2⁻²³·|x|), denormal inputs
 * and results flushed to zero. Over a depth block of kc: ⌈kc/2⌉ pair sums and ⌈kc/2⌉ accumulations,
 * each term passing through at most ⌈kc/2⌉ + 1 roundings of relative size ≤ u' = 2⁻²³, so
 *   |acc − Σ p| ≤ γ'(⌈kc/2⌉ + 1)·Σ|p| + kc·2⁻¹²⁵  (γ'(n) = n·u'/(1 − n·u'), the second term the
 *   flushed denormal products and sums, each < 2⁻¹²⁶).
 * The driver then adds the blocks in float32 (round to nearest: one rounding per block) and
 * applies α and β (two more); tests/test_kernels.c checks C against the double-precision sum of the
 * same rounded operands with the bound n = ⌈k/2⌉ + (blocks) + 3 roundings of 2⁻²³. That is about
 * the float32 bound (k roundings of 2⁻²⁴): round to odd costs twice the unit, pairs halve the count.
 * With FEAT_EBF16 and FPCR.EBF = 1 the pair sums are fused and rounded to nearest: within the same
 * bound. x86's vdpbf16ps rounds differently (two RNE FMAs per pair), so the two kernels agree with
 * each other to these bounds, not bit for bit. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_NEON_BUILD

#if !defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#error "kernels/gemm_neon_bf16.c must be compiled with -march=armv8.2-a+bf16 (Makefile)"
#endif

#include <arm_neon.h>
#include <string.h>

#define MR 12
#define NR 8
#define KC 256 /* depths per block: one B panel 256 × 8 bfloat16 = 4 KB, A 12 × 256 = 6 KB (L1) */

static inline float32x4_t lo_rows(float32x4_t x, float32x4_t y) { /* row i of two 2 × 2 blocks */
    return vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(x), vreinterpretq_f64_f32(y)));
}
static inline float32x4_t hi_rows(float32x4_t x, float32x4_t y) { /* row i + 1 */
    return vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(x), vreinterpretq_f64_f32(y)));
}

static void ukr_12x8(int kq, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr, int nr,
                     float alpha, float beta) {
    const uint16_t *a = (const uint16_t *)(const void *)ap, *b = (const uint16_t *)(const void *)bp;
    const float32x4_t z = vdupq_n_f32(0.0f);
    /* cRJ: the 2 × 2 block of rows 2R, 2R+1 and columns 2J, 2J+1 (named, not an array: GCC keeps
     * them in registers) */
    float32x4_t c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    float32x4_t c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
    float32x4_t c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z, c52 = z, c53 = z;
    for (int g = 0; g < kq; g++) {
        const bfloat16x8_t b0 = vreinterpretq_bf16_u16(vld1q_u16(b)), b1 = vreinterpretq_bf16_u16(vld1q_u16(b + 8)),
                           b2 = vreinterpretq_bf16_u16(vld1q_u16(b + 16)),
                           b3 = vreinterpretq_bf16_u16(vld1q_u16(b + 24));
        bfloat16x8_t av;
#define PAIR(r)                                                                                    \
    av = vreinterpretq_bf16_u16(vld1q_u16(a + 8 * r));                                             \
    c##r##0 = vbfmmlaq_f32(c##r##0, av, b0);                                                       \
    c##r##1 = vbfmmlaq_f32(c##r##1, av, b1);                                                       \
    c##r##2 = vbfmmlaq_f32(c##r##2, av, b2);                                                       \
    c##r##3 = vbfmmlaq_f32(c##r##3, av, b3)
        PAIR(0);
        PAIR(1);
        PAIR(2);
        PAIR(3);
        PAIR(4);
        PAIR(5);
#undef PAIR
        a += 4 * MR;
        b += 4 * NR;
    }
    const float32x4_t acc[MR / 2][NR / 2] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},
                                             {c30, c31, c32, c33}, {c40, c41, c42, c43}, {c50, c51, c52, c53}};
    /* 2 × 2 blocks → rows; full tiles straight into C, ragged ones through a copy with the same
     * arithmetic (so a C element's bits do not depend on its tile being ragged) */
    const int full = mr == MR && nr == NR;
    float t[MR][NR];
    if (!full) memset(t, 0, sizeof t);
    for (int r = 0; r < MR / 2; r++)
        for (int h = 0; h < 2; h++) {
            const int i = 2 * r + h;
            if (i >= mr) break;
            float *ci = full ? c + (size_t)i * ldc : t[i];
            if (!full && beta != 0.0f) memcpy(t[i], c + (size_t)i * ldc, sizeof(float) * (size_t)nr);
            for (int v = 0; v < 2; v++) {
                float32x4_t x = h ? hi_rows(acc[r][2 * v], acc[r][2 * v + 1]) : lo_rows(acc[r][2 * v], acc[r][2 * v + 1]);
                x = vmulq_n_f32(x, alpha);
                if (beta != 0.0f) x = vfmaq_n_f32(x, vld1q_f32(ci + 4 * v), beta);
                vst1q_f32(ci + 4 * v, x);
            }
            if (!full) memcpy(c + (size_t)i * ldc, t[i], sizeof(float) * (size_t)nr);
        }
}

/* 4 floats → 4 bfloat16, exactly dpt_k_bf16_from_float (nearest even, denormals to ±0, NaN quiet),
 * in integer arithmetic: BFCVTN would follow FPCR (denormals kept unless FZ). */
static inline uint16x4_t bf16x4(float32x4_t x) {
    const uint32x4_t u = vreinterpretq_u32_f32(x);
    const uint32x4_t sign = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x8000u));
    const uint32x4_t tiny = vceqq_u32(vandq_u32(u, vdupq_n_u32(0x7f800000u)), vdupq_n_u32(0));
    const uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffffu)), vdupq_n_u32(0x7f800000u));
    const uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    uint32x4_t r = vshrq_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7fffu)), odd), 16);
    r = vbslq_u32(nan, vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40u)), r);
    r = vbslq_u32(tiny, sign, r);
    return vmovn_u32(r);
}

/* Rows 0 … mr−1 of a [lda], depths 0 … kc−1 → ap (⌈kc/4⌉ groups of 6 row pairs × 8 bfloat16). */
static void pack_a_12(const float *a, int lda, int mr, int kc, uint32_t *ap) {
    uint16_t *d = (uint16_t *)(void *)ap;
    const int kg = (kc + 3) / 4;
    for (int i = 0; i < MR; i++) {
        uint16_t *di = d + (i / 2) * 8 + (i % 2) * 4;
        if (i >= mr) {
            for (int g = 0; g < kg; g++) vst1_u16(di + (size_t)g * 4 * MR, vdup_n_u16(0));
            continue;
        }
        const float *src = a + (size_t)i * lda;
        int g = 0;
        for (; 4 * g + 4 <= kc; g++) vst1_u16(di + (size_t)g * 4 * MR, bf16x4(vld1q_f32(src + 4 * g)));
        if (g < kg) {
            float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            memcpy(tail, src + 4 * g, sizeof(float) * (size_t)(kc - 4 * g));
            vst1_u16(di + (size_t)g * 4 * MR, bf16x4(vld1q_f32(tail)));
        }
    }
}

/* mc 120 = 10 tiles: A 120 × 256 bfloat16 = 60 KB (L2). */
const dpt_k_ukr_bf16 dpt_k_ukr_neon_bf16 = {MR, NR, 120, KC, ukr_12x8, pack_a_12, DPT_K_LAYOUT_MMLA, 0};

#else
typedef int dpt_k_gemm_neon_bf16_unused;
#endif
