/*
 * trace_read.c - a trace file read back record by record (docs/regression.md,
 * "Traces"; the layout is in trace_format.h). Every fault names the file and
 * the byte offset of the record it is in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "byteorder.h"
#include "internal.h"
#include "model.h"
#include "trace_read.h"

typedef detrun_trace_reader reader;

static detrun_status rbad(reader *r, const char *fmt, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof msg, fmt, what);
    return detrun_seterr(r->rt, DETRUN_ERR_FORMAT, "%s: byte %" PRIu64 ": %s", r->path, r->at,
                         msg);
}

static detrun_status rread(reader *r, void *buf, size_t len)
{
    if (len == 0)
        return DETRUN_OK;
    size_t got = fread(buf, 1, len, r->f);
    r->offset += got;
    if (got != len) {
        if (ferror(r->f))
            return detrun_seterr(r->rt, DETRUN_ERR_IO, "%s: cannot read: %s", r->path,
                                 strerror(errno));
        return rbad(r, "%s", "the trace is cut short (no end record: was the run killed?)");
    }
    return DETRUN_OK;
}

void detrun_trace_reader_close(reader *r)
{
    if (r->f != NULL)
        fclose(r->f);
    detrun_free(r->rt, r->json, r->json_bytes);
    detrun_free(r->rt, r->names, (size_t)r->cap * sizeof *r->names);
    r->f = NULL;
    r->json = NULL;
    r->names = NULL;
}

detrun_status detrun_trace_reader_open(detrun_runtime *rt, const char *path, reader *r)
{
    memset(r, 0, sizeof *r);
    r->rt = rt;
    r->path = path;
    r->f = fopen(path, "rb");
    if (r->f == NULL)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[DETRUN_TRACE_HEADER_BYTES];
    size_t got = fread(head, 1, sizeof head, r->f);
    r->offset = got;
    if (got < 8 || memcmp(head, DETRUN_TRACE_MAGIC, 8) != 0)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: not a detrun trace (no trace magic at "
                             "the start)", path);
    if (got < sizeof head)
        return rbad(r, "%s", "the header is cut short");
    uint32_t version = detrun_get_le32(head + 8);
    if (version != DETRUN_TRACE_VERSION)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: trace format version %" PRIu32
                             ", but detrun %s reads version %u", path, version, DETRUN_VERSION,
                             DETRUN_TRACE_VERSION);
    r->flags = detrun_get_le32(head + 12);
    if (r->flags & ~DETRUN_TRACE_VALUES)
        return rbad(r, "%s", "unknown header flags");
    uint32_t every = detrun_get_le32(head + 16);
    uint32_t jlen = detrun_get_le32(head + 20);
    if (every < 1 || every > INT32_MAX)
        return rbad(r, "%s", "the step interval in the header is not positive");
    r->every = (int)every;
    if (jlen > DETRUN_TRACE_MAX_JSON)
        return rbad(r, "%s", "the header JSON is longer than any detrun writes");
    r->at = DETRUN_TRACE_HEADER_BYTES;
    r->json = detrun_malloc(rt, (size_t)jlen + 1);
    if (r->json == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    r->json_bytes = (size_t)jlen + 1;
    detrun_status s = rread(r, r->json, jlen);
    r->json[jlen] = '\0';
    return s;
}

static detrun_status read_fit(reader *r)
{
    unsigned char b[19];
    detrun_status s = rread(r, b, 19);
    if (s != DETRUN_OK)
        return s;
    r->fit = detrun_get_le32(b);
    if (b[4] > DETRUN_FAST)
        return rbad(r, "%s", "a fit record with an unknown mode");
    r->mode = (detrun_mode)b[4];
    r->seed = detrun_get_le64(b + 5);
    r->stream = detrun_get_le32(b + 13);
    size_t llen = (size_t)b[17] | (size_t)b[18] << 8;
    if (llen >= sizeof r->label)
        return rbad(r, "%s", "a fit label longer than any detrun writes");
    if ((s = rread(r, r->label, llen)) != DETRUN_OK)
        return s;
    r->label[llen] = '\0';
    return DETRUN_OK;
}

static detrun_status read_step(reader *r)
{
    unsigned char b[12];
    detrun_status s = rread(r, b, 12);
    if (s != DETRUN_OK)
        return s;
    r->epoch = (int)detrun_get_le32(b);
    r->step = detrun_get_le64(b + 4);
    return DETRUN_OK;
}

/* A name record: the next id's definition. */
static detrun_status read_name(reader *r)
{
    unsigned char b[32];
    detrun_status s = rread(r, b, 10);
    if (s != DETRUN_OK)
        return s;
    uint32_t id = detrun_get_le32(b);
    if (id != r->nnames)
        return rbad(r, "%s", "a name record out of sequence");
    if (b[4] < DETRUN_TRACE_OUTPUT || b[4] > DETRUN_TRACE_PARAM || b[9] > 4)
        return rbad(r, "%s", "a name record with an unknown kind or too many dims");
    if (r->nnames == DETRUN_TRACE_MAX_NAMES)
        return rbad(r, "%s", "more names than any detrun writes");
    if (r->nnames == r->cap) {
        uint32_t cap = r->cap ? 2 * r->cap : 64;
        detrun_trace_name *n = detrun_realloc(r->rt, r->names, (size_t)r->cap * sizeof *n,
                                              (size_t)cap * sizeof *n);
        if (n == NULL)
            return detrun_seterr(r->rt, DETRUN_ERR_MEMORY, "%s: out of memory", r->path);
        r->names = n;
        r->cap = cap;
    }
    detrun_trace_name *e = &r->names[r->nnames];
    memset(e, 0, sizeof *e);
    e->kind = (detrun_trace_kind)b[4];
    e->layer = (int)detrun_get_le32(b + 5);
    e->ndims = b[9];
    if ((s = rread(r, b, 4 * (size_t)e->ndims + 2)) != DETRUN_OK)
        return s;
    for (int d = 0; d < e->ndims; d++)
        e->dims[d] = detrun_get_le32(b + 4 * d);
    size_t nlen = (size_t)b[4 * e->ndims] | (size_t)b[4 * e->ndims + 1] << 8;
    if (nlen >= sizeof e->name)
        return rbad(r, "%s", "a tensor name longer than any detrun writes");
    if ((s = rread(r, e->name, nlen)) != DETRUN_OK)
        return s;
    e->name[nlen] = '\0';
    r->nnames++;
    return DETRUN_OK;
}

/* A tensor record's values hashed as the writer hashed them (trace.c: the
 * fingerprint of docs/determinism.md, an output's batch dim first) and
 * compared with the record's fingerprint: the fingerprint is the values'
 * checksum, so a flipped value byte is a damaged file, never a divergence
 * or "traces agree". Streams the values; leaves the file after them. */
static detrun_status check_values(reader *r)
{
    const detrun_trace_name *e = &r->names[r->id];
    int fdims[5], fnd = 0;
    if (e->kind == DETRUN_TRACE_OUTPUT) {
        uint64_t per = 1;
        for (int d = 0; d < e->ndims; d++)
            per *= e->dims[d];
        fdims[fnd++] = per > 0 ? (int)(r->count / per) : 0;
    }
    for (int d = 0; d < e->ndims; d++)
        fdims[fnd++] = (int)e->dims[d];
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_128bits_reset(&st);
    detrun_fingerprint_update(&st, e->name, fnd, fdims, NULL, 0);
    unsigned char buf[4096];
    for (uint64_t left = r->count * 4; left > 0;) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        detrun_status s = rread(r, buf, n);
        if (s != DETRUN_OK)
            return s;
        XXH3_128bits_update(&st, buf, n);
        left -= n;
    }
    XXH128_canonical_t sum;
    XXH128_canonicalFromHash(&sum, XXH3_128bits_digest(&st));
    if (memcmp(sum.digest, r->fp, 16) != 0)
        return rbad(r, "the values of %s do not match the record's fingerprint (the file is "
                       "damaged)", e->name);
    return DETRUN_OK;
}

static detrun_status read_tensor(reader *r)
{
    unsigned char b[28];
    detrun_status s = rread(r, b, 28);
    if (s != DETRUN_OK)
        return s;
    r->id = detrun_get_le32(b);
    if (r->id >= r->nnames)
        return rbad(r, "%s", "a tensor record refers to an undefined name");
    memcpy(r->fp, b + 4, 16);
    r->count = detrun_get_le64(b + 20);
    if (r->flags & DETRUN_TRACE_VALUES) {
        if (r->count > ((uint64_t)1 << 40))
            return rbad(r, "%s", "a tensor larger than any detrun writes");
        r->values_at = (long)r->offset;
        return check_values(r);
    }
    return DETRUN_OK;
}

static detrun_status read_end(reader *r)
{
    unsigned char b[8];
    detrun_status s = rread(r, b, 8);
    if (s != DETRUN_OK)
        return s;
    if (detrun_get_le64(b) != r->records - 1)
        return rbad(r, "%s", "the end record's count does not match the records read");
    if (fread(b, 1, 1, r->f) != 0)
        return rbad(r, "%s", "bytes after the end record");
    return DETRUN_OK;
}

detrun_status detrun_trace_reader_next(reader *r)
{
    for (;;) {
        r->at = r->offset;
        unsigned char t;
        detrun_status s = rread(r, &t, 1);
        if (s != DETRUN_OK)
            return s;
        r->type = t;
        r->records++;
        switch (t) {
        case 'F': return read_fit(r);
        case 'S': return read_step(r);
        case 'N':
            if ((s = read_name(r)) != DETRUN_OK)
                return s;
            continue;
        case 'T': return read_tensor(r);
        case 'E': return read_end(r);
        default: return rbad(r, "%s", "an unknown record type");
        }
    }
}

static size_t values_bytes(size_t count)
{
    return (count > 0 ? count : 1) * sizeof(float);
}

float *detrun_trace_reader_values(reader *r)
{
    size_t n = (size_t)r->count;
    float *v = detrun_malloc(r->rt, values_bytes(n));
    unsigned char *b = detrun_malloc(r->rt, values_bytes(n));
    int ok = v != NULL && b != NULL && fseek(r->f, r->values_at, SEEK_SET) == 0 &&
             fread(b, 4, n, r->f) == n;
    for (size_t i = 0; ok && i < n; i++) {
        uint32_t u = detrun_get_le32(b + 4 * i);
        memcpy(&v[i], &u, 4);
    }
    detrun_free(r->rt, b, values_bytes(n));
    if (!ok) {
        detrun_free(r->rt, v, values_bytes(n));
        detrun_seterr(r->rt, DETRUN_ERR_IO, "%s: cannot read the values at byte %ld", r->path,
                      r->values_at);
        return NULL;
    }
    return v;
}

void detrun_trace_values_free(detrun_runtime *rt, float *v, size_t count)
{
    detrun_free(rt, v, values_bytes(count));
}
