// AVX2+FMA variants of the fp32 ops. Built with per-function target attributes so that the
// package needs no unsafeFlags; dispatch.c calls them only when the CPU supports AVX2 and FMA.
#include "vitq_kernels.h"
#include <math.h>

#if defined(__x86_64__)
#include "avx2_inline.h"

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
