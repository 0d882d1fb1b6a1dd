/* aarch64 int8 micro-kernels for gemm_int8.c: SDOT (FEAT_DotProd, Armv8.2; Cortex-A55/A76) and
 * USMMLA (FEAT_I8MM, Armv8.6). Built with -march=armv8.2-a+dotprod for this file only (the I8MM
 * function adds +i8mm by its target attribute); called only after gemm_int8.c saw HWCAP_ASIMDDP /
 * HWCAP2_I8MM.
 *
 * Tile and layout: gemm_int8.c's 12 × 32 tile and its B panels (⌈k/4⌉ steps of 32 words, a word the
 * 4 bytes of depths 4q … 4q+3 of a column); A is packed per call by the kernel's own pack_a. 12 × 32
 * int32 sums are 96 q registers, so both kernels walk the 32 columns in 4 chunks of 8 (24
 * accumulators, 29–30 of 32 registers live, no spills).
 *
 * SDOT: per step 2 loads of B (8 columns), 3 of A (12 rows, gemm_int8.c's A layout), 24 dot
 * products by element (SDOT Vd.4S, Vn.16B, Vm.4B[lane]: 4 columns × 4 depths of B against one
 * row's 4 depths, 16 multiply-adds). SDOT multiplies signed by signed: pack_a stores a − 128 (the
 * u8 byte XOR 0x80), so the kernel's sum is acc − 128·colsum[j]; the epilogue adds
 * (128 − zp)·colsum[j] in int32 (exact) and then runs gemm_int8.c's float expression in its order,
 * so the bits are the portable kernel's. USMMLA (ukr_i8mm below) takes the u8 bytes as they are. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_NEON_BUILD

#if !defined(__ARM_FEATURE_DOTPROD)
#error "kernels/gemm_neon_int8.c must be compiled with -march=armv8.2-a+dotprod (Makefile)"
#endif

#include <arm_neon.h>
#include <string.h>

#define MR 12
#define NR 32

/* One C row's 8 columns c0 … c0+7 (w ≤ 8 of them stored) from its int32 sums x0, x1, already
 * corrected to acc − zp·colsum: gemm_int8.c's epilogue lane by lane, unfused. */
static inline void store_row(int32x4_t x0, int32x4_t x1, float *ci, int w, float sa, float32x4_t sb0,
                             float32x4_t sb1, float alpha, float beta) {
    float t[8];
    float *d = w == 8 ? ci : t;
    if (w < 8) { /* a ragged chunk through a copy: C is not read or written past column w */
        memset(t, 0, sizeof t);
        if (beta != 0.0f) memcpy(t, ci, sizeof(float) * (size_t)w);
    }
    const float32x4_t vsa = vdupq_n_f32(sa), va = vdupq_n_f32(alpha);
    float32x4_t r0 = vmulq_f32(vcvtq_f32_s32(x0), vmulq_f32(vsa, sb0));
    float32x4_t r1 = vmulq_f32(vcvtq_f32_s32(x1), vmulq_f32(vsa, sb1));
    r0 = vmulq_f32(va, r0);
    r1 = vmulq_f32(va, r1);
    if (beta != 0.0f) {
        const float32x4_t vb = vdupq_n_f32(beta);
        r0 = vaddq_f32(r0, vmulq_f32(vb, vld1q_f32(d)));
        r1 = vaddq_f32(r1, vmulq_f32(vb, vld1q_f32(d + 4)));
    }
    vst1q_f32(d, r0);
    vst1q_f32(d + 4, r1);
    if (w < 8) memcpy(ci, t, sizeof(float) * (size_t)w);
}

/* SDOT kernel (file comment). The accumulators are named, not an array: GCC keeps them in
 * registers. */
static void ukr_sdot(int kq, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr, int nr,
                     float alpha, float beta, const float *sa, const int32_t *zp, const float *sb,
                     const int32_t *cs) {
#define ROWS(X) X(0, a0, 0) X(1, a0, 1) X(2, a0, 2) X(3, a0, 3) X(4, a1, 0) X(5, a1, 1) \
                X(6, a1, 2) X(7, a1, 3) X(8, a2, 0) X(9, a2, 1) X(10, a2, 2) X(11, a2, 3)
#define DECL(r, a, l) int32x4_t c##r##0 = vdupq_n_s32(0), c##r##1 = c##r##0;
#define STEP(r, a, l)                                                                             \
    c##r##0 = vdotq_laneq_s32(c##r##0, b0, a, l);                                                 \
    c##r##1 = vdotq_laneq_s32(c##r##1, b1, a, l);
/* acc − zp·colsum = (the sum over a − 128) + (128 − zp)·colsum, in int32 */
#define OUT(r, a, l)                                                                              \
    if (r < mr) {                                                                                 \
        const int32_t f = 128 - zp[r];                                                            \
        store_row(vmlaq_n_s32(c##r##0, cs0, f), vmlaq_n_s32(c##r##1, cs1, f),                    \
                  c + (size_t)(r) * ldc + c0, w, sa[r], sb0, sb1, alpha, beta);                  \
    }
    for (int c0 = 0; c0 < nr; c0 += 8) {
        ROWS(DECL)
        const uint32_t *a = ap, *b = bp + c0;
        for (int q = 0; q < kq; q++) {
            const int8x16_t b0 = vld1q_s8((const int8_t *)(const void *)b);
            const int8x16_t b1 = vld1q_s8((const int8_t *)(const void *)(b + 4));
            const int8x16_t a0 = vld1q_s8((const int8_t *)(const void *)a),
                            a1 = vld1q_s8((const int8_t *)(const void *)(a + 4)),
                            a2 = vld1q_s8((const int8_t *)(const void *)(a + 8));
            ROWS(STEP)
            a += MR;
            b += NR;
        }
        const int w = nr - c0 < 8 ? nr - c0 : 8;
        /* sb and cs are padded to whole panels: 8 values from c0 are there */
        const float32x4_t sb0 = vld1q_f32(sb + c0), sb1 = vld1q_f32(sb + c0 + 4);
        const int32x4_t cs0 = vld1q_s32(cs + c0), cs1 = vld1q_s32(cs + c0 + 4);
        ROWS(OUT)
    }
#undef ROWS
#undef DECL
#undef STEP
#undef OUT
}

/* ap's word of step q, row i: gemm_int8.c's layout (q·MR + i), or with mmla the one of USMMLA for
 * the whole pairs of steps: per pair g, 6 row pairs of 16 bytes, each row's 8 depths 8g … 8g+7
 * (the steps 2g, 2g+1) after the other's; an odd last step stays as it was (same bytes in all). */
static inline size_t a_word(int q, int i, int kq, int mmla) {
    if (mmla && q < (kq & ~1)) return (size_t)(q / 2) * 2 * MR + (size_t)(i / 2) * 4 + (size_t)(i % 2) * 2 + (size_t)(q % 2);
    return (size_t)q * MR + i;
}

/* row 2r (lo) or 2r + 1 (hi) of two 2 × 2 blocks x (columns 2J, 2J+1), y (2J+2, 2J+3) */
static inline int32x4_t lo_rows(int32x4_t x, int32x4_t y) {
    return vreinterpretq_s32_s64(vzip1q_s64(vreinterpretq_s64_s32(x), vreinterpretq_s64_s32(y)));
}
static inline int32x4_t hi_rows(int32x4_t x, int32x4_t y) {
    return vreinterpretq_s32_s64(vzip2q_s64(vreinterpretq_s64_s32(x), vreinterpretq_s64_s32(y)));
}

/* USMMLA Vd.4S, Vn.16B (u8 2 × 8), Vm.16B (s8 2 × 8): the 2 × 2 block of C += A rows · B columns
 * over 8 depths, 32 multiply-adds (twice SDOT's). Per pair of steps and 8 columns: 4 loads of B
 * zipped into 4 column pairs (the words of steps 2g and 2g+1 of a column interleaved: its 8 depths
 * in a row), 6 loads of A row pairs (a_word's layout), 24 USMMLA into 24 2 × 2 blocks (12 rows × 8
 * columns); an odd last step runs as a pair with zero depths. u8 × s8 directly: no correction. */
__attribute__((target("+i8mm")))
static void ukr_i8mm(int kq, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr, int nr,
                     float alpha, float beta, const float *sa, const int32_t *zp, const float *sb,
                     const int32_t *cs) {
    const uint32x4_t z = vdupq_n_u32(0);
#define PAIRS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define MDECL(r) int32x4_t m##r##0 = vdupq_n_s32(0), m##r##1 = m##r##0, m##r##2 = m##r##0, m##r##3 = m##r##0;
#define MSTEP(r, av)                                                                              \
    m##r##0 = vusmmlaq_s32(m##r##0, av, b0);                                                      \
    m##r##1 = vusmmlaq_s32(m##r##1, av, b1);                                                      \
    m##r##2 = vusmmlaq_s32(m##r##2, av, b2);                                                      \
    m##r##3 = vusmmlaq_s32(m##r##3, av, b3);
#define MLOAD(r) { const uint8x16_t av = vld1q_u8((const uint8_t *)(const void *)(a + 4 * (r))); MSTEP(r, av) }
#define BPAIRS(x0, x1, y0, y1)                                                                    \
    const int8x16_t b0 = vreinterpretq_s8_u32(vzip1q_u32(x0, y0)), b1 = vreinterpretq_s8_u32(vzip2q_u32(x0, y0)), \
                    b2 = vreinterpretq_s8_u32(vzip1q_u32(x1, y1)), b3 = vreinterpretq_s8_u32(vzip2q_u32(x1, y1));
#define MOUT(r)                                                                                   \
    for (int h = 0; h < 2; h++) {                                                                 \
        const int i = 2 * (r) + h;                                                                \
        if (i >= mr) break;                                                                       \
        const int32_t f = -zp[i];                                                                 \
        const int32x4_t x0 = h ? hi_rows(m##r##0, m##r##1) : lo_rows(m##r##0, m##r##1);          \
        const int32x4_t x1 = h ? hi_rows(m##r##2, m##r##3) : lo_rows(m##r##2, m##r##3);          \
        store_row(vmlaq_n_s32(x0, cs0, f), vmlaq_n_s32(x1, cs1, f), c + (size_t)i * ldc + c0, w,  \
                  sa[i], sb0, sb1, alpha, beta);                                                  \
    }
    for (int c0 = 0; c0 < nr; c0 += 8) {
        PAIRS(MDECL)
        const uint32_t *a = ap, *b = bp + c0;
        for (int g = 0; g + 1 < kq; g += 2) {
            BPAIRS(vld1q_u32(b), vld1q_u32(b + 4), vld1q_u32(b + NR), vld1q_u32(b + NR + 4))
            PAIRS(MLOAD)
            a += 2 * MR;
            b += 2 * NR;
        }
        if (kq % 2) { /* the last step: its words, zero depths after each */
            BPAIRS(vld1q_u32(b), vld1q_u32(b + 4), z, z)
            const uint32x4_t a0 = vld1q_u32(a), a1 = vld1q_u32(a + 4), a2 = vld1q_u32(a + 8);
            const uint8x16_t p0 = vreinterpretq_u8_u32(vzip1q_u32(a0, z)), p1 = vreinterpretq_u8_u32(vzip2q_u32(a0, z)),
                             p2 = vreinterpretq_u8_u32(vzip1q_u32(a1, z)), p3 = vreinterpretq_u8_u32(vzip2q_u32(a1, z)),
                             p4 = vreinterpretq_u8_u32(vzip1q_u32(a2, z)), p5 = vreinterpretq_u8_u32(vzip2q_u32(a2, z));
            MSTEP(0, p0) MSTEP(1, p1) MSTEP(2, p2) MSTEP(3, p3) MSTEP(4, p4) MSTEP(5, p5)
        }
        const int w = nr - c0 < 8 ? nr - c0 : 8;
        const float32x4_t sb0 = vld1q_f32(sb + c0), sb1 = vld1q_f32(sb + c0 + 4);
        const int32x4_t cs0 = vld1q_s32(cs + c0), cs1 = vld1q_s32(cs + c0 + 4);
        PAIRS(MOUT)
    }
#undef PAIRS
#undef MDECL
#undef MSTEP
#undef MLOAD
#undef BPAIRS
#undef MOUT
}

/* Rows 0 … mr−1 of a [lda], all k depths → ap (⌈k/4⌉ steps of MR words), by gemm_int8.c's rules:
 * extremes from 0 by "x < lo ? x : lo" (NaN skipped; −0 never replaces +0), dpt_k_int8_row_params,
 * then per element round-to-nearest-even of a · inv + zp clamped to [0, 255], 0 where a · inv is
 * NaN or outside int32; depths past k are 0. flip = 0x80 stores the bytes as s8 a − 128 (SDOT);
 * mmla: a_word's layout (USMMLA). */
static inline void pack_a(const float *a, int lda, int mr, int k, uint32_t *ap, float *sa, int32_t *zp,
                          uint8_t flip, int mmla) {
    const int kq = (k + 3) / 4;
    const uint8x16_t vflip = vdupq_n_u8(flip);
    for (int i = 0; i < MR; i++) {
        if (i >= mr) {
            sa[i] = 0.0f;
            zp[i] = 0;
            for (int q = 0; q < kq; q++) ap[a_word(q, i, kq, mmla)] = 0;
            continue;
        }
        const float *row = a + (size_t)i * lda;
        float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
        int p = 0;
        for (; p + 4 <= k; p += 4) {
            const float32x4_t x = vld1q_f32(row + p);
            lo = vbslq_f32(vcltq_f32(x, lo), x, lo);
            hi = vbslq_f32(vcgtq_f32(x, hi), x, hi);
        }
        float l = 0.0f, h = 0.0f;
        for (int t = 0; t < 4; t++) {
            const float xl = vgetq_lane_f32(lo, 0), xh = vgetq_lane_f32(hi, 0);
            l = xl < l ? xl : l;
            h = xh > h ? xh : h;
            lo = vextq_f32(lo, lo, 1);
            hi = vextq_f32(hi, hi, 1);
        }
        for (; p < k; p++) {
            l = row[p] < l ? row[p] : l;
            h = row[p] > h ? row[p] : h;
        }
        float inv;
        dpt_k_int8_row_params(l, h, &sa[i], &inv, &zp[i]);
        const float32x4_t vinv = vdupq_n_f32(inv), big = vdupq_n_f32(2147483648.0f),
                          nbig = vdupq_n_f32(-2147483648.0f);
        const int32x4_t vz = vdupq_n_s32(zp[i]), v0 = vdupq_n_s32(0), v255 = vdupq_n_s32(255);
        for (int p0 = 0; p0 < k; p0 += 16) {
            float x[16];
            const float *src = row + p0;
            const int n = k - p0 < 16 ? k - p0 : 16;
            if (n < 16) { /* tail: copied, the depths past k masked below */
                memset(x, 0, sizeof x);
                memcpy(x, src, sizeof(float) * (size_t)n);
                src = x;
            }
            int16x8_t h2[2];
            for (int g = 0; g < 2; g++) {
                int32x4_t v[2];
                for (int u = 0; u < 2; u++) {
                    const float32x4_t f = vmulq_f32(vld1q_f32(src + 8 * g + 4 * u), vinv);
                    const uint32x4_t ok = vandq_u32(vcgtq_f32(f, nbig), vcltq_f32(f, big));
                    int32x4_t e = vqaddq_s32(vcvtnq_s32_f32(f), vz);
                    e = vminq_s32(vmaxq_s32(e, v0), v255);
                    v[u] = vreinterpretq_s32_u32(vandq_u32(vreinterpretq_u32_s32(e), ok));
                }
                h2[g] = vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1]));
            }
            uint8x16_t bytes = vcombine_u8(vmovn_u16(vreinterpretq_u16_s16(h2[0])),
                                           vmovn_u16(vreinterpretq_u16_s16(h2[1])));
            uint8_t bb[16];
            vst1q_u8(bb, veorq_u8(bytes, vflip));
            if (n < 16) memset(bb + n, flip, (size_t)(16 - n));
            for (int t = 0; t < 4 && p0 / 4 + t < kq; t++)
                memcpy(ap + a_word(p0 / 4 + t, i, kq, mmla), bb + 4 * t, 4);
        }
    }
}

static void pack_a_sdot(const float *a, int lda, int mr, int k, uint32_t *ap, float *sa, int32_t *zp) {
    pack_a(a, lda, mr, k, ap, sa, zp, 0x80, 0);
}

static void pack_a_mmla(const float *a, int lda, int mr, int k, uint32_t *ap, float *sa, int32_t *zp) {
    pack_a(a, lda, mr, k, ap, sa, zp, 0, 1);
}

/* mc 120 = 10 tiles, as the other int8 kernels */
const dpt_k_ukr_int8 dpt_k_ukr_neon_sdot = {MR, NR, 120, ukr_sdot, pack_a_sdot};
const dpt_k_ukr_int8 dpt_k_ukr_neon_i8mm = {MR, NR, 120, ukr_i8mm, pack_a_mmla};

#else
typedef int dpt_k_gemm_neon_int8_unused;
#endif
