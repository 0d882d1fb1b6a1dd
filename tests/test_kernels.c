/* Kernel variants against the scalar reference (kernels/ref.c) and, when the build has one,
 * CBLAS: every SIMD variant the CPU supports (avx2 on x86-64, neon on aarch64) and the own SGEMM
 * with each micro-kernel, on random inputs with awkward sizes and tails, with guard regions
 * (sentinel bit patterns before and after every output, and in the gap columns of leading
 * dimensions) to catch overruns.
 *
 * Tolerances (derivations beside each test):
 *   erf        |y − erff| ≤ 1.5e-7 absolute and ≤ 3 ulp of erff
 *   exp        ≤ 3 ulp of expf for x ∈ [−87.3, 88.3]; exactly 0 below −87.34 and for −∞
 *   GELU       |y − ref| ≤ 1.5e-7·max(1, |x|)
 *   LayerNorm  |y − ref| ≤ 2e-6·(1 + |ref|)          (mean/variance in double in every variant)
 *   softmax    |p − ref| ≤ 1e-6·ref + 1e-12          (exp ≤ 3 ulp, double sums)
 *   add        bit-exact
 *   half→float bit-exact (NaN: NaN of the same sign) against an independent formula
 *   SGEMM      |c − ref| ≤ 4·(k + 2)·2⁻²⁴·(|α|·Σ_p |a_ip·b_pj| + |β·c_ij|) + 1e-30
 *              (the standard float dot-product error bound, k roundings, with margin),
 *              and bit-identical results for any thread count. Half-precision B: bit-identical
 *              to the own SGEMM on B converted to float beforehand.
 *   bf16 GEMM  the SGEMM bound against the same bfloat16-rounded operands summed in double
 *              (aarch64's BFMMLA kernel: γ(⌈k/2⌉ + 2·blocks + 2) with the unit 2⁻²³ of round to
 *              odd, see gemm_neon_bf16.c); (2·2⁻⁹ + 2⁻¹⁸)·|α|·Σ|a·b| more against the float32
 *              product (gemm_bf16_packed).
 *   f16 GEMM   bit-identical to the SGEMM on the half-rounded weights; 2⁻¹¹·|α|·Σ|a·b| plus twice
 *              the SGEMM bound against the float32 product (gemm_f16_packed).
 *   int8 GEMM  bit-exact against its reference and across kernels and thread counts; against the
 *              float32 product within the quantisation steps (gemm_int8_packed). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "kernels.h"

/* ---- helpers -------------------------------------------------------------------------------- */

/* Check's ck_assert* records a mark point on every passing assertion (a write to its message
 * file); element-wise checks over millions of values use these, which only act on failure. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)
#define CHECK1(cond) CHECK(cond, "%s", #cond)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
/* uniform in [lo, hi) */
static float rnd(float lo, float hi) { return lo + (hi - lo) * (float)(rnd_u32() >> 8) / 16777216.0f; }

#define GUARD 64
#define SENTINEL 0xDEADBEEFu

/* A buffer of n floats with GUARD sentinel floats on each side. */
typedef struct gbuf {
    float *base, *p;
    size_t n;
} gbuf;

static gbuf gb_new(size_t n) {
    gbuf g;
    g.n = n;
    g.base = malloc((n + 2 * GUARD) * sizeof(float));
    ck_assert_ptr_nonnull(g.base);
    g.p = g.base + GUARD;
    for (size_t i = 0; i < GUARD; i++) {
        uint32_t s = SENTINEL;
        memcpy(g.base + i, &s, 4);
        memcpy(g.p + n + i, &s, 4);
    }
    return g;
}

static void gb_check(const gbuf *g, const char *what) {
    for (size_t i = 0; i < GUARD; i++) {
        uint32_t lo, hi;
        memcpy(&lo, g->base + i, 4);
        memcpy(&hi, g->p + g->n + i, 4);
        CHECK(lo == SENTINEL, "%s: write before the buffer (guard %zu)", what, GUARD - i);
        CHECK(hi == SENTINEL, "%s: write past the buffer (guard %zu)", what, i);
    }
}

static void gb_free(gbuf *g) { free(g->base); }

static void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = rnd(lo, hi);
}

/* distance in units in the last place of ref (as float) */
static double ulps(float y, float ref) {
    if (y == ref) return 0.0;
    double u = ref == 0.0f ? FLT_MIN * FLT_EPSILON : nextafterf(fabsf(ref), INFINITY) - fabsf(ref);
    return fabs((double)y - (double)ref) / u;
}

static const int SIZES[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 511, 513, 1000, 4099};
#define N_SIZES (int)(sizeof SIZES / sizeof SIZES[0])

/* Runs body once per supported architecture (the dispatched kernels switched to it). */
#define FOR_EACH_ARCH(a)                                                                           \
    for (int a = 0; a < DPT_K_N_ARCH; a++)                                                         \
        if (dpt_k_arch_supported((dpt_k_arch)a) && dpt_k_set_arch((dpt_k_arch)a) == 0)

/* ---- architecture selection ----------------------------------------------------------------- */

START_TEST(arch_selection) {
    ck_assert_int_eq(dpt_k_arch_supported(DPT_K_ARCH_SCALAR), 1);
    for (int a = 0; a < DPT_K_N_ARCH; a++) ck_assert_ptr_nonnull(dpt_k_arch_name((dpt_k_arch)a));
    ck_assert_ptr_null(dpt_k_arch_name((dpt_k_arch)DPT_K_N_ARCH));
    ck_assert_int_eq(dpt_k_set_arch((dpt_k_arch)DPT_K_N_ARCH), -1);
#if defined(__x86_64__)
    ck_assert_int_eq(dpt_k_arch_supported(DPT_K_ARCH_NEON), 0);
    ck_assert_int_eq(dpt_k_set_arch(DPT_K_ARCH_NEON), -1);
#elif defined(__aarch64__)
    ck_assert_int_eq(dpt_k_arch_supported(DPT_K_ARCH_NEON), 1);
    ck_assert_int_eq(dpt_k_arch_supported(DPT_K_ARCH_AVX2), 0);
#endif
    FOR_EACH_ARCH(a) ck_assert_int_eq(dpt_k_arch_active(), a);
}
END_TEST

/* The first kernel call reads DPT_ARCH: checked in fresh child processes. */
static int child_arch(const char *env) {
    pid_t pid = fork();
    if (pid == 0) {
        if (env)
            setenv("DPT_ARCH", env, 1);
        else
            unsetenv("DPT_ARCH");
        _exit((int)dpt_k_arch_active());
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(arch_env_override) {
    /* without Check's fork, earlier tests in this process have already chosen the table */
    const char *fork_mode = getenv("CK_FORK");
    if (fork_mode && !strcmp(fork_mode, "no")) return;
    int best = child_arch(NULL);
    ck_assert_int_ge(best, 0);
    ck_assert_int_eq(dpt_k_arch_supported((dpt_k_arch)best), 1);
    ck_assert_int_eq(child_arch("scalar"), DPT_K_ARCH_SCALAR);
    ck_assert_int_eq(child_arch("no-such-arch"), best);
    for (int a = 0; a < DPT_K_N_ARCH; a++)
        ck_assert_int_eq(child_arch(dpt_k_arch_name((dpt_k_arch)a)),
                         dpt_k_arch_supported((dpt_k_arch)a) ? a : best);
}
END_TEST

START_TEST(threads_setting) {
    dpt_k_set_threads(3);
    ck_assert_int_eq(dpt_k_get_threads(), 3);
    dpt_k_set_threads(0);
    ck_assert_int_ge(dpt_k_get_threads(), 1);
    dpt_k_set_threads(1);
    ck_assert_int_eq(dpt_k_get_threads(), 1);
}
END_TEST

/* ---- erf, exp, GELU ------------------------------------------------------------------------- */

START_TEST(erf_accuracy) {
    /* a dense sweep of [−6, 6], the branch points and special values */
    const size_t n_sweep = 600001;
    const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, nextafterf(1.0f, 0.0f), 3.92f,
                             nextafterf(3.92f, 0.0f), -3.92f, 10.0f, -10.0f, 1e-30f, -1e-30f,
                             FLT_MIN, 1e-40f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY};
    const size_t n_sp = sizeof special / sizeof special[0], n = n_sweep + n_sp;
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n_sweep; i++) x[i] = -6.0f + 12.0f * (float)i / (float)(n_sweep - 1);
    memcpy(x + n_sweep, special, sizeof special);
    FOR_EACH_ARCH(a) {
        gbuf y = gb_new(n);
        dpt_k_erf(x, y.p, n);
        gb_check(&y, "erf");
        double max_abs = 0, max_ulp = 0;
        for (size_t i = 0; i < n; i++) {
            float ref = erff(x[i]);
            double e = fabs((double)y.p[i] - ref), u = ulps(y.p[i], ref);
            if (e > max_abs) max_abs = e;
            if (u > max_ulp) max_ulp = u;
            CHECK(e <= 1.5e-7 && u <= 3.0, "%s erf(%.9g) = %.9g, erff %.9g (%.2f ulp)",
                          dpt_k_arch_name(a), x[i], y.p[i], ref, u);
        }
        float nan_in = NAN, nan_out = 0.0f;
        dpt_k_erf(&nan_in, &nan_out, 1);
        CHECK(isnan(nan_out), "%s: erf(NaN) not NaN", dpt_k_arch_name(a));
        if (a != DPT_K_ARCH_SCALAR)
            printf("erf %s: max |err| %.3g, max %.2f ulp\n", dpt_k_arch_name(a), max_abs, max_ulp);
        gb_free(&y);
    }
    free(x);
}
END_TEST

START_TEST(exp_accuracy) {
    const size_t n_sweep = 400001;
    const float special[] = {0.0f, -0.0f, -87.3f, -87.33f, -87.34f, -88.0f, -100.0f, -1e30f,
                             -INFINITY, 88.3f, 88.376f, 88.5f, 100.0f, INFINITY};
    const size_t n_sp = sizeof special / sizeof special[0], n = n_sweep + n_sp;
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n_sweep; i++)
        x[i] = -87.3f + (88.3f + 87.3f) * (float)i / (float)(n_sweep - 1);
    memcpy(x + n_sweep, special, sizeof special);
    FOR_EACH_ARCH(a) {
        gbuf y = gb_new(n);
        dpt_k_exp(x, y.p, n);
        gb_check(&y, "exp");
        double max_ulp = 0;
        for (size_t i = 0; i < n; i++) {
            float ref = expf(x[i]);
            if (a == DPT_K_ARCH_SCALAR) { /* libm itself */
                CHECK1(y.p[i] == ref || (isnan(y.p[i]) && isnan(ref)));
            } else if (x[i] < -87.34f) {
                CHECK(y.p[i] == 0.0f, "%s exp(%g) = %g, want 0", dpt_k_arch_name(a),
                              x[i], y.p[i]);
            } else if (x[i] > 88.38f) {
                CHECK(y.p[i] == INFINITY, "%s exp(%g) = %g, want inf",
                              dpt_k_arch_name(a), x[i], y.p[i]);
            } else if (ref >= FLT_MIN) {
                double u = ulps(y.p[i], ref);
                if (u > max_ulp) max_ulp = u;
                CHECK(u <= 3.0, "%s exp(%.9g) = %.9g, expf %.9g (%.2f ulp)",
                              dpt_k_arch_name(a), x[i], y.p[i], ref, u);
            } else { /* the few inputs just above −87.34 whose result is subnormal */
                CHECK1(fabsf(y.p[i] - ref) <= FLT_MIN);
            }
        }
        float nan_in = NAN, nan_out = 0.0f;
        dpt_k_exp(&nan_in, &nan_out, 1);
        CHECK1(isnan(nan_out));
        if (a != DPT_K_ARCH_SCALAR) printf("exp %s: max %.2f ulp\n", dpt_k_arch_name(a), max_ulp);
        gb_free(&y);
    }
    free(x);
}
END_TEST

START_TEST(gelu_vs_ref) {
    FOR_EACH_ARCH(a) {
        for (int si = 0; si < N_SIZES; si++) {
            size_t n = (size_t)SIZES[si];
            gbuf x = gb_new(n);
            float *ref = malloc(n * sizeof *ref), *in = malloc(n * sizeof *in);
            fill(in, n, -10.0f, 10.0f);
            if (n > 4) in[0] = 0.0f, in[1] = -0.0f, in[2] = 1.4142135f, in[3] = -40.0f;
            memcpy(x.p, in, n * sizeof *in);
            memcpy(ref, in, n * sizeof *in);
            dpt_k_gelu(x.p, n);
            dpt_k_gelu_ref(ref, n);
            gb_check(&x, "gelu");
            for (size_t i = 0; i < n; i++) {
                double tol = 1.5e-7 * fmax(1.0, fabs(in[i]));
                CHECK(fabs((double)x.p[i] - ref[i]) <= tol,
                              "%s gelu n=%zu x=%.9g: %.9g vs ref %.9g", dpt_k_arch_name(a), n,
                              in[i], x.p[i], ref[i]);
            }
            gb_free(&x);
            free(ref);
            free(in);
        }
    }
}
END_TEST

/* ---- add ------------------------------------------------------------------------------------ */

START_TEST(add_vs_ref) {
    FOR_EACH_ARCH(a) {
        for (int si = 0; si < N_SIZES; si++) {
            size_t n = (size_t)SIZES[si];
            gbuf y = gb_new(n);
            float *x = malloc(n * sizeof *x), *ref = malloc(n * sizeof *ref),
                  *x0 = malloc(n * sizeof *x0);
            fill(y.p, n, -3, 3);
            fill(x, n, -3, 3);
            memcpy(ref, y.p, n * sizeof *ref);
            memcpy(x0, x, n * sizeof *x);
            dpt_k_add(y.p, x, n);
            dpt_k_add_ref(ref, x, n);
            gb_check(&y, "add");
            CHECK(!memcmp(y.p, ref, n * sizeof *ref), "%s add n=%zu differs",
                          dpt_k_arch_name(a), n);
            CHECK1(!memcmp(x, x0, n * sizeof *x));
            gb_free(&y);
            free(x);
            free(ref);
            free(x0);
        }
    }
}
END_TEST

/* ---- LayerNorm ------------------------------------------------------------------------------ */

/* affine: 0 none, 1 γ only, 2 γ and β; fused: add_layernorm with a residual */
static void ln_case(int a, int rows, int cols, int affine, int fused, float offset) {
    size_t n = (size_t)rows * cols;
    gbuf x = gb_new(n);
    float *ref = malloc(n * sizeof *ref), *res = malloc(n * sizeof *res),
          *res0 = malloc(n * sizeof *res0), *g = malloc(cols * sizeof *g),
          *b = malloc(cols * sizeof *b);
    for (size_t i = 0; i < n; i++) x.p[i] = offset + rnd(-2, 2);
    fill(res, n, -1, 1);
    fill(g, cols, 0.5f, 1.5f);
    fill(b, cols, -0.5f, 0.5f);
    memcpy(ref, x.p, n * sizeof *ref);
    memcpy(res0, res, n * sizeof *res);
    const float *gg = affine ? g : NULL, *bb = affine == 2 ? b : NULL;
    if (fused) {
        dpt_k_add_layernorm(x.p, res, rows, cols, gg, bb, 1e-5f);
        dpt_k_add_layernorm_ref(ref, res, rows, cols, gg, bb, 1e-5f);
        CHECK1(!memcmp(res, res0, n * sizeof *res));
    } else {
        dpt_k_layernorm(x.p, rows, cols, gg, bb, 1e-5f);
        dpt_k_layernorm_ref(ref, rows, cols, gg, bb, 1e-5f);
    }
    gb_check(&x, "layernorm");
    for (size_t i = 0; i < n; i++)
        CHECK(fabs((double)x.p[i] - ref[i]) <= 2e-6 * (1.0 + fabs(ref[i])),
                      "%s layernorm %dx%d affine %d fused %d offset %g [%zu]: %.9g vs %.9g",
                      dpt_k_arch_name(a), rows, cols, affine, fused, offset, i, x.p[i], ref[i]);
    gb_free(&x);
    free(ref);
    free(res);
    free(res0);
    free(g);
    free(b);
}

START_TEST(layernorm_vs_ref) {
    FOR_EACH_ARCH(a) {
        for (int si = 0; si < N_SIZES; si++) {
            int cols = SIZES[si], rows = cols > 600 ? 2 : 3;
            for (int affine = 0; affine < 3; affine++)
                for (int fused = 0; fused < 2; fused++) ln_case(a, rows, cols, affine, fused, 0.0f);
            ln_case(a, rows, cols, 2, 1, 300.0f); /* large mean: centring must be exact-ish */
        }
        ln_case(a, 7, 512, 2, 1, 0.0f);
        ln_case(a, 5, 768, 2, 0, -20.0f);
    }
}
END_TEST

/* ---- softmax -------------------------------------------------------------------------------- */

START_TEST(softmax_vs_ref) {
    FOR_EACH_ARCH(a) {
        for (int si = 0; si < N_SIZES; si++) {
            int cols = SIZES[si], rows = 4;
            size_t n = (size_t)rows * cols;
            gbuf x = gb_new(n);
            float *ref = malloc(n * sizeof *ref);
            fill(x.p, n, -30, 30);
            /* row 1: some entries masked; row 2 fully masked; row 3: large equal values */
            for (int c = 0; c < cols; c += 3) x.p[cols + c] = -INFINITY;
            for (int c = 0; c < cols; c++) x.p[2 * cols + c] = -INFINITY;
            for (int c = 0; c < cols; c++) x.p[3 * cols + c] = 1e4f + (c & 1);
            memcpy(ref, x.p, n * sizeof *ref);
            dpt_k_softmax(x.p, rows, cols);
            dpt_k_softmax_ref(ref, rows, cols);
            gb_check(&x, "softmax");
            for (size_t i = 0; i < n; i++)
                CHECK(fabs((double)x.p[i] - ref[i]) <= 1e-6 * ref[i] + 1e-12,
                              "%s softmax cols %d [%zu]: %.9g vs %.9g", dpt_k_arch_name(a), cols,
                              i, x.p[i], ref[i]);
            for (int c = 0; c < cols; c += 3) CHECK1(x.p[cols + c] == 0.0f);
            for (int c = 0; c < cols; c++) CHECK1(x.p[2 * cols + c] == 0.0f);
            gb_free(&x);
            free(ref);
        }
    }
}
END_TEST

/* ---- GEMM ----------------------------------------------------------------------------------- */

typedef struct gemm_case {
    int trans_b, m, n, k, lda, ldb, ldc;
    float alpha, beta;
} gemm_case;

/* Runs the own SGEMM (and, if blas, the dispatched dpt_k_gemm_*) on one case and checks it
 * against dpt_k_gemm_ref with the bound of the file comment; C has guard regions around it and
 * sentinel gap columns (ldc > n) that must stay untouched. Returns the own result (m·ldc) for
 * further comparisons (caller frees). */
static float *gemm_check(const gemm_case *t, int via_dispatch, const char *what) {
    const int m = t->m, n = t->n, k = t->k;
    const int b_rows = t->trans_b ? n : k, b_cols = t->trans_b ? k : n;
    size_t na = (size_t)(m ? m - 1 : 0) * t->lda + k, nb = (size_t)(b_rows ? b_rows - 1 : 0) * t->ldb + b_cols;
    size_t nc = (size_t)(m ? m - 1 : 0) * t->ldc + n;
    float *a = malloc((na + 1) * sizeof *a), *b = malloc((nb + 1) * sizeof *b);
    fill(a, na, -1, 1);
    fill(b, nb, -1, 1);
    float *c0 = malloc((nc + 1) * sizeof *c0);
    fill(c0, nc, -1, 1);
    /* gap columns: sentinel */
    for (int i = 0; i < m; i++)
        for (int j = n; j < t->ldc && (size_t)i * t->ldc + j < nc; j++) {
            uint32_t s = SENTINEL;
            memcpy(c0 + (size_t)i * t->ldc + j, &s, 4);
        }
    gbuf c = gb_new(nc);
    memcpy(c.p, c0, nc * sizeof *c0);
    if (t->beta == 0.0f) /* C must not be read: NaN in it must not propagate */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c.p[(size_t)i * t->ldc + j] = NAN;
    float *ref = malloc((nc + 1) * sizeof *ref);
    memcpy(ref, c0, nc * sizeof *c0);

    if (via_dispatch) {
        if (t->trans_b)
            dpt_k_gemm_nt(m, n, k, t->alpha, a, t->lda, b, t->ldb, t->beta, c.p, t->ldc);
        else
            dpt_k_gemm_nn(m, n, k, t->alpha, a, t->lda, b, t->ldb, t->beta, c.p, t->ldc);
    } else {
        dpt_k_sgemm(t->trans_b, m, n, k, t->alpha, a, t->lda, b, t->ldb, t->beta, c.p, t->ldc);
    }
    dpt_k_gemm_ref(t->trans_b, m, n, k, t->alpha, a, t->lda, b, t->ldb, t->beta, ref, t->ldc);
    gb_check(&c, what);
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < t->ldc && (size_t)i * t->ldc + j < nc; j++) {
            size_t o = (size_t)i * t->ldc + j;
            if (j >= n) {
                uint32_t s;
                memcpy(&s, c.p + o, 4);
                CHECK(s == SENTINEL, "%s: gap column %d of row %d written", what, j, i);
                continue;
            }
            double bound = 0.0;
            for (int p = 0; p < k; p++) {
                float bv = t->trans_b ? b[(size_t)j * t->ldb + p] : b[(size_t)p * t->ldb + j];
                bound += fabs((double)a[(size_t)i * t->lda + p] * bv);
            }
            bound = fabs(t->alpha) * bound + fabs(t->beta * c0[o]);
            double tol = 4.0 * (k + 2) * ldexp(1.0, -24) * bound + 1e-30;
            CHECK(fabs((double)c.p[o] - ref[o]) <= tol,
                          "%s: trans_b %d m %d n %d k %d lda %d ldb %d ldc %d alpha %g beta %g: "
                          "C[%d,%d] = %.9g, ref %.9g (tol %.3g)",
                          what, t->trans_b, m, n, k, t->lda, t->ldb, t->ldc, t->alpha, t->beta, i,
                          j, c.p[o], ref[o], tol);
        }
    }
    float *out = malloc((nc + 1) * sizeof *out);
    memcpy(out, c.p, nc * sizeof *out);
    gb_free(&c);
    free(a);
    free(b);
    free(c0);
    free(ref);
    return out;
}

static gemm_case make_case(int trans_b, int m, int n, int k, int pad, float alpha, float beta) {
    gemm_case t = {trans_b, m, n, k, k + pad, (trans_b ? k : n) + 2 * pad, n + 3 * pad, alpha,
                   beta};
    return t;
}

static const float ALPHAS[] = {1.0f, 0.5f, -2.0f};
static const float BETAS[] = {0.0f, 1.0f, -0.75f};

/* Every (m, n) pair of the awkward sizes at three depths, both layouts, each arch's kernel */
START_TEST(sgemm_small_shapes) {
    static const int MN[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 129};
    static const int K[] = {1, 17, 129};
    const int nmn = (int)(sizeof MN / sizeof MN[0]);
    dpt_k_set_threads(1);
    int idx = 0;
    FOR_EACH_ARCH(a) {
        char what[64];
        snprintf(what, sizeof what, "sgemm[%s]", dpt_k_arch_name(a));
        for (int tb = 0; tb < 2; tb++)
            for (int ki = 0; ki < 3; ki++)
                for (int mi = 0; mi < nmn; mi++)
                    for (int ni = 0; ni < nmn; ni++, idx++) {
                        gemm_case t = make_case(tb, MN[mi], MN[ni], K[ki], idx % 3 == 0 ? 0 : 5,
                                                ALPHAS[idx % 3], BETAS[(idx / 3) % 3]);
                        free(gemm_check(&t, 0, what));
                    }
    }
}
END_TEST

/* Shapes that cross the cache blocks (kc 256, mc 128/168, nc 2048–4080) and the models' shapes */
START_TEST(sgemm_blocked_shapes) {
    static const int S[][3] = {{511, 65, 513}, {513, 127, 257}, {169, 33, 1000}, {7, 4099, 9},
                               {333, 129, 512},  {2, 8200, 3},   {65, 17, 4099}};
    dpt_k_set_threads(2);
    FOR_EACH_ARCH(a) {
        char what[64];
        snprintf(what, sizeof what, "sgemm[%s]", dpt_k_arch_name(a));
        for (size_t s = 0; s < sizeof S / sizeof S[0]; s++)
            for (int tb = 0; tb < 2; tb++) {
                gemm_case t = make_case(tb, S[s][0], S[s][1], S[s][2], (int)s % 2 ? 3 : 0,
                                        ALPHAS[s % 3], BETAS[(s + tb) % 3]);
                free(gemm_check(&t, 0, what));
            }
    }
}
END_TEST

/* alpha = 0, k = 0, m or n = 0: C = beta·C (not read for beta = 0), nothing else touched */
START_TEST(sgemm_degenerate) {
    FOR_EACH_ARCH(a) {
        gemm_case cases[] = {make_case(1, 5, 7, 0, 2, 1.0f, 0.5f), make_case(0, 5, 7, 0, 0, 1.0f, 0.0f),
                             make_case(1, 9, 17, 33, 1, 0.0f, -0.75f), make_case(0, 9, 17, 33, 1, 0.0f, 0.0f),
                             make_case(1, 0, 7, 5, 0, 1.0f, 1.0f), make_case(0, 6, 0, 5, 0, 1.0f, 1.0f)};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            free(gemm_check(&cases[i], 0, dpt_k_arch_name(a)));
    }
}
END_TEST

/* Results are bit-identical for any thread count (each C entry sees the same operations). */
START_TEST(sgemm_threads_deterministic) {
    FOR_EACH_ARCH(a) {
        for (int tb = 0; tb < 2; tb++) {
            gemm_case t = make_case(tb, 333, 520, 300, 1, 1.0f, 1.0f);
            uint64_t seed = rng_state;
            dpt_k_set_threads(1);
            float *c1 = gemm_check(&t, 0, "sgemm 1 thread");
            rng_state = seed;
            dpt_k_set_threads(3);
            float *c3 = gemm_check(&t, 0, "sgemm 3 threads");
            size_t nc = (size_t)(t.m - 1) * t.ldc + t.n;
            CHECK(!memcmp(c1, c3, nc * sizeof *c1), "%s: 1 vs 3 threads differ",
                          dpt_k_arch_name(a));
            free(c1);
            free(c3);
        }
    }
}
END_TEST

/* Several callers at once (the team serves one; the others run single-threaded). */
typedef struct conc_job {
    const float *a, *b;
    float *c;
    int m, n, k;
} conc_job;

static void *conc_run(void *arg) {
    conc_job *j = arg;
    for (int r = 0; r < 5; r++)
        dpt_k_sgemm(1, j->m, j->n, j->k, 1.0f, j->a, j->k, j->b, j->k, 0.0f, j->c, j->n);
    return NULL;
}

START_TEST(sgemm_concurrent_callers) {
    enum { NJ = 4, M = 150, N = 260, K = 300 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K);
    float *want = malloc(sizeof(float) * M * N), *c[NJ];
    fill(a, (size_t)M * K, -1, 1);
    fill(b, (size_t)N * K, -1, 1);
    dpt_k_set_threads(1);
    dpt_k_sgemm(1, M, N, K, 1.0f, a, K, b, K, 0.0f, want, N);
    dpt_k_set_threads(2);
    pthread_t th[NJ];
    conc_job jobs[NJ];
    for (int i = 0; i < NJ; i++) {
        c[i] = malloc(sizeof(float) * M * N);
        jobs[i] = (conc_job){a, b, c[i], M, N, K};
        ck_assert_int_eq(pthread_create(&th[i], NULL, conc_run, &jobs[i]), 0);
    }
    for (int i = 0; i < NJ; i++) {
        pthread_join(th[i], NULL);
        CHECK(!memcmp(c[i], want, sizeof(float) * M * N), "caller %d differs", i);
        free(c[i]);
    }
    free(a);
    free(b);
    free(want);
}
END_TEST

/* A child forked after the team has started runs multi-threaded GEMMs too (no deadlock on the
 * parent's workers, which the child does not have). */
START_TEST(sgemm_after_fork) {
    enum { M = 120, N = 200, K = 300 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K);
    float *c = malloc(sizeof(float) * M * N), *c2 = malloc(sizeof(float) * M * N);
    fill(a, (size_t)M * K, -1, 1);
    fill(b, (size_t)N * K, -1, 1);
    dpt_k_set_threads(2);
    dpt_k_sgemm(1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        dpt_k_sgemm(1, M, N, K, 1.0f, a, K, b, K, 0.0f, c2, N);
        dpt_k_sgemm(1, M, N, K, 1.0f, a, K, b, K, 0.0f, c2, N);
        _exit(memcmp(c, c2, sizeof(float) * M * N) ? 1 : 0);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
    free(a);
    free(b);
    free(c);
    free(c2);
}
END_TEST

/* The dispatched entry points (CBLAS or own SGEMM, per build) against the reference. */
START_TEST(gemm_dispatch_and_linear) {
    dpt_k_set_threads(2);
    static const int S[][3] = {{1, 1, 1}, {3, 17, 33}, {65, 63, 129}, {333, 100, 257}};
    for (size_t s = 0; s < sizeof S / sizeof S[0]; s++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case t = make_case(tb, S[s][0], S[s][1], S[s][2], 2, ALPHAS[s % 3], BETAS[s % 3]);
            free(gemm_check(&t, 1, dpt_k_have_blas() ? "cblas" : "dispatch"));
        }
    /* linear with and without bias */
    for (int with_b = 0; with_b < 2; with_b++) {
        int rows = 37, n_in = 129, n_out = 65;
        float *x = malloc(sizeof(float) * rows * n_in), *w = malloc(sizeof(float) * n_out * n_in),
              *bias = malloc(sizeof(float) * n_out);
        fill(x, (size_t)rows * n_in, -1, 1);
        fill(w, (size_t)n_out * n_in, -1, 1);
        fill(bias, n_out, -1, 1);
        gbuf y = gb_new((size_t)rows * n_out);
        float *ref = malloc(sizeof(float) * rows * n_out);
        dpt_k_linear(x, rows, n_in, w, with_b ? bias : NULL, n_out, y.p);
        gb_check(&y, "linear");
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < n_out; o++) ref[r * n_out + o] = with_b ? bias[o] : 0.0f;
        dpt_k_gemm_ref(1, rows, n_out, n_in, 1.0f, x, n_in, w, n_in, 1.0f, ref, n_out);
        for (int i = 0; i < rows * n_out; i++)
            CHECK(fabsf(y.p[i] - ref[i]) <= 2e-5f, "linear [%d]: %g vs %g", i, y.p[i],
                          ref[i]);
        gb_free(&y);
        free(x);
        free(w);
        free(bias);
        free(ref);
    }
}
END_TEST

/* ---- half precision ------------------------------------------------------------------------- */

/* IEEE binary16 value of h by its definition (independent of the kernels' bit manipulation). */
static double half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e < 31 ? ldexp(1024 + m, e - 25) : m ? NAN : INFINITY;
    return h & 0x8000 ? -v : v;
}

/* Every one of the 65536 halves, every variant, at every alignment and tail length. */
START_TEST(half_to_float_all_values) {
    enum { N = 65536 };
    uint16_t *src = malloc(sizeof(uint16_t) * (N + 8));
    for (int i = 0; i < N; i++) src[i] = (uint16_t)i;
    float *ref = malloc(sizeof(float) * N);
    dpt_k_half_to_float_ref(src, ref, N);
    for (int i = 0; i < N; i++) {
        double v = half_value((uint16_t)i);
        if (isnan(v))
            CHECK(isnan(ref[i]) && !signbit(ref[i]) == !(i & 0x8000), "ref half %#x: %g", i, ref[i]);
        else
            CHECK((double)ref[i] == v && !signbit(ref[i]) == !signbit(v), "ref half %#x: %.9g, want %.9g",
                  i, ref[i], v);
    }
    FOR_EACH_ARCH(a) {
        gbuf y = gb_new(N);
        dpt_k_half_to_float(src, y.p, N);
        gb_check(&y, dpt_k_arch_name(a));
        for (int i = 0; i < N; i++)
            CHECK(isnan(ref[i]) ? isnan(y.p[i]) && !signbit(y.p[i]) == !signbit(ref[i])
                                : !memcmp(&y.p[i], &ref[i], 4),
                  "%s half %#x: %.9g, ref %.9g", dpt_k_arch_name(a), i, y.p[i], ref[i]);
        gb_free(&y);
        for (int si = 0; si < N_SIZES; si++)
            for (int off = 0; off < 3; off++) {
                size_t n = (size_t)SIZES[si];
                gbuf z = gb_new(n);
                dpt_k_half_to_float(src + 1000 * si + off, z.p, n);
                gb_check(&z, "half_to_float tail");
                /* no NaN in [0, 24099): plain bit comparison */
                CHECK1(!memcmp(z.p, ref + 1000 * si + off, n * 4));
                gb_free(&z);
            }
    }
    free(src);
    free(ref);
}
END_TEST

/* a random finite half in ±[2⁻⁸, 2), with zeros and subnormals now and then */
static uint16_t rnd_half(void) {
    uint32_t r = rnd_u32();
    uint16_t sign = (uint16_t)((r & 1) << 15), man = (uint16_t)((r >> 1) & 1023);
    switch ((r >> 11) % 64) {
    case 0: return sign;               /* ±0 */
    case 1: return (uint16_t)(sign | man); /* subnormal */
    default: return (uint16_t)(sign | (7 + (r >> 17) % 9) << 10 | man);
    }
}

/* Own SGEMM with a half-precision B (converted while packed) against the own SGEMM on B converted
 * beforehand: bit-identical, at awkward and blocked shapes, 1 and 2 threads, every micro-kernel;
 * B is allocated to its exact size (ASan catches over-reads), C has guard regions. Then the
 * halves-in-place linear layer against dpt_k_linear. */
START_TEST(sgemm_half_b) {
    static const int S[][3] = {{1, 1, 1},   {3, 7, 17},     {17, 31, 129}, {65, 17, 257},
                               {333, 129, 512}, {7, 4099, 9}, {169, 33, 1000}, {2, 600, 3000}};
    FOR_EACH_ARCH(a) {
        for (size_t s = 0; s < sizeof S / sizeof S[0]; s++) {
            const int m = S[s][0], n = S[s][1], k = S[s][2], pad = (int)s % 2 ? 3 : 0;
            const int lda = k + pad, ldb = k + 2 * pad, ldc = n + pad;
            const float beta = BETAS[s % 3], alpha = ALPHAS[(s + 1) % 3];
            size_t na = (size_t)(m - 1) * lda + k, nb = (size_t)(n - 1) * ldb + k,
                   nc = (size_t)(m - 1) * ldc + n;
            float *x = malloc(sizeof(float) * na), *bf = malloc(sizeof(float) * nb),
                  *c0 = malloc(sizeof(float) * nc);
            uint16_t *bh = malloc(sizeof(uint16_t) * nb);
            fill(x, na, -1, 1);
            fill(c0, nc, -1, 1);
            for (size_t i = 0; i < nb; i++) bh[i] = rnd_half();
            dpt_k_half_to_float_ref(bh, bf, nb);
            for (int th = 1; th <= 2; th++) {
                dpt_k_set_threads(th);
                gbuf c1 = gb_new(nc), c2 = gb_new(nc);
                memcpy(c1.p, c0, nc * 4);
                memcpy(c2.p, c0, nc * 4);
                dpt_k_sgemm(1, m, n, k, alpha, x, lda, bf, ldb, beta, c1.p, ldc);
                dpt_k_sgemm_h(m, n, k, alpha, x, lda, bh, ldb, beta, c2.p, ldc);
                gb_check(&c2, "sgemm_h");
                CHECK(!memcmp(c1.p, c2.p, nc * 4), "%s m %d n %d k %d, %d threads: half B differs",
                      dpt_k_arch_name(a), m, n, k, th);
                gb_free(&c1);
                gb_free(&c2);
            }
            free(x);
            free(bf);
            free(c0);
            free(bh);
        }
    }
    dpt_k_set_threads(2);
    for (int with_b = 0; with_b < 2; with_b++) {
        int rows = 37, n_in = 129, n_out = 65;
        float *x = malloc(sizeof(float) * rows * n_in), *w = malloc(sizeof(float) * n_out * n_in),
              *bias = malloc(sizeof(float) * n_out), *ref = malloc(sizeof(float) * rows * n_out);
        uint16_t *wh = malloc(sizeof(uint16_t) * n_out * n_in);
        fill(x, (size_t)rows * n_in, -1, 1);
        fill(bias, n_out, -1, 1);
        for (int i = 0; i < n_out * n_in; i++) wh[i] = rnd_half();
        dpt_k_half_to_float_ref(wh, w, (size_t)n_out * n_in);
        gbuf y = gb_new((size_t)rows * n_out);
        /* the halves-in-place form of a linear layer (dpt_k_lin_rows) */
        const dpt_k_lin lh = {.wh = wh, .b = with_b ? bias : NULL, .n_out = n_out, .n_in = n_in};
        dpt_k_lin_rows(&lh, 0, n_out, x, rows, y.p, n_out);
        gb_check(&y, "linear_h");
        dpt_k_linear(x, rows, n_in, w, with_b ? bias : NULL, n_out, ref);
        for (int i = 0; i < rows * n_out; i++)
            CHECK(fabsf(y.p[i] - ref[i]) <= 2e-5f, "linear_h [%d]: %g vs %g", i, y.p[i], ref[i]);
        gb_free(&y);
        free(x);
        free(w);
        free(bias);
        free(ref);
        free(wh);
    }
}
END_TEST

/* ---- parallel regions ----------------------------------------------------------------------- */

typedef struct region_job {
    int n;               /* items split by dpt_k_region_range */
    int *owner;          /* (n) tid that claimed item i */
    atomic_int arrived[64];
    int fail;            /* set by a thread that saw a barrier let it through too early */
    int nt_seen;
    const float *a, *b;  /* a GEMM run inside the region by every thread */
    float *c;            /* (nt, m·n) */
    int m, nn, k;
} region_job;

#define REGION_ROUNDS 200

static void region_fn(void *ctx, dpt_k_region *r) {
    region_job *j = ctx;
    int tid = dpt_k_region_tid(r), nt = dpt_k_region_nt(r);
    if (!dpt_k_in_region() || tid < 0 || tid >= nt) j->fail = 1;
    if (tid == 0) j->nt_seen = nt;
    int lo, hi;
    dpt_k_region_range(r, j->n, &lo, &hi);
    for (int i = lo; i < hi; i++) j->owner[i] = tid;
    /* after each barrier every thread must have arrived at the round before it */
    for (int round = 0; round < REGION_ROUNDS; round++) {
        atomic_fetch_add(&j->arrived[round % 64], 1);
        dpt_k_region_sync(r);
        if (atomic_load(&j->arrived[round % 64]) < nt * (round / 64 + 1)) j->fail = 1;
    }
    dpt_k_sgemm(1, j->m, j->nn, j->k, 1.0f, j->a, j->k, j->b, j->k, 0.0f,
                j->c + (size_t)tid * j->m * j->nn, j->nn);
}

/* dpt_k_parallel: thread ids, even ranges covering every item once, barriers that hold, GEMMs
 * inside equal to the same GEMM outside, any thread count (also 1, and more than the cores). */
START_TEST(parallel_regions) {
    for (int want = 1; want <= 4; want++) {
        region_job j;
        memset(&j, 0, sizeof j);
        j.n = 1001;
        j.owner = malloc(sizeof(int) * j.n);
        for (int i = 0; i < j.n; i++) j.owner[i] = -1;
        j.m = 37, j.nn = 65, j.k = 129;
        float *a = malloc(sizeof(float) * j.m * j.k), *b = malloc(sizeof(float) * j.nn * j.k);
        float *ref = malloc(sizeof(float) * j.m * j.nn);
        fill(a, (size_t)j.m * j.k, -1, 1);
        fill(b, (size_t)j.nn * j.k, -1, 1);
        j.a = a, j.b = b;
        j.c = malloc(sizeof(float) * j.m * j.nn * want);
        dpt_k_set_threads(2);
        dpt_k_sgemm(1, j.m, j.nn, j.k, 1.0f, a, j.k, b, j.k, 0.0f, ref, j.nn);
        CHECK1(!dpt_k_in_region());
        dpt_k_team *team = dpt_k_team_new(want);
        CHECK1(team && dpt_k_team_size(team) == want);
        dpt_k_parallel(team, want, region_fn, &j);
        CHECK1(!dpt_k_in_region());
        dpt_k_parallel(team, want, region_fn, &j);   /* the team's workers reused */
        dpt_k_team_free(team);
        CHECK1(!dpt_k_in_region());
        CHECK(!j.fail, "%d threads: a barrier let a thread through early, or bad tid", want);
        CHECK(j.nt_seen == want, "asked %d threads, ran %d", want, j.nt_seen);
        for (int i = 0; i < j.n; i++) {
            CHECK(j.owner[i] >= 0 && j.owner[i] < j.nt_seen, "item %d not claimed", i);
            CHECK1(i == 0 || j.owner[i] >= j.owner[i - 1]); /* contiguous ranges */
        }
        for (int t = 0; t < j.nt_seen; t++)
            CHECK(!memcmp(j.c + (size_t)t * j.m * j.nn, ref, sizeof(float) * j.m * j.nn),
                  "%d threads: GEMM of thread %d in the region differs", want, t);
        free(j.owner);
        free(a);
        free(b);
        free(ref);
        free(j.c);
    }
}
END_TEST

/* B packed once (dpt_k_pack, float and half) and used by dpt_k_sgemm_packed over column ranges that
 * start on panel boundaries: bit-identical to dpt_k_sgemm on the same B; a packing made for another
 * micro-kernel, or a range not on a panel boundary, is refused (−1) and C is not touched. */
START_TEST(sgemm_prepacked) {
    static const int S[][3] = {{1, 1, 1}, {7, 17, 33}, {333, 129, 512}, {65, 50, 300}, {6, 1536, 512},
                               {37, 16, 2049}};
    FOR_EACH_ARCH(a) {
        for (size_t s = 0; s < sizeof S / sizeof S[0]; s++) {
            const int m = S[s][0], n = S[s][1], k = S[s][2], ldc = n + 3;
            float *x = malloc(sizeof(float) * m * k), *bf = malloc(sizeof(float) * n * k),
                  *c0 = malloc(sizeof(float) * m * ldc);
            uint16_t *bh = malloc(sizeof(uint16_t) * n * k);
            fill(x, (size_t)m * k, -1, 1);
            fill(c0, (size_t)m * ldc, -1, 1);
            for (int i = 0; i < n * k; i++) bh[i] = rnd_half();
            for (int half = 0; half < 2; half++) {
                if (half) dpt_k_half_to_float_ref(bh, bf, (size_t)n * k);
                else fill(bf, (size_t)n * k, -1, 1);
                size_t nf = dpt_k_packed_floats(n, k);
                float *buf = NULL;
                CHECK1(posix_memalign((void **)&buf, 64, sizeof(float) * (nf + 16)) == 0);
                buf[nf] = -7.0f; /* sentinel after the packing */
                dpt_k_packed pk;
                dpt_k_pack(half ? NULL : bf, half ? bh : NULL, n, k, buf, &pk);
                CHECK1(buf[nf] == -7.0f);
                for (int th = 1; th <= 2; th++) {
                    dpt_k_set_threads(th);
                    /* the whole matrix, from the second panel on, and the last panel alone */
                    const int nr = (int)dpt_k_packed_floats(1, 1); /* panel width */
                    const int starts[3] = {0, nr, (n - 1) / nr * nr};
                    for (int si = 0; si < 3; si++) {
                        const int n0 = starts[si];
                        if (n0 >= n) continue;
                        gbuf c1 = gb_new((size_t)m * ldc), c2 = gb_new((size_t)m * ldc);
                        memcpy(c1.p, c0, sizeof(float) * m * ldc);
                        memcpy(c2.p, c0, sizeof(float) * m * ldc);
                        dpt_k_sgemm(1, m, n - n0, k, 0.5f, x, k, bf + (size_t)n0 * k, k, -0.75f,
                                    c1.p, ldc);
                        CHECK1(dpt_k_sgemm_packed(m, n0, n, 0.5f, x, k, &pk, -0.75f, c2.p, ldc) == 0);
                        gb_check(&c2, "sgemm_packed");
                        CHECK(!memcmp(c1.p, c2.p, sizeof(float) * m * ldc),
                              "%s m %d n %d k %d from %d, half %d, %d threads: packed differs",
                              dpt_k_arch_name(a), m, n, k, n0, half, th);
                        gb_free(&c1);
                        gb_free(&c2);
                    }
                }
                /* refusals leave C alone */
                float *c = malloc(sizeof(float) * m * ldc);
                memcpy(c, c0, sizeof(float) * m * ldc);
                if (n > 1) CHECK1(dpt_k_sgemm_packed(m, 1, n, 1.0f, x, k, &pk, 0.0f, c, ldc) == -1);
                dpt_k_packed other = pk;
                other.ukr = &other;
                CHECK1(dpt_k_sgemm_packed(m, 0, n, 1.0f, x, k, &other, 0.0f, c, ldc) == -1);
                CHECK1(!memcmp(c, c0, sizeof(float) * m * ldc));
                free(c);
                free(buf);
            }
            free(x);
            free(bf);
            free(c0);
            free(bh);
        }
    }
}
END_TEST

/* bfloat16 rounding against an independent formula: nearest even by exact arithmetic in double
 * (every float and both candidate bfloat16 values are exact doubles), denormals to zero, NaN
 * stays NaN, values past the largest bfloat16's half-way point to infinity. */
static uint16_t bf16_expected(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (isnan(x)) return 0xffffu; /* any NaN: checked by class below */
    if ((u & 0x7f800000u) == 0) return sign;
    if (isinf(x)) return (uint16_t)(u >> 16);
    uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
    float flo, fhi;
    memcpy(&flo, &lo, 4);
    double dlo = flo, dhi;
    if ((hi & 0x7f800000u) == 0x7f800000u) dhi = (x > 0 ? 1.0 : -1.0) * ldexp(1.0, 128); /* to inf */
    else { memcpy(&fhi, &hi, 4); dhi = fhi; }
    double dx = x, elo = fabs(dx - dlo), ehi = fabs(dhi - dx);
    uint32_t pick = elo < ehi ? lo : ehi < elo ? hi : ((lo >> 16) & 1u) ? hi : lo;
    return (uint16_t)(pick >> 16);
}

START_TEST(bf16_rounding) {
    for (uint64_t i = 0; i < (1ull << 32); i += 9973) { /* every 9973rd bit pattern */
        uint32_t u = (uint32_t)i;
        float x;
        memcpy(&x, &u, 4);
        uint16_t h = dpt_k_bf16_from_float(x), e = bf16_expected(x);
        if (isnan(x)) CHECK(isnan(dpt_k_bf16_to_float(h)), "%08x: NaN lost", u);
        else CHECK(h == e, "%08x: %04x, expected %04x", u, h, e);
    }
    const float ties[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -1.0f - 0x1p-8f, 0x1.fffffep127f, 1e-39f};
    const uint16_t want[] = {0x3f80, 0x3f82, 0xbf80, 0x7f80, 0x0000};
    for (int i = 0; i < 5; i++) CHECK(dpt_k_bf16_from_float(ties[i]) == want[i], "tie %d", i);
}
END_TEST

/* bf16 GEMM (dpt_k_pack_bf16 + dpt_k_sgemm_packed), native (when the CPU has AVX512-BF16) and
 * emulated: against dpt_k_gemm_bf16_ref (the same rounded operands, summed in double) within the
 * float summation bound of the SGEMM tests, so any rounding of an operand that differs from
 * dpt_k_bf16_from_float (an error of 2⁻⁹ relative) fails; against the float32 product within
 * the operands' rounding, (2·2⁻⁹ + 2⁻¹⁸)·|α|·Σ|a·b|, plus the summation bound; bit-identical for 1
 * and 2 threads and for column ranges from a panel boundary. Ties and denormals in A (k = 1,
 * B = 1) come out exactly as the scalar rounding. */
START_TEST(gemm_bf16_packed) {
    static const int S[][3] = {{1, 1, 1}, {7, 17, 33}, {13, 33, 257}, {65, 50, 300}, {12, 1536, 512},
                               {37, 64, 2049}, {333, 512, 512}};
    for (int native = 1; native >= 0; native--) {
        if (dpt_k_set_bf16_native(native) != 0) {
            /* tools/test_aarch64.sh runs this under qemu -cpu max, which has BF16: no silent skip */
            const char *want = getenv("DPT_EXPECT_BF16");
            CHECK(!(want && !strcmp(want, "1")), "no native bf16 kernel, but DPT_EXPECT_BF16=1");
            printf("SKIPPED: test_kernels: gemm_bf16_packed native (no AVX512-BF16 / FEAT_BF16 here: "
                   "emulated kernel only)\n");
            continue;
        }
        CHECK1(dpt_k_bf16_native() == native);
        const int mmla = dpt_k_arch_active() == DPT_K_ARCH_NEON; /* the aarch64 native kernel */
        double worst = 0.0; /* largest |C − ref| / bound seen */
        for (size_t si = 0; si < sizeof S / sizeof S[0]; si++) {
            const int m = S[si][0], n = S[si][1], k = S[si][2], ldc = n + 3;
            float *x = malloc(sizeof(float) * m * k), *bf = malloc(sizeof(float) * n * k),
                  *c0 = malloc(sizeof(float) * m * ldc), *cr = malloc(sizeof(float) * m * ldc),
                  *cf = malloc(sizeof(float) * m * ldc), *c1 = malloc(sizeof(float) * m * ldc);
            fill(x, (size_t)m * k, -1, 1);
            fill(bf, (size_t)n * k, -1, 1);
            fill(c0, (size_t)m * ldc, -1, 1);
            size_t nb = dpt_k_packed_bf16_bytes(n, k);
            unsigned char *buf = NULL;
            CHECK1(posix_memalign((void **)&buf, 64, nb + 64) == 0);
            memset(buf + nb, 0xa5, 64);
            dpt_k_packed pk;
            dpt_k_pack_bf16(bf, NULL, n, k, buf, &pk);
            for (int i = 0; i < 64; i++) CHECK(buf[nb + i] == 0xa5, "packing overran its %zu bytes", nb);
            CHECK1(pk.bf16 == (native ? DPT_K_BF16_NATIVE : DPT_K_BF16_EMULATED));
            const float alpha = 0.5f, beta = -0.75f;
            memcpy(cr, c0, sizeof(float) * m * ldc);
            dpt_k_gemm_bf16_ref(m, n, k, alpha, x, k, bf, k, beta, cr, ldc);
            memcpy(cf, c0, sizeof(float) * m * ldc);
            dpt_k_gemm_ref(1, m, n, k, alpha, x, k, bf, k, beta, cf, ldc);
            for (int th = 1; th <= 2; th++) {
                dpt_k_set_threads(th);
                /* the second panel: 32 columns natively, the float32 micro-kernel's width emulated */
                const int starts[2] = {0, native ? 32 : (int)dpt_k_packed_floats(1, 1)};
                for (int sj = 0; sj < 2; sj++) {
                    const int n0 = starts[sj];
                    if (n0 >= n) continue;
                    gbuf c = gb_new((size_t)m * ldc);
                    memcpy(c.p, c0, sizeof(float) * m * ldc);
                    for (int i = 0; i < m; i++) /* column n0 of C is column 0 of the output */
                        memmove(c.p + (size_t)i * ldc, c0 + (size_t)i * ldc + n0, sizeof(float) * (size_t)(n - n0));
                    CHECK1(dpt_k_sgemm_packed(m, n0, n, alpha, x, k, &pk, beta, c.p, ldc) == 0);
                    gb_check(&c, "gemm_bf16");
                    for (int i = 0; i < m; i++)
                        for (int j = n0; j < n; j++) {
                            double sabs = 0.0, sab = 0.0;
                            for (int p = 0; p < k; p++) {
                                float ar = dpt_k_bf16_to_float(dpt_k_bf16_from_float(x[i * k + p]));
                                float br = dpt_k_bf16_to_float(dpt_k_bf16_from_float(bf[j * k + p]));
                                sabs += fabs((double)ar * br);
                                sab += fabs((double)x[i * k + p] * bf[j * k + p]);
                            }
                            const double cij = c0[i * ldc + j];
                            double sum_bound = 4.0 * (k + 2) * 0x1p-24 *
                                               (fabs(alpha) * sabs + fabs(beta * cij)) + 1e-30;
                            if (native && mmla) { /* BFMMLA, round to odd: gemm_neon_bf16.c */
                                const double nr = ceil(k / 2.0) + 2.0 * ceil(k / 256.0) + 2.0, u = 0x1p-23;
                                sum_bound = nr * u / (1.0 - nr * u) * (fabs(alpha) * sabs + fabs(beta * cij)) +
                                            fabs(alpha) * k * 0x1p-125;
                            }
                            const double got = c.p[i * ldc + j - n0];
                            if (fabs(got - cr[i * ldc + j]) / sum_bound > worst)
                                worst = fabs(got - cr[i * ldc + j]) / sum_bound;
                            CHECK(fabs(got - cr[i * ldc + j]) <= sum_bound,
                                  "native %d m %d n %d k %d (%d, %d): %.9g vs ref %.9g", native, m, n, k, i,
                                  j, got, (double)cr[i * ldc + j]);
                            const double rnd_bound = (2 * 0x1p-9 + 0x1p-18) * fabs(alpha) * sab + sum_bound +
                                                     4.0 * (k + 2) * 0x1p-24 * fabs(alpha) * sab;
                            CHECK(fabs(got - cf[i * ldc + j]) <= rnd_bound,
                                  "native %d m %d n %d k %d (%d, %d): %.9g vs float32 %.9g", native, m, n,
                                  k, i, j, got, (double)cf[i * ldc + j]);
                        }
                    if (th == 1 && n0 == 0) memcpy(c1, c.p, sizeof(float) * m * ldc);
                    if (th == 2 && n0 == 0)
                        CHECK(!memcmp(c1, c.p, sizeof(float) * m * ldc), "native %d m %d n %d k %d: "
                              "2 threads differ from 1", native, m, n, k);
                    gb_free(&c);
                }
            }
            dpt_k_set_threads(1);
            free(buf);
            free(x);
            free(bf);
            free(c0);
            free(cr);
            free(cf);
            free(c1);
        }
        printf("gemm_bf16_packed: %s kernel: largest |C - ref| = %.3f of its bound\n",
               !native ? "emulated" : mmla ? "BFMMLA" : "vdpbf16ps", worst);
        /* ties and denormals in A, B = 1: C is A rounded, exactly */
        float a[12], one[32], c[12 * 32];
        const float special[12] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -1.0f - 0x1p-8f, 1e-39f, -1e-40f,
                                   0.1f, 3.14159f, -2.5e-3f, 65504.0f, 1.0f + 0x1p-9f, 7.0f, -0.0f};
        memcpy(a, special, sizeof a);
        for (int j = 0; j < 32; j++) one[j] = 1.0f;
        unsigned char *buf = NULL;
        CHECK1(posix_memalign((void **)&buf, 64, dpt_k_packed_bf16_bytes(32, 1) + 64) == 0);
        dpt_k_packed pk;
        dpt_k_pack_bf16(one, NULL, 32, 1, buf, &pk);
        CHECK1(dpt_k_sgemm_packed(12, 0, 32, 1.0f, a, 1, &pk, 0.0f, c, 32) == 0);
        for (int i = 0; i < 12; i++)
            for (int j = 0; j < 32; j++)
                CHECK(c[i * 32 + j] == dpt_k_bf16_to_float(dpt_k_bf16_from_float(a[i])),
                      "native %d: A value %a became %a", native, (double)a[i], (double)c[i * 32 + j]);
        free(buf);
    }
    dpt_k_set_bf16_native(1); /* back to the default where there is one */
}
END_TEST

/* DPT_EXPECT_INT8 (tools/test_aarch64.sh): the int8 kernel a CPU must get by default — I8MM (qemu
 * max), SDOT (cortex-a76), portable (cortex-a53). 1 if kernel `name` must then be there: it is the
 * expected one or below it in I8MM > SDOT > portable. */
static int int8_required(const char *name) {
    static const char *const order[] = {"I8MM", "SDOT", "portable"};
    const char *want = getenv("DPT_EXPECT_INT8");
    int wi = -1, ni = -1;
    for (int i = 0; i < 3; i++) {
        if (want && !strcmp(want, order[i])) wi = i;
        if (!strcmp(name, order[i])) ni = i;
    }
    return wi >= 0 && ni >= wi;
}

static const char *const int8_kernels[] = {"AVX512-VNNI", "I8MM", "SDOT", "portable"};

/* int8 GEMM (dpt_k_pack_int8 + dpt_k_sgemm_packed), every kernel this CPU has (AVX512-VNNI; I8MM,
 * SDOT; portable): bit-identical to dpt_k_gemm_int8_ref (integer sums are exact and every path scales
 * them by the same float32 operations), to each other, for 1 and 2 threads and for column ranges
 * from a panel boundary; against the float32 product within the quantisation error:
 *   |α|·Σ_p (|a_p|·δb + |b_p|·δa + δa·δb) + 8·2⁻²⁴·(|α|·Σ|a·b| + |β·c|),
 * δa = 1.5·sa + 2⁻²²·|a_p| (half a step, one more where the zero point's rounding clamps at 255,
 * and the reciprocal's rounding), δb = 0.5·sb + 2⁻²²·|b_p| (sa = row range / 255, sb = column
 * max / 127). A hand-quantised row checks the rounding rule (ties to even) and the zero point. */
START_TEST(gemm_int8_packed) {
    static const int S[][3] = {{1, 1, 1}, {7, 17, 33}, {13, 33, 257}, {65, 50, 300}, {12, 1536, 512},
                               {37, 64, 2049}, {333, 512, 512}, {5, 40, 3}};
    float *first[sizeof S / sizeof S[0]] = {0};
    const char *first_kernel = NULL; /* the kernel whose results the others are compared with */
    for (size_t ki = 0; ki < sizeof int8_kernels / sizeof int8_kernels[0]; ki++) {
        const char *kname = int8_kernels[ki];
        if (dpt_k_set_int8_kernel(kname) != 0) {
            CHECK(!int8_required(kname), "no %s int8 kernel, but DPT_EXPECT_INT8=%s", kname,
                  getenv("DPT_EXPECT_INT8"));
            printf("gemm_int8_packed: no %s kernel in this build or CPU\n", kname);
            continue;
        }
        CHECK(!strcmp(dpt_k_int8_kernel(), kname), "asked for %s, got %s", kname, dpt_k_int8_kernel());
        if (!first_kernel) first_kernel = kname;
        const int native = strcmp(kname, "portable") != 0;
        CHECK1(dpt_k_int8_native() == native);
        for (size_t si = 0; si < sizeof S / sizeof S[0]; si++) {
            const int m = S[si][0], n = S[si][1], k = S[si][2], ldc = n + 3;
            float *x = malloc(sizeof(float) * m * k), *bf = malloc(sizeof(float) * n * k),
                  *c0 = malloc(sizeof(float) * m * ldc), *cr = malloc(sizeof(float) * m * ldc),
                  *cf = malloc(sizeof(float) * m * ldc);
            rng_state = 0x9E3779B97F4A7C15ull + si; /* the same operands for both kernels */
            fill(x, (size_t)m * k, -1, 1.5f); /* skewed: a zero point other than the middle */
            for (int i = 0; i < m; i++) x[(size_t)i * k + (i % k)] *= (float)(1 + i % 5); /* row ranges differ */
            fill(bf, (size_t)n * k, -1, 1);
            fill(c0, (size_t)m * ldc, -1, 1);
            size_t nb = dpt_k_packed_int8_bytes(n, k);
            unsigned char *buf = NULL;
            CHECK1(posix_memalign((void **)&buf, 64, nb + 64) == 0);
            memset(buf + nb, 0xa5, 64);
            dpt_k_packed pk;
            CHECK1(dpt_k_pack_int8(bf, NULL, n, k, buf, &pk) == 0);
            for (int i = 0; i < 64; i++) CHECK(buf[nb + i] == 0xa5, "packing overran its %zu bytes", nb);
            CHECK1(pk.int8 == 1);
            const float alpha = 0.5f, beta = -0.75f;
            memcpy(cr, c0, sizeof(float) * m * ldc);
            dpt_k_gemm_int8_ref(m, n, k, alpha, x, k, &pk, 0, beta, cr, ldc);
            memcpy(cf, c0, sizeof(float) * m * ldc);
            dpt_k_gemm_ref(1, m, n, k, alpha, x, k, bf, k, beta, cf, ldc);
            for (int i = 0; i < m; i++) { /* the quantisation bound against float32 */
                float lo = 0, hi = 0;
                for (int p = 0; p < k; p++) {
                    lo = fminf(lo, x[i * k + p]);
                    hi = fmaxf(hi, x[i * k + p]);
                }
                const double sa = (hi - lo) / 255.0;
                for (int j = 0; j < n; j++) {
                    float mx = 0;
                    for (int p = 0; p < k; p++) mx = fmaxf(mx, fabsf(bf[j * k + p]));
                    const double sb = mx / 127.0;
                    double e = 0.0, sab = 0.0;
                    for (int p = 0; p < k; p++) {
                        const double a = fabs(x[i * k + p]), b = fabs(bf[j * k + p]);
                        const double da = 1.5 * sa + 0x1p-22 * a, db = 0.5 * sb + 0x1p-22 * b;
                        e += a * db + b * da + da * db;
                        sab += a * b;
                    }
                    const double bound = fabs(alpha) * e + 8 * 0x1p-24 * (fabs(alpha) * sab + fabs(beta * c0[i * ldc + j])) + 1e-30;
                    CHECK(fabs((double)cr[i * ldc + j] - cf[i * ldc + j]) <= bound,
                          "m %d n %d k %d (%d, %d): int8 %.9g vs float32 %.9g, bound %.3g", m, n, k, i, j,
                          (double)cr[i * ldc + j], (double)cf[i * ldc + j], bound);
                }
            }
            for (int th = 1; th <= 2; th++) {
                dpt_k_set_threads(th);
                for (int n0 = 0; n0 < n && n0 <= 32; n0 += 32) {
                    gbuf c = gb_new((size_t)m * ldc);
                    for (int i = 0; i < m; i++) /* column n0 of C is column 0 of the output */
                        memcpy(c.p + (size_t)i * ldc, c0 + (size_t)i * ldc + n0, sizeof(float) * (size_t)(ldc - n0));
                    CHECK1(dpt_k_sgemm_packed(m, n0, n, alpha, x, k, &pk, beta, c.p, ldc) == 0);
                    gb_check(&c, "gemm_int8");
                    for (int i = 0; i < m; i++)
                        for (int j = n0; j < n; j++) {
                            const float got = c.p[i * ldc + j - n0], want = cr[i * ldc + j];
                            CHECK(!memcmp(&got, &want, 4), "%s threads %d m %d n %d k %d (%d, %d): %.9g vs "
                                  "ref %.9g", kname, th, m, n, k, i, j, (double)got, (double)want);
                        }
                    if (n0 == 0 && th == 1) {
                        if (!first[si]) {
                            first[si] = malloc(sizeof(float) * m * ldc);
                            memcpy(first[si], c.p, sizeof(float) * m * ldc);
                        } else {
                            for (int i = 0; i < m; i++)
                                CHECK(!memcmp(first[si] + (size_t)i * ldc, c.p + (size_t)i * ldc, sizeof(float) * n),
                                      "m %d n %d k %d: kernel %s differs from %s", m, n, k, kname, first_kernel);
                        }
                    }
                    gb_free(&c);
                }
            }
            dpt_k_set_threads(1);
            free(buf);
            free(x);
            free(bf);
            free(c0);
            free(cr);
            free(cf);
        }
        /* a hand-quantised row: [-1, 0, 0.5, 2] has range 3, scale 3/255, zero point 85; the
         * levels are -85, 0, 42 (42.5: the tie goes to even) and 170; B one-hot columns (weight 1:
         * level 127, scale 1/127) read them back one by one */
        const float row[4] = {-1.0f, 0.0f, 0.5f, 2.0f}, eye[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
        const int levels[4] = {-85, 0, 42, 170};
        unsigned char *buf = NULL;
        CHECK1(posix_memalign((void **)&buf, 64, dpt_k_packed_int8_bytes(4, 4)) == 0);
        dpt_k_packed pk;
        CHECK1(dpt_k_pack_int8(eye, NULL, 4, 4, buf, &pk) == 0);
        float c[4];
        CHECK1(dpt_k_sgemm_packed(1, 0, 4, 1.0f, row, 4, &pk, 0.0f, c, 4) == 0);
        for (int j = 0; j < 4; j++)
            CHECK(fabs(c[j] - levels[j] * (3.0 / 255.0)) <= 1e-6, "%s: element %d became %.9g, want level %d",
                  kname, j, (double)c[j], levels[j]);
        free(buf);
    }
    for (size_t si = 0; si < sizeof S / sizeof S[0]; si++) free(first[si]);
    float one = 1.0f;
    dpt_k_packed pk;
    CHECK1(dpt_k_pack_int8(&one, NULL, 1, DPT_K_INT8_MAX_K + 1, NULL, &pk) == -1); /* sums could overflow */
    dpt_k_set_int8_native(1); /* back to the default where there is one */
}
END_TEST

/* Which int8 kernel a CPU gets by default: DPT_EXPECT_INT8's (int8_required), and a kernel above
 * it in I8MM > SDOT > portable is refused (qemu's cortex-a76 has dotprod, not i8mm; cortex-a53
 * neither). Unset: whatever this CPU has is reported. */
START_TEST(int8_native_detection) {
    const char *want = getenv("DPT_EXPECT_INT8");
    printf("int8 kernel by default here: %s\n", dpt_k_int8_kernel());
    if (!want) return;
    CHECK(!strcmp(dpt_k_int8_kernel(), want), "DPT_EXPECT_INT8=%s but the default kernel is %s", want,
          dpt_k_int8_kernel());
    for (size_t ki = 0; ki < sizeof int8_kernels / sizeof int8_kernels[0]; ki++)
        if (!int8_required(int8_kernels[ki]))
            CHECK(dpt_k_set_int8_kernel(int8_kernels[ki]) == -1, "DPT_EXPECT_INT8=%s but %s is there", want,
                  int8_kernels[ki]);
    dpt_k_set_int8_native(1);
}
END_TEST

/* Which bf16 kind a CPU gets: DPT_EXPECT_BF16=1 (qemu -cpu max) requires the native kernel to be
 * chosen by default, DPT_EXPECT_BF16=0 (qemu -cpu cortex-a76, no FEAT_BF16) requires the fallback:
 * dpt_k_set_bf16_native(1) refused, packings emulated, results still within the bounds of
 * gemm_bf16_packed (run in the same process). Unset: whatever this CPU has is reported. */
START_TEST(bf16_native_detection) {
    const char *want = getenv("DPT_EXPECT_BF16");
    const int have = dpt_k_bf16_native();
    printf("bf16 kind by default here: %s\n", have ? "native" : "emulated");
    if (want) CHECK(have == (want[0] == '1'), "DPT_EXPECT_BF16=%s but the default kind is %s", want,
                    have ? "native" : "emulated");
    if (!have) {
        if (want && want[0] == '0') CHECK1(dpt_k_set_bf16_native(1) == -1);
        float b[8 * 4] = {0};
        unsigned char *buf = NULL;
        CHECK1(posix_memalign((void **)&buf, 64, dpt_k_packed_bf16_bytes(8, 4) + 64) == 0);
        dpt_k_packed pk;
        dpt_k_pack_bf16(b, NULL, 8, 4, buf, &pk);
        CHECK1(pk.bf16 == DPT_K_BF16_EMULATED);
        free(buf);
    }
}
END_TEST

/* half value of h with the overflow threshold's convention: the infinity counts as 65536 */
static double half_val_inf(uint16_t h) {
    if ((h & 0x7fffu) == 0x7c00u) return h & 0x8000u ? -65536.0 : 65536.0;
    float v;
    dpt_k_half_to_float_ref(&h, &v, 1);
    return v;
}

/* float → half rounding: every half comes back exactly; every 9973rd float goes to a nearest half
 * (no neighbour closer, ties to the even one, the sign kept), 65520 and above to infinity, NaN to
 * NaN. */
START_TEST(half_rounding) {
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t hh = (uint16_t)h;
        float v;
        dpt_k_half_to_float_ref(&hh, &v, 1);
        if (isnan(v)) CHECK(((dpt_k_half_from_float(v) & 0x7c00u) == 0x7c00u) && (dpt_k_half_from_float(v) & 0x3ffu),
                            "%04x: NaN lost", h);
        else CHECK(dpt_k_half_from_float(v) == hh, "%04x does not come back: %04x", h, dpt_k_half_from_float(v));
    }
    for (uint64_t i = 0; i < (1ull << 32); i += 9973) {
        uint32_t u = (uint32_t)i;
        float x;
        memcpy(&x, &u, 4);
        const uint16_t h = dpt_k_half_from_float(x);
        if (isnan(x)) {
            CHECK((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu), "%08x: NaN lost (%04x)", u, h);
            continue;
        }
        CHECK((h & 0x8000u) == ((u >> 16) & 0x8000u), "%08x: sign lost", u);
        const uint16_t hm = h & 0x7fffu;
        if (fabsf(x) >= 65520.0f) {
            CHECK(hm == 0x7c00u, "%08x (%g): %04x, expected infinity", u, (double)x, h);
            continue;
        }
        CHECK(hm < 0x7c00u, "%08x (%g): overflowed", u, (double)x);
        const double d0 = fabs((double)x - half_val_inf(h));
        if (hm > 0) {
            const double dl = fabs((double)x - half_val_inf((uint16_t)(h - 1)));
            CHECK(dl > d0 || (dl == d0 && !(h & 1u)), "%08x: %04x, its lower neighbour is nearer", u, h);
        }
        const double dh = fabs((double)x - half_val_inf((uint16_t)(h + 1)));
        CHECK(dh > d0 || (dh == d0 && !(h & 1u)), "%08x: %04x, its upper neighbour is nearer", u, h);
    }
}
END_TEST

/* f16 weights (dpt_k_pack_f16 + dpt_k_sgemm_packed), native (aarch64: half panels, FCVTL) and
 * emulated: bit-identical to dpt_k_sgemm on the weights rounded to half beforehand (the float32
 * kernel's multiply-adds in its order), from float and from half weights, for 1 and 2 threads
 * and for column ranges from a panel boundary; against the unrounded float32 product within the
 * weights' rounding, 2⁻¹¹·|α|·Σ|a·b|, plus twice the float32 summation bound. */
START_TEST(gemm_f16_packed) {
    static const int S[][3] = {{1, 1, 1}, {7, 17, 33}, {13, 33, 257}, {65, 50, 300}, {12, 1536, 512},
                               {37, 64, 2049}, {333, 512, 512}};
    for (int native = 1; native >= 0; native--) {
        if (dpt_k_set_f16_native(native) != 0) {
            const char *want = getenv("DPT_EXPECT_F16");
            CHECK(!(want && !strcmp(want, "1")), "no native f16 kernel, but DPT_EXPECT_F16=1");
            printf("gemm_f16_packed: no native f16 kernel in this build (aarch64 only): emulated kernel\n");
            continue;
        }
        CHECK1(dpt_k_f16_native() == native);
        for (size_t si = 0; si < sizeof S / sizeof S[0]; si++) {
            const int m = S[si][0], n = S[si][1], k = S[si][2], ldc = n + 3;
            float *x = malloc(sizeof(float) * m * k), *bf = malloc(sizeof(float) * n * k),
                  *br = malloc(sizeof(float) * n * k), *c0 = malloc(sizeof(float) * m * ldc),
                  *cf = malloc(sizeof(float) * m * ldc);
            uint16_t *bh = malloc(sizeof(uint16_t) * n * k);
            fill(x, (size_t)m * k, -1, 1);
            fill(bf, (size_t)n * k, -1, 1);
            fill(c0, (size_t)m * ldc, -1, 1);
            for (int i = 0; i < n * k; i++) bh[i] = dpt_k_half_from_float(bf[i]);
            dpt_k_half_to_float_ref(bh, br, (size_t)n * k);
            const float alpha = 0.5f, beta = -0.75f;
            memcpy(cf, c0, sizeof(float) * m * ldc);
            dpt_k_gemm_ref(1, m, n, k, alpha, x, k, bf, k, beta, cf, ldc);
            for (int half = 0; half < 2; half++) {
                size_t nb = dpt_k_packed_f16_bytes(n, k);
                unsigned char *buf = NULL;
                CHECK1(posix_memalign((void **)&buf, 64, nb + 64) == 0);
                memset(buf + nb, 0xa5, 64);
                dpt_k_packed pk;
                dpt_k_pack_f16(half ? NULL : bf, half ? bh : NULL, n, k, buf, &pk);
                for (int i = 0; i < 64; i++) CHECK(buf[nb + i] == 0xa5, "packing overran its %zu bytes", nb);
                CHECK1(pk.bf16 == (native ? DPT_K_F16_NATIVE : DPT_K_F16_EMULATED));
                if (native) CHECK(nb <= (size_t)(n + 11) / 12 * 12 * k * 2 + 4, "native f16 packing of %zu bytes", nb);
                const int nr = (int)dpt_k_packed_floats(1, 1);
                for (int th = 1; th <= 2; th++) {
                    dpt_k_set_threads(th);
                    const int starts[2] = {0, nr};
                    for (int sj = 0; sj < 2; sj++) {
                        const int n0 = starts[sj];
                        if (n0 >= n) continue;
                        gbuf c1 = gb_new((size_t)m * ldc), c2 = gb_new((size_t)m * ldc);
                        memcpy(c1.p, c0, sizeof(float) * m * ldc);
                        memcpy(c2.p, c0, sizeof(float) * m * ldc);
                        dpt_k_sgemm(1, m, n - n0, k, alpha, x, k, br + (size_t)n0 * k, k, beta, c1.p, ldc);
                        CHECK1(dpt_k_sgemm_packed(m, n0, n, alpha, x, k, &pk, beta, c2.p, ldc) == 0);
                        gb_check(&c2, "gemm_f16");
                        CHECK(!memcmp(c1.p, c2.p, sizeof(float) * m * ldc),
                              "native %d m %d n %d k %d from %d, half %d, %d threads: differs from the "
                              "float32 kernel on the rounded weights", native, m, n, k, n0, half, th);
                        if (n0 == 0 && th == 1 && !half)
                            for (int i = 0; i < m; i++)
                                for (int j = 0; j < n; j++) {
                                    double sab = 0.0;
                                    for (int p = 0; p < k; p++) sab += fabs((double)x[i * k + p] * bf[j * k + p]);
                                    const double cij = c0[i * ldc + j];
                                    const double tol = 0x1p-11 * fabs(alpha) * sab +
                                                       2 * 4.0 * (k + 2) * 0x1p-24 * (fabs(alpha) * sab + fabs(beta * cij)) + 1e-30;
                                    CHECK(fabs(c2.p[i * ldc + j] - cf[i * ldc + j]) <= tol,
                                          "native %d m %d n %d k %d (%d, %d): %.9g vs float32 %.9g", native, m, n,
                                          k, i, j, (double)c2.p[i * ldc + j], (double)cf[i * ldc + j]);
                                }
                        gb_free(&c1);
                        gb_free(&c2);
                    }
                }
                dpt_k_set_threads(1);
                free(buf);
            }
            free(x);
            free(bf);
            free(br);
            free(c0);
            free(cf);
            free(bh);
        }
    }
    dpt_k_set_f16_native(1);
}
END_TEST

/* Own SGEMM vs the build's BLAS (when there is one) on the models' shapes. */
START_TEST(sgemm_vs_blas) {
    if (!dpt_k_have_blas()) return;
    static const int S[][3] = {{333, 512, 512}, {111, 2048, 512}, {500, 768, 768}};
    dpt_k_set_threads(2);
    FOR_EACH_ARCH(a) {
        for (size_t s = 0; s < sizeof S / sizeof S[0]; s++) {
            int m = S[s][0], n = S[s][1], k = S[s][2];
            float *x = malloc(sizeof(float) * m * k), *w = malloc(sizeof(float) * n * k);
            float *c1 = malloc(sizeof(float) * m * n), *c2 = malloc(sizeof(float) * m * n);
            fill(x, (size_t)m * k, -1, 1);
            fill(w, (size_t)n * k, -1, 1);
            dpt_k_sgemm(1, m, n, k, 1.0f, x, k, w, k, 0.0f, c1, n);
            dpt_k_gemm_nt(m, n, k, 1.0f, x, k, w, k, 0.0f, c2, n);
            double max = 0;
            for (size_t i = 0; i < (size_t)m * n; i++) max = fmax(max, fabs(c1[i] - c2[i]));
            /* |entries| ≲ √k/3 ≈ 9; both within the bound above (≈ 1e-4 here) of the exact */
            CHECK(max <= 2e-4, "%s own vs BLAS %dx%dx%d: max diff %g", dpt_k_arch_name(a),
                          m, n, k, max);
            free(x);
            free(w);
            free(c1);
            free(c2);
        }
    }
}
END_TEST

/* ---- attention ------------------------------------------------------------------------------ */

START_TEST(attention_vs_naive) {
    const int nq = 19, nk = 23, dh = 17, ld = 40;
    float *q = malloc(sizeof(float) * nq * ld), *k = malloc(sizeof(float) * nk * ld),
          *v = malloc(sizeof(float) * nk * ld), *mask = malloc(sizeof(float) * nq * nk),
          *scr = malloc(sizeof(float) * nq * nk);
    fill(q, (size_t)nq * ld, -1, 1);
    fill(k, (size_t)nk * ld, -1, 1);
    fill(v, (size_t)nk * ld, -1, 1);
    for (int i = 0; i < nq * nk; i++) mask[i] = (i % 5 == 0) ? 1.0f : 0.0f;
    FOR_EACH_ARCH(a) {
        for (int use_mask = 0; use_mask < 2; use_mask++) {
            gbuf out = gb_new((size_t)nq * ld);
            dpt_k_attention(q, ld, k, ld, v, ld, nq, nk, dh, 0.25f, use_mask ? mask : NULL,
                            out.p, ld, scr);
            gb_check(&out, "attention");
            for (int i = 0; i < nq; i++) {
                double s[64], mx = -INFINITY, sum = 0;
                for (int j = 0; j < nk; j++) {
                    double d = 0;
                    for (int p = 0; p < dh; p++) d += (double)q[i * ld + p] * k[j * ld + p];
                    s[j] = use_mask && mask[i * nk + j] != 0.0f ? -INFINITY : 0.25 * d;
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < nk; j++) sum += (s[j] = exp(s[j] - mx));
                for (int p = 0; p < dh; p++) {
                    double o = 0;
                    for (int j = 0; j < nk; j++) o += s[j] / sum * v[j * ld + p];
                    CHECK(fabs(out.p[i * ld + p] - o) <= 2e-6, "%s attention [%d,%d]",
                                  dpt_k_arch_name(a), i, p);
                }
            }
            gb_free(&out);
        }
    }
    free(q);
    free(k);
    free(v);
    free(mask);
    free(scr);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, arch_selection);
    tcase_add_test(tc, arch_env_override);
    tcase_add_test(tc, threads_setting);
    tcase_add_test(tc, erf_accuracy);
    tcase_add_test(tc, exp_accuracy);
    tcase_add_test(tc, gelu_vs_ref);
    tcase_add_test(tc, add_vs_ref);
    tcase_add_test(tc, layernorm_vs_ref);
    tcase_add_test(tc, softmax_vs_ref);
    tcase_add_test(tc, sgemm_small_shapes);
    tcase_add_test(tc, sgemm_blocked_shapes);
    tcase_add_test(tc, sgemm_degenerate);
    tcase_add_test(tc, sgemm_threads_deterministic);
    tcase_add_test(tc, sgemm_concurrent_callers);
    /* qemu-user cannot start threads in a child forked from a multi-threaded guest (it aborts
     * in its own TCG code: "cpu == current_cpu"), so under emulation (tools/test_aarch64.sh sets
     * DPT_UNDER_QEMU) this check is left out and reported as skipped, never as passed. */
    if (getenv("DPT_UNDER_QEMU")) {
        printf("SKIPPED: test_kernels: sgemm_after_fork (qemu-user cannot create threads in a forked "
               "child of a multi-threaded process)\n");
        fflush(stdout); /* before Check forks: the children must not print it again */
    } else {
        tcase_add_test(tc, sgemm_after_fork);
    }
    tcase_add_test(tc, gemm_dispatch_and_linear);
    tcase_add_test(tc, sgemm_vs_blas);
    tcase_add_test(tc, attention_vs_naive);
    tcase_add_test(tc, half_to_float_all_values);
    tcase_add_test(tc, sgemm_half_b);
    tcase_add_test(tc, parallel_regions);
    tcase_add_test(tc, sgemm_prepacked);
    tcase_add_test(tc, bf16_rounding);
    tcase_add_test(tc, gemm_bf16_packed);
    tcase_add_test(tc, gemm_int8_packed);
    tcase_add_test(tc, bf16_native_detection);
    tcase_add_test(tc, int8_native_detection);
    tcase_add_test(tc, half_rounding);
    tcase_add_test(tc, gemm_f16_packed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return dpt_check_run(suite());
}
