/*
 * fuzz_trace.c - fuzz target of the trace reader (runtime/trace_read.c) and
 * of the comparison that reads two traces (runtime/trace_compare.c).
 *
 * Reading a trace gives records that agree with its header and its name
 * table, or a format status whose message names the file; a trace compared
 * with itself never differs. Nothing leaks through the runtime's allocator
 * and no allocation exceeds what the header's caps allow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"
#include "trace_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(detrun_runtime *rt, detrun_status st, const char *path)
{
    if (st == DETRUN_ERR_MEMORY)
        return;
    const char *msg = detrun_errmsg(rt);
    if (st != DETRUN_ERR_FORMAT && st != DETRUN_ERR_IO)
        fuzz_fail("trace", "a status other than a format or I/O error", msg);
    if (msg == NULL || strstr(msg, path) == NULL)
        fuzz_fail("trace", "an error that does not name the file", msg);
}

/* The record just read is one the reader promises. */
static void check_record(const detrun_trace_reader *r, size_t size)
{
    switch (r->type) {
    case 'F':
        if (r->mode != DETRUN_DETERMINISTIC && r->mode != DETRUN_FAST)
            fuzz_fail("trace", "a fit record with an unknown mode", NULL);
        if (strlen(r->label) >= sizeof r->label)
            fuzz_fail("trace", "a label longer than its buffer", NULL);
        break;
    case 'S':
        break;
    case 'T':
        if (r->id >= r->nnames)
            fuzz_fail("trace", "a tensor record of an undefined name", NULL);
        if ((r->flags & DETRUN_TRACE_VALUES) &&
            ((uint64_t)r->values_at + r->count * 4 > size || r->values_at < 0))
            fuzz_fail("trace", "values past the end of the file", NULL);
        break;
    case 'E':
        break;
    default:
        fuzz_fail("trace", "a record of an unknown type returned as read", NULL);
    }
}

static void read_all(detrun_runtime *rt, const char *path, size_t size)
{
    detrun_trace_reader r;
    detrun_status st = detrun_trace_reader_open(rt, path, &r);
    while (st == DETRUN_OK) {
        st = detrun_trace_reader_next(&r);
        if (st != DETRUN_OK)
            break;
        check_record(&r, size);
        if (r.type == 'T' && (r.flags & DETRUN_TRACE_VALUES)) {
            float *v = detrun_trace_reader_values(&r);
            if (v == NULL)
                fuzz_fail("trace", "the values of a checked record cannot be read",
                          detrun_errmsg(rt));
            detrun_trace_values_free(rt, v, (size_t)r.count);
        }
        if (r.type == 'E')
            break;
    }
    if (st != DETRUN_OK)
        check_error(rt, st, path);
    detrun_trace_reader_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    detrun_runtime *rt = fuzz_runtime();
    size_t before = fuzz_live_bytes();
    /* The header's JSON and name table are capped; values are streamed. */
    fuzz_set_alloc_limit(2 * DETRUN_TRACE_MAX_JSON + 8 * size + 65536);
    const char *path = fuzz_input_file(data, size);
    read_all(rt, path, size);
    int differ = -1;
    detrun_status st = detrun_trace_compare(rt, path, path, NULL, NULL, &differ);
    if (st == DETRUN_OK && differ != 0)
        fuzz_fail("trace", "a trace differs from itself", NULL);
    if (st != DETRUN_OK)
        check_error(rt, st, path);
    if (fuzz_live_bytes() != before)
        fuzz_fail("trace", "bytes left allocated through the runtime", NULL);
    fuzz_set_alloc_limit(0);
    return 0;
}
