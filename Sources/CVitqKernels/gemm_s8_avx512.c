// Integer GEMM, AVX-512 VNNI. Two exact paths over the same packed int16-pair operands:
//  - vpdpbusd (u8 × s8, four products per int32 lane, no int16 step): used when the A values of
//    the call span at most 256 integers and every B value is an int8. Each call repacks its A rows
//    into u8 quads u = a + c (c = −min a) and B into s8 quads with its column sums, runs the
//    kernel, and subtracts c · colsum(B) from every accumulator: Σ(u − c)·b = Σ a·b exactly
//    (int32 wraparound is exact because the true sum fits in int32). A weight's B form can be made
//    once (vitq_qgemm_pack_b_quads) and passed in vitq_qgemm_output.b_quads.
//  - vpdpwssd (int16 pairs, the AVX2 kernel's vpmaddwd + vpaddd in one instruction) otherwise.
// Both give the integers of the reference, so the shared AVX2 epilogue (vitq_qgemm_store_tile_avx2)
// gives the same bits. The micro-tile is 12 rows × 32 columns (two A panels, two B blocks:
// 24 zmm accumulators), less at the edges.
#include "vitq_kernels.h"

#define MR VITQ_QGEMM_MR
#define NR VITQ_QGEMM_NR
/// The L2 block of B (4 blocks of 16 columns) that every A panel passes, as in the AVX2 kernel.
#define NC_PANELS 4

#if defined(__x86_64__)
#include "avx2_inline.h"
#include "quads_inline.h"

#define VITQ_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

/// Accumulators of one tile: up to 2 A panels (12 rows) × 2 B blocks (32 columns).
#define TILE_PANELS 2
#define TILE_BLOCKS 2
typedef __m512i vitq_tile_acc[TILE_PANELS * MR][TILE_BLOCKS];

/// acc[r][j] = Σ_s A row r (RP panels from a) · B block j (NB blocks from b) over `steps` k steps
/// (pairs for vpdpwssd, quads for vpdpbusd), RP and NB constants. Every step of A is one int32
/// word per row; every step of B one zmm per block.
/// The r and j loops must be unrolled so that the accumulators live in registers: clang unrolls them
/// at -O3 by itself but not at SwiftPM's -O2, hence the pragmas.
#define UNROLL _Pragma("clang loop unroll(full)")
#define MICRO_KERNEL(NAME, OP, RP, NB) \
VITQ_AVX512_VNNI static void NAME##_##RP##x##NB(const int32_t *a, int64_t panelStride, const void *b, int64_t blockStride, \
                                                int64_t steps, vitq_tile_acc acc) { \
    const char *bb = (const char *)b; \
    __m512i c[RP * MR][NB]; \
    UNROLL for (int r = 0; r < RP * MR; r++) UNROLL for (int j = 0; j < NB; j++) c[r][j] = _mm512_setzero_si512(); \
    for (int64_t p = 0; p < steps; p++) { \
        __m512i bv[NB]; \
        UNROLL for (int j = 0; j < NB; j++) bv[j] = _mm512_loadu_si512((const void *)(bb + j * blockStride + p * 64)); \
        UNROLL for (int r = 0; r < RP * MR; r++) { \
            const __m512i av = _mm512_set1_epi32(a[(r / MR) * panelStride + p * MR + r % MR]); \
            UNROLL for (int j = 0; j < NB; j++) c[r][j] = OP(c[r][j], av, bv[j]); \
        } \
    } \
    UNROLL for (int r = 0; r < RP * MR; r++) UNROLL for (int j = 0; j < NB; j++) acc[r][j] = c[r][j]; \
}
#define MICRO_KERNELS(NAME, OP) MICRO_KERNEL(NAME, OP, 2, 2) MICRO_KERNEL(NAME, OP, 2, 1) \
                                MICRO_KERNEL(NAME, OP, 1, 2) MICRO_KERNEL(NAME, OP, 1, 1)
MICRO_KERNELS(vitq_micro_wssd, _mm512_dpwssd_epi32)
MICRO_KERNELS(vitq_micro_busd, _mm512_dpbusd_epi32)

typedef void (*vitq_micro_fn)(const int32_t *, int64_t, const void *, int64_t, int64_t, vitq_tile_acc);
/// The four tile shapes of one instruction, indexed [rp == 2][nb == 2].
typedef struct { vitq_micro_fn shape[2][2]; } vitq_micro_set;
static const vitq_micro_set vitq_wssd = {{{vitq_micro_wssd_1x1, vitq_micro_wssd_1x2}, {vitq_micro_wssd_2x1, vitq_micro_wssd_2x2}}};
static const vitq_micro_set vitq_busd = {{{vitq_micro_busd_1x1, vitq_micro_busd_1x2}, {vitq_micro_busd_2x1, vitq_micro_busd_2x2}}};

/// The 6×16 accumulators of panel rp and block j of the tile, less c·colsum when colsum is set,
/// through the AVX2 epilogue.
VITQ_AVX512_VNNI static void vitq_store_block(vitq_tile_acc acc, int rp, int j, int64_t i0, int mr, int64_t jb, int64_t n,
                                              const int32_t *colsum, int32_t c, const vitq_qgemm_output *out) {
    const __m512i corr = colsum ? _mm512_mullo_epi32(_mm512_loadu_si512((const void *)(colsum + jb * NR)), _mm512_set1_epi32(c))
                                : _mm512_setzero_si512();
    __m256i halves[MR][2];
    for (int r = 0; r < MR; r++) {
        const __m512i v = _mm512_sub_epi32(acc[rp * MR + r][j], corr);
        halves[r][0] = _mm512_castsi512_si256(v);
        halves[r][1] = _mm512_extracti64x4_epi64(v, 1);
    }
    const int nr = (int)(n - jb * NR < NR ? n - jb * NR : NR);
    vitq_qgemm_store_tile_avx2(halves, i0, mr, jb * NR, nr, n, out);
}

/// The blocked loops over tiles: `steps` k steps (64 B bytes per block and step, MR A words per panel
/// and step), each accumulator less c·colsum[j] when colsum is set, then the epilogue.
VITQ_AVX512_VNNI static void vitq_qgemm_tiles(const int32_t *pa, const void *pb, int64_t m, int64_t n, int64_t steps,
                                              const vitq_micro_set *micro, const int32_t *colsum, int32_t c,
                                              const vitq_qgemm_output *out) {
    const int64_t blocks = (n + NR - 1) / NR, blockStride = steps * 64, panelStride = steps * MR;
    const int64_t panels = (m + MR - 1) / MR;
    vitq_tile_acc acc;
    for (int64_t jc = 0; jc < blocks; jc += NC_PANELS) {
        const int64_t jend = jc + NC_PANELS < blocks ? jc + NC_PANELS : blocks;
        for (int64_t ip = 0; ip < panels; ip += TILE_PANELS) {
            const int rp = panels - ip >= TILE_PANELS ? TILE_PANELS : 1;
            const int32_t *ap = pa + ip * panelStride;
            for (int64_t jb = jc; jb < jend; jb += TILE_BLOCKS) {
                const int nb = jend - jb >= TILE_BLOCKS ? TILE_BLOCKS : 1;
                micro->shape[rp == 2][nb == 2](ap, panelStride, (const char *)pb + jb * blockStride, blockStride, steps, acc);
                for (int r = 0; r < rp; r++) {
                    const int64_t i0 = (ip + r) * MR;
                    const int mr = (int)(m - i0 < MR ? m - i0 : MR);
                    for (int j = 0; j < nb; j++) vitq_store_block(acc, r, j, i0, mr, jb + j, n, colsum, c, out);
                }
            }
        }
    }
}

// MARK: repacking for vpdpbusd

/// Minimum and maximum of n int16 values.
VITQ_AVX512_VNNI static void vitq_range_s16(const int16_t *v, int64_t n, int32_t *lo, int32_t *hi) {
    __m512i mn = _mm512_set1_epi16(INT16_MAX), mx = _mm512_set1_epi16(INT16_MIN);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512i x = _mm512_loadu_si512((const void *)(v + i));
        mn = _mm512_min_epi16(mn, x);
        mx = _mm512_max_epi16(mx, x);
    }
    int16_t a[32], b[32];
    _mm512_storeu_si512((void *)a, mn);
    _mm512_storeu_si512((void *)b, mx);
    int32_t l = INT16_MAX, h = INT16_MIN;
    for (int t = 0; t < 32; t++) { l = a[t] < l ? a[t] : l; h = b[t] > h ? b[t] : h; }
    for (; i < n; i++) { l = v[i] < l ? v[i] : l; h = v[i] > h ? v[i] : h; }
    *lo = l;
    *hi = h;
}

/// 16 int16-pair words of step 2q and the 16 of step 2q+1 (one B block) → 16 s8 quads:
/// word t of the result holds the low bytes of (x[t].lo, x[t].hi, y[t].lo, y[t].hi).
VITQ_AVX512_VNNI static inline __m512i vitq_quads(__m512i x, __m512i y) {
    const __m512i lo = _mm512_cvtepu16_epi32(_mm512_cvtepi16_epi8(x));
    const __m512i hi = _mm512_cvtepu16_epi32(_mm512_cvtepi16_epi8(y));
    return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

/// B blocks of int16 pairs (blocks × kp steps × NR words, values int8) → s8 quads (kq steps × 64
/// bytes per block) and colsum[j] = Σ_p b[j, p] for every padded column.
VITQ_AVX512_VNNI static void vitq_repack_b_s8(const int16_t *pb, int64_t blocks, int64_t kp, int32_t *qb, int32_t *colsum) {
    const int64_t kq = (kp + 1) / 2;
    const __m512i ones = _mm512_set1_epi16(1);
    for (int64_t jb = 0; jb < blocks; jb++) {
        const int16_t *src = pb + jb * kp * NR * 2;
        int32_t *dst = qb + jb * kq * NR;
        __m512i sum = _mm512_setzero_si512();
        for (int64_t q = 0; q < kq; q++) {
            const __m512i x = _mm512_loadu_si512((const void *)(src + 2 * q * NR * 2));
            const __m512i y = 2 * q + 1 < kp ? _mm512_loadu_si512((const void *)(src + (2 * q + 1) * NR * 2)) : _mm512_setzero_si512();
            sum = _mm512_add_epi32(sum, _mm512_add_epi32(_mm512_madd_epi16(x, ones), _mm512_madd_epi16(y, ones)));
            _mm512_storeu_si512((void *)(dst + q * NR), vitq_quads(x, y));
        }
        _mm512_storeu_si512((void *)(colsum + jb * NR), sum);
    }
}

/// Word indices for the A repack: output word o of vector t (of three) is pair-word
/// 12g + 6h + r of the source (g = o / 12, h = o % 2, r = (o % 12) / 2) minus the load base 12·⌊16t/12⌋.
static const int32_t vitq_a_perm[3][16] = {
    {0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11, 12, 18, 13, 19},
    {2, 8, 3, 9, 4, 10, 5, 11, 12, 18, 13, 19, 14, 20, 15, 21},
    {4, 10, 5, 11, 12, 18, 13, 19, 14, 20, 15, 21, 16, 22, 17, 23},
};

/// A panels of int16 pairs (panels × kp steps × MR words) → u8 quads (kq = ⌈kp/2⌉ steps × MR words),
/// each value + c. Word (q, r) takes the pairs of steps 2q and 2q+1 of row r: within every 12
/// source words (two steps of six rows) the order is r0 of 2q, r0 of 2q+1, r1 of 2q, … (vitq_a_perm),
/// then each int16 + c is narrowed to its low byte. Eight steps (48 words) go per three vectors;
/// the rest, and a missing last step (whose B bytes are zero), by vitq_quad_word.
VITQ_AVX512_VNNI static void vitq_repack_a_u8(const int32_t *pa, int64_t panels, int64_t kp, int32_t c, int32_t *qa) {
    const int64_t kq = (kp + 1) / 2;
    const __m512i cv = _mm512_set1_epi16((int16_t)c);
    const __m512i perm0 = _mm512_loadu_si512((const void *)vitq_a_perm[0]);
    const __m512i perm1 = _mm512_loadu_si512((const void *)vitq_a_perm[1]);
    const __m512i perm2 = _mm512_loadu_si512((const void *)vitq_a_perm[2]);
    for (int64_t ip = 0; ip < panels; ip++) {
        const int32_t *src = pa + ip * kp * MR;
        int32_t *dst = qa + ip * kq * MR;
        int64_t q = 0;
        for (; 2 * q + 8 <= kp; q += 4) {
            const int32_t *s = src + 2 * q * MR;
            const __m512i w0 = _mm512_permutex2var_epi32(_mm512_loadu_si512((const void *)s), perm0,
                                                         _mm512_loadu_si512((const void *)(s + 16)));
            const __m512i w1 = _mm512_permutex2var_epi32(_mm512_loadu_si512((const void *)(s + 12)), perm1,
                                                         _mm512_loadu_si512((const void *)(s + 28)));
            const __m512i w2 = _mm512_permutex2var_epi32(_mm512_loadu_si512((const void *)(s + 24)), perm2,
                                                         _mm512_maskz_loadu_epi32(0x00FF, s + 40));
            int32_t *d = dst + q * MR;
            _mm256_storeu_si256((__m256i *)d, _mm512_cvtepi16_epi8(_mm512_add_epi16(w0, cv)));
            _mm256_storeu_si256((__m256i *)(d + 8), _mm512_cvtepi16_epi8(_mm512_add_epi16(w1, cv)));
            _mm256_storeu_si256((__m256i *)(d + 16), _mm512_cvtepi16_epi8(_mm512_add_epi16(w2, cv)));
        }
        for (; q < kq; q++) {
            const int32_t *e = src + 2 * q * MR, *o = e + MR;
            for (int r = 0; r < MR; r++) dst[q * MR + r] = vitq_quad_word((uint32_t)e[r], 2 * q + 1 < kp ? (uint32_t)o[r] : 0u, c);
        }
    }
}

VITQ_AVX512_VNNI static int vitq_pack_b_quads(const int16_t *pb, int64_t n, int64_t k, int32_t *quads) {
    const int64_t kp = (k + 1) / 2, kq = (kp + 1) / 2, blocks = (n + NR - 1) / NR;
    int32_t lo, hi;
    vitq_range_s16(pb, blocks * kp * NR * 2, &lo, &hi);
    if (lo < -128 || hi > 127) return 0;
    vitq_repack_b_s8(pb, blocks, kp, quads, quads + blocks * kq * NR);
    return 1;
}

int vitq_qgemm_pack_b_quads_avx512(const int16_t *pb, int64_t n, int64_t k, int32_t *quads) { return vitq_pack_b_quads(pb, n, k, quads); }

static const vitq_quad_forms vitq_forms_avx512 = {vitq_range_s16, vitq_pack_b_quads, vitq_repack_a_u8};

VITQ_AVX512_VNNI void vitq_qgemm_avx512vnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                            const vitq_qgemm_output *out) {
    const int64_t kp = (k + 1) / 2, kq = (kp + 1) / 2, blocks = (n + NR - 1) / NR;
    const int32_t *qa, *qb;
    int32_t c;
    if (vitq_quad_operands(&vitq_forms_avx512, pa, pb, m, n, k, out, &qa, &qb, &c)) {
        vitq_qgemm_tiles(qa, qb, m, n, kq, &vitq_busd, qb + blocks * kq * NR, c, out);
    } else {
        vitq_qgemm_tiles(pa, pb, m, n, kp, &vitq_wssd, NULL, 0, out);
    }
    vitq_qgemm_zero_pa_padding(out, m, n);
}
#else
void vitq_qgemm_avx512vnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                           const vitq_qgemm_output *out) { vitq_qgemm_scalar(pa, pb, m, n, k, out); }
int vitq_qgemm_pack_b_quads_avx512(const int16_t *pb, int64_t n, int64_t k, int32_t *quads) { return 0; }
#endif
