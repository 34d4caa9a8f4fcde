/*
 * trace_compare.c - the first place two traces part (docs/regression.md,
 * "Traces"): records are compared in order, so the first difference is the
 * first place a bit moved, not a consequence of it.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "byteorder.h"
#include "checkpoint.h"
#include "internal.h"
#include "trace_read.h"

typedef detrun_trace_reader reader;

static void describe(const reader *r, char *buf, size_t len)
{
    switch (r->type) {
    case 'F':
        snprintf(buf, len, "fit %" PRIu32 " (%s, seed %" PRIu64 ", stream %" PRIu32 "%s%s)",
                 r->fit, r->mode == DETRUN_FAST ? "fast" : "deterministic", r->seed, r->stream,
                 r->label[0] ? ", " : "", r->label);
        break;
    case 'S':
        snprintf(buf, len, "step %" PRIu64 " of epoch %d", r->step, r->epoch);
        break;
    case 'T': {
        const detrun_trace_name *e = &r->names[r->id];
        snprintf(buf, len, "%s %s (%" PRIu64 " values)", detrun_trace_kind_name(e->kind), e->name,
                 r->count);
        break;
    }
    case 'E':
        snprintf(buf, len, "the end of the trace");
        break;
    default:
        snprintf(buf, len, "record '%c'", r->type);
    }
}

static void hex(const unsigned char *d, char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static detrun_status dump(detrun_runtime *rt, const char *prefix, const char *side,
                          const float *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%s.f32", prefix, side);
    size_t bytes = (n > 0 ? n : 1) * 4;
    unsigned char *b = detrun_malloc(rt, bytes);
    if (b == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        detrun_put_le32(b + 4 * i, u);
    }
    const void *parts[1] = { b };
    size_t lens[1] = { n * 4 };
    detrun_status s = detrun_write_file_atomic(rt, path, parts, lens, 1);
    detrun_free(rt, b, bytes);
    return s;
}

static void compare_values(const float *a, const float *b, size_t n, detrun_trace_divergence *d)
{
    d->count = n;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], 4) == 0)
            continue;
        d->differing++;
        double x = a[i], y = b[i];
        double ad = fabs(x - y);
        if (ad != ad)
            ad = INFINITY;   /* a NaN on one side only is as far as it gets */
        double m = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
        double rd = m > 0 && m != INFINITY ? ad / m : (ad > 0 ? INFINITY : 0);
        if (ad > d->max_abs || d->differing == 1) {
            d->max_abs = ad;
            d->max_abs_at = i;
        }
        if (rd > d->max_rel || d->differing == 1) {
            d->max_rel = rd;
            d->max_rel_at = i;
        }
    }
}

/* Whether the records just read agree in everything but a tensor's bits. */
static int same_record(const reader *ra, const reader *rb)
{
    if (ra->type != rb->type)
        return 0;
    if (ra->type == 'F')
        return ra->fit == rb->fit && ra->mode == rb->mode && ra->seed == rb->seed &&
               ra->stream == rb->stream && strcmp(ra->label, rb->label) == 0;
    if (ra->type == 'S')
        return ra->epoch == rb->epoch && ra->step == rb->step;
    if (ra->type == 'T') {
        const detrun_trace_name *x = &ra->names[ra->id], *y = &rb->names[rb->id];
        return x->kind == y->kind && x->layer == y->layer && x->ndims == y->ndims &&
               memcmp(x->dims, y->dims, sizeof x->dims) == 0 &&
               strcmp(x->name, y->name) == 0 && ra->count == rb->count;
    }
    return 1;
}

/* The tensor records ra and rb differ in their bits: what, where, and, with
 * values on both sides, by how much (dumped when dump_prefix is set). */
static detrun_status tensor_divergence(detrun_runtime *rt, reader *ra, reader *rb,
                                       const char *dump_prefix, detrun_trace_divergence *out)
{
    const detrun_trace_name *e = &ra->names[ra->id];
    out->differ = 1;
    out->kind = e->kind;
    out->layer = e->layer;
    snprintf(out->name, sizeof out->name, "%s", e->name);
    hex(ra->fp, out->fingerprint_a);
    hex(rb->fp, out->fingerprint_b);
    if ((ra->flags & rb->flags & DETRUN_TRACE_VALUES) == 0)
        return DETRUN_OK;
    detrun_status s = DETRUN_OK;
    float *va = detrun_trace_reader_values(ra);
    float *vb = va ? detrun_trace_reader_values(rb) : NULL;
    if (va == NULL || vb == NULL)
        s = DETRUN_ERR_IO;
    else {
        out->have_values = 1;
        compare_values(va, vb, (size_t)ra->count, out);
        if (dump_prefix != NULL)
            s = dump(rt, dump_prefix, "a", va, (size_t)ra->count);
        if (s == DETRUN_OK && dump_prefix != NULL)
            s = dump(rt, dump_prefix, "b", vb, (size_t)rb->count);
    }
    detrun_trace_values_free(rt, va, (size_t)ra->count);
    detrun_trace_values_free(rt, vb, (size_t)rb->count);
    return s;
}

detrun_status detrun_trace_diff(detrun_runtime *rt, const char *a, const char *b,
                                const char *dump_prefix, detrun_trace_divergence *out)
{
    memset(out, 0, sizeof *out);
    reader ra, rb;
    detrun_status s = detrun_trace_reader_open(rt, a, &ra);
    if (s == DETRUN_OK)
        s = detrun_trace_reader_open(rt, b, &rb);
    else
        memset(&rb, 0, sizeof rb);
    uint64_t agreed = 0;
    while (s == DETRUN_OK) {
        if ((s = detrun_trace_reader_next(&ra)) != DETRUN_OK ||
            (s = detrun_trace_reader_next(&rb)) != DETRUN_OK)
            break;
        if (!same_record(&ra, &rb)) {
            char da[150], db[150];
            describe(&ra, da, sizeof da);
            describe(&rb, db, sizeof db);
            out->differ = 1;
            out->structural = 1;
            snprintf(out->what, sizeof out->what, "at record %" PRIu64 " the first trace has %s,"
                     " the second %s", agreed + 1, da, db);
            break;
        }
        /* Where we are, for the report. */
        if (ra.type == 'F') {
            out->fit = ra.fit;
            out->mode = ra.mode;
            out->stream = ra.stream;
            snprintf(out->label, sizeof out->label, "%s", ra.label);
        } else if (ra.type == 'S') {
            out->epoch = ra.epoch;
            out->step = ra.step;
        } else if (ra.type == 'E') {
            break;
        } else if (memcmp(ra.fp, rb.fp, 16) != 0) {
            s = tensor_divergence(rt, &ra, &rb, dump_prefix, out);
            break;
        }
        agreed++;
    }
    out->records = agreed;
    detrun_trace_reader_close(&ra);
    detrun_trace_reader_close(&rb);
    return s;
}

void detrun_trace_divergence_print(FILE *f, const char *a, const char *b,
                                   const detrun_trace_divergence *d)
{
    if (!d->differ) {
        fprintf(f, "traces agree: %s and %s hold the same %" PRIu64 " records\n", a, b,
                d->records);
        return;
    }
    if (d->structural) {
        fprintf(f, "traces differ in structure: %s\n", d->what);
        return;
    }
    fprintf(f, "first divergence after %" PRIu64 " equal records:\n", d->records);
    fprintf(f, "  fit     %" PRIu32 " (%s, stream %" PRIu32 "%s%s)\n", d->fit,
            d->mode == DETRUN_FAST ? "fast" : "deterministic", d->stream,
            d->label[0] ? ", " : "", d->label);
    fprintf(f, "  step    %" PRIu64 " (epoch %d)\n", d->step, d->epoch);
    fprintf(f, "  layer   %d\n", d->layer);
    fprintf(f, "  tensor  %s (%s)\n", d->name, detrun_trace_kind_name(d->kind));
    fprintf(f, "  %s  %s\n  %s  %s\n", d->fingerprint_a, a, d->fingerprint_b, b);
    if (d->have_values)
        fprintf(f, "  %zu of %zu values differ; largest absolute difference %.9g (element %zu), "
                "largest relative difference %.9g (element %zu)\n", d->differing, d->count,
                d->max_abs, d->max_abs_at, d->max_rel, d->max_rel_at);
}

detrun_status detrun_trace_compare(detrun_runtime *rt, const char *a, const char *b,
                                   const char *dump_prefix, FILE *report, int *differ)
{
    detrun_trace_divergence d;
    detrun_status s = detrun_trace_diff(rt, a, b, dump_prefix, &d);
    if (differ != NULL)
        *differ = s == DETRUN_OK && d.differ;
    if (s == DETRUN_OK && report != NULL) {
        detrun_trace_divergence_print(report, a, b, &d);
        if (dump_prefix != NULL && d.have_values)
            fprintf(report, "  the two tensors: %s.a.f32 and %s.b.f32 (float32, little-endian)\n",
                    dump_prefix, dump_prefix);
        else if (dump_prefix != NULL && d.differ && !d.structural)
            fprintf(report, "  no values to dump: record the traces with values "
                    "(--trace-values)\n");
    }
    return s;
}
