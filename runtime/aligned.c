/*
 * aligned.c - 64-byte aligned blocks through the runtime's allocator.
 *
 * The hook has realloc's promise only (alignment for any basic type), but
 * vector kernels want whole cache lines. So a block is over-allocated by one
 * alignment unit plus a header, and the header just below the aligned
 * pointer remembers where the hook's block starts and how large it is (the
 * hook, Lua-style, is told the size of what it frees).
 */
#include <stdint.h>
#include <string.h>

#include "backend.h"

#define ALIGN 64

typedef struct aligned_header {
    void *base;
    size_t total;
} aligned_header;

void *detrun_aligned_alloc(detrun_alloc_fn alloc, void *ud, size_t bytes)
{
    size_t extra = ALIGN + sizeof(aligned_header);
    if (alloc == NULL || bytes > SIZE_MAX - extra)
        return NULL;
    size_t total = bytes + extra;
    unsigned char *base = alloc(ud, NULL, 0, total);
    if (base == NULL)
        return NULL;
    uintptr_t first = (uintptr_t)(base + sizeof(aligned_header));
    unsigned char *p = base + sizeof(aligned_header) + ((ALIGN - first % ALIGN) % ALIGN);
    aligned_header h = { base, total };
    memcpy(p - sizeof h, &h, sizeof h);
    return p;
}

void detrun_aligned_free(detrun_alloc_fn alloc, void *ud, void *p)
{
    if (p == NULL)
        return;
    aligned_header h;
    memcpy(&h, (unsigned char *)p - sizeof h, sizeof h);
    alloc(ud, h.base, h.total, 0);
}
