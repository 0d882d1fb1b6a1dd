/* Convolution lowering, column moments and linear resampling; scalar code + CBLAS GEMMs.
 * See conv.h for the (time-major) layouts. */
#include "conv.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

void dpt_k_conv_repack(const float *w, int c_out, int c_in, int k, float *w_r) {
    /* (c_out, c_in, k) → (c_out, k, c_in) */
    for (int o = 0; o < c_out; o++) {
        const float *src = w + (size_t)o * c_in * k;
        float *dst = w_r + (size_t)o * c_in * k;
        for (int c = 0; c < c_in; c++)
            for (int j = 0; j < k; j++) dst[(size_t)j * c_in + c] = src[(size_t)c * k + j];
    }
}

long dpt_k_conv_out_len(long t_in, int k, int s) {
    if (t_in < k || k < 1 || s < 1) return 0;
    return (t_in - k) / s + 1;
}

void dpt_k_conv1d_strided(const float *x, int c_in, const float *w_r, const float *b, int c_out,
                          int k, int s, long t_out, float *y, int ldy) {
    if (t_out <= 0 || c_out <= 0) return;
    if (b) {
        for (long t = 0; t < t_out; t++) memcpy(y + (size_t)t * ldy, b, sizeof(float) * c_out);
    }
    float beta = b ? 1.0f : 0.0f;
    /* Piece of taps [j0, j1), at most s wide: A (t_out, (j1−j0)·c_in) with row t at
     * x + (s·t + j0)·c_in, lda = s·c_in; B = rows of w_r restricted to those taps, ldb = k·c_in. */
    for (int j0 = 0; j0 < k; j0 += s) {
        int j1 = j0 + s < k ? j0 + s : k;
        int width = (j1 - j0) * c_in;
        /* BLAS takes int dimensions; split very long signals into row blocks. */
        const long max_rows = 1L << 30;
        for (long t0 = 0; t0 < t_out; t0 += max_rows) {
            long rows = t_out - t0 < max_rows ? t_out - t0 : max_rows;
            dpt_k_gemm_nt((int)rows, c_out, width, 1.0f, x + ((size_t)t0 * s + j0) * c_in, s * c_in,
                          w_r + (size_t)j0 * c_in, k * c_in, beta, y + (size_t)t0 * ldy, ldy);
        }
        beta = 1.0f;
    }
}

void dpt_k_conv1d_strided_packed(const float *x, int c_in, const dpt_k_lin *pieces, const float *b,
                                 int o0, int o1, int k, int s, long t_out, float *y, int ldy) {
    if (t_out <= 0 || o1 <= o0) return;
    if (b) {
        for (long t = 0; t < t_out; t++)
            memcpy(y + (size_t)t * ldy + o0, b + o0, sizeof(float) * (size_t)(o1 - o0));
    }
    float beta = b ? 1.0f : 0.0f;
    for (int p = 0, j0 = 0; j0 < k; p++, j0 += s) {
        (void)dpt_k_sgemm_packed((int)t_out, o0, o1, 1.0f, x + (size_t)j0 * c_in, s * c_in, pieces[p].pk,
                                 beta, y + o0, ldy);
        beta = 1.0f;
    }
}

void dpt_k_conv1d_grouped(const float *x, long t_in, int c_in, const float *w_r, const float *b,
                          int c_out, int k, int groups, int g0, int g1, int pad, long t_out,
                          float *y, float *scratch, int scratch_rows) {
    int cg = c_in / groups, og = c_out / groups;
    int kc = k * cg; /* im2col row length: (tap, channel-in-group) */
    for (long t0 = 0; t0 < t_out; t0 += scratch_rows) {
        long rows = t_out - t0 < scratch_rows ? t_out - t0 : scratch_rows;
        for (int g = g0; g < g1; g++) {
            /* col (rows, k·cg): col[r, j·cg + c] = x[t0 + r + j − pad, g·cg + c] or 0 */
            for (long r = 0; r < rows; r++) {
                float *dst = scratch + (size_t)r * kc;
                long base = t0 + r - pad;
                for (int j = 0; j < k; j++) {
                    long ts = base + j;
                    if (ts < 0 || ts >= t_in)
                        memset(dst + (size_t)j * cg, 0, sizeof(float) * cg);
                    else
                        memcpy(dst + (size_t)j * cg, x + (size_t)ts * c_in + (size_t)g * cg,
                               sizeof(float) * cg);
                }
            }
            /* y[t0.., g·og..] (rows, og) = col · W_gᵀ, W_g = w_r rows [g·og, (g+1)·og) (og, k·cg) */
            float *yo = y + (size_t)t0 * c_out + (size_t)g * og;
            if (b) {
                for (long r = 0; r < rows; r++)
                    memcpy(yo + (size_t)r * c_out, b + (size_t)g * og, sizeof(float) * og);
            }
            dpt_k_gemm_nt((int)rows, og, kc, 1.0f, scratch, kc, w_r + (size_t)g * og * kc, kc,
                          b ? 1.0f : 0.0f, yo, c_out);
        }
    }
}

void dpt_k_col_moments(const float *x, long rows, int cols, double *mean, double *m2) {
    for (int c = 0; c < cols; c++) mean[c] = m2[c] = 0.0;
    if (rows <= 0) return;
    for (long t = 0; t < rows; t++) {
        const float *row = x + (size_t)t * cols;
        for (int c = 0; c < cols; c++) mean[c] += row[c];
    }
    for (int c = 0; c < cols; c++) mean[c] /= (double)rows;
    for (long t = 0; t < rows; t++) {
        const float *row = x + (size_t)t * cols;
        for (int c = 0; c < cols; c++) {
            double d = row[c] - mean[c];
            m2[c] += d * d;
        }
    }
}

long dpt_k_moments_merge(long n_a, double *mean_a, double *m2_a, long n_b, const double *mean_b,
                         const double *m2_b, int cols) {
    if (n_b <= 0) return n_a;
    if (n_a <= 0) {
        memcpy(mean_a, mean_b, sizeof(double) * cols);
        memcpy(m2_a, m2_b, sizeof(double) * cols);
        return n_b;
    }
    double n = (double)n_a + (double)n_b;
    for (int c = 0; c < cols; c++) {
        double delta = mean_b[c] - mean_a[c];
        mean_a[c] += delta * ((double)n_b / n);
        m2_a[c] += m2_b[c] + delta * delta * ((double)n_a * (double)n_b / n);
    }
    return n_a + n_b;
}

void dpt_k_col_affine(float *x, long rows, int cols, const float *scale, const float *shift) {
    for (long t = 0; t < rows; t++) {
        float *row = x + (size_t)t * cols;
        for (int c = 0; c < cols; c++) row[c] = row[c] * scale[c] + shift[c];
    }
}

void dpt_k_interp_linear(const float *x, long n_in, int cols, long n_out, float *y) {
    if (n_in == n_out) {
        memcpy(y, x, sizeof(float) * (size_t)n_in * cols);
        return;
    }
    float ratio = (float)n_in / (float)n_out;
    for (long i = 0; i < n_out; i++) {
        float src = ratio * ((float)i + 0.5f) - 0.5f;
        if (src < 0.0f) src = 0.0f;
        long i0 = (long)floorf(src);
        if (i0 > n_in - 1) i0 = n_in - 1;
        float l1 = src - (float)i0;
        if (l1 < 0.0f) l1 = 0.0f;
        if (l1 > 1.0f) l1 = 1.0f;
        float l0 = 1.0f - l1;
        long i1 = i0 < n_in - 1 ? i0 + 1 : i0;
        const float *a = x + (size_t)i0 * cols, *b = x + (size_t)i1 * cols;
        float *dst = y + (size_t)i * cols;
        for (int c = 0; c < cols; c++) dst[c] = a[c] * l0 + b[c] * l1;
    }
}
