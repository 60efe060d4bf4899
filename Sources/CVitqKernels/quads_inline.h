// The VNNI kernels' u8 A word, shared by the AVX-512 and AVX-VNNI files.
#ifndef VITQ_QUADS_INLINE_H
#define VITQ_QUADS_INLINE_H
#include <stdint.h>

/// One word of the u8 A format from the int16-pair words of steps 2q (e) and 2q+1 (o, or 0 past
/// the end), each value + c narrowed to its low byte.
static inline int32_t vitq_quad_word(uint32_t e, uint32_t o, int32_t c) {
    const uint32_t b0 = (uint8_t)((int16_t)(e & 0xFFFF) + c), b1 = (uint8_t)((int16_t)(e >> 16) + c);
    const uint32_t b2 = (uint8_t)((int16_t)(o & 0xFFFF) + c), b3 = (uint8_t)((int16_t)(o >> 16) + c);
    return (int32_t)(b0 | b1 << 8 | b2 << 16 | b3 << 24);
}
#endif
