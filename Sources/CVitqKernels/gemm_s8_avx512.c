// Integer GEMM, AVX-512 VNNI: vpdpwssd on zmm over the same packed operands as the AVX2 kernel.
// vpdpwssd adds the two int16×int16 products of each pair to an int32 lane without saturation,
// which is vpmaddwd followed by vpaddd in one instruction on 16 lanes: the accumulators are the
// same integers, so the shared AVX2 epilogue (vitq_qgemm_store_tile_avx2) gives the same bits.
// The micro-tile is 12 rows × 32 columns (two A panels, two B blocks: 24 zmm accumulators), less at the edges.
#include "vitq_kernels.h"

#define MR VITQ_QGEMM_MR
#define NR VITQ_QGEMM_NR
/// The L2 block of B (k × 64 int16 pairs) that every A panel passes, as in the AVX2 kernel.
#define NC_PANELS 4

#if defined(__x86_64__)
#include "avx2_inline.h"

#define VITQ_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

/// Accumulators of one tile: up to 2 A panels (12 rows) × 2 B blocks (32 columns).
#define TILE_PANELS 2
#define TILE_BLOCKS 2
typedef __m512i vitq_tile_acc[TILE_PANELS * MR][TILE_BLOCKS];

/// acc[r][j] = Σ_p A row r (RP panels from a) · B block j (NB blocks from b), RP and NB constants.
/// The B bytes read per multiply-add, the L2 traffic that bounds a 6-row tile, halve with 12 rows.
#define MICRO_KERNEL(RP, NB) \
VITQ_AVX512_VNNI static void vitq_micro_##RP##x##NB(const int32_t *a, int64_t panelStride, const int16_t *b, int64_t blockStride, \
                                                    int64_t kp, vitq_tile_acc acc) { \
    __m512i c[RP * MR][NB]; \
    for (int r = 0; r < RP * MR; r++) for (int j = 0; j < NB; j++) c[r][j] = _mm512_setzero_si512(); \
    for (int64_t p = 0; p < kp; p++) { \
        __m512i bv[NB]; \
        for (int j = 0; j < NB; j++) bv[j] = _mm512_loadu_si512((const void *)(b + j * blockStride + p * NR * 2)); \
        for (int r = 0; r < RP * MR; r++) { \
            const __m512i av = _mm512_set1_epi32(a[(r / MR) * panelStride + p * MR + r % MR]); \
            for (int j = 0; j < NB; j++) c[r][j] = _mm512_dpwssd_epi32(c[r][j], av, bv[j]); \
        } \
    } \
    for (int r = 0; r < RP * MR; r++) for (int j = 0; j < NB; j++) acc[r][j] = c[r][j]; \
}
MICRO_KERNEL(2, 2)
MICRO_KERNEL(2, 1)
MICRO_KERNEL(1, 2)
MICRO_KERNEL(1, 1)

/// The 6×16 accumulators of panel rp and block j of the tile through the AVX2 epilogue.
VITQ_AVX512_VNNI static void vitq_store_block(vitq_tile_acc acc, int rp, int j, int64_t i0, int mr, int64_t jb, int64_t n,
                                              const vitq_qgemm_output *out) {
    __m256i halves[MR][2];
    for (int r = 0; r < MR; r++) {
        halves[r][0] = _mm512_castsi512_si256(acc[rp * MR + r][j]);
        halves[r][1] = _mm512_extracti64x4_epi64(acc[rp * MR + r][j], 1);
    }
    const int nr = (int)(n - jb * NR < NR ? n - jb * NR : NR);
    vitq_qgemm_store_tile_avx2(halves, i0, mr, jb * NR, nr, n, out);
}

VITQ_AVX512_VNNI void vitq_qgemm_avx512vnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                            const vitq_qgemm_output *out) {
    const int64_t kp = (k + 1) / 2, blocks = (n + NR - 1) / NR, blockStride = kp * NR * 2, panelStride = kp * MR;
    const int64_t panels = (m + MR - 1) / MR;
    vitq_tile_acc acc;
    for (int64_t jc = 0; jc < blocks; jc += NC_PANELS) {
        const int64_t jend = jc + NC_PANELS < blocks ? jc + NC_PANELS : blocks;
        for (int64_t ip = 0; ip < panels; ip += TILE_PANELS) {
            const int rp = panels - ip >= TILE_PANELS ? TILE_PANELS : 1;
            const int32_t *ap = pa + ip * panelStride;
            for (int64_t jb = jc; jb < jend; jb += TILE_BLOCKS) {
                const int nb = jend - jb >= TILE_BLOCKS ? TILE_BLOCKS : 1;
                const int16_t *bp = pb + jb * blockStride;
                if (rp == 2 && nb == 2) vitq_micro_2x2(ap, panelStride, bp, blockStride, kp, acc);
                else if (rp == 2) vitq_micro_2x1(ap, panelStride, bp, blockStride, kp, acc);
                else if (nb == 2) vitq_micro_1x2(ap, panelStride, bp, blockStride, kp, acc);
                else vitq_micro_1x1(ap, panelStride, bp, blockStride, kp, acc);
                for (int r = 0; r < rp; r++) {
                    const int64_t i0 = (ip + r) * MR;
                    const int mr = (int)(m - i0 < MR ? m - i0 : MR);
                    for (int j = 0; j < nb; j++) vitq_store_block(acc, r, j, i0, mr, jb + j, n, out);
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
