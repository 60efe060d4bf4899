#include <cblas.h>

#include <stddef.h>
/* LAPACK's symmetric eigenvalue routine, which OpenBLAS ships (the gfortran ABI: the two
   character arguments' hidden lengths last). Declared here because Debian's OpenBLAS is built
   without LAPACKE. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);
