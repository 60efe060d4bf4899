// What the AVX-512 and AVX-VNNI kernels share: the u8 A word, and the choice of each call's
// operand forms (u8 × s8 quads, or the int16 pairs as given).
#ifndef VITQ_QUADS_INLINE_H
#define VITQ_QUADS_INLINE_H
#include <stdint.h>
// (included after vitq_kernels.h, which has no include guard)

/// One word of the u8 A format from the int16-pair words of steps 2q (e) and 2q+1 (o, or 0 past
/// the end), each value + c narrowed to its low byte.
static inline int32_t vitq_quad_word(uint32_t e, uint32_t o, int32_t c) {
    const uint32_t b0 = (uint8_t)((int16_t)(e & 0xFFFF) + c), b1 = (uint8_t)((int16_t)(e >> 16) + c);
    const uint32_t b2 = (uint8_t)((int16_t)(o & 0xFFFF) + c), b3 = (uint8_t)((int16_t)(o >> 16) + c);
    return (int32_t)(b0 | b1 << 8 | b2 << 16 | b3 << 24);
}

/// A kernel level's ways of making the quad forms (vector or plain C; they give the same words).
typedef struct {
    void (*range_s16)(const int16_t *v, int64_t n, int32_t *lo, int32_t *hi);
    int (*pack_b)(const int16_t *pb, int64_t n, int64_t k, int32_t *quads);
    void (*repack_a)(const int32_t *pa, int64_t panels, int64_t kp, int32_t c, int32_t *qa);
} vitq_quad_forms;

/// The u8 × s8 operands of one call, when they exist: 1 with A's quads in *qa (in this thread's
/// scratch, each value + *c), B's in *qb (out->b_quads, or repacked into the scratch) and its
/// column sums after them; 0 when A spans more than 256 values, B is beyond int8 or scratch is
/// short, and the int16 pairs are to be used as given.
static inline int vitq_quad_operands(const vitq_quad_forms *f, const int32_t *pa, const int16_t *pb, int64_t m, int64_t n,
                                     int64_t k, const vitq_qgemm_output *out, const int32_t **qa, const int32_t **qb, int32_t *c) {
    const int64_t kp = (k + 1) / 2, kq = (kp + 1) / 2, blocks = (n + VITQ_QGEMM_NR - 1) / VITQ_QGEMM_NR;
    const int64_t panels = (m + VITQ_QGEMM_MR - 1) / VITQ_QGEMM_MR;
    int32_t alo, ahi;
    f->range_s16((const int16_t *)pa, panels * kp * VITQ_QGEMM_MR * 2, &alo, &ahi);
    if (ahi - alo > 255) return 0;
    const size_t aWords = (size_t)(panels * kq * VITQ_QGEMM_MR), bWords = (size_t)(blocks * kq * VITQ_QGEMM_NR + blocks * VITQ_QGEMM_NR);
    int32_t *scratch = vitq_thread_scratch(4 * (aWords + (out->b_quads ? 0 : bWords)));
    if (!scratch) return 0;
    const int32_t *quads = out->b_quads;
    if (!quads && f->pack_b(pb, n, k, scratch + aWords)) quads = scratch + aWords;
    if (!quads) return 0;
    *c = -alo;
    f->repack_a(pa, panels, kp, *c, scratch);
    *qa = scratch;
    *qb = quads;
    return 1;
}
#endif
