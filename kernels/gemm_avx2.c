/* AVX2+FMA SGEMM micro-kernel, register tile 6 × 16 (x86-64; built with -mavx2 -mfma, called only
 * after dispatch.c checked the CPU). Per depth step: 2 loads of B (16 floats), 6 broadcasts of A,
 * 12 FMAs into 12 ymm accumulators — enough independent chains to cover the FMA latency on two
 * FMA ports; 15 of the 16 ymm registers in use. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_AVX2_BUILD

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "kernels/gemm_avx2.c must be compiled with -mavx2 -mfma -mf16c (see the Makefile)"
#endif

#include <immintrin.h>

#define MR 6
#define NR 16

/* C tile (mr ≤ 6, nr ≤ 16) [ldc] = alpha · Ap (kc × 6) · Bp (kc × 16) + beta · C */
static void ukr_6x16(int kc, const float *ap, const float *bp, float *c, int ldc, int mr, int nr,
                     float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define STEP(p)                                                                                    \
    do {                                                                                           \
        __m256 b0 = _mm256_load_ps(bp + (p) * NR), b1 = _mm256_load_ps(bp + (p) * NR + 8), a;    \
        a = _mm256_broadcast_ss(ap + (p) * MR + 0);                                                \
        c00 = _mm256_fmadd_ps(a, b0, c00);                                                         \
        c01 = _mm256_fmadd_ps(a, b1, c01);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 1);                                                \
        c10 = _mm256_fmadd_ps(a, b0, c10);                                                         \
        c11 = _mm256_fmadd_ps(a, b1, c11);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 2);                                                \
        c20 = _mm256_fmadd_ps(a, b0, c20);                                                         \
        c21 = _mm256_fmadd_ps(a, b1, c21);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 3);                                                \
        c30 = _mm256_fmadd_ps(a, b0, c30);                                                         \
        c31 = _mm256_fmadd_ps(a, b1, c31);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 4);                                                \
        c40 = _mm256_fmadd_ps(a, b0, c40);                                                         \
        c41 = _mm256_fmadd_ps(a, b1, c41);                                                         \
        a = _mm256_broadcast_ss(ap + (p) * MR + 5);                                                \
        c50 = _mm256_fmadd_ps(a, b0, c50);                                                         \
        c51 = _mm256_fmadd_ps(a, b1, c51);                                                         \
    } while (0)
    /* the C tile is needed only at the end: fetch it now (both lines of each 16-float row);
     * the Bp panel stays in L1, the Ap panel streams from L2: fetch it 8 steps ahead */
    for (int i = 0; i < MR; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 15), _MM_HINT_T0);
    }
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        _mm_prefetch((const char *)(ap + 8 * 4 * MR), _MM_HINT_T0);
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
        ap += 4 * MR;
        bp += 4 * NR;
    }
    for (; p < kc; p++) {
        STEP(0);
        ap += MR;
        bp += NR;
    }
#undef STEP
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc;
            __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        }
        return;
    }
    _Alignas(32) float t[MR][NR];
    for (int i = 0; i < MR; i++) {
        _mm256_store_ps(t[i], _mm256_mul_ps(va, acc[i][0]));
        _mm256_store_ps(t[i] + 8, _mm256_mul_ps(va, acc[i][1]));
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < nr; j++) ci[j] = t[i][j];
        else
            for (int j = 0; j < nr; j++) ci[j] = t[i][j] + beta * ci[j];
    }
}

/* 8 × 8 transpose in registers: r[j] holds row j on entry, column j on exit. */
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* One full 16-row panel of Bᵀ: 8 depths × 8 rows at a time through a register transpose (the
 * scalar gather this replaces was a fifth of the denoiser's time); halves converted on load. */
static void pack_bt_16(const float *b, const uint16_t *bh, int ldb, int kc, float *bp) {
    int p = 0;
    for (; p + 8 <= kc; p += 8) {
        for (int half = 0; half < 2; half++) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) {
                size_t o = (size_t)(8 * half + j) * ldb + p;
                /* 16 strided streams: fetch each row 4 lines ahead (the prefetchers do not) */
                if (bh)
                    _mm_prefetch((const char *)(bh + o + 128), _MM_HINT_T0);
                else
                    _mm_prefetch((const char *)(b + o + 64), _MM_HINT_T0);
                r[j] = bh ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(bh + o)))
                          : _mm256_loadu_ps(b + o);
            }
            transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_store_ps(bp + (size_t)(p + q) * NR + 8 * half, r[q]);
        }
    }
    for (; p < kc; p++)
        for (int j = 0; j < NR; j++) {
            size_t o = (size_t)j * ldb + p;
            if (bh)
                dpt_k_half_to_float_ref(bh + o, bp + (size_t)p * NR + j, 1);
            else
                bp[(size_t)p * NR + j] = b[o];
        }
}

/* One full 6-row A panel: 8 depths at a time, rows padded to 8 for the register transpose, 6 floats
 * stored per depth (4 + 2: nothing is written past the panel). */
static void pack_a_6(const float *a, int lda, int kc, float *ap) {
    int p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int i = 0; i < MR; i++) r[i] = _mm256_loadu_ps(a + (size_t)i * lda + p);
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8(r);
        for (int q = 0; q < 8; q++) {
            float *d = ap + (size_t)(p + q) * MR;
            _mm_storeu_ps(d, _mm256_castps256_ps128(r[q]));
            _mm_storel_pi((__m64 *)(void *)(d + 4), _mm256_extractf128_ps(r[q], 1));
        }
    }
    for (; p < kc; p++)
        for (int i = 0; i < MR; i++) ap[(size_t)p * MR + i] = a[(size_t)i * lda + p];
}

/* mc 168 = 28 tiles: Ap 168·256·4 B = 168 KB (L2); kc 256: one Bp panel 16 KB (L1);
 * nc 4080: Bp ≤ 4 MB (L3). */
const dpt_k_ukr dpt_k_ukr_avx2 = {MR, NR, 168, 256, 4080, ukr_6x16, pack_bt_16, pack_a_6};

#else
typedef int dpt_k_gemm_avx2_unused;
#endif
