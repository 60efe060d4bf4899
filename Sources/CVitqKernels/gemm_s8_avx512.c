// Integer GEMM, AVX-512 VNNI: vpdpwssd on zmm over the same packed operands as the AVX2 kernel.
// vpdpwssd adds the two int16×int16 products of each pair to an int32 lane without saturation,
// which is vpmaddwd followed by vpaddd in one instruction on 16 lanes: the accumulators are the
// same integers, so the shared AVX2 epilogue (vitq_qgemm_store_tile_avx2) gives the same bits.
// The micro-tile is 6 rows × 64 columns (four B blocks, 24 zmm accumulators), 6 × 16 at the edge.
#include "vitq_kernels.h"

#define MR VITQ_QGEMM_MR
#define NR VITQ_QGEMM_NR
/// Column blocks per wide tile; also the L2 block of B (k × 64 int16 pairs), as in the AVX2 kernel.
#define NC_PANELS 4

#if defined(__x86_64__)
#include "avx2_inline.h"

#define VITQ_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

/// acc[r][0..NP·16) = Σ_p A-panel row r · B columns, for NP consecutive B blocks (NP a constant).
#define MICRO_KERNEL(NP) \
VITQ_AVX512_VNNI static void vitq_micro_6x##NP(const int32_t *a, const int16_t *b, int64_t kp, int64_t blockStride, __m512i acc[MR][NC_PANELS]) { \
    __m512i c[MR][NP]; \
    for (int r = 0; r < MR; r++) for (int j = 0; j < NP; j++) c[r][j] = _mm512_setzero_si512(); \
    for (int64_t p = 0; p < kp; p++) { \
        __m512i bv[NP]; \
        for (int j = 0; j < NP; j++) bv[j] = _mm512_loadu_si512((const void *)(b + j * blockStride + p * NR * 2)); \
        for (int r = 0; r < MR; r++) { \
            const __m512i av = _mm512_set1_epi32(a[p * MR + r]); \
            for (int j = 0; j < NP; j++) c[r][j] = _mm512_dpwssd_epi32(c[r][j], av, bv[j]); \
        } \
    } \
    for (int r = 0; r < MR; r++) for (int j = 0; j < NP; j++) acc[r][j] = c[r][j]; \
}
MICRO_KERNEL(4)
MICRO_KERNEL(1)

/// Block jb's 6×16 accumulators (column j of acc) through the AVX2 epilogue.
VITQ_AVX512_VNNI static void vitq_store_block(__m512i acc[MR][NC_PANELS], int j, int64_t i0, int mr, int64_t jb, int64_t n,
                                              const vitq_qgemm_output *out) {
    __m256i halves[MR][2];
    for (int r = 0; r < MR; r++) {
        halves[r][0] = _mm512_castsi512_si256(acc[r][j]);
        halves[r][1] = _mm512_extracti64x4_epi64(acc[r][j], 1);
    }
    const int nr = (int)(n - jb * NR < NR ? n - jb * NR : NR);
    vitq_qgemm_store_tile_avx2(halves, i0, mr, jb * NR, nr, n, out);
}

VITQ_AVX512_VNNI void vitq_qgemm_avx512vnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                            const vitq_qgemm_output *out) {
    const int64_t kp = (k + 1) / 2, blocks = (n + NR - 1) / NR, blockStride = kp * NR * 2;
    __m512i acc[MR][NC_PANELS];
    for (int64_t jc = 0; jc < blocks; jc += NC_PANELS) {
        const int64_t jend = jc + NC_PANELS < blocks ? jc + NC_PANELS : blocks;
        for (int64_t i = 0; i < m; i += MR) {
            const int mr = (int)(m - i < MR ? m - i : MR);
            const int32_t *ap = pa + (i / MR) * kp * MR;
            if (jend - jc == NC_PANELS) {
                vitq_micro_6x4(ap, pb + jc * blockStride, kp, blockStride, acc);
                for (int j = 0; j < NC_PANELS; j++) vitq_store_block(acc, j, i, mr, jc + j, n, out);
            } else {
                for (int64_t jb = jc; jb < jend; jb++) {
                    vitq_micro_6x1(ap, pb + jb * blockStride, kp, blockStride, acc);
                    vitq_store_block(acc, 0, i, mr, jb, n, out);
                }
            }
        }
    }
    vitq_qgemm_zero_pa_padding(out, m, n);
}
#else
void vitq_qgemm_avx512vnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                           const vitq_qgemm_output *out) { vitq_qgemm_scalar(pa, pb, m, n, k, out); }
#endif
