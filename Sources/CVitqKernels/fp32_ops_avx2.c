// AVX2+FMA variants of the fp32 ops. Built with per-function target attributes so that the
// package needs no unsafeFlags; dispatch.c calls them only when the CPU supports AVX2 and FMA.
#include "vitq_kernels.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define VITQ_AVX2 __attribute__((target("avx2,fma")))

VITQ_AVX2 static inline float vitq_hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

VITQ_AVX2 static inline float vitq_hmax256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_max_ps(lo, hi);
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

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

VITQ_AVX2 void vitq_layernorm_f32_avx2(const float *x, float *y, const float *gamma, const float *beta,
                                       int64_t rows, int64_t dim, float eps) {
    const int64_t d8 = dim & ~(int64_t)7;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < d8; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(xr + i));
        float sum = vitq_hsum256(acc);
        for (int64_t i = d8; i < dim; i++) sum += xr[i];
        const float mean = sum / (float)dim;
        const __m256 vm = _mm256_set1_ps(mean);
        __m256 vacc = _mm256_setzero_ps();
        for (int64_t i = 0; i < d8; i += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + i), vm);
            vacc = _mm256_fmadd_ps(d, d, vacc);
        }
        float var = vitq_hsum256(vacc);
        for (int64_t i = d8; i < dim; i++) { float d = xr[i] - mean; var += d * d; }
        const float rstd = 1.0f / sqrtf(var / (float)dim + eps);
        const __m256 vr = _mm256_set1_ps(rstd);
        for (int64_t i = 0; i < d8; i += 8) {
            __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), vm), vr);
            _mm256_storeu_ps(yr + i, _mm256_fmadd_ps(v, _mm256_loadu_ps(gamma + i), _mm256_loadu_ps(beta + i)));
        }
        for (int64_t i = d8; i < dim; i++) yr[i] = (xr[i] - mean) * rstd * gamma[i] + beta[i];
    }
}

VITQ_AVX2 void vitq_softmax_f32_avx2(float *x, int64_t rows, int64_t n, int64_t ld) {
    const int64_t n8 = n & ~(int64_t)7;
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (int64_t i = 0; i < n8; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(xr + i));
        float mx = vitq_hmax256(vmax);
        for (int64_t i = n8; i < n; i++) if (xr[i] > mx) mx = xr[i];
        const __m256 vmx = _mm256_set1_ps(mx);
        __m256 vsum = _mm256_setzero_ps();
        for (int64_t i = 0; i < n8; i += 8) {
            __m256 e = vitq_exp256(_mm256_sub_ps(_mm256_loadu_ps(xr + i), vmx));
            _mm256_storeu_ps(xr + i, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        float sum = vitq_hsum256(vsum);
        for (int64_t i = n8; i < n; i++) { float e = expf(xr[i] - mx); xr[i] = e; sum += e; }
        const float inv = 1.0f / sum;
        const __m256 vinv = _mm256_set1_ps(inv);
        for (int64_t i = 0; i < n8; i += 8) _mm256_storeu_ps(xr + i, _mm256_mul_ps(_mm256_loadu_ps(xr + i), vinv));
        for (int64_t i = n8; i < n; i++) xr[i] *= inv;
    }
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

VITQ_AVX2 void vitq_gelu_f32_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, vitq_gelu256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float bx[8] = {0}, by[8];
        for (int64_t j = i; j < n; j++) bx[j - i] = x[j];
        _mm256_storeu_ps(by, vitq_gelu256(_mm256_loadu_ps(bx)));
        for (int64_t j = i; j < n; j++) y[j] = by[j - i];
    }
}

VITQ_AVX2 void vitq_add_f32_avx2(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

VITQ_AVX2 void vitq_add_bias_f32_avx2(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld) {
    for (int64_t r = 0; r < rows; r++) vitq_add_f32_avx2(y + r * ld, bias, n);
}

#else
// Non-x86 builds: the AVX2 symbols exist but forward to the references (never dispatched).
void vitq_layernorm_f32_avx2(const float *x, float *y, const float *g, const float *b, int64_t rows, int64_t dim, float eps) { vitq_layernorm_f32_ref(x, y, g, b, rows, dim, eps); }
void vitq_softmax_f32_avx2(float *x, int64_t rows, int64_t n, int64_t ld) { vitq_softmax_f32_ref(x, rows, n, ld); }
void vitq_gelu_f32_avx2(const float *x, float *y, int64_t n) { vitq_gelu_f32_ref(x, y, n); }
void vitq_add_f32_avx2(float *y, const float *x, int64_t n) { vitq_add_f32_ref(y, x, n); }
void vitq_add_bias_f32_avx2(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld) { vitq_add_bias_f32_ref(y, bias, rows, n, ld); }
#endif
