/* Random numbers: xoshiro256** + Marsaglia polar normals (algorithm documented in rng.h). */
#include "rng.h"

#include <math.h>

/* Reproducibility needs every product rounded on its own: no FMA contraction. GCC does not
 * contract in ISO C mode (-std=c11); clang contracts within expressions unless told not to. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void dpt_rng_seed(dpt_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dpt_rng_next(dpt_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double dpt_rng_uniform(dpt_rng *r) { return (double)(dpt_rng_next(r) >> 11) * 0x1.0p-53; }

/* log x = e·ln2 + log m with x = m·2^e, m ∈ [√½, √2) (frexp is exact), and
 * log m = 2·atanh(f), f = (m−1)/(m+1) ∈ [−0.1716, 0.1716], by the odd series up to f²⁵
 * (truncation < 0.0295¹³/27 ≈ 3e-22). Every operation is a single IEEE rounding. */
double dpt_rng_log(double x) {
    int e;
    double m = frexp(x, &e); /* m ∈ [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m = m * 2.0;
        e = e - 1;
    }
    double f = (m - 1.0) / (m + 1.0);
    double f2 = f * f;
    double p = 1.0 / 25.0;
    for (int k = 11; k >= 0; k--) {
        double c = 1.0 / (double)(2 * k + 1);
        double q = p * f2;
        p = q + c;
    }
    double lm = 2.0 * f;
    lm = lm * p;
    double el = (double)e * 0.69314718055994530942;
    return el + lm;
}

void dpt_rng_normal(dpt_rng *r, float *dst, size_t n) {
    size_t i = 0;
    if (n && r->has_spare) {
        dst[i++] = (float)r->spare;
        r->has_spare = 0;
    }
    while (i < n) {
        double v1, v2, s;
        do {
            v1 = 2.0 * dpt_rng_uniform(r) - 1.0;
            v2 = 2.0 * dpt_rng_uniform(r) - 1.0;
            double a = v1 * v1;
            double b = v2 * v2;
            s = a + b;
        } while (s >= 1.0 || s == 0.0);
        double l = dpt_rng_log(s);
        double q = -2.0 * l;
        q = q / s;
        double f = sqrt(q);
        double y1 = v1 * f, y2 = v2 * f;
        dst[i++] = (float)y1;
        if (i < n) {
            dst[i++] = (float)y2;
        } else {
            r->spare = y2;
            r->has_spare = 1;
        }
    }
}

void dpt_noise_init(dpt_noise *nz, dpt_noise_fn fn, void *user, uint64_t seed) {
    nz->fn = fn;
    nz->user = user;
    nz->n_drawn = 0;
    dpt_rng_seed(&nz->rng, seed);
}

dpt_status dpt_noise_draw(dpt_noise *nz, float *dst, size_t n, const char *what, dpt_error *err) {
    if (nz->fn) {
        if (nz->fn(nz->user, dst, n) != 0)
            return dpt_fail(err, DPT_ERR_NOISE,
                            "noise source ran out or failed at %s (%zu values requested after "
                            "%llu drawn)",
                            what, n, (unsigned long long)nz->n_drawn);
        if (!dpt_all_finite(dst, n))
            return dpt_fail(err, DPT_ERR_NOISE,
                            "noise source returned NaN or Inf at %s (after %llu values)", what,
                            (unsigned long long)nz->n_drawn);
    } else {
        dpt_rng_normal(&nz->rng, dst, n);
    }
    nz->n_drawn += n;
    return DPT_OK;
}
