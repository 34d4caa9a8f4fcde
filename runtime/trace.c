/*
 * trace.c - the trace writer (docs/regression.md, "Traces"; the layout is in
 * trace_format.h): a fit's steps, every tensor's fingerprint and, when asked,
 * its values, written to a temporary name and renamed when the trace stops.
 * Reading is in trace_read.c, the search for the first divergence in
 * trace_compare.c.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack: no allocation */
#include <xxhash.h>

#include "byteorder.h"
#include "model.h"
#include "trace_format.h"

struct detrun_trace {
    detrun_runtime *rt;
    FILE *f;
    char *path, *tmp;
    size_t tmp_bytes;         /* of tmp */
    size_t path_bytes;        /* of path */
    int every;
    unsigned flags;
    uint32_t fits;
    uint64_t records;
    int failed;
    detrun_trace_name *names;
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

static void trace_free(detrun_trace *tr)
{
    detrun_runtime *rt = tr->rt;
    detrun_free(rt, tr->names, (size_t)tr->cap * sizeof *tr->names);
    detrun_free(rt, tr->host, tr->host_floats * sizeof(float));
    detrun_free(rt, tr->tmp, tr->tmp_bytes);
    detrun_free(rt, tr->path, tr->path_bytes);
    detrun_free(rt, tr, sizeof *tr);
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
    if (jlen > DETRUN_TRACE_MAX_JSON)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "trace: header JSON too long");
    detrun_trace *tr = detrun_calloc(rt, 1, sizeof *tr);
    size_t plen = strlen(path);
    if (tr == NULL || (tr->path = detrun_malloc(rt, plen + 1)) == NULL ||
        (tr->tmp = detrun_malloc(rt, plen + 48)) == NULL) {
        if (tr != NULL) {
            detrun_free(rt, tr->path, plen + 1);
            detrun_free(rt, tr, sizeof *tr);
        }
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "trace: out of memory");
    }
    tr->tmp_bytes = plen + 48;
    tr->path_bytes = plen + 1;
    memcpy(tr->path, path, plen + 1);
    /* Unique to this writer: two runs tracing to one file never share it. */
    static _Atomic unsigned serial;
    snprintf(tr->tmp, tr->tmp_bytes, "%s.%ld.%u.tmp", path, (long)getpid(),
             atomic_fetch_add(&serial, 1u));
    tr->rt = rt;
    tr->every = every;
    tr->flags = flags;
    tr->f = fopen(tr->tmp, "wb");
    if (tr->f == NULL) {
        detrun_status s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create: %s", tr->tmp,
                                        strerror(errno));
        trace_free(tr);
        return s;
    }
    unsigned char head[DETRUN_TRACE_HEADER_BYTES];
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
        const detrun_trace_name *e = &tr->names[i];
        if (e->kind == kind && e->layer == layer && e->ndims == ndims &&
            memcmp(e->dims, dims, (size_t)ndims * sizeof *dims) == 0 &&
            strcmp(e->name, name) == 0) {
            *id = i;
            return DETRUN_OK;
        }
    }
    if (tr->nnames == DETRUN_TRACE_MAX_NAMES)
        return detrun_seterr(tr->rt, DETRUN_ERR_ARG, "trace: more than %d distinct tensors",
                             DETRUN_TRACE_MAX_NAMES);
    if (tr->nnames == tr->cap) {
        uint32_t cap = tr->cap ? 2 * tr->cap : 64;
        detrun_trace_name *n = detrun_realloc(tr->rt, tr->names, (size_t)tr->cap * sizeof *n,
                                              (size_t)cap * sizeof *n);
        if (n == NULL)
            return detrun_seterr(tr->rt, DETRUN_ERR_MEMORY, "trace: out of memory");
        tr->names = n;
        tr->cap = cap;
    }
    detrun_trace_name *e = &tr->names[tr->nnames];
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
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_128bits_reset(&st);
    detrun_fingerprint_update(&st, name, fnd, fdims, data, count);
    XXH128_canonical_t sum;
    XXH128_canonicalFromHash(&sum, XXH3_128bits_digest(&st));

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

/* The host copy of count floats at src, or NULL with the message ("what
 * name" saying which tensor) and the status in *s. */
static const float *to_host(detrun_trace *tr, detrun_model *m, const float *src, size_t count,
                            const char *what, const char *name, detrun_status *s)
{
    if (count > tr->host_floats) {
        float *h = detrun_realloc(tr->rt, tr->host, tr->host_floats * sizeof(float),
                                  count * sizeof(float));
        if (h == NULL) {
            *s = detrun_seterr(tr->rt, DETRUN_ERR_MEMORY, "trace: out of memory for %s%s", what,
                               name);
            return NULL;
        }
        tr->host = h;
        tr->host_floats = count;
    }
    detrun_backend *b = m->rt->backend;
    if (b->ops->download(b, tr->host, src, count * sizeof(float)) != DETRUN_OK) {
        *s = detrun_seterr(tr->rt, DETRUN_ERR_DEVICE, "trace: cannot read %s%s", what, name);
        return NULL;
    }
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
        const float *h = to_host(tr, m, ly->act_out, count, "the output of ", ly->name, &s);
        if (h == NULL)
            return s;
        char name[DETRUN_TRACE_NAME_MAX];
        snprintf(name, sizeof name, "%s.output", ly->name);
        s = detrun_trace_tensor(tr, DETRUN_TRACE_OUTPUT, l, name, 3, dims, h, count);
    }
    for (int i = m->nparams - 1; i >= 0 && s == DETRUN_OK; i--) {
        const detrun_param *p = &m->params[i];
        const float *h = to_host(tr, m, m->g + p->offset, p->count, "the gradient of ", p->name,
                                 &s);
        if (h == NULL)
            return s;
        char name[DETRUN_TRACE_NAME_MAX];
        snprintf(name, sizeof name, "%s.grad", p->name);
        s = detrun_trace_tensor(tr, DETRUN_TRACE_GRAD, layer_of_param(m, i), name, p->ndims,
                                p->dims, h, p->count);
    }
    for (int i = 0; i < m->nparams && s == DETRUN_OK; i++) {
        const detrun_param *p = &m->params[i];
        const float *h = to_host(tr, m, m->p + p->offset, p->count, "", p->name, &s);
        if (h == NULL)
            return s;
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
