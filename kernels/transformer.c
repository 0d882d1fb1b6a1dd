/* Transformer building blocks (see transformer.h). */
#include "transformer.h"

#include <math.h>

#include "kernels.h"

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
