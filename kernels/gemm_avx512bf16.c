/* AVX512-BF16 micro-kernel, register tile 12 × 32 (x86-64; built with -mavx512f -mavx512bw
 * -mavx512bf16, called only after gemm_bf16.c checked the CPU). Per step of two depths: 2 loads of
 * B (32 columns × 2 bfloat16), 12 broadcasts of an A pair, 24 vdpbf16ps into 24 zmm accumulators
 * (each multiplies two pairs of bfloat16 exactly and adds both products to float32 lanes): twice
 * the multiply-adds of an FMA per instruction. 27 of the 32 zmm registers in use. */
#include "dispatch.h"

#ifdef DPT_K_HAVE_AVX2_BUILD

#if !defined(__AVX512F__) || !defined(__AVX512BF16__) || !defined(__AVX512BW__)
#error "kernels/gemm_avx512bf16.c must be compiled with -mavx512f -mavx512bw -mavx512bf16 (Makefile)"
#endif

#include <immintrin.h>
#include <string.h>

#define MR 12
#define NR 32
#define KC 256 /* depths per block: one Bp panel 128 × 32 words = 16 KB (L1) */

static void ukr_12x32(int kq, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr,
                      int nr, float alpha, float beta) {
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int q = 0; q < kq; q++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + (size_t)q * NR);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + (size_t)q * NR + 16);
        _mm_prefetch((const char *)(ap + (size_t)(q + 8) * MR), _MM_HINT_T0);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[(size_t)q * MR + i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc;
            __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), r0);
                r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), r1);
            }
            _mm512_storeu_ps(ci, r0);
            _mm512_storeu_ps(ci + 16, r1);
        }
        return;
    }
    /* a ragged tile: masked loads and stores of the nr leading columns */
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
    const __mmask16 m1 = nr <= 16 ? 0 : nr >= 32 ? (__mmask16)0xffff : (__mmask16)((1u << (nr - 16)) - 1u);
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
        }
        _mm512_mask_storeu_ps(ci, m0, r0);
        _mm512_mask_storeu_ps(ci + 16, m1, r1);
    }
}

/* Rows 0 … mr−1 of a [lda], depths 0 … kc−1 → ap (⌈kc/2⌉ steps of MR words). Each row is rounded
 * 32 depths at a time (vcvtne2ps2bf16: nearest even, denormals to zero, the same as
 * dpt_k_bf16_from_float), then the pairs are transposed into the panel. */
static void pack_a_12(const float *a, int lda, int mr, int kc, uint32_t *ap) {
    _Alignas(64) uint32_t rows[MR][KC / 2];
    const int kq = (kc + 1) / 2;
    for (int i = 0; i < MR; i++) {
        if (i >= mr) {
            memset(rows[i], 0, sizeof(uint32_t) * (size_t)kq);
            continue;
        }
        const float *src = a + (size_t)i * lda;
        for (int p = 0; p < kc; p += 32) {
            const int left = kc - p;
            const __mmask16 lo = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            const __mmask16 hi = left >= 32 ? (__mmask16)0xffff
                                 : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1u);
            __m512 x0 = _mm512_maskz_loadu_ps(lo, src + p);
            __m512 x1 = _mm512_maskz_loadu_ps(hi, src + p + 16);
            __m512i h = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
            _mm512_storeu_si512(rows[i] + p / 2, h); /* rows[] has room for whole blocks of 32 */
        }
    }
    for (int q = 0; q < kq; q++)
        for (int i = 0; i < MR; i++) ap[(size_t)q * MR + i] = rows[i][q];
}

/* mc 120 = 10 tiles: Ap 120 × 256 bfloat16 = 60 KB (L2). */
const dpt_k_ukr_bf16 dpt_k_ukr_avx512bf16 = {MR, NR, 120, KC, ukr_12x32, pack_a_12, DPT_K_LAYOUT_PAIRS, 0};

#else
typedef int dpt_k_gemm_avx512bf16_unused;
#endif
