// Process-wide allocator settings for large activation buffers.
#include "vitq_kernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void vitq_reuse_large_blocks(void) {
#if defined(__GLIBC__)
    // Serve blocks of up to 1 GiB from the heap (not fresh mmaps) and keep freed heap memory,
    // so a forward pass reuses the pages of the previous one instead of faulting them in again.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
#endif
}
