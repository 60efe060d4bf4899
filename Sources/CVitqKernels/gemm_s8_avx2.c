// int8 GEMM AVX2 kernel on packed operands: 4 rows × 16 columns per micro-tile, vpmaddwd on int16
// pairs (exact: each pair sum of int8 products fits int16×int16→int32 with no saturation).
#include "vitq_kernels.h"

#define VITQ_NR 16

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define VITQ_AVX2 __attribute__((target("avx2,fma")))

/// Up to 4 rows (mr) × 16 columns; stores the first nr columns.
VITQ_AVX2 static inline void vitq_s8_tile(const int32_t *pa, int64_t kp, const int16_t *pb, int mr,
                                          int32_t *c, int64_t ldc, int nr) {
    __m256i acc[4][2];
    for (int r = 0; r < 4; r++) { acc[r][0] = _mm256_setzero_si256(); acc[r][1] = _mm256_setzero_si256(); }
    for (int64_t p = 0; p < kp; p++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(pb + p * 32));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(pb + p * 32 + 16));
        for (int r = 0; r < 4; r++) {
            if (r >= mr) break;
            const __m256i a = _mm256_set1_epi32(pa[r * kp + p]);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(a, b0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(a, b1));
        }
    }
    for (int r = 0; r < mr; r++) {
        if (nr == VITQ_NR) {
            _mm256_storeu_si256((__m256i *)(c + r * ldc), acc[r][0]);
            _mm256_storeu_si256((__m256i *)(c + r * ldc + 8), acc[r][1]);
        } else {
            int32_t tmp[VITQ_NR];
            _mm256_storeu_si256((__m256i *)tmp, acc[r][0]);
            _mm256_storeu_si256((__m256i *)(tmp + 8), acc[r][1]);
            memcpy(c + r * ldc, tmp, (size_t)nr * sizeof(int32_t));
        }
    }
}

VITQ_AVX2 void vitq_gemm_s8s8s32_packed_avx2(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                             int32_t *c, int64_t ldc) {
    const int64_t kp = (k + 1) / 2, blocks = (n + VITQ_NR - 1) / VITQ_NR;
    for (int64_t jb = 0; jb < blocks; jb++) {
        const int nr = (int)((n - jb * VITQ_NR) < VITQ_NR ? (n - jb * VITQ_NR) : VITQ_NR);
        const int16_t *bj = pb + jb * kp * VITQ_NR * 2;
        for (int64_t i = 0; i < m; i += 4) {
            const int mr = (int)((m - i) < 4 ? (m - i) : 4);
            vitq_s8_tile(pa + i * kp, kp, bj, mr, c + i * ldc + jb * VITQ_NR, ldc, nr);
        }
    }
}
#else
void vitq_gemm_s8s8s32_packed_avx2(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                   int32_t *c, int64_t ldc) { vitq_gemm_s8s8s32_packed_scalar(pa, pb, m, n, k, c, ldc); }
#endif
