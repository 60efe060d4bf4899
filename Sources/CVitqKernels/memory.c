// Process-wide allocator settings for large activation buffers, and per-thread kernel scratch.
#include "vitq_kernels.h"
#include <pthread.h>
#include <stdlib.h>
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

/// Per-thread scratch: grown as needed, kept, freed when the thread exits.
typedef struct { void *data; size_t size; } vitq_scratch;
static pthread_key_t vitq_scratch_key;
static pthread_once_t vitq_scratch_once = PTHREAD_ONCE_INIT;

static void vitq_scratch_free(void *p) {
    vitq_scratch *s = p;
    free(s->data);
    free(s);
}

static void vitq_scratch_key_create(void) { pthread_key_create(&vitq_scratch_key, vitq_scratch_free); }

void *vitq_thread_scratch(size_t bytes) {
    pthread_once(&vitq_scratch_once, vitq_scratch_key_create);
    vitq_scratch *s = pthread_getspecific(vitq_scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s))) return NULL;
        if (pthread_setspecific(vitq_scratch_key, s) != 0) { free(s); return NULL; }
    }
    if (bytes > s->size) {
        free(s->data);
        s->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
        s->size = s->data ? bytes : 0;
    }
    return s->data;
}
