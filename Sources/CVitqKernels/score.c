// Output-error statistics for the scale search (ALGORITHMS.md §2–3): per output column,
// accumulated in double over rows. One portable implementation with floating-point
// contraction off, so every machine (with or without AVX2/FMA) produces the same bits and
// workers on different hosts agree with the coordinator's in-process run; the statistics are
// built for three register widths from that one body.
#include "vitq_kernels.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

int vitq_score_stat_count(int kind) {
    switch (kind) {
    case VITQ_SCORE_MSE: return 1;
    case VITQ_SCORE_HESSIAN: return 1;
    case VITQ_SCORE_COSINE: return 3;
    case VITQ_SCORE_PEARSON: return 5;
    case VITQ_SCORE_HESSIAN_DPLR: return 2;
    default: return 0;
    }
}

// Σ g²d² per column into stats[0..n), and with `dplr` the first-order sum Σ g·d into
// stats[n..2n), whose square over a group and image is the rank-one part
// (SearchMetric.hessianDPLR). Inlined with a constant `dplr`, so each kind gets its own loop.
static inline __attribute__((always_inline)) void hessian_row(const float *h, const float *x, const float *g, int64_t n,
                                                             int dplr, double *stats) {
    for (int64_t j = 0; j < n; j++) {
        double d = (double)h[j] - (double)x[j], w = (double)g[j];
        stats[j] += (w * w) * (d * d);
        if (dplr) stats[n + j] += w * d;
    }
}

// The statistics of vitq_score_columns. Every column is its own chain of double operations over the
// rows, so a vector build of this same body (lanes across columns, no contraction) gives the
// reference's bits: the _avx2 and _avx512 variants below are this function compiled for wider
// registers, nothing else.
static inline __attribute__((always_inline)) void score_columns(const float *ohat, int64_t ldh, const float *o, const float *g,
                                                               int64_t ld, int64_t rows, int64_t n, int kind, double *stats) {
    for (int64_t r = 0; r < rows; r++) {
        const float *h = ohat + r * ldh, *x = o + r * ld;
        switch (kind) {
        case VITQ_SCORE_MSE:
            for (int64_t j = 0; j < n; j++) { double d = (double)h[j] - (double)x[j]; stats[j] += d * d; }
            break;
        case VITQ_SCORE_HESSIAN: hessian_row(h, x, g + r * ld, n, 0, stats); break;
        case VITQ_SCORE_HESSIAN_DPLR: hessian_row(h, x, g + r * ld, n, 1, stats); break;
        case VITQ_SCORE_COSINE:
            for (int64_t j = 0; j < n; j++) {
                double a = x[j], b = h[j];
                stats[j] += a * b; stats[n + j] += a * a; stats[2 * n + j] += b * b;
            }
            break;
        case VITQ_SCORE_PEARSON:
            for (int64_t j = 0; j < n; j++) {
                double a = x[j], b = h[j];
                stats[j] += a; stats[n + j] += b; stats[2 * n + j] += a * b;
                stats[3 * n + j] += a * a; stats[4 * n + j] += b * b;
            }
            break;
        default:
            return;
        }
    }
}

void vitq_score_columns_ref(const float *ohat, int64_t ldh, const float *o, const float *g, int64_t ld,
                            int64_t rows, int64_t n, int kind, double *stats) {
    score_columns(ohat, ldh, o, g, ld, rows, n, kind, stats);
}

#if defined(__x86_64__)
#define SCORE_TARGET(t) __attribute__((target(t)))
#else
#define SCORE_TARGET(t)
#endif

SCORE_TARGET("avx2") void vitq_score_columns_avx2(const float *ohat, int64_t ldh, const float *o, const float *g, int64_t ld,
                                                  int64_t rows, int64_t n, int kind, double *stats) {
    score_columns(ohat, ldh, o, g, ld, rows, n, kind, stats);
}

SCORE_TARGET("avx512f") void vitq_score_columns_avx512(const float *ohat, int64_t ldh, const float *o, const float *g, int64_t ld,
                                                       int64_t rows, int64_t n, int kind, double *stats) {
    score_columns(ohat, ldh, o, g, ld, rows, n, kind, stats);
}

void vitq_error_columns(const float *ohat, int64_t ldh, const float *o, int64_t ld, int64_t rows, int64_t n, double *sum) {
    for (int64_t r = 0; r < rows; r++) {
        const float *h = ohat + r * ldh, *x = o + r * ld;
        for (int64_t j = 0; j < n; j++) sum[j] += (double)h[j] - (double)x[j];
    }
}

void vitq_rank_order_rows(const float *o, int64_t rows, int64_t n, int32_t *order) {
    for (int64_t r = 0; r < rows; r++) {
        const float *x = o + r * n;
        int32_t *ord = order + r * n;
        for (int64_t j = 0; j < n; j++) ord[j] = (int32_t)j;
        // Shell sort ascending, ties by index: deterministic and allocation-free.
        for (int64_t gap = n / 2; gap > 0; gap /= 2) {
            for (int64_t i = gap; i < n; i++) {
                int32_t t = ord[i];
                int64_t j = i;
                while (j >= gap && (x[ord[j - gap]] > x[t] || (x[ord[j - gap]] == x[t] && ord[j - gap] > t))) {
                    ord[j] = ord[j - gap];
                    j -= gap;
                }
                ord[j] = t;
            }
        }
    }
}

double vitq_rank_loss_rows(const float *ohat, const int32_t *order, int64_t rows, int64_t n, float theta) {
    double loss = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *h = ohat + r * n;
        const int32_t *ord = order + r * n;
        for (int64_t j = 0; j + 1 < n; j++) {
            double v = (double)theta - ((double)h[ord[j + 1]] - (double)h[ord[j]]);
            if (v > 0) loss += v;
        }
    }
    return loss;
}
