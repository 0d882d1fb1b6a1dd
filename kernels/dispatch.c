/* Run-time selection of the kernel variants: CPU detection, the DPT_ARCH override, the element-wise
 * entry points of kernels.h that call the active table, and the native-or-fallback selector of the
 * reduced-precision kernels (dpt_k_choice). Calls only the variant tables (ref.c, avx2.c, neon.c):
 * the GEMM drivers and the composite ops (ops.c) sit above it. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "kernels.h"


/* ---- architecture --------------------------------------------------------------------------- */

static const dpt_k_ops *ops_of(dpt_k_arch arch) {
    switch (arch) {
    case DPT_K_ARCH_SCALAR: return &dpt_k_ops_scalar;
#ifdef DPT_K_HAVE_AVX2_BUILD
    case DPT_K_ARCH_AVX2: return &dpt_k_ops_avx2;
#endif
#ifdef DPT_K_HAVE_NEON_BUILD
    case DPT_K_ARCH_NEON: return &dpt_k_ops_neon;
#endif
    default: return NULL;
    }
}

#if defined(DPT_K_HAVE_AVX2_BUILD) && defined(__GNUC__)
#include <cpuid.h>
/* CPUID.1:ECX.F16C (clang's __builtin_cpu_supports does not know "f16c") */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

int dpt_k_arch_supported(dpt_k_arch arch) {
    switch (arch) {
    case DPT_K_ARCH_SCALAR: return 1;
#ifdef DPT_K_HAVE_AVX2_BUILD
    case DPT_K_ARCH_AVX2:
#if defined(__GNUC__)
        /* libgcc's checks include the OS's YMM state support (XCR0) */
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
        return 0;
#endif
#endif
#ifdef DPT_K_HAVE_NEON_BUILD
    case DPT_K_ARCH_NEON: return 1; /* baseline on aarch64 */
#endif
    default: return 0;
    }
}

const char *dpt_k_arch_name(dpt_k_arch arch) {
    switch (arch) {
    case DPT_K_ARCH_SCALAR: return "scalar";
    case DPT_K_ARCH_AVX2: return "avx2";
    case DPT_K_ARCH_NEON: return "neon";
    default: return NULL;
    }
}

static dpt_k_arch best_arch(void) {
    if (dpt_k_arch_supported(DPT_K_ARCH_AVX2)) return DPT_K_ARCH_AVX2;
    if (dpt_k_arch_supported(DPT_K_ARCH_NEON)) return DPT_K_ARCH_NEON;
    return DPT_K_ARCH_SCALAR;
}

static _Atomic(const dpt_k_ops *) g_ops;

static const dpt_k_ops *initial_ops(void) {
    dpt_k_arch arch = best_arch();
    const char *env = getenv("DPT_ARCH");
    if (env && *env) {
        for (int a = 0; a < DPT_K_N_ARCH; a++)
            if (!strcmp(env, dpt_k_arch_name((dpt_k_arch)a)) &&
                dpt_k_arch_supported((dpt_k_arch)a))
                arch = (dpt_k_arch)a;
    }
    return ops_of(arch);
}

const dpt_k_ops *dpt_k_ops_active(void) {
    const dpt_k_ops *o = atomic_load_explicit(&g_ops, memory_order_acquire);
    if (o) return o;
    const dpt_k_ops *want = initial_ops();
    const dpt_k_ops *expected = NULL;
    /* a concurrent first call computes the same table; keep whichever was stored first */
    if (!atomic_compare_exchange_strong(&g_ops, &expected, want)) return expected;
    return want;
}

dpt_k_arch dpt_k_arch_active(void) { return dpt_k_ops_active()->arch; }

int dpt_k_set_arch(dpt_k_arch arch) {
    if (!dpt_k_arch_supported(arch)) return -1;
    const dpt_k_ops *o = ops_of(arch);
    if (!o) return -1;
    atomic_store_explicit(&g_ops, o, memory_order_release);
    return 0;
}

/* ---- dispatched kernels --------------------------------------------------------------------- */

void dpt_k_gelu(float *x, size_t n) { dpt_k_ops_active()->gelu(x, n); }

void dpt_k_layernorm(float *x, int rows, int cols, const float *gamma, const float *beta,
                     float eps) {
    dpt_k_ops_active()->layernorm(x, rows, cols, gamma, beta, eps);
}

void dpt_k_add_layernorm(float *x, const float *r, int rows, int cols, const float *gamma,
                         const float *beta, float eps) {
    dpt_k_ops_active()->add_layernorm(x, r, rows, cols, gamma, beta, eps);
}

void dpt_k_add(float *y, const float *x, size_t n) { dpt_k_ops_active()->add(y, x, n); }

void dpt_k_softmax(float *x, int rows, int cols) { dpt_k_ops_active()->softmax(x, rows, cols); }

void dpt_k_erf(const float *x, float *y, size_t n) { dpt_k_ops_active()->erf(x, y, n); }

void dpt_k_exp(const float *x, float *y, size_t n) { dpt_k_ops_active()->exp(x, y, n); }

void dpt_k_half_to_float(const uint16_t *src, float *dst, size_t n) {
    dpt_k_ops_active()->half_to_float(src, dst, n);
}

/* ---- reduced-precision kernel choice ------------------------------------------------------- */

/* the arch whose float32 tables the native reduced-precision kernels belong with */
static int native_arch_active(void) {
#if defined(DPT_K_HAVE_AVX2_BUILD)
    return dpt_k_arch_active() == DPT_K_ARCH_AVX2;
#elif defined(DPT_K_HAVE_NEON_BUILD)
    return dpt_k_arch_active() == DPT_K_ARCH_NEON;
#else
    return 0;
#endif
}

int dpt_k_choice_get(dpt_k_choice *c) {
    int m = atomic_load(&c->mode);
    if (m) return m;
    const char *env = getenv(c->env);
    m = c->available() && native_arch_active() && !(env && !strcmp(env, c->off)) ? c->native : c->fallback;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&c->mode, &expected, m)) return expected;
    return m;
}

int dpt_k_choice_set(dpt_k_choice *c, int on) {
    if (on && !c->available()) return -1;
    atomic_store(&c->mode, on ? c->native : c->fallback);
    return 0;
}
