// Scalar reference fp32 ops: written for clarity, used for checking and on CPUs without AVX2.
#include "vitq_kernels.h"
#include <math.h>

void vitq_layernorm_f32_ref(const float *x, float *y, const float *gamma, const float *beta,
                            int64_t rows, int64_t dim, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double mean = 0;
        for (int64_t i = 0; i < dim; i++) mean += xr[i];
        mean /= (double)dim;
        double var = 0;
        for (int64_t i = 0; i < dim; i++) { double d = xr[i] - mean; var += d * d; }
        var /= (double)dim;
        float rstd = (float)(1.0 / sqrt(var + (double)eps));
        float m = (float)mean;
        for (int64_t i = 0; i < dim; i++) yr[i] = (xr[i] - m) * rstd * gamma[i] + beta[i];
    }
}

void vitq_softmax_f32_ref(float *x, int64_t rows, int64_t n, int64_t ld) {
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        float mx = xr[0];
        for (int64_t i = 1; i < n; i++) if (xr[i] > mx) mx = xr[i];
        double sum = 0;
        for (int64_t i = 0; i < n; i++) { xr[i] = expf(xr[i] - mx); sum += xr[i]; }
        float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < n; i++) xr[i] *= inv;
    }
}

void vitq_gelu_f32_ref(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
}

void vitq_add_f32_ref(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void vitq_add_bias_f32_ref(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) y[r * ld + i] += bias[i];
}
