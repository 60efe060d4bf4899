// Integer GEMM: the plain reference, the packing routines, the shared epilogue and a scalar
// kernel on packed operands.
#include "vitq_kernels.h"
#include <math.h>
#include <stdlib.h>

#define MR VITQ_QGEMM_MR
#define NR VITQ_QGEMM_NR

int64_t vitq_qgemm_packed_a_size(int64_t m, int64_t k) { return ((m + MR - 1) / MR) * MR * ((k + 1) / 2); }

int64_t vitq_qgemm_packed_b_size(int64_t n, int64_t k) { return ((n + NR - 1) / NR) * ((k + 1) / 2) * NR * 2; }

void vitq_gemm_s8s8s32_ref(const int8_t *a, int64_t lda, const int8_t *b, int64_t ldb,
                           int64_t m, int64_t n, int64_t k, int32_t *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int32_t s = 0;
            for (int64_t p = 0; p < k; p++) s += (int32_t)a[i * lda + p] * (int32_t)b[j * ldb + p];
            c[i * ldc + j] = s;
        }
}

static inline int32_t vitq_pair(int16_t lo, int16_t hi) {
    return (int32_t)(((uint32_t)(uint16_t)hi << 16) | (uint16_t)lo);
}

/// q - zero for one float, as the quantizers define it.
static inline int16_t vitq_quantize_centered(float x, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
    float t = nearbyintf(x * (1.0f / scale)) + (float)zero;
    t = t < (float)qmin ? (float)qmin : (t > (float)qmax ? (float)qmax : t);
    return (int16_t)((int32_t)t - zero);
}

void vitq_qgemm_pack_a_s8(const int8_t *a, int64_t lda, int64_t m, int64_t k, int32_t *packed) {
    const int64_t kp = (k + 1) / 2, mp = (m + MR - 1) / MR * MR;
    for (int64_t i = 0; i < mp; i++) {
        int32_t *dst = packed + (i / MR) * kp * MR + i % MR;
        for (int64_t p = 0; p < kp; p++) {
            int16_t lo = 0, hi = 0;
            if (i < m) {
                lo = a[i * lda + 2 * p];
                hi = 2 * p + 1 < k ? a[i * lda + 2 * p + 1] : 0;
            }
            dst[p * MR] = vitq_pair(lo, hi);
        }
    }
}

void vitq_qgemm_quantize_pack_a_ref(const float *a, int64_t lda, int64_t m, int64_t k,
                                float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed) {
    const int64_t kp = (k + 1) / 2, mp = (m + MR - 1) / MR * MR;
    for (int64_t i = 0; i < mp; i++) {
        int32_t *dst = packed + (i / MR) * kp * MR + i % MR;
        if (i >= m) {
            for (int64_t p = 0; p < kp; p++) dst[p * MR] = 0;
            continue;
        }
        const float *row = a + i * lda;
        for (int64_t p = 0; p < kp; p++) {
            int16_t lo = vitq_quantize_centered(row[2 * p], scale, zero, qmin, qmax);
            int16_t hi = 2 * p + 1 < k ? vitq_quantize_centered(row[2 * p + 1], scale, zero, qmin, qmax) : 0;
            dst[p * MR] = vitq_pair(lo, hi);
        }
    }
}

void vitq_qgemm_pack_b_s8(const int8_t *b, int64_t ldb, int64_t n, int64_t k, int16_t *packed) {
    const int64_t kp = (k + 1) / 2, blocks = (n + NR - 1) / NR;
    for (int64_t jb = 0; jb < blocks; jb++)
        for (int64_t p = 0; p < kp; p++) {
            int16_t *dst = packed + (jb * kp + p) * NR * 2;
            for (int64_t jj = 0; jj < NR; jj++) {
                const int64_t j = jb * NR + jj;
                const int in = j < n;
                dst[2 * jj] = in ? b[j * ldb + 2 * p] : 0;
                dst[2 * jj + 1] = (in && 2 * p + 1 < k) ? b[j * ldb + 2 * p + 1] : 0;
            }
        }
}

void vitq_qgemm_quantize_pack_b_block(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                      float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed,
                                      int64_t jb, int64_t p0, int64_t p1) {
    const int64_t kp = (k + 1) / 2;
    for (int64_t p = p0; p < p1; p++) {
        int16_t *dst = packed + (jb * kp + p) * NR * 2;
        for (int64_t jj = 0; jj < NR; jj++) {
            const int64_t j = jb * NR + jj;
            for (int64_t h = 0; h < 2; h++) {
                const int64_t kk = 2 * p + h;
                int16_t v = 0;
                if (j < n && kk < k) {
                    const float x = transposed ? b[kk * ldb + j] : b[j * ldb + kk];
                    v = vitq_quantize_centered(x, scale, zero, qmin, qmax);
                }
                dst[2 * jj + h] = v;
            }
        }
    }
}

void vitq_qgemm_quantize_pack_b_ref(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                    float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed) {
    const int64_t kp = (k + 1) / 2, blocks = (n + NR - 1) / NR;
    for (int64_t jb = 0; jb < blocks; jb++)
        vitq_qgemm_quantize_pack_b_block(b, ldb, n, k, transposed, scale, zero, qmin, qmax, packed, jb, 0, kp);
}

void vitq_qgemm_store_row_ref(const int32_t *acc, int64_t row, int64_t j0, int64_t len, int64_t n, const vitq_qgemm_output *o) {
    if (o->c) {
        for (int64_t j = 0; j < len; j++) o->c[row * o->ldc + j0 + j] = acc[j];
        return;
    }
    float v[NR];
    for (int64_t j = 0; j < len; j++) v[j] = fmaf((float)acc[j], o->col_scale[j0 + j], o->bias ? o->bias[j0 + j] : 0.0f);
    if (o->row_scale)
        for (int64_t j = 0; j < len; j++) v[j] = fmaf(v[j], o->row_scale[row], o->row_bias ? o->row_bias[j0 + j] : 0.0f);
    if (o->gelu) vitq_gelu_f32_ref(v, v, len);
    for (int64_t j = 0; j < len; j++) {
        const int64_t col = j0 + j;
        if (o->f) {
            float *dst = o->f + row * o->ldf + col;
            *dst = o->accumulate ? *dst + v[j] : v[j];
        }
        if (o->q) {
            float t = nearbyintf(v[j] * (1.0f / o->out_scale[col]));
            t = t < (float)o->qmin ? (float)o->qmin : (t > (float)o->qmax ? (float)o->qmax : t);
            o->q[row * o->ldq + col] = (int8_t)(int32_t)t;
        }
    }
    if (o->pa) {
        // j0 is even (a multiple of NR), so the pairs of this segment are whole; an odd n's last pair has hi = 0.
        int32_t *dst = o->pa + (row / MR) * ((n + 1) / 2) * MR + row % MR;
        for (int64_t j = 0; j < len; j += 2) {
            const int16_t lo = vitq_quantize_centered(v[j], o->pa_scale, o->pa_zero, o->pa_qmin, o->pa_qmax);
            const int16_t hi = j + 1 < len ? vitq_quantize_centered(v[j + 1], o->pa_scale, o->pa_zero, o->pa_qmin, o->pa_qmax) : 0;
            dst[((j0 + j) / 2) * MR] = vitq_pair(lo, hi);
        }
    }
}

void vitq_qgemm_zero_pa_padding(const vitq_qgemm_output *o, int64_t m, int64_t n) {
    if (!o->pa) return;
    const int64_t kp = (n + 1) / 2;
    for (int64_t i = m; i % MR != 0; i++) {
        int32_t *dst = o->pa + (i / MR) * kp * MR + i % MR;
        for (int64_t p = 0; p < kp; p++) dst[p * MR] = 0;
    }
}

void vitq_softmax_quantize_pack_a_ref(float *x, int64_t m, int64_t n, int64_t ld, float scale, int32_t zero,
                                      int32_t qmin, int32_t qmax, int32_t *packed) {
    for (int64_t i = 0; i < m; i++) vitq_softmax_f32_ref(x + i * ld, 1, n, ld);
    vitq_qgemm_quantize_pack_a_ref(x, ld, m, n, scale, zero, qmin, qmax, packed);
}

void vitq_layernorm_quantize_pack_a_ref(const float *x, const float *gamma, const float *beta, int64_t m, int64_t dim, float eps,
                                        float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed) {
    float *y = malloc((size_t)(m * dim) * sizeof(float));
    vitq_layernorm_f32_ref(x, y, gamma, beta, m, dim, eps);
    vitq_qgemm_quantize_pack_a_ref(y, dim, m, dim, scale, zero, qmin, qmax, packed);
    free(y);
}

void vitq_qgemm_scalar(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k, const vitq_qgemm_output *out) {
    const int64_t kp = (k + 1) / 2;
    int32_t acc[NR];
    for (int64_t i = 0; i < m; i++) {
        const int32_t *arow = pa + (i / MR) * kp * MR + i % MR;
        for (int64_t jb = 0; jb * NR < n; jb++) {
            const int16_t *bblk = pb + jb * kp * NR * 2;
            const int64_t len = n - jb * NR < NR ? n - jb * NR : NR;
            for (int64_t jj = 0; jj < len; jj++) {
                int32_t s = 0;
                for (int64_t p = 0; p < kp; p++) {
                    const uint32_t w = (uint32_t)arow[p * MR];
                    const int16_t *bv = bblk + p * NR * 2 + 2 * jj;
                    s += (int32_t)(int16_t)(w & 0xFFFF) * bv[0] + (int32_t)(int16_t)(w >> 16) * bv[1];
                }
                acc[jj] = s;
            }
            vitq_qgemm_store_row_ref(acc, i, jb * NR, len, n, out);
        }
    }
    vitq_qgemm_zero_pa_padding(out, m, n);
}
