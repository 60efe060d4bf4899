// Integer GEMM, AVX-VNNI (VEX vpdpbusd / vpdpwssd on ymm: CPUs with AVX-VNNI and no AVX-512, such
// as Intel Alder Lake; on an AVX-512 machine VITQ_ISA=avxvnni selects it). The same two exact paths
// as the AVX-512 kernel (gemm_s8_avx512.c), over the same operand forms: u8 A quads (a + c), s8 B
// quads and column sums, the accumulators less c · colsum; int16 pairs with vpdpwssd when A spans
// more than 256 values or B is beyond int8. The micro-tile is 6 rows × 16 columns (12 ymm
// accumulators), finished by the shared AVX2 epilogue (vitq_qgemm_store_tile_avx2). The quads
// are made by plain C here (vitq_qgemm_pack_b_quads_portable), equal to the AVX-512 repacking.
#include "vitq_kernels.h"
#include "quads_inline.h"

#define MR VITQ_QGEMM_MR
#define NR VITQ_QGEMM_NR
/// The L2 block of B (4 blocks of 16 columns) that every A panel passes, as in the AVX2 kernel.
#define NC_PANELS 4

int64_t vitq_qgemm_b_quads_size(int64_t n, int64_t k) {
    const int64_t kq = ((k + 1) / 2 + 1) / 2, blocks = (n + NR - 1) / NR;
    return blocks * kq * NR + blocks * NR;
}

/// Minimum and maximum of n int16 values.
static void vitq_range_s16_portable(const int16_t *v, int64_t n, int32_t *lo, int32_t *hi) {
    int32_t l = INT16_MAX, h = INT16_MIN;
    for (int64_t i = 0; i < n; i++) { l = v[i] < l ? v[i] : l; h = v[i] > h ? v[i] : h; }
    *lo = l;
    *hi = h;
}

int vitq_qgemm_pack_b_quads_portable(const int16_t *pb, int64_t n, int64_t k, int32_t *quads) {
    const int64_t kp = (k + 1) / 2, kq = (kp + 1) / 2, blocks = (n + NR - 1) / NR;
    int32_t lo, hi;
    vitq_range_s16_portable(pb, blocks * kp * NR * 2, &lo, &hi);
    if (lo < -128 || hi > 127) return 0;
    int32_t *colsum = quads + blocks * kq * NR;
    for (int64_t jb = 0; jb < blocks; jb++) {
        const int16_t *src = pb + jb * kp * NR * 2;
        int32_t *dst = quads + jb * kq * NR;
        for (int t = 0; t < NR; t++) {
            int32_t sum = 0;
            for (int64_t q = 0; q < kq; q++) {
                const int16_t *x = src + 2 * q * NR * 2 + 2 * t;
                const int16_t *y = 2 * q + 1 < kp ? src + (2 * q + 1) * NR * 2 + 2 * t : NULL;
                const int16_t v0 = x[0], v1 = x[1], v2 = y ? y[0] : 0, v3 = y ? y[1] : 0;
                sum += v0 + v1 + v2 + v3;
                dst[q * NR + t] = (int32_t)((uint32_t)(uint8_t)v0 | (uint32_t)(uint8_t)v1 << 8
                                            | (uint32_t)(uint8_t)v2 << 16 | (uint32_t)(uint8_t)v3 << 24);
            }
            colsum[jb * NR + t] = sum;
        }
    }
    return 1;
}

#if defined(__x86_64__)
#include "avx2_inline.h"

#define VITQ_AVX_VNNI __attribute__((target("avxvnni,avx2,fma")))

/// acc[r][h] (6 rows, two 8-column halves) = Σ_s A row r · B block over `steps` k steps (pairs for
/// vpdpwssd, quads for vpdpbusd). Unrolled by pragma so the accumulators stay in registers at -O2.
#define UNROLL _Pragma("clang loop unroll(full)")
#define MICRO_KERNEL(NAME, OP) \
VITQ_AVX_VNNI static void NAME(const int32_t *a, const void *b, int64_t steps, __m256i acc[MR][2]) { \
    const char *bb = (const char *)b; \
    __m256i c[MR][2]; \
    UNROLL for (int r = 0; r < MR; r++) { c[r][0] = _mm256_setzero_si256(); c[r][1] = _mm256_setzero_si256(); } \
    for (int64_t p = 0; p < steps; p++) { \
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bb + p * 64)); \
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bb + p * 64 + 32)); \
        UNROLL for (int r = 0; r < MR; r++) { \
            const __m256i av = _mm256_set1_epi32(a[p * MR + r]); \
            c[r][0] = OP(c[r][0], av, b0); \
            c[r][1] = OP(c[r][1], av, b1); \
        } \
    } \
    UNROLL for (int r = 0; r < MR; r++) { acc[r][0] = c[r][0]; acc[r][1] = c[r][1]; } \
}
MICRO_KERNEL(vitq_micro_wssd_ymm, _mm256_dpwssd_avx_epi32)
MICRO_KERNEL(vitq_micro_busd_ymm, _mm256_dpbusd_avx_epi32)

typedef void (*vitq_micro_ymm_fn)(const int32_t *, const void *, int64_t, __m256i[MR][2]);

/// The blocked loops over 6×16 tiles: `steps` k steps (64 B bytes per block and step, MR A words
/// per panel and step), each accumulator less c·colsum[j] when colsum is set, then the epilogue.
VITQ_AVX_VNNI static void vitq_qgemm_tiles_ymm(const int32_t *pa, const void *pb, int64_t m, int64_t n, int64_t steps,
                                               vitq_micro_ymm_fn micro, const int32_t *colsum, int32_t c,
                                               const vitq_qgemm_output *out) {
    const int64_t blocks = (n + NR - 1) / NR, blockStride = steps * 64, panelStride = steps * MR;
    const int64_t panels = (m + MR - 1) / MR;
    const __m256i cv = _mm256_set1_epi32(c);
    __m256i acc[MR][2];
    for (int64_t jc = 0; jc < blocks; jc += NC_PANELS) {
        const int64_t jend = jc + NC_PANELS < blocks ? jc + NC_PANELS : blocks;
        for (int64_t ip = 0; ip < panels; ip++) {
            const int64_t i0 = ip * MR;
            const int mr = (int)(m - i0 < MR ? m - i0 : MR);
            for (int64_t jb = jc; jb < jend; jb++) {
                micro(pa + ip * panelStride, (const char *)pb + jb * blockStride, steps, acc);
                if (colsum) {
                    const __m256i c0 = _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(colsum + jb * NR)), cv);
                    const __m256i c1 = _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(colsum + jb * NR + 8)), cv);
                    for (int r = 0; r < MR; r++) {
                        acc[r][0] = _mm256_sub_epi32(acc[r][0], c0);
                        acc[r][1] = _mm256_sub_epi32(acc[r][1], c1);
                    }
                }
                const int nr = (int)(n - jb * NR < NR ? n - jb * NR : NR);
                vitq_qgemm_store_tile_avx2(acc, i0, mr, jb * NR, nr, n, out);
            }
        }
    }
}

/// A panels of int16 pairs (panels × kp steps × MR words) → u8 quads (kq = ⌈kp/2⌉ steps × MR
/// words), each value + c: word (q, r) takes the pairs of steps 2q and 2q+1 of row r.
static void vitq_repack_a_u8_portable(const int32_t *pa, int64_t panels, int64_t kp, int32_t c, int32_t *qa) {
    const int64_t kq = (kp + 1) / 2;
    for (int64_t ip = 0; ip < panels; ip++) {
        const int32_t *src = pa + ip * kp * MR;
        int32_t *dst = qa + ip * kq * MR;
        for (int64_t q = 0; q < kq; q++) {
            const int32_t *e = src + 2 * q * MR, *o = e + MR;
            for (int r = 0; r < MR; r++) dst[q * MR + r] = vitq_quad_word((uint32_t)e[r], 2 * q + 1 < kp ? (uint32_t)o[r] : 0u, c);
        }
    }
}

static const vitq_quad_forms vitq_forms_portable = {vitq_range_s16_portable, vitq_qgemm_pack_b_quads_portable, vitq_repack_a_u8_portable};

VITQ_AVX_VNNI void vitq_qgemm_avxvnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                      const vitq_qgemm_output *out) {
    const int64_t kp = (k + 1) / 2, kq = (kp + 1) / 2, blocks = (n + NR - 1) / NR;
    const int32_t *qa, *qb;
    int32_t c;
    if (vitq_quad_operands(&vitq_forms_portable, pa, pb, m, n, k, out, &qa, &qb, &c)) {
        vitq_qgemm_tiles_ymm(qa, qb, m, n, kq, vitq_micro_busd_ymm, qb + blocks * kq * NR, c, out);
    } else {
        vitq_qgemm_tiles_ymm(pa, pb, m, n, kp, vitq_micro_wssd_ymm, NULL, 0, out);
    }
    vitq_qgemm_zero_pa_padding(out, m, n);
}
#else
void vitq_qgemm_avxvnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                        const vitq_qgemm_output *out) { vitq_qgemm_scalar(pa, pb, m, n, k, out); }
#endif
