// OpenBLAS sgemm against oneDNN's dnnl_sgemm on one product, single-threaded, best of 5, two rounds:
// the measurement behind keeping OpenBLAS as vitq's fp32 GEMM (Docs/BENCHMARKS.md, issue 22).
// Not part of the build or the tests; needs Debian's libdnnl-dev and libopenblas-dev:
//   cc -O2 Deploy/bench-sgemm.c -ldnnl -lopenblas -o /tmp/bench-sgemm
//   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /tmp/bench-sgemm 1576 1152 384   # M N K: C = A·Bᵀ
#include <cblas.h>
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s M N K\n", argv[0]); return 2; }
    const long m = atol(argv[1]), n = atol(argv[2]), k = atol(argv[3]);
    if (m < 1 || n < 1 || k < 1 || m > 65536 || n > 65536 || k > 65536) { fprintf(stderr, "M, N, K must be in 1...65536\n"); return 2; }
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k), *c = malloc(sizeof(float) * m * n);
    if (!a || !b || !c) { fprintf(stderr, "out of memory\n"); return 1; }
    for (long i = 0; i < m * k; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
    for (long i = 0; i < n * k; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int round = 0; round < 2; round++) {
        double openblas = 1e9, onednn = 1e9;
        for (int it = 0; it < 5; it++) {
            double t = seconds();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1, a, (int)k, b, (int)k, 0, c, (int)n);
            t = seconds() - t;
            if (t < openblas) openblas = t;
            t = seconds();
            dnnl_sgemm('N', 'T', m, n, k, 1, a, k, b, k, 0, c, n);
            t = seconds() - t;
            if (t < onednn) onednn = t;
        }
        printf("{\"m\": %ld, \"n\": %ld, \"k\": %ld, \"round\": %d, \"openblas_gflops\": %.1f, \"onednn_gflops\": %.1f}\n",
               m, n, k, round, 2.0 * m * n * k / openblas / 1e9, 2.0 * m * n * k / onednn / 1e9);
    }
    free(a); free(b); free(c);
    return 0;
}
