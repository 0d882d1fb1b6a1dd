/* Composite ops (kernels.h): the routing of general GEMMs (BLAS outside regions when the build has
 * it, else the own SGEMM), packed-B GEMMs by packing kind, linear layers over every weight form
 * (the one bias-then-GEMM), attention and multi-head attention. The top of kernels/: it calls the
 * GEMM drivers and the dispatched kernels; nothing in kernels/ calls it but conv.c. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dispatch.h"
#include "kernels.h"

#ifdef DPT_HAVE_CBLAS
#include <cblas.h>
#endif

int dpt_k_have_blas(void) {
#ifdef DPT_HAVE_CBLAS
    return 1;
#else
    return 0;
#endif
}

/* C = alpha · A · op(B) + beta · C through BLAS, or the own SGEMM inside a region (no BLAS
 * threads under the region's) and in builds without BLAS. */
static void gemm_route(int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc) {
#ifdef DPT_HAVE_CBLAS
    if (!dpt_k_in_region()) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                    alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    dpt_k_sgemm(trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dpt_k_gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc) {
    gemm_route(1, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dpt_k_gemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc) {
    gemm_route(0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int dpt_k_sgemm_packed(int m, int n0, int n1, float alpha, const float *a, int lda,
                       const dpt_k_packed *b, float beta, float *c, int ldc) {
    if (b->int8) return dpt_k_int8_gemm_packed(m, n0, n1, alpha, a, lda, b, beta, c, ldc);
    if (b->bf16 == DPT_K_BF16_NATIVE || b->bf16 == DPT_K_F16_NATIVE)
        return dpt_k_bf16_gemm_packed(m, n0, n1, alpha, a, lda, b, beta, c, ldc);
    return dpt_k_f32_gemm_packed(m, n0, n1, alpha, a, lda, b, beta, c, ldc);
}

int dpt_k_packed_usable(const dpt_k_packed *b) {
    if (b->int8 || b->bf16 == DPT_K_BF16_NATIVE || b->bf16 == DPT_K_F16_NATIVE) return 1;
    return b->ukr == (const void *)dpt_k_ops_active()->ukr;
}

/* ---- linear layers -------------------------------------------------------------------------- */

/* y = x · W[row0 : row0+n]ᵀ + beta · y from the unpacked matrix (float32 or halves in place) */
static void lin_unpacked(const dpt_k_lin *lin, int row0, int n, const float *x, int rows,
                         float *y, int ldy, float beta) {
    const size_t off = (size_t)row0 * lin->n_in;
    if (lin->wh)
        dpt_k_sgemm_h(rows, n, lin->n_in, 1.0f, x, lin->n_in, lin->wh + off, lin->n_in, beta, y, ldy);
    else
        dpt_k_gemm_nt(rows, n, lin->n_in, 1.0f, x, lin->n_in, lin->w + off, lin->n_in, beta, y, ldy);
}

/* b is copied into every row of y and the product accumulated onto it (beta = 1), or beta = 0
 * without b: one order of operations for every weight form. */
void dpt_k_lin_rows(const dpt_k_lin *lin, int row0, int n, const float *x, int rows, float *y,
                    int ldy) {
    const float *b = lin->b ? lin->b + row0 : NULL;
    const float beta = b ? 1.0f : 0.0f;
    if (b)
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * ldy, b, sizeof(float) * (size_t)n);
    if (lin->pk && lin->pk_seg) { /* one packing per segment of rows (the K/V rows of an in_proj) */
        for (int r0 = row0; r0 < row0 + n;) {
            const int s = r0 / lin->pk_seg, s1 = (s + 1) * lin->pk_seg,
                      r1 = s1 < row0 + n ? s1 : row0 + n;
            if (dpt_k_sgemm_packed(rows, r0 - s * lin->pk_seg, r1 - s * lin->pk_seg, 1.0f, x,
                                   lin->n_in, &lin->pk[s], beta, y + (r0 - row0), ldy) != 0)
                lin_unpacked(lin, r0, r1 - r0, x, rows, y + (r0 - row0), ldy, beta);
            r0 = r1;
        }
        return;
    }
    if (lin->pk && dpt_k_sgemm_packed(rows, row0, row0 + n, 1.0f, x, lin->n_in, lin->pk, beta, y,
                                      ldy) == 0)
        return;
    lin_unpacked(lin, row0, n, x, rows, y, ldy, beta);
}

void dpt_k_linear(const float *x, int rows, int n_in, const float *w, const float *b, int n_out,
                  float *y) {
    const dpt_k_lin lin = {.w = w, .b = b, .n_out = n_out, .n_in = n_in};
    dpt_k_lin_rows(&lin, 0, n_out, x, rows, y, n_out);
}

/* ---- attention ------------------------------------------------------------------------------ */

/* q (nq, dh) [ldq] · k (nk, dh)ᵀ [ldk] → scratch (nq, nk); mask; softmax; · v (nk, dh) [ldv]
 * → out (nq, dh) [ldo]. */
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

void dpt_k_mha(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv, int nq,
               int nk, int n_heads, int dh, const float *mask, float *out, int ldo,
               float *scratch) {
    float scale = (float)(1.0 / sqrt((double)dh));
    for (int j = 0; j < n_heads; j++) {
        size_t c = (size_t)j * dh;
        dpt_k_attention(q + c, ldq, k + c, ldk, v + c, ldv, nq, nk, dh, scale, mask, out + c, ldo,
                        scratch);
    }
}
