/* Scalar reference kernels (plain C, libm): the table every SIMD variant is tested against, and
 * the variant used on CPUs without AVX2 / NEON or with DPT_ARCH=scalar. Calls nothing else in
 * kernels/ (its table points at the scalar micro-kernel of gemm_scalar.c). */
#include <math.h>
#include <string.h>

#include "dispatch.h"
#include "kernels.h"

/* C (m, n) = alpha · A (m, k) · op(B) + beta · C, one double accumulator per entry. */
void dpt_k_gemm_ref(int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                float bv = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                s += (double)a[(size_t)i * lda + p] * bv;
            }
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * *cij);
        }
    }
}

void dpt_k_gelu_ref(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void dpt_k_erf_ref(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = erff(x[i]);
}

void dpt_k_exp_ref(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

void dpt_k_layernorm_ref(float *x, int rows, int cols, const float *gamma, const float *beta,
                         float eps) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * cols;
        double mean = 0.0, var = 0.0;
        for (int c = 0; c < cols; c++) mean += row[c];
        mean /= cols;
        for (int c = 0; c < cols; c++) {
            double d = row[c] - mean;
            var += d * d;
        }
        var /= cols;
        float inv = (float)(1.0 / sqrt(var + eps));
        float m = (float)mean;
        for (int c = 0; c < cols; c++) {
            float v = (row[c] - m) * inv;
            row[c] = gamma ? v * gamma[c] + (beta ? beta[c] : 0.0f) : v;
        }
    }
}

void dpt_k_add_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void dpt_k_add_layernorm_ref(float *x, const float *r, int rows, int cols, const float *gamma,
                             const float *beta, float eps) {
    dpt_k_add_ref(x, r, (size_t)rows * cols);
    dpt_k_layernorm_ref(x, rows, cols, gamma, beta, eps);
}

void dpt_k_softmax_ref(float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * cols;
        float mx = -INFINITY;
        for (int c = 0; c < cols; c++)
            if (row[c] > mx) mx = row[c];
        if (mx == -INFINITY) { /* fully masked row: PyTorch gives NaN; never happens here */
            for (int c = 0; c < cols; c++) row[c] = 0.0f;
            continue;
        }
        double sum = 0.0;
        for (int c = 0; c < cols; c++) {
            row[c] = expf(row[c] - mx);
            sum += row[c];
        }
        float inv = (float)(1.0 / sum);
        for (int c = 0; c < cols; c++) row[c] *= inv;
    }
}

/* IEEE binary16 → binary32, exact for every input (subnormals, ±Inf, NaN payload kept). */
void dpt_k_half_to_float_ref(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t h = src[i], sign = (h & 0x8000u) << 16, ex = (h >> 10) & 0x1f, man = h & 0x3ff;
        uint32_t bits;
        if (ex == 0x1f) {
            bits = sign | 0x7f800000u | man << 13;
        } else if (ex) {
            bits = sign | (ex + 112) << 23 | man << 13;
        } else if (man) { /* subnormal: normalise */
            int e = 113;
            while (!(man & 0x400)) man <<= 1, e--;
            bits = sign | (uint32_t)e << 23 | (man & 0x3ff) << 13;
        } else {
            bits = sign;
        }
        memcpy(dst + i, &bits, sizeof bits);
    }
}

const dpt_k_ops dpt_k_ops_scalar = {
    .arch = DPT_K_ARCH_SCALAR,
    .gelu = dpt_k_gelu_ref,
    .layernorm = dpt_k_layernorm_ref,
    .add_layernorm = dpt_k_add_layernorm_ref,
    .add = dpt_k_add_ref,
    .softmax = dpt_k_softmax_ref,
    .erf = dpt_k_erf_ref,
    .exp = dpt_k_exp_ref,
    .half_to_float = dpt_k_half_to_float_ref,
    .ukr = &dpt_k_ukr_scalar,
};
