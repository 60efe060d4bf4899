// int8 GEMM: the plain reference, the packing routines and a scalar kernel on packed operands.
#include "vitq_kernels.h"

#define VITQ_NR 16

int64_t vitq_gemm_packed_a_size(int64_t m, int64_t k) { return m * ((k + 1) / 2); }

int64_t vitq_gemm_packed_b_size(int64_t n, int64_t k) {
    return ((n + VITQ_NR - 1) / VITQ_NR) * ((k + 1) / 2) * VITQ_NR * 2;
}

void vitq_gemm_s8s8s32_ref(const int8_t *a, int64_t lda, const int8_t *b, int64_t ldb,
                           int64_t m, int64_t n, int64_t k, int32_t *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int32_t s = 0;
            for (int64_t p = 0; p < k; p++) s += (int32_t)a[i * lda + p] * (int32_t)b[j * ldb + p];
            c[i * ldc + j] = s;
        }
}

void vitq_gemm_pack_a_s8(const int8_t *a, int64_t lda, int64_t m, int64_t k, int32_t *packed) {
    const int64_t kp = (k + 1) / 2;
    for (int64_t i = 0; i < m; i++)
        for (int64_t p = 0; p < kp; p++) {
            int16_t lo = a[i * lda + 2 * p];
            int16_t hi = (2 * p + 1 < k) ? a[i * lda + 2 * p + 1] : 0;
            packed[i * kp + p] = (int32_t)(((uint32_t)(uint16_t)hi << 16) | (uint16_t)lo);
        }
}

void vitq_gemm_pack_b_s8(const int8_t *b, int64_t ldb, int64_t n, int64_t k, int16_t *packed) {
    const int64_t kp = (k + 1) / 2, blocks = (n + VITQ_NR - 1) / VITQ_NR;
    for (int64_t jb = 0; jb < blocks; jb++)
        for (int64_t p = 0; p < kp; p++) {
            int16_t *dst = packed + (jb * kp + p) * VITQ_NR * 2;
            for (int64_t jj = 0; jj < VITQ_NR; jj++) {
                int64_t j = jb * VITQ_NR + jj;
                int in = j < n;
                dst[2 * jj] = in ? b[j * ldb + 2 * p] : 0;
                dst[2 * jj + 1] = (in && 2 * p + 1 < k) ? b[j * ldb + 2 * p + 1] : 0;
            }
        }
}

void vitq_gemm_s8s8s32_packed_scalar(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k,
                                     int32_t *c, int64_t ldc) {
    const int64_t kp = (k + 1) / 2;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            const int16_t *col = pb + (j / VITQ_NR) * kp * VITQ_NR * 2 + (j % VITQ_NR) * 2;
            int32_t s = 0;
            for (int64_t p = 0; p < kp; p++) {
                uint32_t w = (uint32_t)pa[i * kp + p];
                s += (int32_t)(int16_t)(w & 0xFFFF) * col[p * VITQ_NR * 2] + (int32_t)(int16_t)(w >> 16) * col[p * VITQ_NR * 2 + 1];
            }
            c[i * ldc + j] = s;
        }
}
