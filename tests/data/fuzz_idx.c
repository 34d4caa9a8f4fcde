/*
 * fuzz_idx.c - fuzz target of the IDX reader (libFuzzer entry point).
 *
 * Any input must give either an array whose size matches its header or a
 * status other than DETRUN_OK with a message; never a crash, a leak, or an
 * allocation that the input's length does not justify.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    detrun_idx a;
    detrun_status st = detrun_idx_read_memory(NULL, "fuzz", data, size, &a);
    if (st == DETRUN_OK) {
        size_t count = 1;
        for (int d = 0; d < a.ndims; d++)
            count *= a.dims[d];
        /* A result that disagrees with its own header is a reader bug. */
        if (a.ndims < 1 || a.ndims > DETRUN_IDX_MAX_DIMS || count != a.count ||
            a.bytes != count * detrun_idx_type_size(a.type) || (a.bytes > 0 && a.data == NULL))
            abort();
        detrun_idx_free(&a);
    } else if (a.data != NULL) {
        abort();
    }
    return 0;
}
