/* AVX2+FMA element-wise and reduction kernels (x86-64). The only files compiled with
 * -mavx2 -mfma are this one and gemm_avx2.c; dispatch.c calls them only after checking the CPU.
 * Same contracts and approximations as described in kernels.h / dispatch.h. Tails (n not a
 * multiple of 8) go through an 8-float stack buffer, so no load or store leaves the arrays. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_AVX2_BUILD

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "kernels/avx2.c must be compiled with -mavx2 -mfma -mf16c (see the Makefile)"
#endif

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define V8 __m256
#define SET1 _mm256_set1_ps

/* ---- exp, erf (8 lanes) --------------------------------------------------------------------- */

/* e^x, 8 lanes; see dispatch.h for the method. NaN in → NaN out. */
static inline V8 exp8(V8 x) {
    const V8 lo = SET1(DPT_K_EXP_LO), hi = SET1(DPT_K_EXP_HI);
    V8 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    V8 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    V8 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    V8 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    V8 n = _mm256_round_ps(_mm256_mul_ps(xc, SET1(DPT_K_LOG2E)),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V8 r = _mm256_fnmadd_ps(n, SET1(DPT_K_LN2_HI), xc);
    r = _mm256_fnmadd_ps(n, SET1(DPT_K_LN2_LO), r);
    V8 q = _mm256_fmadd_ps(SET1(DPT_K_EXP_Q4), r, SET1(DPT_K_EXP_Q3));
    q = _mm256_fmadd_ps(q, r, SET1(DPT_K_EXP_Q2));
    q = _mm256_fmadd_ps(q, r, SET1(DPT_K_EXP_Q1));
    q = _mm256_fmadd_ps(q, r, SET1(DPT_K_EXP_Q0));
    V8 p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(r, r), q, r), SET1(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    V8 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_andnot_ps(under, y);
    y = _mm256_blendv_ps(y, SET1(INFINITY), over);
    return _mm256_blendv_ps(y, x, nan);
}

/* erf(x), 8 lanes; see dispatch.h for the method. */
static inline V8 erf8(V8 x) {
    const V8 sign_bit = SET1(-0.0f), one = SET1(1.0f);
    V8 sign = _mm256_and_ps(x, sign_bit);
    V8 z = _mm256_andnot_ps(sign_bit, x);
    V8 z2 = _mm256_mul_ps(z, z);
    /* 0 ≤ z < 1: z + z·P(z²) */
    V8 p = _mm256_fmadd_ps(SET1(DPT_K_ERF_P6), z2, SET1(DPT_K_ERF_P5));
    p = _mm256_fmadd_ps(p, z2, SET1(DPT_K_ERF_P4));
    p = _mm256_fmadd_ps(p, z2, SET1(DPT_K_ERF_P3));
    p = _mm256_fmadd_ps(p, z2, SET1(DPT_K_ERF_P2));
    p = _mm256_fmadd_ps(p, z2, SET1(DPT_K_ERF_P1));
    p = _mm256_fmadd_ps(p, z2, SET1(DPT_K_ERF_P0));
    V8 small = _mm256_fmadd_ps(z, p, z);
    /* 1 ≤ z < 3.92: 1 − e^{−z²}·G(1/(1 + z/2)) */
    V8 t = _mm256_div_ps(one, _mm256_fmadd_ps(SET1(0.5f), z, one));
    V8 g = _mm256_fmadd_ps(SET1(DPT_K_ERF_G7), t, SET1(DPT_K_ERF_G6));
    g = _mm256_fmadd_ps(g, t, SET1(DPT_K_ERF_G5));
    g = _mm256_fmadd_ps(g, t, SET1(DPT_K_ERF_G4));
    g = _mm256_fmadd_ps(g, t, SET1(DPT_K_ERF_G3));
    g = _mm256_fmadd_ps(g, t, SET1(DPT_K_ERF_G2));
    g = _mm256_fmadd_ps(g, t, SET1(DPT_K_ERF_G1));
    g = _mm256_fmadd_ps(g, t, SET1(DPT_K_ERF_G0));
    V8 large = _mm256_fnmadd_ps(exp8(_mm256_xor_ps(z2, sign_bit)), g, one);
    V8 r = _mm256_blendv_ps(small, large, _mm256_cmp_ps(z, SET1(DPT_K_ERF_SPLIT), _CMP_GE_OQ));
    r = _mm256_blendv_ps(r, one, _mm256_cmp_ps(z, SET1(DPT_K_ERF_ONE), _CMP_GE_OQ));
    return _mm256_or_ps(r, sign);
}

static inline V8 gelu8(V8 x) {
    V8 e = erf8(_mm256_mul_ps(x, SET1((float)M_SQRT1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(SET1(0.5f), x), _mm256_add_ps(SET1(1.0f), e));
}

/* Apply f to x (n) into y (n) with a buffered tail. */
#define MAP8(f, x, y, n)                                                                           \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        for (; i_ + 8 <= (n); i_ += 8) _mm256_storeu_ps((y) + i_, f(_mm256_loadu_ps((x) + i_))); \
        if (i_ < (n)) {                                                                            \
            float b_[8] = {0};                                                                     \
            memcpy(b_, (x) + i_, sizeof(float) * ((n) - i_));                                      \
            _mm256_storeu_ps(b_, f(_mm256_loadu_ps(b_)));                                          \
            memcpy((y) + i_, b_, sizeof(float) * ((n) - i_));                                      \
        }                                                                                          \
    } while (0)

static void gelu_avx2(float *x, size_t n) { MAP8(gelu8, x, x, n); }
static void erf_avx2(const float *x, float *y, size_t n) { MAP8(erf8, x, y, n); }
static void exp_avx2(const float *x, float *y, size_t n) { MAP8(exp8, x, y, n); }

/* ---- add ------------------------------------------------------------------------------------ */

/* y (n) += x (n) */
static void add_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int u = 0; u < 32; u += 8)
            _mm256_storeu_ps(y + i + u,
                             _mm256_add_ps(_mm256_loadu_ps(y + i + u), _mm256_loadu_ps(x + i + u)));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

/* ---- LayerNorm ------------------------------------------------------------------------------ */

/* Σ of 8 floats widened to double, added to two 4-lane double accumulators. */
static inline void acc_pd(__m256d *a0, __m256d *a1, V8 v) {
    *a0 = _mm256_add_pd(*a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *a1 = _mm256_add_pd(*a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static inline double hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* row (cols) := (row − mean)/√(var + eps)·γ + β with mean and biased variance in double, two
 * passes as the reference; if r, row += r first (fused into the mean pass). */
static void ln_row(float *row, const float *r, int cols, const float *gamma, const float *beta,
                   float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    double tail = 0.0;
    int c = 0;
    for (; c + 16 <= cols; c += 16) {
        V8 a = _mm256_loadu_ps(row + c), b = _mm256_loadu_ps(row + c + 8);
        if (r) {
            a = _mm256_add_ps(a, _mm256_loadu_ps(r + c));
            b = _mm256_add_ps(b, _mm256_loadu_ps(r + c + 8));
            _mm256_storeu_ps(row + c, a);
            _mm256_storeu_ps(row + c + 8, b);
        }
        acc_pd(&s0, &s1, a);
        acc_pd(&s2, &s3, b);
    }
    for (; c < cols; c++) {
        if (r) row[c] += r[c];
        tail += row[c];
    }
    double mean = (hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3))) + tail) /
                  cols;

    __m256d m = _mm256_set1_pd(mean);
    __m256d v0 = _mm256_setzero_pd(), v1 = v0, v2 = v0, v3 = v0;
    tail = 0.0;
    for (c = 0; c + 8 <= cols; c += 8) {
        V8 a = _mm256_loadu_ps(row + c);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), m);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), m);
        if ((c & 8) == 0) {
            v0 = _mm256_fmadd_pd(d0, d0, v0);
            v1 = _mm256_fmadd_pd(d1, d1, v1);
        } else {
            v2 = _mm256_fmadd_pd(d0, d0, v2);
            v3 = _mm256_fmadd_pd(d1, d1, v3);
        }
    }
    for (; c < cols; c++) {
        double d = row[c] - mean;
        tail += d * d;
    }
    double var = (hsum_pd(_mm256_add_pd(_mm256_add_pd(v0, v1), _mm256_add_pd(v2, v3))) + tail) /
                 cols;
    float inv = (float)(1.0 / sqrt(var + eps)), mf = (float)mean;

    /* (x − μ)·inv·γ + β, rounded step by step as the reference */
    V8 vm = SET1(mf), vi = SET1(inv);
    for (c = 0; c + 8 <= cols; c += 8) {
        V8 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(row + c), vm), vi);
        if (gamma) {
            v = _mm256_mul_ps(v, _mm256_loadu_ps(gamma + c));
            v = _mm256_add_ps(v, beta ? _mm256_loadu_ps(beta + c) : _mm256_setzero_ps());
        }
        _mm256_storeu_ps(row + c, v);
    }
    for (; c < cols; c++) {
        float v = (row[c] - mf) * inv;
        row[c] = gamma ? v * gamma[c] + (beta ? beta[c] : 0.0f) : v;
    }
}

static void layernorm_avx2(float *x, int rows, int cols, const float *gamma, const float *beta,
                           float eps) {
    for (int r = 0; r < rows; r++) ln_row(x + (size_t)r * cols, NULL, cols, gamma, beta, eps);
}

static void add_layernorm_avx2(float *x, const float *res, int rows, int cols, const float *gamma,
                               const float *beta, float eps) {
    for (int r = 0; r < rows; r++)
        ln_row(x + (size_t)r * cols, res + (size_t)r * cols, cols, gamma, beta, eps);
}

/* ---- softmax -------------------------------------------------------------------------------- */

static inline float hmax8(V8 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

/* row (cols) := e^{row − max} / Σ e^{row − max}; the sum in double as the reference. */
static void softmax_row(float *row, int cols) {
    V8 mx8 = SET1(-INFINITY);
    int c = 0;
    for (; c + 8 <= cols; c += 8) mx8 = _mm256_max_ps(mx8, _mm256_loadu_ps(row + c));
    float mx = hmax8(mx8);
    for (; c < cols; c++)
        if (row[c] > mx) mx = row[c];
    if (mx == -INFINITY) { /* fully masked row, as the reference */
        memset(row, 0, sizeof(float) * (size_t)cols);
        return;
    }
    V8 vm = SET1(mx);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    for (c = 0; c + 8 <= cols; c += 8) {
        V8 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + c), vm));
        _mm256_storeu_ps(row + c, e);
        acc_pd(&s0, &s1, e);
    }
    if (c < cols) { /* padding −∞ contributes e^−∞ = 0 */
        float b[8];
        for (int i = 0; i < 8; i++) b[i] = c + i < cols ? row[c + i] : -INFINITY;
        V8 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(b), vm));
        _mm256_storeu_ps(b, e);
        acc_pd(&s0, &s1, e);
        memcpy(row + c, b, sizeof(float) * (size_t)(cols - c));
    }
    float inv = (float)(1.0 / hsum_pd(_mm256_add_pd(s0, s1)));
    V8 vi = SET1(inv);
    for (c = 0; c + 8 <= cols; c += 8)
        _mm256_storeu_ps(row + c, _mm256_mul_ps(_mm256_loadu_ps(row + c), vi));
    for (; c < cols; c++) row[c] *= inv;
}

static void softmax_avx2(float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) softmax_row(x + (size_t)r * cols, cols);
}

/* F16C: 8 halves per instruction (exact). */
static void half_to_float_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    if (i < n) dpt_k_half_to_float_ref(src + i, dst + i, n - i);
}

const dpt_k_ops dpt_k_ops_avx2 = {
    .arch = DPT_K_ARCH_AVX2,
    .gelu = gelu_avx2,
    .layernorm = layernorm_avx2,
    .add_layernorm = add_layernorm_avx2,
    .add = add_avx2,
    .softmax = softmax_avx2,
    .erf = erf_avx2,
    .exp = exp_avx2,
    .half_to_float = half_to_float_avx2,
    .ukr = &dpt_k_ukr_avx2,
};

#else
/* ISO C forbids an empty translation unit */
typedef int dpt_k_avx2_unused;
#endif
