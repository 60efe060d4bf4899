// Conversion of half-precision storage types to float.
#include "vitq_kernels.h"
#include <string.h>

static inline float vitq_bits_to_f32(uint32_t bits) { float f; memcpy(&f, &bits, 4); return f; }

void vitq_f16_to_f32(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t h = src[i];
        uint32_t sign = (h & 0x8000u) << 16;
        uint32_t exp = (h >> 10) & 0x1Fu;
        uint32_t man = h & 0x3FFu;
        uint32_t bits;
        if (exp == 0) {
            if (man == 0) {
                bits = sign;
            } else { // subnormal: normalise
                int e = -1;
                do { e++; man <<= 1; } while ((man & 0x400u) == 0);
                bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FFu) << 13);
            }
        } else if (exp == 0x1F) {
            bits = sign | 0x7F800000u | (man << 13);
        } else {
            bits = sign | ((exp + 112u) << 23) | (man << 13);
        }
        dst[i] = vitq_bits_to_f32(bits);
    }
}

void vitq_bf16_to_f32(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = vitq_bits_to_f32((uint32_t)src[i] << 16);
}
