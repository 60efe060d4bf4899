// Twin uniform quantization (PTQ4ViT, ALGORITHMS.md §3): encode, decode, fake-quantize, the
// quantize-and-pack of an A operand into its R1 and R2 parts, and the shift-and-add epilogue.
// The AVX2 variants use the same multiplies, round-half-to-even, comparisons and clamp order
// (min/max written as _mm256_min_ps/_mm256_max_ps define them), so they equal the references bit
// for bit, NaN included.
#include "vitq_kernels.h"
#include <math.h>

#define MR VITQ_QGEMM_MR

/// The derived constants of one quantizer.
typedef struct vitq_twin_consts { float d1, d2, inv1, inv2, qmax; int32_t half; } vitq_twin_consts;

static inline vitq_twin_consts vitq_twin_prepare(vitq_twin_params p) {
    vitq_twin_consts c;
    c.d1 = p.delta1; c.d2 = ldexpf(p.delta1, p.shift);
    c.inv1 = 1.0f / c.d1; c.inv2 = 1.0f / c.d2;
    c.half = 1 << (p.bits - 1); c.qmax = (float)(c.half - 1);
    return c;
}

/// max and min with the semantics of _mm256_max_ps(a, b) and _mm256_min_ps(a, b).
static inline float vitq_twin_max(float a, float b) { return a > b ? a : b; }
static inline float vitq_twin_min(float a, float b) { return a < b ? a : b; }

/// One value's R1 integer `lo` (0 when in R2), R2 magnitude `hi` (0 when in R1); returns the range flag.
static inline int vitq_twin_split(float x, int32_t kind, const vitq_twin_consts *c, float *lo, float *hi) {
    if (kind == VITQ_TWIN_GELU) {
        if (x < 0) {
            *lo = 0.0f - vitq_twin_min(vitq_twin_max(nearbyintf(-x * c->inv1), 0.0f), c->qmax);
            *hi = 0.0f;
            return 0;
        }
    } else {
        const float t = nearbyintf(x * c->inv1);
        if (t <= c->qmax) { *lo = vitq_twin_max(t, 0.0f); *hi = 0.0f; return 0; }
    }
    *lo = 0.0f;
    *hi = vitq_twin_min(vitq_twin_max(nearbyintf(x * c->inv2), 0.0f), c->qmax);
    return 1;
}

void vitq_twin_encode_ref(const float *x, uint8_t *codes, int64_t n, vitq_twin_params p) {
    const vitq_twin_consts c = vitq_twin_prepare(p);
    for (int64_t i = 0; i < n; i++) {
        float lo, hi;
        const int flag = vitq_twin_split(x[i], p.kind, &c, &lo, &hi);
        codes[i] = (uint8_t)(flag ? c.half + (int32_t)hi : (int32_t)fabsf(lo));
    }
}

void vitq_twin_decode_ref(const uint8_t *codes, float *x, int64_t n, vitq_twin_params p) {
    const vitq_twin_consts c = vitq_twin_prepare(p);
    for (int64_t i = 0; i < n; i++) {
        const float mag = (float)(codes[i] & (c.half - 1));
        if (codes[i] & c.half) x[i] = mag * c.d2;
        else x[i] = (p.kind == VITQ_TWIN_GELU ? 0.0f - mag : mag) * c.d1;
    }
}

void vitq_twin_fake_quantize_ref(const float *x, float *y, int64_t n, vitq_twin_params p) {
    const vitq_twin_consts c = vitq_twin_prepare(p);
    for (int64_t i = 0; i < n; i++) {
        float lo, hi;
        y[i] = vitq_twin_split(x[i], p.kind, &c, &lo, &hi) ? hi * c.d2 : lo * c.d1;
    }
}

static inline int32_t vitq_twin_pair(float a, float b) {
    return (int32_t)(((uint32_t)(uint16_t)(int16_t)(int32_t)b << 16) | (uint16_t)(int16_t)(int32_t)a);
}

void vitq_twin_quantize_pack_a_ref(const float *a, int64_t lda, int64_t m, int64_t k, vitq_twin_params p,
                                   int32_t *lo, int32_t *hi) {
    const vitq_twin_consts c = vitq_twin_prepare(p);
    const int64_t kp = (k + 1) / 2, mp = (m + MR - 1) / MR * MR;
    for (int64_t i = 0; i < mp; i++) {
        const int64_t at = (i / MR) * kp * MR + i % MR;
        for (int64_t q = 0; q < kp; q++) {
            float l0 = 0, h0 = 0, l1 = 0, h1 = 0;
            if (i < m) {
                vitq_twin_split(a[i * lda + 2 * q], p.kind, &c, &l0, &h0);
                if (2 * q + 1 < k) vitq_twin_split(a[i * lda + 2 * q + 1], p.kind, &c, &l1, &h1);
            }
            lo[at + q * MR] = vitq_twin_pair(l0, l1);
            hi[at + q * MR] = vitq_twin_pair(h0, h1);
        }
    }
}

void vitq_twin_combine_ref(const int32_t *c_lo, const int32_t *c_hi, int64_t ldc, int64_t m, int64_t n, int32_t shift,
                           const float *col_scale, const float *bias, float *f, int64_t ldf) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            const int64_t acc = (int64_t)c_lo[i * ldc + j] + (int64_t)c_hi[i * ldc + j] * ((int64_t)1 << shift);
            f[i * ldf + j] = fmaf((float)acc, col_scale[j], bias ? bias[j] : 0.0f);
        }
}

#if defined(__x86_64__)
#include "avx2_inline.h"

typedef struct vitq_twin_consts8 { __m256 d1, d2, inv1, inv2, qmax, halfF; int gelu; } vitq_twin_consts8;

VITQ_AVX2 static inline vitq_twin_consts8 vitq_twin_prepare8(vitq_twin_params p) {
    const vitq_twin_consts c = vitq_twin_prepare(p);
    vitq_twin_consts8 v;
    v.d1 = _mm256_set1_ps(c.d1); v.d2 = _mm256_set1_ps(c.d2);
    v.inv1 = _mm256_set1_ps(c.inv1); v.inv2 = _mm256_set1_ps(c.inv2);
    v.qmax = _mm256_set1_ps(c.qmax); v.halfF = _mm256_set1_ps((float)c.half);
    v.gelu = p.kind == VITQ_TWIN_GELU;
    return v;
}

#define VITQ_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/// vitq_twin_split on eight lanes; returns the R2 flag as an all-ones mask.
VITQ_AVX2 static inline __m256 vitq_twin_split8(__m256 x, const vitq_twin_consts8 *c, __m256 *lo, __m256 *hi) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 t2 = _mm256_min_ps(_mm256_max_ps(_mm256_round_ps(_mm256_mul_ps(x, c->inv2), VITQ_RNE), zero), c->qmax);
    __m256 flag;
    if (c->gelu) {
        const __m256 negx = _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
        const __m256 t1 = _mm256_min_ps(_mm256_max_ps(_mm256_round_ps(_mm256_mul_ps(negx, c->inv1), VITQ_RNE), zero), c->qmax);
        flag = _mm256_cmp_ps(x, zero, _CMP_NLT_UQ);
        *lo = _mm256_andnot_ps(flag, _mm256_sub_ps(zero, t1));
    } else {
        const __m256 t1 = _mm256_round_ps(_mm256_mul_ps(x, c->inv1), VITQ_RNE);
        flag = _mm256_cmp_ps(t1, c->qmax, _CMP_NLE_UQ);
        *lo = _mm256_andnot_ps(flag, _mm256_max_ps(t1, zero));
    }
    *hi = _mm256_and_ps(flag, t2);
    return flag;
}

/// Codes of eight values as int32 lanes.
VITQ_AVX2 static inline __m256i vitq_twin_codes8(const float *x, const vitq_twin_consts8 *c) {
    __m256 lo, hi;
    const __m256 flag = vitq_twin_split8(_mm256_loadu_ps(x), c, &lo, &hi);
    const __m256 mag = _mm256_blendv_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), lo), hi, flag);
    return _mm256_cvtps_epi32(_mm256_add_ps(mag, _mm256_and_ps(flag, c->halfF)));
}

VITQ_AVX2 void vitq_twin_encode_avx2(const float *x, uint8_t *codes, int64_t n, vitq_twin_params p) {
    const vitq_twin_consts8 c = vitq_twin_prepare8(p);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = vitq_twin_codes8(x + i, &c), b = vitq_twin_codes8(x + i + 8, &c);
        // int32 → int16 → uint8 (codes are in [0, 255], so the saturating packs are exact); fix lane order.
        const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
        _mm_storeu_si128((__m128i *)(codes + i), _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
    }
    vitq_twin_encode_ref(x + i, codes + i, n - i, p);
}

VITQ_AVX2 void vitq_twin_decode_avx2(const uint8_t *codes, float *x, int64_t n, vitq_twin_params p) {
    const vitq_twin_consts8 c = vitq_twin_prepare8(p);
    const int32_t half = 1 << (p.bits - 1);
    const __m256i halfI = _mm256_set1_epi32(half), magMask = _mm256_set1_epi32(half - 1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(codes + i)));
        const __m256 flag = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(v, halfI), halfI));
        const __m256 mag = _mm256_cvtepi32_ps(_mm256_and_si256(v, magMask));
        const __m256 lo = c.gelu ? _mm256_sub_ps(_mm256_setzero_ps(), mag) : mag;
        _mm256_storeu_ps(x + i, _mm256_blendv_ps(_mm256_mul_ps(lo, c.d1), _mm256_mul_ps(mag, c.d2), flag));
    }
    vitq_twin_decode_ref(codes + i, x + i, n - i, p);
}

VITQ_AVX2 void vitq_twin_fake_quantize_avx2(const float *x, float *y, int64_t n, vitq_twin_params p) {
    const vitq_twin_consts8 c = vitq_twin_prepare8(p);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 lo, hi;
        const __m256 flag = vitq_twin_split8(_mm256_loadu_ps(x + i), &c, &lo, &hi);
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(_mm256_mul_ps(lo, c.d1), _mm256_mul_ps(hi, c.d2), flag));
    }
    vitq_twin_fake_quantize_ref(x + i, y + i, n - i, p);
}

/// Sixteen floats → the R1 and R2 parts as eight int32 pair words each, in order.
VITQ_AVX2 static inline void vitq_twin_pairs16(const float *x, const vitq_twin_consts8 *c, __m256i *lo, __m256i *hi) {
    __m256 l0, h0, l1, h1;
    vitq_twin_split8(_mm256_loadu_ps(x), c, &l0, &h0);
    vitq_twin_split8(_mm256_loadu_ps(x + 8), c, &l1, &h1);
    *lo = _mm256_permute4x64_epi64(_mm256_packs_epi32(_mm256_cvtps_epi32(l0), _mm256_cvtps_epi32(l1)), 0xD8);
    *hi = _mm256_permute4x64_epi64(_mm256_packs_epi32(_mm256_cvtps_epi32(h0), _mm256_cvtps_epi32(h1)), 0xD8);
}

/// Per row, 16 floats at a time become 8 pair words in each buffer, stored at the panel stride MR;
/// the odd tail goes through the reference on a one-row scratch panel; padding rows are zero.
VITQ_AVX2 void vitq_twin_quantize_pack_a_avx2(const float *a, int64_t lda, int64_t m, int64_t k, vitq_twin_params p,
                                              int32_t *lo, int32_t *hi) {
    const vitq_twin_consts8 c = vitq_twin_prepare8(p);
    const int64_t kp = (k + 1) / 2, full = k / 16;
    for (int64_t i = 0; i < m; i++) {
        const float *row = a + i * lda;
        const int64_t at = (i / MR) * kp * MR + i % MR;
        for (int64_t b = 0; b < full; b++) {
            __m256i l, h;
            vitq_twin_pairs16(row + 16 * b, &c, &l, &h);
            int32_t wl[8], wh[8];
            _mm256_storeu_si256((__m256i *)wl, l);
            _mm256_storeu_si256((__m256i *)wh, h);
            for (int w = 0; w < 8; w++) {
                lo[at + (8 * b + w) * MR] = wl[w];
                hi[at + (8 * b + w) * MR] = wh[w];
            }
        }
        if (16 * full < k) {
            const int64_t rest = k - 16 * full, rp = (rest + 1) / 2;
            int32_t tl[8 * MR], th[8 * MR];
            vitq_twin_quantize_pack_a_ref(row + 16 * full, lda, 1, rest, p, tl, th);
            for (int64_t w = 0; w < rp; w++) {
                lo[at + (8 * full + w) * MR] = tl[w * MR];
                hi[at + (8 * full + w) * MR] = th[w * MR];
            }
        }
    }
    for (int64_t i = m; i % MR != 0; i++) {
        const int64_t at = (i / MR) * kp * MR + i % MR;
        for (int64_t q = 0; q < kp; q++) lo[at + q * MR] = hi[at + q * MR] = 0;
    }
}

/// The sum lo + hi·2^shift is formed exactly in double (|hi·2^shift| ≤ 2^51, |lo| < 2^31), and
/// _mm256_cvtpd_ps rounds it to float once, to nearest even: the same float as (float)int64.
VITQ_AVX2 void vitq_twin_combine_avx2(const int32_t *c_lo, const int32_t *c_hi, int64_t ldc, int64_t m, int64_t n, int32_t shift,
                                      const float *col_scale, const float *bias, float *f, int64_t ldf) {
    const __m256d pow2 = _mm256_set1_pd(ldexp(1.0, shift));
    const int64_t full = n / 8 * 8;
    for (int64_t i = 0; i < m; i++) {
        const int32_t *rl = c_lo + i * ldc, *rh = c_hi + i * ldc;
        float *out = f + i * ldf;
        for (int64_t j = 0; j < full; j += 8) {
            const __m256i l = _mm256_loadu_si256((const __m256i *)(rl + j)), h = _mm256_loadu_si256((const __m256i *)(rh + j));
            const __m256d s0 = _mm256_add_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(h)), pow2),
                                             _mm256_cvtepi32_pd(_mm256_castsi256_si128(l)));
            const __m256d s1 = _mm256_add_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(h, 1)), pow2),
                                             _mm256_cvtepi32_pd(_mm256_extracti128_si256(l, 1)));
            const __m256 acc = _mm256_set_m128(_mm256_cvtpd_ps(s1), _mm256_cvtpd_ps(s0));
            const __m256 b = bias ? _mm256_loadu_ps(bias + j) : _mm256_setzero_ps();
            _mm256_storeu_ps(out + j, _mm256_fmadd_ps(acc, _mm256_loadu_ps(col_scale + j), b));
        }
        if (full < n)
            vitq_twin_combine_ref(rl + full, rh + full, ldc, 1, n - full, shift, col_scale + full, bias ? bias + full : 0,
                                  out + full, ldf);
    }
}
#else
void vitq_twin_encode_avx2(const float *x, uint8_t *codes, int64_t n, vitq_twin_params p) { vitq_twin_encode_ref(x, codes, n, p); }
void vitq_twin_decode_avx2(const uint8_t *codes, float *x, int64_t n, vitq_twin_params p) { vitq_twin_decode_ref(codes, x, n, p); }
void vitq_twin_fake_quantize_avx2(const float *x, float *y, int64_t n, vitq_twin_params p) { vitq_twin_fake_quantize_ref(x, y, n, p); }
void vitq_twin_quantize_pack_a_avx2(const float *a, int64_t lda, int64_t m, int64_t k, vitq_twin_params p,
                                    int32_t *lo, int32_t *hi) { vitq_twin_quantize_pack_a_ref(a, lda, m, k, p, lo, hi); }
void vitq_twin_combine_avx2(const int32_t *c_lo, const int32_t *c_hi, int64_t ldc, int64_t m, int64_t n, int32_t shift,
                            const float *col_scale, const float *bias, float *f, int64_t ldf) {
    vitq_twin_combine_ref(c_lo, c_hi, ldc, m, n, shift, col_scale, bias, f, ldf);
}
#endif
