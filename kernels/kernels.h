/* Compute kernels used by the models. Scalar reference versions live in kernels/ref.c; SIMD
 * variants (later) live in their own files compiled with their own flags. All arrays row-major. */
#ifndef DPT_KERNELS_H
#define DPT_KERNELS_H

#include <stddef.h>

/* Threads used by BLAS and by our own kernels (0 = all cores). */
void dpt_k_set_threads(int n_threads);

/* y (rows, n_out) = x (rows, n_in) · W (n_out, n_in)ᵀ + b (n_out, may be NULL). */
void dpt_k_linear(const float *x, int rows, int n_in, const float *w, const float *b, int n_out,
                  float *y);

/* General C (m, n) = alpha · A (m, k) · B(n, k)ᵀ + beta · C, with leading dimensions. */
void dpt_k_gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc);
/* C (m, n) = alpha · A (m, k) · B (k, n) + beta · C */
void dpt_k_gemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc);

/* Exact GELU 0.5·x·(1 + erf(x/√2)), in place. */
void dpt_k_gelu(float *x, size_t n);

/* LayerNorm over the last axis (biased variance), in place: x = (x−μ)/√(σ²+eps)·γ + β. */
void dpt_k_layernorm(float *x, int rows, int cols, const float *gamma, const float *beta,
                     float eps);

/* x = LayerNorm(x + r), in place (post-LN residual). */
void dpt_k_add_layernorm(float *x, const float *r, int rows, int cols, const float *gamma,
                         const float *beta, float eps);

/* y += x */
void dpt_k_add(float *y, const float *x, size_t n);

/* Row-wise softmax over cols, in place; entries equal to -INFINITY get probability 0. */
void dpt_k_softmax(float *x, int rows, int cols);

/* Single-head scaled dot-product attention:
 * out (nq, dh) [row stride ldo] = softmax(scale · q kᵀ + mask) v, q (nq, dh) [ldq], k (nk, dh) [ldk],
 * v (nk, dh) [ldv]. mask (nq, nk) with 1.0 = blocked, or NULL. scratch holds nq·nk floats. */
void dpt_k_attention(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                     int nq, int nk, int dh, float scale, const float *mask, float *out, int ldo,
                     float *scratch);

#endif
