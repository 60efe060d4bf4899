// Dynamic per-token quantization of a linear op's input (PerTokenQuant in VitqQuant): each row's
// step max|x|/qmax, the row scaled by 1/step (what the step-1 quantizer rounds), and the epilogue
// that multiplies each GEMM output row by its step and adds the bias, then optionally applies
// GELU or adds the result into a residual stream. The AVX2 variants do the same float operations
// lane by lane (max is order-free, the multiply, fma and add are exactly rounded), so they equal
// the references bit for bit; GELU is each variant's own vitq_gelu_f32 (its AVX2 lanes approximate
// erf), as the unfused pass dispatches it. NaNs are skipped by the maximum.
#include "vitq_kernels.h"
#include <math.h>

static inline float vitq_step_of(float m, float qmax) { return (m > 0.0f && isfinite(m)) ? m / qmax : 1.0f; }

void vitq_per_token_scale_ref(const float *x, int64_t ld, int64_t rows, int64_t cols, float qmax, float *steps, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * ld;
        float m = 0.0f;
        for (int64_t c = 0; c < cols; c++) { const float a = fabsf(row[c]); m = a > m ? a : m; }
        const float s = vitq_step_of(m, qmax), inv = 1.0f / s;
        steps[r] = s;
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = row[c] * inv;
    }
}

void vitq_per_token_finish_ref(const float *v, int64_t ldv, int64_t rows, int64_t n, const float *steps, const float *bias,
                               int gelu, int accumulate, float *y, int64_t ldy) {
    for (int64_t r = 0; r < rows; r++) {
        const float *in = v + r * ldv;
        float *row = y + r * ldy;
        if (accumulate) {
            for (int64_t j = 0; j < n; j++) row[j] += fmaf(in[j], steps[r], bias ? bias[j] : 0.0f);
        } else {
            for (int64_t j = 0; j < n; j++) row[j] = fmaf(in[j], steps[r], bias ? bias[j] : 0.0f);
            if (gelu) vitq_gelu_f32_ref(row, row, n);
        }
    }
}

#if defined(__x86_64__)
#include "avx2_inline.h"

VITQ_AVX2 void vitq_per_token_scale_avx2(const float *x, int64_t ld, int64_t rows, int64_t cols, float qmax, float *steps, float *out) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * ld;
        __m256 vm = _mm256_setzero_ps();
        int64_t c = 0;
        // max_ps returns its second operand when either is NaN: the running maximum survives a NaN.
        for (; c + 8 <= cols; c += 8) vm = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(row + c)), vm);
        float lanes[8];
        _mm256_storeu_ps(lanes, vm);
        float m = 0.0f;
        for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
        for (; c < cols; c++) { const float a = fabsf(row[c]); m = a > m ? a : m; }
        const float s = vitq_step_of(m, qmax), inv = 1.0f / s;
        steps[r] = s;
        const __m256 vi = _mm256_set1_ps(inv);
        float *o = out + r * cols;
        for (c = 0; c + 8 <= cols; c += 8) _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_loadu_ps(row + c), vi));
        for (; c < cols; c++) o[c] = row[c] * inv;
    }
}

VITQ_AVX2 void vitq_per_token_finish_avx2(const float *v, int64_t ldv, int64_t rows, int64_t n, const float *steps, const float *bias,
                                          int gelu, int accumulate, float *y, int64_t ldy) {
    for (int64_t r = 0; r < rows; r++) {
        const float *in = v + r * ldv;
        float *row = y + r * ldy;
        const __m256 vs = _mm256_set1_ps(steps[r]);
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) {
            const __m256 b = bias ? _mm256_loadu_ps(bias + j) : _mm256_setzero_ps();
            const __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(in + j), vs, b);
            _mm256_storeu_ps(row + j, accumulate ? _mm256_add_ps(_mm256_loadu_ps(row + j), t) : t);
        }
        for (; j < n; j++) {
            const float t = fmaf(in[j], steps[r], bias ? bias[j] : 0.0f);
            row[j] = accumulate ? row[j] + t : t;
        }
        if (gelu && !accumulate) vitq_gelu_f32_avx2(row, row, n);
    }
}
#endif
