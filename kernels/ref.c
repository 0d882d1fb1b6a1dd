/* Scalar reference kernels; matrix products go through CBLAS. */
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#ifdef DPT_HAVE_OPENBLAS_THREADS
void openblas_set_num_threads(int);
#endif

void dpt_k_set_threads(int n_threads) {
#ifdef DPT_HAVE_OPENBLAS_THREADS
    if (n_threads > 0) openblas_set_num_threads(n_threads);
#else
    (void)n_threads;
#endif
}

void dpt_k_gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

void dpt_k_gemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

void dpt_k_linear(const float *x, int rows, int n_in, const float *w, const float *b, int n_out,
                  float *y) {
    if (b) {
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * n_out, b, sizeof(float) * n_out);
    }
    dpt_k_gemm_nt(rows, n_out, n_in, 1.0f, x, n_in, w, n_in, b ? 1.0f : 0.0f, y, n_out);
}

void dpt_k_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void dpt_k_layernorm(float *x, int rows, int cols, const float *gamma, const float *beta,
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

void dpt_k_add_layernorm(float *x, const float *r, int rows, int cols, const float *gamma,
                         const float *beta, float eps) {
    dpt_k_add(x, r, (size_t)rows * cols);
    dpt_k_layernorm(x, rows, cols, gamma, beta, eps);
}

void dpt_k_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void dpt_k_softmax(float *x, int rows, int cols) {
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

void dpt_k_attention(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                     int nq, int nk, int dh, float scale, const float *mask, float *out, int ldo,
                     float *scratch) {
    dpt_k_gemm_nt(nq, nk, dh, scale, q, ldq, k, ldk, 0.0f, scratch, nk);
    if (mask) {
        for (size_t i = 0; i < (size_t)nq * nk; i++)
            if (mask[i] != 0.0f) scratch[i] = -INFINITY;
    }
    dpt_k_softmax(scratch, nq, nk);
    dpt_k_gemm_nn(nq, dh, nk, 1.0f, scratch, nk, v, ldv, 0.0f, out, ldo);
}
