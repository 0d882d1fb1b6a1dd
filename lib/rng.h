/* Seedable, platform-independent random numbers and the sampler's noise source.
 *
 * Algorithm (normative: the same seed gives the same floats on every platform and thread count):
 *  1. State: xoshiro256** (Blackman & Vigna 2018), four 64-bit words s[0..3], seeded by running
 *     splitmix64 from `seed` and taking its first four outputs as s[0], s[1], s[2], s[3].
 *  2. Uniform: u = (next() >> 11) · 2⁻⁵³ ∈ [0, 1) (exact in double); v = 2u − 1 ∈ [−1, 1).
 *  3. Standard normal: Marsaglia's polar method in IEEE double: draw v1 then v2 (two uniforms,
 *     as in 2.), s = v1·v1 + v2·v2; reject and redraw both while s ≥ 1 or s == 0; then
 *     f = sqrt(−2·log(s)/s), giving the pair (v1·f, v2·f), emitted in that order. `log` is our
 *     own (dpt_rng_log: exact range reduction + a fixed atanh series, only +, −, ×, ÷), sqrt is
 *     IEEE-exact, and no expression is contracted into FMAs, so every step is reproducible
 *     bit for bit. Each normal is rounded to float32 when emitted.
 *  4. A stream of normals is one sequence: fill(dst, n) continues where the previous call
 *     stopped (including a pending second value of a pair).
 * Requires IEEE binary64 arithmetic without excess precision (FLT_EVAL_METHOD 0: x86-64 SSE2,
 * aarch64); not i387. */
#ifndef DPT_RNG_H
#define DPT_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

typedef struct dpt_rng {
    uint64_t s[4];
    int has_spare;      /* a second value of the last polar pair is pending */
    double spare;
} dpt_rng;

void dpt_rng_seed(dpt_rng *r, uint64_t seed);
/* Next 64-bit output of xoshiro256**. */
uint64_t dpt_rng_next(dpt_rng *r);
/* Uniform double in [0, 1), 53 random bits. */
double dpt_rng_uniform(dpt_rng *r);
/* n standard normal draws (step 3 above), appended to the stream. */
void dpt_rng_normal(dpt_rng *r, float *dst, size_t n);
/* Natural logarithm of a finite x > 0, reproducible across platforms (error < 1 ulp typical). */
double dpt_rng_log(double x);

/* The sampler's source of standard-normal draws: the caller's dpt_noise_fn when given, else the
 * built-in generator seeded with `seed`. Counts the values handed out (for error messages). */
typedef struct dpt_noise {
    dpt_noise_fn fn;
    void *user;
    dpt_rng rng;
    uint64_t n_drawn;
} dpt_noise;

void dpt_noise_init(dpt_noise *nz, dpt_noise_fn fn, void *user, uint64_t seed);
/* Fill dst[0..n); DPT_ERR_NOISE (message names `what` and the values drawn so far) when the
 * caller's source fails, or when it returns non-finite values. */
dpt_status dpt_noise_draw(dpt_noise *nz, float *dst, size_t n, const char *what, dpt_error *err);

#endif
