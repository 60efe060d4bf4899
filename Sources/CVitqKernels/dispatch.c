// Run-time CPU dispatch: the only place that decides between _ref and _avx2 kernels.
#include "vitq_kernels.h"
#include <stdlib.h>
#include <string.h>

int vitq_cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int vitq_use_avx2_cached = -1;

int vitq_kernels_use_avx2(void) {
    int v = __atomic_load_n(&vitq_use_avx2_cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *force = getenv("VITQ_FORCE_SCALAR");
        v = (force && strcmp(force, "1") == 0) ? 0 : vitq_cpu_has_avx2();
        __atomic_store_n(&vitq_use_avx2_cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

void vitq_layernorm_f32(const float *x, float *y, const float *g, const float *b,
                        int64_t rows, int64_t dim, float eps) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_layernorm_f32_avx2(x, y, g, b, rows, dim, eps); return; }
#endif
    vitq_layernorm_f32_ref(x, y, g, b, rows, dim, eps);
}

void vitq_softmax_f32(float *x, int64_t rows, int64_t n, int64_t ld) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_softmax_f32_avx2(x, rows, n, ld); return; }
#endif
    vitq_softmax_f32_ref(x, rows, n, ld);
}

void vitq_gelu_f32(const float *x, float *y, int64_t n) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_gelu_f32_avx2(x, y, n); return; }
#endif
    vitq_gelu_f32_ref(x, y, n);
}

void vitq_add_f32(float *y, const float *x, int64_t n) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_add_f32_avx2(y, x, n); return; }
#endif
    vitq_add_f32_ref(y, x, n);
}

void vitq_add_bias_f32(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_add_bias_f32_avx2(y, bias, rows, n, ld); return; }
#endif
    vitq_add_bias_f32_ref(y, bias, rows, n, ld);
}

void vitq_gemm_s8s8s32_packed(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                              int32_t *c, int64_t ldc) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_gemm_s8s8s32_packed_avx2(pa, pb, m, n, k, c, ldc); return; }
#endif
    vitq_gemm_s8s8s32_packed_scalar(pa, pb, m, n, k, c, ldc);
}
