// Run-time CPU dispatch: the only place that decides between the _ref, _avx2, _avxvnni and _avx512vnni kernels.
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

int vitq_cpu_has_avx512vnni(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    // __builtin_cpu_supports reports a feature only when the OS saves its register state (XCR0).
    return vitq_cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

int vitq_cpu_has_avxvnni(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return vitq_cpu_has_avx2() && __builtin_cpu_supports("avxvnni");
#else
    return 0;
#endif
}

static int vitq_isa_cached = -1;

int vitq_kernels_isa(void) {
    int v = __atomic_load_n(&vitq_isa_cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = vitq_cpu_has_avx512vnni() ? VITQ_ISA_AVX512_VNNI
          : vitq_cpu_has_avxvnni() ? VITQ_ISA_AVX_VNNI : vitq_cpu_has_avx2() ? VITQ_ISA_AVX2 : VITQ_ISA_SCALAR;
        const char *force = getenv("VITQ_FORCE_SCALAR"), *cap = getenv("VITQ_ISA");
        int limit = VITQ_ISA_AVX512_VNNI;
        if (cap && strcmp(cap, "scalar") == 0) limit = VITQ_ISA_SCALAR;
        if (cap && strcmp(cap, "avx2") == 0) limit = VITQ_ISA_AVX2;
        if (cap && strcmp(cap, "avxvnni") == 0) limit = VITQ_ISA_AVX_VNNI;
        if (force && strcmp(force, "1") == 0) limit = VITQ_ISA_SCALAR;
        if (v > limit) v = limit;
        // An AVX-512 machine capped at AVX-VNNI without the VEX form of the instructions runs AVX2.
        if (v == VITQ_ISA_AVX_VNNI && !vitq_cpu_has_avxvnni()) v = VITQ_ISA_AVX2;
        __atomic_store_n(&vitq_isa_cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

int vitq_kernels_use_avx2(void) { return vitq_kernels_isa() >= VITQ_ISA_AVX2; }

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

void vitq_softmax_quantize_pack_a(float *x, int64_t m, int64_t n, int64_t ld, float scale, int32_t zero,
                                  int32_t qmin, int32_t qmax, int32_t *packed) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_softmax_quantize_pack_a_avx2(x, m, n, ld, scale, zero, qmin, qmax, packed); return; }
#endif
    vitq_softmax_quantize_pack_a_ref(x, m, n, ld, scale, zero, qmin, qmax, packed);
}

void vitq_layernorm_quantize_pack_a(const float *x, const float *gamma, const float *beta, int64_t m, int64_t dim, float eps,
                                    float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_layernorm_quantize_pack_a_avx2(x, gamma, beta, m, dim, eps, scale, zero, qmin, qmax, packed); return; }
#endif
    vitq_layernorm_quantize_pack_a_ref(x, gamma, beta, m, dim, eps, scale, zero, qmin, qmax, packed);
}

void vitq_qgemm(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k, const vitq_qgemm_output *out) {
#if defined(__x86_64__)
    const int isa = vitq_kernels_isa();
    if (isa >= VITQ_ISA_AVX512_VNNI) { vitq_qgemm_avx512vnni(pa, pb, m, n, k, out); return; }
    if (isa >= VITQ_ISA_AVX_VNNI) { vitq_qgemm_avxvnni(pa, pb, m, n, k, out); return; }
    if (isa >= VITQ_ISA_AVX2) { vitq_qgemm_avx2(pa, pb, m, n, k, out); return; }
#endif
    vitq_qgemm_scalar(pa, pb, m, n, k, out);
}

void vitq_score_columns(const float *ohat, int64_t ldh, const float *o, const float *g, int64_t ld,
                        int64_t rows, int64_t n, int kind, double *stats) {
#if defined(__x86_64__)
    const int isa = vitq_kernels_isa();
    if (isa >= VITQ_ISA_AVX512_VNNI) { vitq_score_columns_avx512(ohat, ldh, o, g, ld, rows, n, kind, stats); return; }
    if (isa >= VITQ_ISA_AVX2) { vitq_score_columns_avx2(ohat, ldh, o, g, ld, rows, n, kind, stats); return; }
#endif
    vitq_score_columns_ref(ohat, ldh, o, g, ld, rows, n, kind, stats);
}

void vitq_quantize_s8(const float *x, int8_t *q, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_quantize_s8_avx2(x, q, n, scale, zero, qmin, qmax); return; }
#endif
    vitq_quantize_s8_ref(x, q, n, scale, zero, qmin, qmax);
}

void vitq_dequantize_s8(const int8_t *q, float *x, int64_t n, float scale, int32_t zero) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_dequantize_s8_avx2(q, x, n, scale, zero); return; }
#endif
    vitq_dequantize_s8_ref(q, x, n, scale, zero);
}

void vitq_fake_quantize_f32(const float *x, float *y, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_fake_quantize_f32_avx2(x, y, n, scale, zero, qmin, qmax); return; }
#endif
    vitq_fake_quantize_f32_ref(x, y, n, scale, zero, qmin, qmax);
}

void vitq_qgemm_quantize_pack_a(const float *a, int64_t lda, int64_t m, int64_t k,
                                float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_qgemm_quantize_pack_a_avx2(a, lda, m, k, scale, zero, qmin, qmax, packed); return; }
#endif
    vitq_qgemm_quantize_pack_a_ref(a, lda, m, k, scale, zero, qmin, qmax, packed);
}

void vitq_qgemm_quantize_pack_b(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_qgemm_quantize_pack_b_avx2(b, ldb, n, k, transposed, scale, zero, qmin, qmax, packed); return; }
#endif
    vitq_qgemm_quantize_pack_b_ref(b, ldb, n, k, transposed, scale, zero, qmin, qmax, packed);
}

void vitq_twin_encode(const float *x, uint8_t *codes, int64_t n, vitq_twin_params p) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_twin_encode_avx2(x, codes, n, p); return; }
#endif
    vitq_twin_encode_ref(x, codes, n, p);
}

void vitq_twin_decode(const uint8_t *codes, float *x, int64_t n, vitq_twin_params p) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_twin_decode_avx2(codes, x, n, p); return; }
#endif
    vitq_twin_decode_ref(codes, x, n, p);
}

void vitq_twin_fake_quantize(const float *x, float *y, int64_t n, vitq_twin_params p) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_twin_fake_quantize_avx2(x, y, n, p); return; }
#endif
    vitq_twin_fake_quantize_ref(x, y, n, p);
}

void vitq_twin_quantize_pack_a(const float *a, int64_t lda, int64_t m, int64_t k, vitq_twin_params p,
                               int32_t *lo, int32_t *hi) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_twin_quantize_pack_a_avx2(a, lda, m, k, p, lo, hi); return; }
#endif
    vitq_twin_quantize_pack_a_ref(a, lda, m, k, p, lo, hi);
}

void vitq_twin_combine(const int32_t *c_lo, const int32_t *c_hi, int64_t ldc, int64_t m, int64_t n, int32_t shift,
                       const float *col_scale, const float *bias, float *f, int64_t ldf) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_twin_combine_avx2(c_lo, c_hi, ldc, m, n, shift, col_scale, bias, f, ldf); return; }
#endif
    vitq_twin_combine_ref(c_lo, c_hi, ldc, m, n, shift, col_scale, bias, f, ldf);
}

void vitq_per_token_scale(const float *x, int64_t ld, int64_t rows, int64_t cols, float qmax, float *steps, float *out) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_per_token_scale_avx2(x, ld, rows, cols, qmax, steps, out); return; }
#endif
    vitq_per_token_scale_ref(x, ld, rows, cols, qmax, steps, out);
}

void vitq_per_token_finish(const float *v, int64_t ldv, int64_t rows, int64_t n, const float *steps, const float *bias,
                           int gelu, int accumulate, float *y, int64_t ldy) {
#if defined(__x86_64__)
    if (vitq_kernels_use_avx2()) { vitq_per_token_finish_avx2(v, ldv, rows, n, steps, bias, gelu, accumulate, y, ldy); return; }
#endif
    vitq_per_token_finish_ref(v, ldv, rows, n, steps, bias, gelu, accumulate, y, ldy);
}

int vitq_qgemm_pack_b_quads(const int16_t *pb, int64_t n, int64_t k, int32_t *quads) {
    const int isa = vitq_kernels_isa();
#if defined(__x86_64__)
    if (isa >= VITQ_ISA_AVX512_VNNI) return vitq_qgemm_pack_b_quads_avx512(pb, n, k, quads);
#endif
    return isa >= VITQ_ISA_AVX_VNNI ? vitq_qgemm_pack_b_quads_portable(pb, n, k, quads) : 0;
}
