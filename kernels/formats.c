/* Number formats shared by the GEMM drivers and their micro-kernels (kernels.h): bfloat16 and
 * IEEE half rounding, the int8 activations' row rule. A leaf: calls nothing in kernels/, so the
 * drivers (gemm.c, gemm_bf16.c, gemm_int8.c) and the micro-kernels (gemm_avx512vnni.c) can all
 * use them without depending on one another. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

uint16_t dpt_k_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u); /* zero, denormal: ±0 */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float dpt_k_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* float → IEEE half, nearest even (an f32 file's weights for the f16 kind; exact for halves). */
uint16_t dpt_k_half_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* quiet NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* ≥ 65520 (and Inf): Inf */
    if (a >= 0x38800000u) { /* normal half: rebias the exponent, round 13 bits off */
        uint32_t r = a - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (a < 0x33000000u) return sign; /* below 2⁻²⁵: ±0 */
    /* subnormal half: significand m · 2^(e − 150) in units of 2⁻²⁴ is m >> (126 − e), rounded */
    const int e = (int)(a >> 23), sh = 126 - e;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u, half = 1u << (sh - 1);
    uint32_t q = m >> sh, rem = m & ((1u << sh) - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

/* Row parameters from the row's extremes: scale, 1 / scale as used for rounding, zero point. */
void dpt_k_int8_row_params(float lo, float hi, float *sa, float *inv, int32_t *zp) {
    if (lo > 0.0f) lo = 0.0f;
    if (hi < 0.0f) hi = 0.0f;
    const float range = hi - lo;
    if (!(range > 0.0f) || !(range <= 3.0e38f)) { /* all zero, or not finite: zeros (NaN out if Inf) */
        *sa = range > 0.0f ? range : 0.0f;
        *inv = 0.0f;
        *zp = 0;
        return;
    }
    *sa = range / 255.0f;
    *inv = 255.0f / range;
    float z = nearbyintf(-lo * *inv);
    *zp = z < 0.0f ? 0 : z > 255.0f ? 255 : (int32_t)z;
}
