/* Transformer building blocks shared by the denoiser and the style encoder (torch.nn semantics,
 * spec §2.4–2.5). Built on the kernels of kernels.h. */
#ifndef DPT_K_TRANSFORMER_H
#define DPT_K_TRANSFORMER_H

/* Multi-head scaled dot-product attention of one sequence (no projections):
 * out (nq, h·dh) [ldo] = concat_j softmax(q_j k_jᵀ/√dh + mask) v_j, with q (nq, h·dh) [ldq],
 * k (nk, h·dh) [ldk], v (nk, h·dh) [ldv]; head j uses columns [j·dh, (j+1)·dh).
 * mask (nq, nk), 1.0 = blocked, or NULL. scratch: nq·nk floats. */
void dpt_k_mha(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv, int nq,
               int nk, int n_heads, int dh, const float *mask, float *out, int ldo,
               float *scratch);

#endif
