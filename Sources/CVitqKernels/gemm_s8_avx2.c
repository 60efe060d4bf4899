// Integer GEMM, AVX2: a 6-row × 16-column micro-tile of vpmaddwd on int16 pairs (exact: pair sums
// of int16 products go straight to int32, no saturation), with the fp32 epilogue fused.
#include "vitq_kernels.h"
#include <string.h>

#define MR VITQ_QGEMM_MR
#define NR VITQ_QGEMM_NR
/// Column panels per block: the block of B (k × 64 int16 pairs) stays in L2 while every A panel passes it.
#define NC_PANELS 4

#if defined(__x86_64__)
#include "avx2_inline.h"

#define ROW_STEP(r, lo, hi) do { \
        const __m256i av = _mm256_set1_epi32(a[r]); \
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(av, b0)); \
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(av, b1)); \
    } while (0)

/// acc[r][0..15] = Σ_p A-panel row r · B-block column, over kp k pairs.
VITQ_AVX2 static void vitq_micro_6x16(const int32_t *a, const int16_t *b, int64_t kp, __m256i acc[MR][2]) {
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t p = 0; p < kp; p++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
        ROW_STEP(0, c00, c01);
        ROW_STEP(1, c10, c11);
        ROW_STEP(2, c20, c21);
        ROW_STEP(3, c30, c31);
        ROW_STEP(4, c40, c41);
        ROW_STEP(5, c50, c51);
        a += MR;
        b += NR * 2;
    }
    acc[0][0] = c00; acc[0][1] = c01; acc[1][0] = c10; acc[1][1] = c11; acc[2][0] = c20; acc[2][1] = c21;
    acc[3][0] = c30; acc[3][1] = c31; acc[4][0] = c40; acc[4][1] = c41; acc[5][0] = c50; acc[5][1] = c51;
}

/// The float epilogue for GELU, packed-A outputs and partial tiles: the float tile v = acc·scale + bias (columns
/// past nr are zero), GELU when asked, then the float rows (f) and/or the next GEMM's packed A (pa).
VITQ_AVX2 static void vitq_store_tile_fused(__m256i acc[MR][2], int64_t i0, int mr, int64_t j0, int nr, int64_t n,
                                            const vitq_qgemm_output *o) {
    float scale[NR] = {0}, bias[NR] = {0}, rowBias[NR] = {0};
    const float *sp = o->col_scale + j0, *bp = o->bias ? o->bias + j0 : bias, *rbp = o->row_bias ? o->row_bias + j0 : rowBias;
    if (nr < NR) {
        for (int j = 0; j < nr; j++) {
            scale[j] = sp[j];
            bias[j] = o->bias ? bp[j] : 0.0f;
            rowBias[j] = o->row_bias ? rbp[j] : 0.0f;
        }
        sp = scale; bp = bias; rbp = rowBias;
    }
    const __m256 s0 = _mm256_loadu_ps(sp), s1 = _mm256_loadu_ps(sp + 8);
    const __m256 z0 = _mm256_loadu_ps(bp), z1 = _mm256_loadu_ps(bp + 8);
    const __m256 rb0 = _mm256_loadu_ps(rbp), rb1 = _mm256_loadu_ps(rbp + 8);
    const int64_t kpOut = (n + 1) / 2, pairs = (nr + 1) / 2;
    int32_t *panel = o->pa ? o->pa + (i0 / MR) * kpOut * MR : 0;
    const __m256 inv = _mm256_set1_ps(1.0f / o->pa_scale), zq = _mm256_set1_ps((float)o->pa_zero);
    const __m256 lo = _mm256_set1_ps((float)o->pa_qmin), hi = _mm256_set1_ps((float)o->pa_qmax);
    int32_t words[MR][8];
    for (int r = 0; r < mr; r++) {
        float v[NR];
        __m256 v0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][0]), s0, z0);
        __m256 v1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][1]), s1, z1);
        if (o->row_scale) {
            const __m256 rs = _mm256_set1_ps(o->row_scale[i0 + r]);
            v0 = _mm256_fmadd_ps(v0, rs, rb0);
            v1 = _mm256_fmadd_ps(v1, rs, rb1);
        }
        if (o->gelu) { v0 = vitq_gelu256(v0); v1 = vitq_gelu256(v1); }
        _mm256_storeu_ps(v, v0);
        _mm256_storeu_ps(v + 8, v1);
        if (o->f) {
            // Whole tiles as two stores (a plain store does not read the cold output first).
            float *dst = o->f + (i0 + r) * o->ldf + j0;
            if (nr == NR && !o->accumulate) {
                _mm256_storeu_ps(dst, v0);
                _mm256_storeu_ps(dst + 8, v1);
            } else if (o->accumulate) {
                for (int j = 0; j < nr; j++) dst[j] += v[j];
            } else {
                for (int j = 0; j < nr; j++) dst[j] = v[j];
            }
        }
        if (panel) {
            for (int j = nr; j < NR; j++) v[j] = 0.0f;
            // Columns past nr quantize to the zero point, i.e. centred 0, so an odd n's last pair has hi = 0.
            _mm256_storeu_si256((__m256i *)words[r], vitq_centered16(v, inv, zq, lo, hi));
        }
    }
    if (panel) {
        // Pair word w of rows 0..MR-1 is contiguous in the packed A; rows past mr are padding (zero).
        for (int r = mr; r < MR; r++) memset(words[r], 0, sizeof words[r]);
        int32_t *d = panel + (j0 / 2) * MR;
        for (int w = 0; w < pairs; w++)
            for (int r = 0; r < MR; r++) d[w * MR + r] = words[r][w];
    }
}

/// Writes rows [0, mr) × columns [j0, j0 + nr) of the tile through the epilogue (also the
/// AVX-512 kernel's epilogue: its accumulators are the same integers).
VITQ_AVX2 void vitq_qgemm_store_tile_avx2(__m256i acc[MR][2], int64_t i0, int mr, int64_t j0, int nr, int64_t n,
                                      const vitq_qgemm_output *o) {
    if (o->c && nr == NR) {
        for (int r = 0; r < mr; r++) {
            int32_t *dst = o->c + (i0 + r) * o->ldc + j0;
            _mm256_storeu_si256((__m256i *)dst, acc[r][0]);
            _mm256_storeu_si256((__m256i *)(dst + 8), acc[r][1]);
        }
        return;
    }
    if (!o->c && !o->q && (o->gelu || o->pa || nr < NR)) {
        vitq_store_tile_fused(acc, i0, mr, j0, nr, n, o);
        return;
    }
    if (o->f && !o->q && nr == NR) {
        const __m256 s0 = _mm256_loadu_ps(o->col_scale + j0), s1 = _mm256_loadu_ps(o->col_scale + j0 + 8);
        const __m256 z0 = o->bias ? _mm256_loadu_ps(o->bias + j0) : _mm256_setzero_ps();
        const __m256 z1 = o->bias ? _mm256_loadu_ps(o->bias + j0 + 8) : _mm256_setzero_ps();
        const __m256 rb0 = o->row_bias ? _mm256_loadu_ps(o->row_bias + j0) : _mm256_setzero_ps();
        const __m256 rb1 = o->row_bias ? _mm256_loadu_ps(o->row_bias + j0 + 8) : _mm256_setzero_ps();
        for (int r = 0; r < mr; r++) {
            float *dst = o->f + (i0 + r) * o->ldf + j0;
            __m256 v0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][0]), s0, z0);
            __m256 v1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][1]), s1, z1);
            if (o->row_scale) {
                const __m256 rs = _mm256_set1_ps(o->row_scale[i0 + r]);
                v0 = _mm256_fmadd_ps(v0, rs, rb0);
                v1 = _mm256_fmadd_ps(v1, rs, rb1);
            }
            if (o->accumulate) {
                v0 = _mm256_add_ps(_mm256_loadu_ps(dst), v0);
                v1 = _mm256_add_ps(_mm256_loadu_ps(dst + 8), v1);
            }
            _mm256_storeu_ps(dst, v0);
            _mm256_storeu_ps(dst + 8, v1);
        }
        return;
    }
    int32_t tmp[NR];
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_si256((__m256i *)tmp, acc[r][0]);
        _mm256_storeu_si256((__m256i *)(tmp + 8), acc[r][1]);
        vitq_qgemm_store_row_ref(tmp, i0 + r, j0, nr, n, o);
    }
}

VITQ_AVX2 void vitq_qgemm_avx2(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                               const vitq_qgemm_output *out) {
    const int64_t kp = (k + 1) / 2, blocks = (n + NR - 1) / NR;
    __m256i acc[MR][2];
    for (int64_t jc = 0; jc < blocks; jc += NC_PANELS) {
        const int64_t jend = jc + NC_PANELS < blocks ? jc + NC_PANELS : blocks;
        for (int64_t i = 0; i < m; i += MR) {
            const int mr = (int)(m - i < MR ? m - i : MR);
            const int32_t *ap = pa + (i / MR) * kp * MR;
            for (int64_t jb = jc; jb < jend; jb++) {
                const int nr = (int)(n - jb * NR < NR ? n - jb * NR : NR);
                vitq_micro_6x16(ap, pb + jb * kp * NR * 2, kp, acc);
                vitq_qgemm_store_tile_avx2(acc, i, mr, jb * NR, nr, n, out);
            }
        }
    }
    vitq_qgemm_zero_pa_padding(out, m, n);
}
#else
void vitq_qgemm_avx2(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                     const vitq_qgemm_output *out) { vitq_qgemm_scalar(pa, pb, m, n, k, out); }
#endif
