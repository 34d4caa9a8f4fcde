/*
 * trace.c - the trace file: writer, reader, and the first divergence of two
 * traces (docs/regression.md, "Traces").
 *
 * Layout, little-endian:
 *   0   8  magic "DRTRACE\n"
 *   8   4  version (1)
 *   12  4  flags (1: tensor records carry their values)
 *   16  4  every: steps between recorded steps
 *   20  4  J: length of the header JSON
 *   24  J  header JSON: detrun version, machine, options
 *   then records, each a type byte and its fields:
 *   'F' fit     u32 index, u8 mode, u64 seed, u32 stream, u16 length, label
 *   'S' step    i32 epoch, u64 step (from 0 within the fit)
 *   'N' name    u32 id, u8 kind, i32 layer, u8 ndims, ndims x u32 per-sample
 *               dims (the batch dim of outputs is in each tensor record),
 *               u16 length, name; defines id before its first use
 *   'T' tensor  u32 id, 16 bytes XXH3-128 fingerprint (canonical), u64
 *               count, [count float32 when flag 1]
 *   'E' end     u64 number of records before it
 * Names are defined once and referred to by id, so that a step costs about
 * 29 bytes per tensor.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "byteorder.h"
#include "checkpoint.h"
#include "model.h"
#include "trace.h"

#define HEADER_BYTES 24
#define MAX_JSON (1u << 20)
#define MAX_NAMES 65536

typedef struct name_entry {
    detrun_trace_kind kind;
    int layer;
    int ndims;
    uint32_t dims[4];
    char name[DETRUN_TRACE_NAME_MAX];
} name_entry;

struct detrun_trace {
    detrun_runtime *rt;
    FILE *f;
    char *path, *tmp;
    int every;
    unsigned flags;
    uint32_t fits;
    uint64_t records;
    int failed;
    name_entry *names;
    uint32_t nnames, cap;
    float *host;              /* a tensor's values downloaded from the backend */
    size_t host_floats;
    char label[DETRUN_TRACE_NAME_MAX];
};

const char *detrun_trace_kind_name(detrun_trace_kind kind)
{
    switch (kind) {
    case DETRUN_TRACE_OUTPUT: return "output";
    case DETRUN_TRACE_GRAD: return "gradient";
    case DETRUN_TRACE_PARAM: return "parameter";
    }
    return "unknown";
}

/* ---- writing ------------------------------------------------------------ */

static detrun_status emit(detrun_trace *tr, const void *buf, size_t len)
{
    if (tr->failed)
        return DETRUN_ERR_IO;
    if (fwrite(buf, 1, len, tr->f) != len) {
        tr->failed = 1;
        return detrun_seterr(tr->rt, DETRUN_ERR_IO, "%s: cannot write the trace: %s", tr->tmp,
                             strerror(errno));
    }
    return DETRUN_OK;
}

detrun_status detrun_trace_open(detrun_runtime *rt, const char *path, int every, unsigned flags,
                                const char *header_json, detrun_trace **out)
{
    *out = NULL;
    if (path == NULL || every < 1)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "trace: %s", path == NULL ? "no file name"
                             : "the step interval must be at least 1");
    if (flags & ~DETRUN_TRACE_VALUES)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "trace: unknown flags %#x", flags);
    if (header_json == NULL)
        header_json = "{}";
    size_t jlen = strlen(header_json);
    if (jlen > MAX_JSON)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "trace: header JSON too long");
    detrun_trace *tr = calloc(1, sizeof *tr);
    size_t plen = strlen(path);
    if (tr == NULL || (tr->path = strdup(path)) == NULL || (tr->tmp = malloc(plen + 5)) == NULL) {
        if (tr != NULL) {
            free(tr->path);
            free(tr);
        }
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "trace: out of memory");
    }
    memcpy(tr->tmp, path, plen);
    memcpy(tr->tmp + plen, ".tmp", 5);
    tr->rt = rt;
    tr->every = every;
    tr->flags = flags;
    tr->f = fopen(tr->tmp, "wb");
    if (tr->f == NULL) {
        detrun_status s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create: %s", tr->tmp,
                                        strerror(errno));
        free(tr->tmp);
        free(tr->path);
        free(tr);
        return s;
    }
    unsigned char head[HEADER_BYTES];
    memcpy(head, DETRUN_TRACE_MAGIC, 8);
    detrun_put_le32(head + 8, DETRUN_TRACE_VERSION);
    detrun_put_le32(head + 12, flags);
    detrun_put_le32(head + 16, (uint32_t)every);
    detrun_put_le32(head + 20, (uint32_t)jlen);
    detrun_status s = emit(tr, head, sizeof head);
    if (s == DETRUN_OK)
        s = emit(tr, header_json, jlen);
    if (s != DETRUN_OK) {
        detrun_trace_discard(tr);
        return s;
    }
    *out = tr;
    return DETRUN_OK;
}

static void trace_free(detrun_trace *tr)
{
    free(tr->names);
    free(tr->host);
    free(tr->tmp);
    free(tr->path);
    free(tr);
}

void detrun_trace_discard(detrun_trace *tr)
{
    if (tr == NULL)
        return;
    if (tr->f != NULL)
        fclose(tr->f);
    unlink(tr->tmp);
    trace_free(tr);
}

detrun_status detrun_trace_close(detrun_runtime *rt, detrun_trace *tr)
{
    if (tr == NULL)
        return DETRUN_OK;
    unsigned char rec[9];
    rec[0] = 'E';
    detrun_put_le64(rec + 1, tr->records);
    detrun_status s = emit(tr, rec, sizeof rec);
    if (s == DETRUN_OK && (fflush(tr->f) != 0 || fsync(fileno(tr->f)) != 0))
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot write the trace: %s", tr->tmp,
                          strerror(errno));
    if (fclose(tr->f) != 0 && s == DETRUN_OK)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot close the trace: %s", tr->tmp,
                          strerror(errno));
    tr->f = NULL;
    if (s == DETRUN_OK && rename(tr->tmp, tr->path) != 0)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot rename to %s: %s", tr->tmp, tr->path,
                          strerror(errno));
    if (s != DETRUN_OK)
        unlink(tr->tmp);
    trace_free(tr);
    return s;
}

detrun_status detrun_trace_fit(detrun_trace *tr, detrun_mode mode, uint64_t seed,
                               uint32_t stream, const char *label)
{
    if (label == NULL)
        label = tr->label;
    size_t llen = strnlen(label, DETRUN_TRACE_NAME_MAX - 1);
    unsigned char rec[1 + 4 + 1 + 8 + 4 + 2 + DETRUN_TRACE_NAME_MAX];
    rec[0] = 'F';
    detrun_put_le32(rec + 1, tr->fits++);
    rec[5] = (unsigned char)mode;
    detrun_put_le64(rec + 6, seed);
    detrun_put_le32(rec + 14, stream);
    rec[18] = (unsigned char)llen;
    rec[19] = (unsigned char)(llen >> 8);
    memcpy(rec + 20, label, llen);
    tr->records++;
    return emit(tr, rec, 20 + llen);
}

int detrun_trace_wants(const detrun_trace *tr, uint64_t step)
{
    return tr != NULL && step % (uint64_t)tr->every == 0;
}

detrun_status detrun_trace_step(detrun_trace *tr, int epoch, uint64_t step)
{
    unsigned char rec[13];
    rec[0] = 'S';
    detrun_put_le32(rec + 1, (uint32_t)epoch);
    detrun_put_le64(rec + 5, step);
    tr->records++;
    return emit(tr, rec, sizeof rec);
}

/* The id of (kind, layer, name, per-sample dims), defining it on first use. */
static detrun_status name_id(detrun_trace *tr, detrun_trace_kind kind, int layer,
                             const char *name, int ndims, const uint32_t *dims, uint32_t *id)
{
    for (uint32_t i = 0; i < tr->nnames; i++) {
        const name_entry *e = &tr->names[i];
        if (e->kind == kind && e->layer == layer && e->ndims == ndims &&
            memcmp(e->dims, dims, (size_t)ndims * sizeof *dims) == 0 &&
            strcmp(e->name, name) == 0) {
            *id = i;
            return DETRUN_OK;
        }
    }
    if (tr->nnames == MAX_NAMES)
        return detrun_seterr(tr->rt, DETRUN_ERR_ARG, "trace: more than %d distinct tensors",
                             MAX_NAMES);
    if (tr->nnames == tr->cap) {
        uint32_t cap = tr->cap ? 2 * tr->cap : 64;
        name_entry *n = realloc(tr->names, cap * sizeof *n);
        if (n == NULL)
            return detrun_seterr(tr->rt, DETRUN_ERR_MEMORY, "trace: out of memory");
        tr->names = n;
        tr->cap = cap;
    }
    name_entry *e = &tr->names[tr->nnames];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->layer = layer;
    e->ndims = ndims;
    memcpy(e->dims, dims, (size_t)ndims * sizeof *dims);
    snprintf(e->name, sizeof e->name, "%s", name);
    *id = tr->nnames++;

    unsigned char rec[1 + 4 + 1 + 4 + 1 + 16 + 2 + DETRUN_TRACE_NAME_MAX];
    size_t k = 0;
    rec[k++] = 'N';
    detrun_put_le32(rec + k, *id);
    k += 4;
    rec[k++] = (unsigned char)kind;
    detrun_put_le32(rec + k, (uint32_t)layer);
    k += 4;
    rec[k++] = (unsigned char)ndims;
    for (int d = 0; d < ndims; d++, k += 4)
        detrun_put_le32(rec + k, dims[d]);
    size_t nlen = strlen(e->name);
    rec[k++] = (unsigned char)nlen;
    rec[k++] = (unsigned char)(nlen >> 8);
    memcpy(rec + k, e->name, nlen);
    k += nlen;
    tr->records++;
    return emit(tr, rec, k);
}

detrun_status detrun_trace_tensor(detrun_trace *tr, detrun_trace_kind kind, int layer,
                                  const char *name, int ndims, const int *dims,
                                  const float *data, size_t count)
{
    if (ndims < 0 || ndims > 4)
        return detrun_seterr(tr->rt, DETRUN_ERR_ARG, "trace: %s has %d dims", name, ndims);
    uint32_t udims[4] = { 0, 0, 0, 0 };
    for (int d = 0; d < ndims; d++)
        udims[d] = (uint32_t)dims[d];
    uint32_t id = 0;
    detrun_status s = name_id(tr, kind, layer, name, ndims, udims, &id);
    if (s != DETRUN_OK)
        return s;
    /* The fingerprint is the one of docs/determinism.md, over the whole
     * tensor (an output's batch dim first). */
    int fdims[5];
    int fnd = 0;
    if (kind == DETRUN_TRACE_OUTPUT) {
        size_t per = 1;
        for (int d = 0; d < ndims; d++)
            per *= (size_t)dims[d];
        fdims[fnd++] = per > 0 ? (int)(count / per) : 0;
    }
    for (int d = 0; d < ndims; d++)
        fdims[fnd++] = dims[d];
    XXH3_state_t *st = XXH3_createState();
    if (st == NULL)
        return detrun_seterr(tr->rt, DETRUN_ERR_MEMORY, "trace: out of memory");
    XXH3_128bits_reset(st);
    detrun_fingerprint_update(st, name, fnd, fdims, data, count);
    XXH128_canonical_t sum;
    XXH128_canonicalFromHash(&sum, XXH3_128bits_digest(st));
    XXH3_freeState(st);

    unsigned char rec[1 + 4 + 16 + 8];
    rec[0] = 'T';
    detrun_put_le32(rec + 1, id);
    memcpy(rec + 5, sum.digest, 16);
    detrun_put_le64(rec + 21, count);
    tr->records++;
    s = emit(tr, rec, sizeof rec);
    if (s == DETRUN_OK && (tr->flags & DETRUN_TRACE_VALUES)) {
        unsigned char buf[4096];
        size_t k = 0;
        for (size_t i = 0; i < count && s == DETRUN_OK; i++) {
            uint32_t u;
            memcpy(&u, &data[i], 4);
            detrun_put_le32(buf + k, u);
            k += 4;
            if (k == sizeof buf || i + 1 == count) {
                s = emit(tr, buf, k);
                k = 0;
            }
        }
    }
    return s;
}

/* ---- the hook of detrun_model_fit --------------------------------------- */

static const float *to_host(detrun_trace *tr, detrun_model *m, const float *src, size_t count)
{
    if (count > tr->host_floats) {
        float *h = realloc(tr->host, count * sizeof(float));
        if (h == NULL)
            return NULL;
        tr->host = h;
        tr->host_floats = count;
    }
    detrun_backend *b = m->rt->backend;
    if (b->ops->download(b, tr->host, src, count * sizeof(float)) != DETRUN_OK)
        return NULL;
    return tr->host;
}

static int layer_of_param(const detrun_model *m, int p)
{
    for (int l = 0; l < m->nlayers; l++)
        if (m->layers[l].wparam == p || m->layers[l].bparam == p)
            return l;
    return -1;
}

detrun_status detrun_trace_model(detrun_trace *tr, detrun_model *m, int n, int epoch,
                                 uint64_t step)
{
    detrun_status s = detrun_trace_step(tr, epoch, step);
    /* Causal order: forward outputs, gradients from the last layer back,
     * then the parameters the step wrote. */
    for (int l = 0; l < m->nlayers && s == DETRUN_OK; l++) {
        const detrun_layer *ly = &m->layers[l];
        if (ly->act_out == NULL)
            continue;
        int dims[3] = { ly->out_c, ly->out_h, ly->out_w };
        size_t count = (size_t)n * detrun_layer_out_size(ly);
        const float *h = to_host(tr, m, ly->act_out, count);
        if (h == NULL)
            return detrun_seterr(tr->rt, DETRUN_ERR_DEVICE, "trace: cannot read the output of %s",
                                 ly->name);
        char name[DETRUN_TRACE_NAME_MAX];
        snprintf(name, sizeof name, "%s.output", ly->name);
        s = detrun_trace_tensor(tr, DETRUN_TRACE_OUTPUT, l, name, 3, dims, h, count);
    }
    for (int i = m->nparams - 1; i >= 0 && s == DETRUN_OK; i--) {
        const detrun_param *p = &m->params[i];
        const float *h = to_host(tr, m, m->g + p->offset, p->count);
        if (h == NULL)
            return detrun_seterr(tr->rt, DETRUN_ERR_DEVICE, "trace: cannot read the gradient of %s",
                                 p->name);
        char name[DETRUN_TRACE_NAME_MAX];
        snprintf(name, sizeof name, "%s.grad", p->name);
        s = detrun_trace_tensor(tr, DETRUN_TRACE_GRAD, layer_of_param(m, i), name, p->ndims,
                                p->dims, h, p->count);
    }
    for (int i = 0; i < m->nparams && s == DETRUN_OK; i++) {
        const detrun_param *p = &m->params[i];
        const float *h = to_host(tr, m, m->p + p->offset, p->count);
        if (h == NULL)
            return detrun_seterr(tr->rt, DETRUN_ERR_DEVICE, "trace: cannot read %s", p->name);
        s = detrun_trace_tensor(tr, DETRUN_TRACE_PARAM, layer_of_param(m, i), p->name, p->ndims,
                                p->dims, h, p->count);
    }
    return s;
}

void detrun_trace_set_label(detrun_trace *tr, const char *label)
{
    if (tr != NULL)
        snprintf(tr->label, sizeof tr->label, "%s", label != NULL ? label : "");
}

/* ---- reading ------------------------------------------------------------ */

enum { REC_FIT = 'F', REC_STEP = 'S', REC_TENSOR = 'T', REC_END = 'E' };

typedef struct reader {
    detrun_runtime *rt;
    const char *path;
    FILE *f;
    uint64_t offset;          /* of the next byte */
    uint64_t records;         /* read so far, names included */
    unsigned flags;
    int every;
    char *json;
    name_entry *names;
    uint32_t nnames, cap;
    /* the record just read */
    int type;
    uint64_t at;              /* its offset */
    uint32_t fit;
    detrun_mode mode;
    uint64_t seed;
    uint32_t stream;
    char label[DETRUN_TRACE_NAME_MAX];
    int epoch;
    uint64_t step;
    uint32_t id;
    unsigned char fp[16];
    uint64_t count;
    long values_at;           /* file offset of the values, when the flag is set */
} reader;

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

static void reader_close(reader *r)
{
    if (r->f != NULL)
        fclose(r->f);
    free(r->json);
    free(r->names);
    r->f = NULL;
    r->json = NULL;
    r->names = NULL;
}

static detrun_status reader_open(detrun_runtime *rt, const char *path, reader *r)
{
    memset(r, 0, sizeof *r);
    r->rt = rt;
    r->path = path;
    r->f = fopen(path, "rb");
    if (r->f == NULL)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[HEADER_BYTES];
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
    if (jlen > MAX_JSON)
        return rbad(r, "%s", "the header JSON is longer than any detrun writes");
    r->at = HEADER_BYTES;
    r->json = malloc(jlen + 1);
    if (r->json == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    detrun_status s = rread(r, r->json, jlen);
    r->json[jlen] = '\0';
    return s;
}

/* Reads the next fit, step, tensor or end record; name records are taken in
 * on the way. A tensor's values are skipped (values_at says where). */
static detrun_status reader_next(reader *r)
{
    for (;;) {
        r->at = r->offset;
        unsigned char t, b[32];
        detrun_status s = rread(r, &t, 1);
        if (s != DETRUN_OK)
            return s;
        r->type = t;
        r->records++;
        switch (t) {
        case 'F': {
            if ((s = rread(r, b, 19)) != DETRUN_OK)
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
        case 'S':
            if ((s = rread(r, b, 12)) != DETRUN_OK)
                return s;
            r->epoch = (int)detrun_get_le32(b);
            r->step = detrun_get_le64(b + 4);
            return DETRUN_OK;
        case 'N': {
            if ((s = rread(r, b, 10)) != DETRUN_OK)
                return s;
            uint32_t id = detrun_get_le32(b);
            if (id != r->nnames)
                return rbad(r, "%s", "a name record out of sequence");
            if (b[4] < DETRUN_TRACE_OUTPUT || b[4] > DETRUN_TRACE_PARAM || b[9] > 4)
                return rbad(r, "%s", "a name record with an unknown kind or too many dims");
            if (r->nnames == MAX_NAMES)
                return rbad(r, "%s", "more names than any detrun writes");
            if (r->nnames == r->cap) {
                uint32_t cap = r->cap ? 2 * r->cap : 64;
                name_entry *n = realloc(r->names, cap * sizeof *n);
                if (n == NULL)
                    return detrun_seterr(r->rt, DETRUN_ERR_MEMORY, "%s: out of memory", r->path);
                r->names = n;
                r->cap = cap;
            }
            name_entry *e = &r->names[r->nnames];
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
            continue;
        }
        case 'T':
            if ((s = rread(r, b, 28)) != DETRUN_OK)
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
                if (fseek(r->f, (long)(r->count * 4), SEEK_CUR) != 0)
                    return detrun_seterr(r->rt, DETRUN_ERR_IO, "%s: cannot seek: %s", r->path,
                                         strerror(errno));
                r->offset += r->count * 4;
            }
            return DETRUN_OK;
        case 'E':
            if ((s = rread(r, b, 8)) != DETRUN_OK)
                return s;
            if (detrun_get_le64(b) != r->records - 1)
                return rbad(r, "%s", "the end record's count does not match the records read");
            if (fread(b, 1, 1, r->f) != 0)
                return rbad(r, "%s", "bytes after the end record");
            return DETRUN_OK;
        default:
            return rbad(r, "%s", "an unknown record type");
        }
    }
}

/* The values of the tensor just read (count floats, freed by the caller). */
static float *reader_values(reader *r)
{
    size_t n = (size_t)r->count;
    float *v = malloc((n > 0 ? n : 1) * sizeof(float));
    unsigned char *b = malloc((n > 0 ? n : 1) * 4);
    int ok = v != NULL && b != NULL && fseek(r->f, r->values_at, SEEK_SET) == 0 &&
             fread(b, 4, n, r->f) == n;
    for (size_t i = 0; ok && i < n; i++) {
        uint32_t u = detrun_get_le32(b + 4 * i);
        memcpy(&v[i], &u, 4);
    }
    free(b);
    if (!ok) {
        free(v);
        detrun_seterr(r->rt, DETRUN_ERR_IO, "%s: cannot read the values at byte %ld", r->path,
                      r->values_at);
        return NULL;
    }
    return v;
}

/* ---- the first divergence ----------------------------------------------- */

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
        const name_entry *e = &r->names[r->id];
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
    unsigned char *b = malloc((n > 0 ? n : 1) * 4);
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
    free(b);
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

detrun_status detrun_trace_diff(detrun_runtime *rt, const char *a, const char *b,
                                const char *dump_prefix, detrun_trace_divergence *out)
{
    memset(out, 0, sizeof *out);
    reader ra, rb;
    detrun_status s = reader_open(rt, a, &ra);
    if (s == DETRUN_OK)
        s = reader_open(rt, b, &rb);
    else
        memset(&rb, 0, sizeof rb);
    uint64_t agreed = 0;
    while (s == DETRUN_OK) {
        if ((s = reader_next(&ra)) != DETRUN_OK || (s = reader_next(&rb)) != DETRUN_OK)
            break;
        int same = ra.type == rb.type;
        if (same && ra.type == 'F')
            same = ra.fit == rb.fit && ra.mode == rb.mode && ra.seed == rb.seed &&
                   ra.stream == rb.stream && strcmp(ra.label, rb.label) == 0;
        else if (same && ra.type == 'S')
            same = ra.epoch == rb.epoch && ra.step == rb.step;
        else if (same && ra.type == 'T') {
            const name_entry *x = &ra.names[ra.id], *y = &rb.names[rb.id];
            same = x->kind == y->kind && x->layer == y->layer && x->ndims == y->ndims &&
                   memcmp(x->dims, y->dims, sizeof x->dims) == 0 &&
                   strcmp(x->name, y->name) == 0 && ra.count == rb.count;
        }
        if (!same) {
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
            const name_entry *e = &ra.names[ra.id];
            out->differ = 1;
            out->kind = e->kind;
            out->layer = e->layer;
            snprintf(out->name, sizeof out->name, "%s", e->name);
            hex(ra.fp, out->fingerprint_a);
            hex(rb.fp, out->fingerprint_b);
            if ((ra.flags & rb.flags & DETRUN_TRACE_VALUES) != 0) {
                float *va = reader_values(&ra), *vb = va ? reader_values(&rb) : NULL;
                if (va == NULL || vb == NULL)
                    s = DETRUN_ERR_IO;
                else {
                    out->have_values = 1;
                    compare_values(va, vb, (size_t)ra.count, out);
                    if (dump_prefix != NULL)
                        s = dump(rt, dump_prefix, "a", va, (size_t)ra.count);
                    if (s == DETRUN_OK && dump_prefix != NULL)
                        s = dump(rt, dump_prefix, "b", vb, (size_t)rb.count);
                }
                free(va);
                free(vb);
            }
            break;
        }
        agreed++;
    }
    out->records = agreed;
    reader_close(&ra);
    reader_close(&rb);
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

/* ---- the public face (detrun.h) ----------------------------------------- */

detrun_status detrun_trace_start(detrun_runtime *rt, const char *path, int every, int values)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (rt->trace != NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "trace: a trace is already being written");
    char machine[400];
    detrun_machine(rt, machine, sizeof machine);
    cJSON *h = cJSON_CreateObject();
    char *json = NULL;
    if (h != NULL) {
        cJSON_AddStringToObject(h, "detrun", DETRUN_VERSION);
        cJSON_AddStringToObject(h, "machine", machine);
        cJSON_AddNumberToObject(h, "every", every);
        cJSON_AddBoolToObject(h, "values", values != 0);
        json = cJSON_PrintUnformatted(h);
        cJSON_Delete(h);
    }
    if (json == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "trace: out of memory");
    detrun_status s = detrun_trace_open(rt, path, every, values ? DETRUN_TRACE_VALUES : 0, json,
                                        &rt->trace);
    cJSON_free(json);
    return s;
}

detrun_status detrun_trace_stop(detrun_runtime *rt)
{
    if (rt == NULL || rt->trace == NULL)
        return DETRUN_OK;
    detrun_trace *tr = rt->trace;
    rt->trace = NULL;
    return detrun_trace_close(rt, tr);
}

void detrun_trace_label(detrun_runtime *rt, const char *label)
{
    if (rt != NULL)
        detrun_trace_set_label(rt->trace, label);
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
