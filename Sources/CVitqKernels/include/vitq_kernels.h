/// vitq C kernels: fp32 elementwise ops for the transformer forward pass.
///
/// Every kernel has a scalar `_ref` version (the reference, written for clarity)
/// and an AVX2+FMA variant. The unsuffixed entry points dispatch at run time
/// (see dispatch.c); set VITQ_FORCE_SCALAR=1 in the environment to force `_ref`.
#ifndef VITQ_KERNELS_H
#define VITQ_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: CPU features

/// 1 when the CPU and OS support AVX2 and FMA, else 0.
int vitq_cpu_has_avx2(void);
/// 1 when the dispatched kernels are the AVX2 variants.
int vitq_kernels_use_avx2(void);

// MARK: fp32 ops (dispatched)

/// y[r,:] = (x[r,:] - mean) / sqrt(var + eps) * gamma + beta for r in [0, rows). x and y may alias.
void vitq_layernorm_f32(const float *x, float *y, const float *gamma, const float *beta,
                        int64_t rows, int64_t dim, float eps);
/// Row-wise softmax in place over `rows` rows of length n, each at stride `ld` floats.
void vitq_softmax_f32(float *x, int64_t rows, int64_t n, int64_t ld);
/// y = x * 0.5 * (1 + erf(x / sqrt(2))) (exact-erf GELU). x and y may alias.
void vitq_gelu_f32(const float *x, float *y, int64_t n);
/// y += x.
void vitq_add_f32(float *y, const float *x, int64_t n);
/// y[r, :] += bias for r in [0, rows), rows of length n at stride ld.
void vitq_add_bias_f32(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld);

// MARK: fp32 ops, scalar references

void vitq_layernorm_f32_ref(const float *x, float *y, const float *gamma, const float *beta,
                            int64_t rows, int64_t dim, float eps);
void vitq_softmax_f32_ref(float *x, int64_t rows, int64_t n, int64_t ld);
void vitq_gelu_f32_ref(const float *x, float *y, int64_t n);
void vitq_add_f32_ref(float *y, const float *x, int64_t n);
void vitq_add_bias_f32_ref(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld);

// MARK: fp32 ops, AVX2 variants (call only when vitq_cpu_has_avx2())

void vitq_layernorm_f32_avx2(const float *x, float *y, const float *gamma, const float *beta,
                             int64_t rows, int64_t dim, float eps);
void vitq_softmax_f32_avx2(float *x, int64_t rows, int64_t n, int64_t ld);
void vitq_gelu_f32_avx2(const float *x, float *y, int64_t n);
void vitq_add_f32_avx2(float *y, const float *x, int64_t n);
void vitq_add_bias_f32_avx2(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld);

// MARK: dtype conversion

/// IEEE half to float, n values.
void vitq_f16_to_f32(const uint16_t *src, float *dst, int64_t n);
/// bfloat16 to float, n values.
void vitq_bf16_to_f32(const uint16_t *src, float *dst, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

// MARK: int8 GEMM (exact)
//
// C[m,n] = Σ_k A[m,k]·B[n,k] in int32, for any int8 values and any k ≤ 65536: operands are
// sign-extended to int16 pairs and multiplied with vpmaddwd (int16×int16 pairs summed into int32,
// which cannot overflow), never with vpmaddubsw's saturating int16 sums.
// Packed layouts: A as int32 words holding the int16 pair (a[i,2p], a[i,2p+1]), [m, ceil(k/2)];
// B in blocks of 16 output columns, per k pair 16 × 2 int16, zero-padded in n and k.

/// int32 words needed to pack an m×k A.
int64_t vitq_gemm_packed_a_size(int64_t m, int64_t k);
/// int16 elements needed to pack an n×k B.
int64_t vitq_gemm_packed_b_size(int64_t n, int64_t k);
/// Packs A [m, k] (row stride lda) into `packed`.
void vitq_gemm_pack_a_s8(const int8_t *a, int64_t lda, int64_t m, int64_t k, int32_t *packed);
/// Packs B [n, k] (row stride ldb; a weight with one row per output channel) into `packed`.
void vitq_gemm_pack_b_s8(const int8_t *b, int64_t ldb, int64_t n, int64_t k, int16_t *packed);
/// C = A·Bᵀ from packed operands (dispatched: AVX2 or scalar).
void vitq_gemm_s8s8s32_packed(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                              int32_t *c, int64_t ldc);
void vitq_gemm_s8s8s32_packed_scalar(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                     int32_t *c, int64_t ldc);
void vitq_gemm_s8s8s32_packed_avx2(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                   int32_t *c, int64_t ldc);
/// The reference: plain loops over unpacked operands.
void vitq_gemm_s8s8s32_ref(const int8_t *a, int64_t lda, const int8_t *b, int64_t ldb,
                           int64_t m, int64_t n, int64_t k, int32_t *c, int64_t ldc);

#ifdef __cplusplus
}
#endif
