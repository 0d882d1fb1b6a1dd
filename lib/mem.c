/* Memory and buffers for the whole library: 64-byte aligned allocation, overflow-checked sizes,
 * and the per-value helpers the loader and the input checks use (half → float, all finite). */
#include "core.h"

#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void *dpt_alloc(size_t n_bytes) {
    void *p = NULL;
    size_t n = (n_bytes + 63) & ~(size_t)63;
    if (n < n_bytes) return NULL;
    if (n == 0) n = 64;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    return p;
}

void *dpt_calloc(size_t n_bytes) {
    void *p = dpt_alloc(n_bytes);
    if (p) memset(p, 0, n_bytes);
    return p;
}

void dpt_alloc_free(void *ptr) { free(ptr); }

void dpt_free(void *ptr) { free(ptr); }

int dpt_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* One half from the file's bytes; the conversion itself is the kernels' exact reference. */
float dpt_half_to_float(uint16_t h) {
    float f;
    dpt_k_half_to_float_ref(&h, &f, 1);
    return f;
}

/* Branch-free over blocks (vectorised by the compiler): a float is NaN or ±Inf exactly when its
 * exponent bits are all ones. Runs over every weight at load, so it has to be fast. */
int dpt_all_finite(const float *x, size_t n) {
    const uint32_t EXP = 0x7f800000u;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        uint32_t bad = 0;
        for (size_t j = 0; j < 256; j++) {
            uint32_t b;
            memcpy(&b, x + i + j, sizeof b);
            bad |= (uint32_t)((b & EXP) == EXP);
        }
        if (bad) return 0;
    }
    for (; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}
