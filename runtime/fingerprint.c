/*
 * fingerprint.c - XXH3-128 over the canonical serialisation of tensors
 * (docs/determinism.md, "Fingerprints").
 *
 * Bytes are assembled explicitly little-endian, so the fingerprint of the
 * same weights is the same on a big-endian host.
 */
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <stdio.h>
#include <string.h>

#include "byteorder.h"
#include "model.h"

void detrun_fingerprint_update(void *xxh3_state, const char *name, int ndims, const int *dims,
                               const float *data, size_t count)
{
    XXH3_state_t *st = xxh3_state;
    unsigned char buf[4096];
    size_t len = strlen(name);
    detrun_put_le32(buf, (uint32_t)len);
    XXH3_128bits_update(st, buf, 4);
    XXH3_128bits_update(st, name, len);
    detrun_put_le32(buf, (uint32_t)ndims);
    XXH3_128bits_update(st, buf, 4);
    for (int d = 0; d < ndims; d++) {
        detrun_put_le32(buf, (uint32_t)dims[d]);
        XXH3_128bits_update(st, buf, 4);
    }
    size_t i = 0;
    while (i < count) {
        size_t n = count - i < sizeof buf / 4 ? count - i : sizeof buf / 4;
        for (size_t k = 0; k < n; k++) {
            uint32_t u;
            memcpy(&u, &data[i + k], 4);
            detrun_put_le32(buf + 4 * k, u);
        }
        XXH3_128bits_update(st, buf, 4 * n);
        i += n;
    }
}

void detrun_fingerprint_hex(uint64_t high, uint64_t low, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)high, (unsigned long long)low);
}

static void digest_hex(XXH3_state_t *st, char out[33])
{
    XXH128_hash_t h = XXH3_128bits_digest(st);
    detrun_fingerprint_hex(h.high64, h.low64, out);
}

void detrun_fingerprint_tensor(const char *name, int ndims, const int *dims, const float *data,
                               char out[33])
{
    size_t count = 1;
    for (int d = 0; d < ndims; d++)
        count *= (size_t)dims[d];
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    detrun_fingerprint_update(&st, name, ndims, dims, data, count);
    digest_hex(&st, out);
}

static detrun_status need_compiled(detrun_model *m, const char *what)
{
    if (!m->compiled)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: the model is not compiled yet", what);
    return DETRUN_OK;
}

detrun_status detrun_model_fingerprint(detrun_model *m, char out[33])
{
    if (m == NULL || out == NULL)
        return DETRUN_ERR_ARG;
    detrun_status st = need_compiled(m, "fingerprint");
    if (st != DETRUN_OK)
        return st;
    detrun_runtime *rt = m->rt;
    detrun_backend *be = rt->backend;
    float *host = detrun_calloc(rt, m->total, sizeof *host);
    if (host == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "fingerprint: no memory for %zu floats",
                             m->total);
    st = be->ops->download(be, host, m->p, m->total * sizeof *host);
    if (st != DETRUN_OK) {
        detrun_free(rt, host, m->total * sizeof *host);
        return detrun_seterr(rt, st, "fingerprint: could not download the parameters");
    }
    XXH3_state_t xs;
    XXH3_128bits_reset(&xs);
    for (int i = 0; i < m->nparams; i++) {
        const detrun_param *p = &m->params[i];
        detrun_fingerprint_update(&xs, p->name, p->ndims, p->dims, host + p->offset, p->count);
    }
    digest_hex(&xs, out);
    detrun_free(rt, host, m->total * sizeof *host);
    return DETRUN_OK;
}

detrun_status detrun_model_param_fingerprint(detrun_model *m, int i, char out[33])
{
    if (m == NULL || out == NULL)
        return DETRUN_ERR_ARG;
    detrun_status st = need_compiled(m, "param_fingerprint");
    if (st != DETRUN_OK)
        return st;
    if (i < 0 || i >= m->nparams)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG,
                             "param_fingerprint: no parameter %d (the model has %d)", i,
                             m->nparams);
    const detrun_param *p = &m->params[i];
    float *host = detrun_calloc(m->rt, p->count, sizeof *host);
    if (host == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_MEMORY, "param_fingerprint: no memory");
    detrun_backend *be = m->rt->backend;
    st = be->ops->download(be, host, m->p + p->offset, p->count * sizeof *host);
    if (st == DETRUN_OK)
        detrun_fingerprint_tensor(p->name, p->ndims, p->dims, host, out);
    else
        detrun_seterr(m->rt, st, "param_fingerprint: could not download %s", p->name);
    detrun_free(m->rt, host, p->count * sizeof *host);
    return st;
}
