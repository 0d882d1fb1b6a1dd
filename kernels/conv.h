/* Convolution, normalisation-statistics and resampling kernels: scalar loops, matrix products
 * through dpt_k_gemm_nt (CBLAS or the own SGEMM). Safe to call from several threads at once.
 *
 * Layout: every signal is TIME-MAJOR, x (T, C) row-major: row t holds the C channels of time step t.
 * (PyTorch keeps (C, T); time-major lets a strided conv read its im2col rows straight out of x and
 * lets LayerNorm / Linear run on rows.) Weights keep PyTorch's (C_out, C_in, K) layout on input and
 * are repacked once to (C_out, K, C_in) so that a flattened (tap, channel) window of x matches a
 * weight row. */
#ifndef DPT_CONV_H
#define DPT_CONV_H

#include <stddef.h>

#include "kernels.h"

/* w (c_out, c_in, k) → w_r (c_out, k, c_in). */
void dpt_k_conv_repack(const float *w, int c_out, int c_in, int k, float *w_r);

/* Output length of an unpadded strided conv: ⌊(t_in − k)/s⌋ + 1, or 0 if t_in < k. */
long dpt_k_conv_out_len(long t_in, int k, int s);

/* Strided valid convolution, no padding, no groups:
 *   y[t, o] = b[o] + Σ_{j<k} Σ_{c<c_in} w_r[o, j, c] · x[s·t + j, c]
 * x (t_in, c_in) with t_in ≥ (t_out−1)·s + k; w_r (c_out, k, c_in) from dpt_k_conv_repack;
 * b (c_out) or NULL; y (t_out, c_out) with row stride ldy ≥ c_out (a column slice of a wider
 * output: pass w_r, b and y advanced by o0 output channels).
 * Lowered to ⌈k/s⌉ GEMMs without an im2col copy: the window of taps [j0, j0+s) for output t is the
 * contiguous run x[(s·t + j0)·c_in …] of s·c_in floats, so consecutive outputs are rows of stride
 * s·c_in of one matrix (a BLAS-legal lda because each piece spans at most s taps). */
void dpt_k_conv1d_strided(const float *x, int c_in, const float *w_r, const float *b, int c_out,
                          int k, int s, long t_out, float *y, int ldy);

/* The same convolution, output channels [o0, o1) only, with the weights prepacked: pieces[p] is the
 * packed (c_out, width_p) matrix of taps [p·s, min((p+1)·s, k)) — columns [p·s·c_in, …) of w_r —
 * and the pieces are accumulated in order onto the bias exactly as above. o0 and o1 must lie on
 * the packings' panel boundaries (dpt_k_packed_usable true for every piece). y (t_out, c_out)
 * [ldy], columns o0 … o1−1 written. */
void dpt_k_conv1d_strided_packed(const float *x, int c_in, const dpt_k_lin *pieces, const float *b,
                                 int o0, int o1, int k, int s, long t_out, float *y, int ldy);

/* Grouped stride-1 convolution with zero padding `pad` on the left (and as much on the right as
 * the output length needs):
 *   y[t, g·og + o] = b[g·og + o] + Σ_{j<k} Σ_{c<cg} w_r[g·og + o, j, c] · x[t + j − pad, g·cg + c]
 * with x (t_in, c_in), cg = c_in/groups, og = c_out/groups, terms with t + j − pad outside
 * [0, t_in) being zero; w_r (c_out, k, cg) repacked; b (c_out) or NULL; y (t_out, c_out).
 * Only groups [g0, g1) are computed (callers split the groups over threads).
 * Lowered per group to im2col blocks of `scratch_rows` output steps: col (rows, k·cg) · W_gᵀ.
 * scratch holds scratch_rows · k · cg floats. */
void dpt_k_conv1d_grouped(const float *x, long t_in, int c_in, const float *w_r, const float *b,
                          int c_out, int k, int groups, int g0, int g1, int pad, long t_out,
                          float *y, float *scratch, int scratch_rows);

/* Per-column moments of x (rows, cols), in double: mean[c] and m2[c] = Σ_t (x[t,c] − mean[c])².
 * Two passes over the block (exact centring, no E[x²] − E[x]² cancellation). */
void dpt_k_col_moments(const float *x, long rows, int cols, double *mean, double *m2);

/* Merge the moments of a block (n_b rows: mean_b, m2_b) into running ones (n_a rows: mean_a, m2_a),
 * Chan et al.'s pairwise update; returns n_a + n_b. */
long dpt_k_moments_merge(long n_a, double *mean_a, double *m2_a, long n_b, const double *mean_b,
                         const double *m2_b, int cols);

/* Per-column affine map in place: x[t, c] = x[t, c]·scale[c] + shift[c]; x (rows, cols). */
void dpt_k_col_affine(float *x, long rows, int cols, const float *scale, const float *shift);

/* Linear interpolation along time (PyTorch F.interpolate, mode linear, align_corners False, output
 * size given): x (n_in, cols) → y (n_out, cols), float32 index math:
 *   src = max(0, (n_in/n_out)·(i + ½) − ½), i0 = ⌊src⌋, i1 = min(i0+1, n_in−1), λ = src − i0,
 *   y[i] = (1−λ)·x[i0] + λ·x[i1].
 * n_in = n_out copies; n_in = 2·n_out gives the mean of frame pairs. y must not alias x. */
void dpt_k_interp_linear(const float *x, long n_in, int cols, long n_out, float *y);

#endif
