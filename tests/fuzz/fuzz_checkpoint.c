/*
 * fuzz_checkpoint.c - fuzz target of the checkpoint reader
 * (runtime/checkpoint_file.c and checkpoint_meta.c).
 *
 * Every input is read twice: as it is, and with a correct checksum appended,
 * so that mutations reach the metadata and the payload and are not all
 * stopped by the checksum. A checkpoint read is consistent with itself (its
 * tensors tile "count", its history holds one entry per finished epoch, its
 * blocks are allocated); a refused one holds no memory and its message
 * names the file. Nothing leaks through the runtime's allocator, and no
 * allocation exceeds the file's length.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "checkpoint.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_read(const detrun_checkpoint *c)
{
    size_t at = 0;
    for (int i = 0; i < c->ntensors; i++) {
        const detrun_checkpoint_tensor *t = &c->tensors[i];
        size_t n = 1;
        for (int d = 0; d < t->ndims; d++)
            n *= (size_t)t->dims[d];
        if (t->ndims < 1 || t->ndims > 4 || t->offset != at || t->count != n ||
            memchr(t->name, '\0', sizeof t->name) == NULL)
            fuzz_fail("checkpoint", "a tensor that does not follow the one before it", t->name);
        at += n;
    }
    if (at != c->count)
        fuzz_fail("checkpoint", "tensors that do not add up to count", NULL);
    if (c->nstats != c->epoch || c->nstats < 0)
        fuzz_fail("checkpoint", "a history without one entry per finished epoch", NULL);
    for (int i = 0; i < c->nstats; i++)
        if (c->stats[i].epoch != i || strlen(c->stats[i].fingerprint) != 32)
            fuzz_fail("checkpoint", "a history entry out of order or without a fingerprint",
                      NULL);
    if (c->params == NULL || c->m == NULL || (c->bloblen > 0 && c->blob == NULL))
        fuzz_fail("checkpoint", "a checkpoint read without its blocks", NULL);
}

static void read_one(detrun_runtime *rt, const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_file(data, size);
    fuzz_set_alloc_limit(2 * size + 4096);
    detrun_checkpoint c;
    detrun_status st = detrun_checkpoint_read(rt, path, &c);
    fuzz_set_alloc_limit(0);
    if (st == DETRUN_OK) {
        check_read(&c);
        detrun_checkpoint_free(&c);
        return;
    }
    static const detrun_checkpoint zero;
    if (memcmp(&c, &zero, sizeof c) != 0)
        fuzz_fail("checkpoint", "a refused checkpoint that still holds something", NULL);
    const char *msg = detrun_errmsg(rt);
    if (st != DETRUN_ERR_MEMORY && (msg == NULL || strstr(msg, path) == NULL))
        fuzz_fail("checkpoint", "an error that does not name the file", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    detrun_runtime *rt = fuzz_runtime();
    size_t before = fuzz_live_bytes();
    read_one(rt, data, size);
    uint8_t *sealed = malloc(size + 16);
    if (sealed == NULL)
        return 0;
    if (size > 0)
        memcpy(sealed, data, size);
    XXH128_canonical_t sum;
    XXH128_canonicalFromHash(&sum, XXH3_128bits(data, size));
    memcpy(sealed + size, sum.digest, 16);
    read_one(rt, sealed, size + 16);
    free(sealed);
    if (fuzz_live_bytes() != before)
        fuzz_fail("checkpoint", "bytes left allocated through the runtime", NULL);
    return 0;
}
