// AVX2+FMA inline helpers shared by the kernel files (internal; not part of the module's API).
// Each helper is lane-wise deterministic, so a fused kernel that calls it gives the same bits as
// the separate passes that call it.
#ifndef VITQ_AVX2_INLINE_H
#define VITQ_AVX2_INLINE_H
#if defined(__x86_64__)
#include <immintrin.h>

#define VITQ_AVX2 __attribute__((target("avx2,fma")))

/// e^x for 8 lanes: range reduction x = n ln2 + r, degree-6 polynomial on r (Cephes-style
/// coefficients), then scaling by 2^n through the exponent bits. About 1-2 ulp on [-87, 88].
VITQ_AVX2 static inline __m256 vitq_exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/// GELU(x) = x/2 · (1 + erf(x/√2)), with 1 + erf(z) computed as erfc(-z): for z < 0 that is
/// P(t)·e^(-z²) directly (no cancellation), for z ≥ 0 it is 2 - P(t)·e^(-z²), where
/// t = 1/(1 + p|z|) and P is the Abramowitz–Stegun 7.1.26 polynomial (|error| ≤ 1.5e-7).
VITQ_AVX2 static inline __m256 vitq_gelu256(__m256 x) {
    const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(a, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 tail = _mm256_mul_ps(p, vitq_exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), a), a)));
    const __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 onePlusErf = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), tail), tail, neg);
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), onePlusErf);
}

/// Eight clamped quantized values, still as floats.
/// `inv` is 1/scale, rounded to float.
VITQ_AVX2 static inline __m256 vitq_qclamp8(__m256 x, __m256 inv, __m256 zero, __m256 lo, __m256 hi) {
    __m256 t = _mm256_round_ps(_mm256_mul_ps(x, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    t = _mm256_add_ps(t, zero);
    return _mm256_min_ps(_mm256_max_ps(t, lo), hi);
}

/// 16 floats → 16 int16 (q − zero), in order.
VITQ_AVX2 static inline __m256i vitq_centered16(const float *x, __m256 inv, __m256 z, __m256 lo, __m256 hi) {
    const __m256i q0 = _mm256_cvtps_epi32(_mm256_sub_ps(vitq_qclamp8(_mm256_loadu_ps(x), inv, z, lo, hi), z));
    const __m256i q1 = _mm256_cvtps_epi32(_mm256_sub_ps(vitq_qclamp8(_mm256_loadu_ps(x + 8), inv, z, lo, hi), z));
    return _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
}

/// The integer GEMM's epilogue for one 6×16 tile of accumulators (gemm_s8_avx2.c; the AVX-512
/// kernel writes through it too).
VITQ_AVX2 void vitq_qgemm_store_tile_avx2(__m256i acc[VITQ_QGEMM_MR][2], int64_t i0, int mr, int64_t j0, int nr, int64_t n,
                                          const vitq_qgemm_output *o);

#endif
#endif
