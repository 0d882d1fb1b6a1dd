/* NEON element-wise and reduction kernels (aarch64, where NEON is baseline: no extra flags).
 * Same contracts and approximations as kernels.h / dispatch.h, and the same structure as
 * avx2.c with 4 lanes. Tails go through a 4-float stack buffer. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_NEON_BUILD

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define V4 float32x4_t
#define SET1 vdupq_n_f32

/* ---- exp, erf (4 lanes) --------------------------------------------------------------------- */

/* e^x, 4 lanes; see dispatch.h. NaN in → NaN out. */
static inline V4 exp4(V4 x) {
    const V4 lo = SET1(DPT_K_EXP_LO), hi = SET1(DPT_K_EXP_HI);
    uint32x4_t under = vcltq_f32(x, lo);
    uint32x4_t over = vcgtq_f32(x, hi);
    uint32x4_t nan = vmvnq_u32(vceqq_f32(x, x));
    V4 xc = vminq_f32(vmaxq_f32(x, lo), hi);
    V4 n = vrndnq_f32(vmulq_f32(xc, SET1(DPT_K_LOG2E)));
    V4 r = vfmsq_f32(xc, n, SET1(DPT_K_LN2_HI));
    r = vfmsq_f32(r, n, SET1(DPT_K_LN2_LO));
    V4 q = vfmaq_f32(SET1(DPT_K_EXP_Q3), SET1(DPT_K_EXP_Q4), r);
    q = vfmaq_f32(SET1(DPT_K_EXP_Q2), q, r);
    q = vfmaq_f32(SET1(DPT_K_EXP_Q1), q, r);
    q = vfmaq_f32(SET1(DPT_K_EXP_Q0), q, r);
    V4 p = vaddq_f32(vfmaq_f32(r, vmulq_f32(r, r), q), SET1(1.0f));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    V4 y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    y = vbslq_f32(under, SET1(0.0f), y);
    y = vbslq_f32(over, SET1(INFINITY), y);
    return vbslq_f32(nan, x, y);
}

/* erf(x), 4 lanes; see dispatch.h. */
static inline V4 erf4(V4 x) {
    const V4 one = SET1(1.0f);
    uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    V4 z = vabsq_f32(x);
    V4 z2 = vmulq_f32(z, z);
    /* 0 ≤ z < 1: z + z·P(z²) */
    V4 p = vfmaq_f32(SET1(DPT_K_ERF_P5), SET1(DPT_K_ERF_P6), z2);
    p = vfmaq_f32(SET1(DPT_K_ERF_P4), p, z2);
    p = vfmaq_f32(SET1(DPT_K_ERF_P3), p, z2);
    p = vfmaq_f32(SET1(DPT_K_ERF_P2), p, z2);
    p = vfmaq_f32(SET1(DPT_K_ERF_P1), p, z2);
    p = vfmaq_f32(SET1(DPT_K_ERF_P0), p, z2);
    V4 small = vfmaq_f32(z, z, p);
    /* 1 ≤ z < 3.92: 1 − e^{−z²}·G(1/(1 + z/2)) */
    V4 t = vdivq_f32(one, vfmaq_f32(one, SET1(0.5f), z));
    V4 g = vfmaq_f32(SET1(DPT_K_ERF_G6), SET1(DPT_K_ERF_G7), t);
    g = vfmaq_f32(SET1(DPT_K_ERF_G5), g, t);
    g = vfmaq_f32(SET1(DPT_K_ERF_G4), g, t);
    g = vfmaq_f32(SET1(DPT_K_ERF_G3), g, t);
    g = vfmaq_f32(SET1(DPT_K_ERF_G2), g, t);
    g = vfmaq_f32(SET1(DPT_K_ERF_G1), g, t);
    g = vfmaq_f32(SET1(DPT_K_ERF_G0), g, t);
    V4 large = vfmsq_f32(one, exp4(vnegq_f32(z2)), g);
    V4 r = vbslq_f32(vcgeq_f32(z, SET1(DPT_K_ERF_SPLIT)), large, small);
    r = vbslq_f32(vcgeq_f32(z, SET1(DPT_K_ERF_ONE)), one, r);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(r), sign));
}

static inline V4 gelu4(V4 x) {
    V4 e = erf4(vmulq_f32(x, SET1((float)M_SQRT1_2)));
    return vmulq_f32(vmulq_f32(SET1(0.5f), x), vaddq_f32(SET1(1.0f), e));
}

#define MAP4(f, x, y, n)                                                                           \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        for (; i_ + 4 <= (n); i_ += 4) vst1q_f32((y) + i_, f(vld1q_f32((x) + i_)));               \
        if (i_ < (n)) {                                                                            \
            float b_[4] = {0};                                                                     \
            memcpy(b_, (x) + i_, sizeof(float) * ((n) - i_));                                      \
            vst1q_f32(b_, f(vld1q_f32(b_)));                                                       \
            memcpy((y) + i_, b_, sizeof(float) * ((n) - i_));                                      \
        }                                                                                          \
    } while (0)

static void gelu_neon(float *x, size_t n) { MAP4(gelu4, x, x, n); }
static void erf_neon(const float *x, float *y, size_t n) { MAP4(erf4, x, y, n); }
static void exp_neon(const float *x, float *y, size_t n) { MAP4(exp4, x, y, n); }

/* ---- add ------------------------------------------------------------------------------------ */

/* y (n) += x (n) */
static void add_neon(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int u = 0; u < 16; u += 4)
            vst1q_f32(y + i + u, vaddq_f32(vld1q_f32(y + i + u), vld1q_f32(x + i + u)));
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

/* ---- LayerNorm ------------------------------------------------------------------------------ */

/* 4 floats widened to double, added into two 2-lane accumulators. */
static inline void acc_pd(float64x2_t *a0, float64x2_t *a1, V4 v) {
    *a0 = vaddq_f64(*a0, vcvt_f64_f32(vget_low_f32(v)));
    *a1 = vaddq_f64(*a1, vcvt_high_f64_f32(v));
}

/* row (cols) := (row − mean)/√(var + eps)·γ + β, mean and biased variance in double (two passes
 * as the reference); if r, row += r first (fused into the mean pass). */
static void ln_row(float *row, const float *r, int cols, const float *gamma, const float *beta,
                   float eps) {
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0, s2 = s0, s3 = s0;
    double tail = 0.0;
    int c = 0;
    for (; c + 8 <= cols; c += 8) {
        V4 a = vld1q_f32(row + c), b = vld1q_f32(row + c + 4);
        if (r) {
            a = vaddq_f32(a, vld1q_f32(r + c));
            b = vaddq_f32(b, vld1q_f32(r + c + 4));
            vst1q_f32(row + c, a);
            vst1q_f32(row + c + 4, b);
        }
        acc_pd(&s0, &s1, a);
        acc_pd(&s2, &s3, b);
    }
    for (; c < cols; c++) {
        if (r) row[c] += r[c];
        tail += row[c];
    }
    double mean = (vaddvq_f64(vaddq_f64(vaddq_f64(s0, s1), vaddq_f64(s2, s3))) + tail) / cols;

    float64x2_t m = vdupq_n_f64(mean);
    float64x2_t v0 = vdupq_n_f64(0.0), v1 = v0;
    tail = 0.0;
    for (c = 0; c + 4 <= cols; c += 4) {
        V4 a = vld1q_f32(row + c);
        float64x2_t d0 = vsubq_f64(vcvt_f64_f32(vget_low_f32(a)), m);
        float64x2_t d1 = vsubq_f64(vcvt_high_f64_f32(a), m);
        v0 = vfmaq_f64(v0, d0, d0);
        v1 = vfmaq_f64(v1, d1, d1);
    }
    for (; c < cols; c++) {
        double d = row[c] - mean;
        tail += d * d;
    }
    double var = (vaddvq_f64(vaddq_f64(v0, v1)) + tail) / cols;
    float inv = (float)(1.0 / sqrt(var + eps)), mf = (float)mean;

    V4 vm = SET1(mf), vi = SET1(inv);
    for (c = 0; c + 4 <= cols; c += 4) {
        V4 v = vmulq_f32(vsubq_f32(vld1q_f32(row + c), vm), vi);
        if (gamma) {
            v = vmulq_f32(v, vld1q_f32(gamma + c));
            v = vaddq_f32(v, beta ? vld1q_f32(beta + c) : SET1(0.0f));
        }
        vst1q_f32(row + c, v);
    }
    for (; c < cols; c++) {
        float v = (row[c] - mf) * inv;
        row[c] = gamma ? v * gamma[c] + (beta ? beta[c] : 0.0f) : v;
    }
}

static void layernorm_neon(float *x, int rows, int cols, const float *gamma, const float *beta,
                           float eps) {
    for (int r = 0; r < rows; r++) ln_row(x + (size_t)r * cols, NULL, cols, gamma, beta, eps);
}

static void add_layernorm_neon(float *x, const float *res, int rows, int cols, const float *gamma,
                               const float *beta, float eps) {
    for (int r = 0; r < rows; r++)
        ln_row(x + (size_t)r * cols, res + (size_t)r * cols, cols, gamma, beta, eps);
}

/* ---- softmax -------------------------------------------------------------------------------- */

/* row (cols) := e^{row − max} / Σ e^{row − max}; the sum in double as the reference. */
static void softmax_row(float *row, int cols) {
    V4 mx4 = SET1(-INFINITY);
    int c = 0;
    for (; c + 4 <= cols; c += 4) mx4 = vmaxq_f32(mx4, vld1q_f32(row + c));
    float mx = vmaxvq_f32(mx4);
    for (; c < cols; c++)
        if (row[c] > mx) mx = row[c];
    if (mx == -INFINITY) {
        memset(row, 0, sizeof(float) * (size_t)cols);
        return;
    }
    V4 vm = SET1(mx);
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
    for (c = 0; c + 4 <= cols; c += 4) {
        V4 e = exp4(vsubq_f32(vld1q_f32(row + c), vm));
        vst1q_f32(row + c, e);
        acc_pd(&s0, &s1, e);
    }
    if (c < cols) { /* padding −∞ contributes 0 */
        float b[4];
        for (int i = 0; i < 4; i++) b[i] = c + i < cols ? row[c + i] : -INFINITY;
        V4 e = exp4(vsubq_f32(vld1q_f32(b), vm));
        vst1q_f32(b, e);
        acc_pd(&s0, &s1, e);
        memcpy(row + c, b, sizeof(float) * (size_t)(cols - c));
    }
    float inv = (float)(1.0 / vaddvq_f64(vaddq_f64(s0, s1)));
    V4 vi = SET1(inv);
    for (c = 0; c + 4 <= cols; c += 4) vst1q_f32(row + c, vmulq_f32(vld1q_f32(row + c), vi));
    for (; c < cols; c++) row[c] *= inv;
}

static void softmax_neon(float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) softmax_row(x + (size_t)r * cols, cols);
}

/* 4 halves per instruction (exact). */
static void half_to_float_neon(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    if (i < n) dpt_k_half_to_float_ref(src + i, dst + i, n - i);
}

const dpt_k_ops dpt_k_ops_neon = {
    .arch = DPT_K_ARCH_NEON,
    .gelu = gelu_neon,
    .layernorm = layernorm_neon,
    .add_layernorm = add_layernorm_neon,
    .add = add_neon,
    .softmax = softmax_neon,
    .erf = erf_neon,
    .exp = exp_neon,
    .half_to_float = half_to_float_neon,
    .ukr = &dpt_k_ukr_neon,
};

#else
typedef int dpt_k_neon_unused;
#endif
