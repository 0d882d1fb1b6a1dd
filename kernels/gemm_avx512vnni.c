/* AVX512-VNNI micro-kernel for the int8 GEMM (gemm_int8.c), register tile 12 × 32 (x86-64; built
 * with -mavx512f -mavx512bw -mavx512vnni, called only after gemm_int8.c checked the CPU). Per step
 * of four depths: 2 loads of B (32 columns × 4 s8), 12 broadcasts of an A quad (4 u8), 24 vpdpbusd
 * into 24 zmm int32 accumulators (each adds four exact u8 · s8 products per lane: four times the
 * multiply-adds of an FMA per instruction). The epilogue is gemm_int8.c's, lane by lane. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_AVX2_BUILD

#if !defined(__AVX512F__) || !defined(__AVX512VNNI__) || !defined(__AVX512BW__)
#error "kernels/gemm_avx512vnni.c must be compiled with -mavx512f -mavx512bw -mavx512vnni (Makefile)"
#endif

#include <immintrin.h>
#include <string.h>

#define MR 12
#define NR 32

static inline __m512 epilogue(__m512i acc, __m512i vzp, __m512i cs, __m512 vsa, __m512 sb, __m512 va,
                              float beta, __m512 vb, __m512 c) {
    const __m512 s = _mm512_mul_ps(vsa, sb);
    __m512 r = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, _mm512_mullo_epi32(vzp, cs))), s);
    r = _mm512_mul_ps(va, r);
    if (beta != 0.0f) r = _mm512_add_ps(r, _mm512_mul_ps(vb, c));
    return r;
}

static void ukr_12x32(int kq, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr, int nr,
                      float alpha, float beta, const float *sa, const int32_t *zp, const float *sb,
                      const int32_t *cs) {
    __m512i acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (int q = 0; q < kq; q++) {
        const __m512i b0 = _mm512_loadu_si512(bp + (size_t)q * NR);
        const __m512i b1 = _mm512_loadu_si512(bp + (size_t)q * NR + 16);
        _mm_prefetch((const char *)(bp + (size_t)(q + 8) * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + (size_t)(q + 8) * NR + 16), _MM_HINT_T0);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            const __m512i a = _mm512_set1_epi32((int)ap[(size_t)q * MR + i]);
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], a, b0);
            acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], a, b1);
        }
    }
    /* the sums leave the registers once, with constant indices: the loop above keeps all 24 in
     * zmm registers (indexing acc[i] by the run-time row count below made GCC keep them in memory) */
    _Alignas(64) int32_t sums[MR][NR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        _mm512_store_si512(sums[i], acc[i][0]);
        _mm512_store_si512(sums[i] + 16, acc[i][1]);
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
    const __mmask16 m1 = nr <= 16 ? 0 : nr >= 32 ? (__mmask16)0xffff : (__mmask16)((1u << (nr - 16)) - 1u);
    const __m512 sb0 = _mm512_maskz_loadu_ps(m0, sb), sb1 = _mm512_maskz_loadu_ps(m1, sb + 16);
    const __m512i cs0 = _mm512_maskz_loadu_epi32(m0, cs), cs1 = _mm512_maskz_loadu_epi32(m1, cs + 16);
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        const __m512i vzp = _mm512_set1_epi32(zp[i]);
        const __m512 vsa = _mm512_set1_ps(sa[i]);
        const __m512 c0 = beta != 0.0f ? _mm512_maskz_loadu_ps(m0, ci) : _mm512_setzero_ps();
        const __m512 c1 = beta != 0.0f ? _mm512_maskz_loadu_ps(m1, ci + 16) : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(ci, m0, epilogue(_mm512_load_si512(sums[i]), vzp, cs0, vsa, sb0, va, beta, vb, c0));
        _mm512_mask_storeu_ps(ci + 16, m1,
                              epilogue(_mm512_load_si512(sums[i] + 16), vzp, cs1, vsa, sb1, va, beta, vb, c1));
    }
}

static inline __mmask16 tail_mask(int left) {
    return left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1u);
}

/* Rows 0 … mr−1 of a [lda], all k depths → ap (⌈k/4⌉ steps of MR words), quantised by
 * gemm_int8.c's rules: extremes (NaN skipped), dpt_k_int8_row_params, then per element
 * round-to-nearest-even of a · inv (vcvtps2dq), + zp, clamped to [0, 255]. */
static void pack_a_12(const float *a, int lda, int mr, int k, uint32_t *ap, float *sa, int32_t *zp) {
    const int kq = (k + 3) / 4;
    uint8_t *bytes = (uint8_t *)ap;
    for (int i = 0; i < MR; i++) {
        if (i >= mr) {
            sa[i] = 0.0f;
            zp[i] = 0;
            for (int q = 0; q < kq; q++) memcpy(bytes + ((size_t)q * MR + i) * 4, &(uint32_t){0}, 4);
            continue;
        }
        const float *row = a + (size_t)i * lda;
        __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
        for (int p = 0; p < k; p += 16) {
            const __m512 x = _mm512_maskz_loadu_ps(tail_mask(k - p), row + p); /* tail: zeros */
            lo = _mm512_min_ps(x, lo); /* NaN in x: lo kept */
            hi = _mm512_max_ps(x, hi);
        }
        float l = _mm512_reduce_min_ps(lo), h = _mm512_reduce_max_ps(hi), inv;
        dpt_k_int8_row_params(l, h, &sa[i], &inv, &zp[i]);
        const __m512 vinv = _mm512_set1_ps(inv);
        const __m512i vz = _mm512_set1_epi32(zp[i]), v0 = _mm512_setzero_si512(),
                      v255 = _mm512_set1_epi32(255);
        for (int p = 0; p < k; p += 16) {
            const __m512 x = _mm512_maskz_loadu_ps(tail_mask(k - p), row + p);
            __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x, vinv)), vz);
            v = _mm512_min_epi32(_mm512_max_epi32(v, v0), v255);
            /* depths past k: zero bytes (the weights there are zero too, but keep the panel clean) */
            v = _mm512_maskz_mov_epi32(tail_mask(k - p), v);
            const __m128i b = _mm512_cvtepi32_epi8(v); /* 16 bytes: depths p … p+15 = 4 words */
            uint32_t wd[4];
            _mm_storeu_si128((__m128i *)(void *)wd, b);
            for (int t = 0; t < 4 && p / 4 + t < kq; t++)
                memcpy(bytes + ((size_t)(p / 4 + t) * MR + i) * 4, &wd[t], 4);
        }
    }
}

const dpt_k_ukr_int8 dpt_k_ukr_avx512vnni = {MR, NR, 120, ukr_12x32, pack_a_12};

#else
typedef int dpt_k_gemm_avx512vnni_unused;
#endif
