// Quantize, dequantize and fake-quantize: q = clamp(rne(x · (1/scale)) + zero, qmin, qmax), with
// 1/scale rounded to float once. The AVX2 variants use the same multiply, round-to-nearest-even
// and clamp-before-convert order, so they equal the references bit for bit.
#include "vitq_kernels.h"
#include <math.h>
#include <stdlib.h>

static inline float vitq_qclamp(float x, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
    float t = nearbyintf(x * (1.0f / scale)) + (float)zero;
    return t < (float)qmin ? (float)qmin : (t > (float)qmax ? (float)qmax : t);
}

void vitq_quantize_s8_ref(const float *x, int8_t *q, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
    for (int64_t i = 0; i < n; i++) q[i] = (int8_t)(int32_t)vitq_qclamp(x[i], scale, zero, qmin, qmax);
}

void vitq_dequantize_s8_ref(const int8_t *q, float *x, int64_t n, float scale, int32_t zero) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)((int32_t)q[i] - zero) * scale;
}

void vitq_fake_quantize_f32_ref(const float *x, float *y, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
    for (int64_t i = 0; i < n; i++) y[i] = (vitq_qclamp(x[i], scale, zero, qmin, qmax) - (float)zero) * scale;
}

#if defined(__x86_64__)
#include "avx2_inline.h"

VITQ_AVX2 void vitq_quantize_s8_avx2(const float *x, int8_t *q, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
    const __m256 s = _mm256_set1_ps(1.0f / scale), z = _mm256_set1_ps((float)zero);
    const __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps((float)qmax);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = _mm256_cvtps_epi32(vitq_qclamp8(_mm256_loadu_ps(x + i), s, z, lo, hi));
        const __m256i b = _mm256_cvtps_epi32(vitq_qclamp8(_mm256_loadu_ps(x + i + 8), s, z, lo, hi));
        // int32 → int16 → int8 (values are in range, so the saturating packs are exact); fix lane order.
        const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
        const __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128((__m128i *)(q + i), bytes);
    }
    vitq_quantize_s8_ref(x + i, q + i, n - i, scale, zero, qmin, qmax);
}

VITQ_AVX2 void vitq_dequantize_s8_avx2(const int8_t *q, float *x, int64_t n, float scale, int32_t zero) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i z = _mm256_set1_epi32(zero);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i v = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + i))), z);
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
    }
    vitq_dequantize_s8_ref(q + i, x + i, n - i, scale, zero);
}

VITQ_AVX2 void vitq_fake_quantize_f32_avx2(const float *x, float *y, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
    const __m256 s = _mm256_set1_ps(scale), inv = _mm256_set1_ps(1.0f / scale), z = _mm256_set1_ps((float)zero);
    const __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps((float)qmax);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 t = vitq_qclamp8(_mm256_loadu_ps(x + i), inv, z, lo, hi);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_sub_ps(t, z), s));
    }
    vitq_fake_quantize_f32_ref(x + i, y + i, n - i, scale, zero, qmin, qmax);
}
/// Quantizes row i of A (k floats) into its place in the packed A: 16 floats at a time become 8
/// int32 words of (q − zero) pairs at the panel stride MR.
VITQ_AVX2 static void vitq_pack_a_row_avx2(const float *row, int64_t i, int64_t k, float scale, int32_t zero,
                                           int32_t qmin, int32_t qmax, int32_t *packed) {
    const int64_t kp = (k + 1) / 2, full = k / 16;
    const __m256 s = _mm256_set1_ps(1.0f / scale), z = _mm256_set1_ps((float)zero);
    const __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps((float)qmax);
    int32_t *dst = packed + (i / VITQ_QGEMM_MR) * kp * VITQ_QGEMM_MR + i % VITQ_QGEMM_MR;
    for (int64_t c = 0; c < full; c++) {
        int32_t words[8];
        _mm256_storeu_si256((__m256i *)words, vitq_centered16(row + 16 * c, s, z, lo, hi));
        int32_t *d = dst + 8 * c * VITQ_QGEMM_MR;
        for (int w = 0; w < 8; w++) d[w * VITQ_QGEMM_MR] = words[w];
    }
    if (16 * full < k) {
        // The tail, zero-padded to 16: a zero quantizes to the zero point, i.e. centred 0, which is
        // what the packed layout holds past k.
        const int64_t rest = k - 16 * full, rp = (rest + 1) / 2;
        float tail[16] = {0};
        for (int64_t c = 0; c < rest; c++) tail[c] = row[16 * full + c];
        int32_t words[8];
        _mm256_storeu_si256((__m256i *)words, vitq_centered16(tail, s, z, lo, hi));
        for (int64_t w = 0; w < rp; w++) dst[(8 * full + w) * VITQ_QGEMM_MR] = words[w];
    }
}

VITQ_AVX2 void vitq_qgemm_quantize_pack_a_avx2(const float *a, int64_t lda, int64_t m, int64_t k,
                                               float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed) {
    for (int64_t i = 0; i < m; i++) vitq_pack_a_row_avx2(a + i * lda, i, k, scale, zero, qmin, qmax, packed);
    vitq_qgemm_output pad = {0};
    pad.pa = packed;
    vitq_qgemm_zero_pa_padding(&pad, m, k);
}

VITQ_AVX2 void vitq_softmax_quantize_pack_a_avx2(float *x, int64_t m, int64_t n, int64_t ld, float scale, int32_t zero,
                                                 int32_t qmin, int32_t qmax, int32_t *packed) {
    for (int64_t i = 0; i < m; i++) {
        vitq_softmax_f32_avx2(x + i * ld, 1, n, ld);
        vitq_pack_a_row_avx2(x + i * ld, i, n, scale, zero, qmin, qmax, packed);
    }
    vitq_qgemm_output pad = {0};
    pad.pa = packed;
    vitq_qgemm_zero_pa_padding(&pad, m, n);
}

VITQ_AVX2 void vitq_layernorm_quantize_pack_a_avx2(const float *x, const float *gamma, const float *beta, int64_t m, int64_t dim,
                                                   float eps, float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed) {
    float *row = malloc((size_t)dim * sizeof(float));
    for (int64_t i = 0; i < m; i++) {
        vitq_layernorm_f32_avx2(x + i * dim, row, gamma, beta, 1, dim, eps);
        vitq_pack_a_row_avx2(row, i, dim, scale, zero, qmin, qmax, packed);
    }
    free(row);
    vitq_qgemm_output pad = {0};
    pad.pa = packed;
    vitq_qgemm_zero_pa_padding(&pad, m, dim);
}
/// Quantizes and packs B. Full 16-column blocks are vectorised (non-transposed: 16 k values of
/// one column → 8 pair words at the block stride; transposed: two k rows of 16 columns are
/// interleaved into one 64-byte block row); the last partial block and odd tails use the scalar unit.
VITQ_AVX2 void vitq_qgemm_quantize_pack_b_avx2(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                               float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed) {
    const int64_t NRB = VITQ_QGEMM_NR, kp = (k + 1) / 2, blocks = (n + NRB - 1) / NRB, fullBlocks = n / NRB;
    const __m256 inv = _mm256_set1_ps(1.0f / scale), z = _mm256_set1_ps((float)zero);
    const __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps((float)qmax);
    for (int64_t jb = 0; jb < blocks; jb++) {
        int64_t pDone = 0;
        if (jb < fullBlocks) {
            int32_t *blk = (int32_t *)(packed + jb * kp * NRB * 2);
            if (!transposed) {
                pDone = (k / 16) * 8;
                for (int64_t jj = 0; jj < NRB; jj++) {
                    const float *row = b + (jb * NRB + jj) * ldb;
                    for (int64_t c = 0; c < k / 16; c++) {
                        int32_t words[8];
                        _mm256_storeu_si256((__m256i *)words, vitq_centered16(row + 16 * c, inv, z, lo, hi));
                        for (int w = 0; w < 8; w++) blk[(8 * c + w) * NRB + jj] = words[w];
                    }
                }
            } else {
                pDone = k / 2;
                for (int64_t p = 0; p < pDone; p++) {
                    const __m256i r0 = vitq_centered16(b + (2 * p) * ldb + jb * NRB, inv, z, lo, hi);
                    const __m256i r1 = vitq_centered16(b + (2 * p + 1) * ldb + jb * NRB, inv, z, lo, hi);
                    const __m256i l = _mm256_unpacklo_epi16(r0, r1), h = _mm256_unpackhi_epi16(r0, r1);
                    __m256i *dst = (__m256i *)(blk + p * NRB);
                    _mm256_storeu_si256(dst, _mm256_permute2x128_si256(l, h, 0x20));
                    _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(l, h, 0x31));
                }
            }
        }
        if (pDone < kp) vitq_qgemm_quantize_pack_b_block(b, ldb, n, k, transposed, scale, zero, qmin, qmax, packed, jb, pDone, kp);
    }
}
#else
void vitq_qgemm_quantize_pack_b_avx2(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                     float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed) { vitq_qgemm_quantize_pack_b_ref(b, ldb, n, k, transposed, scale, zero, qmin, qmax, packed); }
void vitq_qgemm_quantize_pack_a_avx2(const float *a, int64_t lda, int64_t m, int64_t k,
                                     float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed) { vitq_qgemm_quantize_pack_a_ref(a, lda, m, k, scale, zero, qmin, qmax, packed); }
void vitq_softmax_quantize_pack_a_avx2(float *x, int64_t m, int64_t n, int64_t ld, float scale, int32_t zero,
                                       int32_t qmin, int32_t qmax, int32_t *packed) { vitq_softmax_quantize_pack_a_ref(x, m, n, ld, scale, zero, qmin, qmax, packed); }
void vitq_layernorm_quantize_pack_a_avx2(const float *x, const float *gamma, const float *beta, int64_t m, int64_t dim, float eps,
                                         float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed) { vitq_layernorm_quantize_pack_a_ref(x, gamma, beta, m, dim, eps, scale, zero, qmin, qmax, packed); }
void vitq_quantize_s8_avx2(const float *x, int8_t *q, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax) { vitq_quantize_s8_ref(x, q, n, scale, zero, qmin, qmax); }
void vitq_dequantize_s8_avx2(const int8_t *q, float *x, int64_t n, float scale, int32_t zero) { vitq_dequantize_s8_ref(q, x, n, scale, zero); }
void vitq_fake_quantize_f32_avx2(const float *x, float *y, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax) { vitq_fake_quantize_f32_ref(x, y, n, scale, zero, qmin, qmax); }
#endif
