/*
 * checkpoint_file.c - the checkpoint file: its binary layout, the write and
 * the checked read (docs/regression.md, "Checkpoints").
 *
 * Layout, little-endian:
 *   0   8  magic "DRCKPT\r\n"
 *   8   4  version: 1 at an epoch boundary, 2 inside an epoch
 *   12  4  L: length of the metadata
 *   16  8  P: length of the payload
 *   24  L  metadata: a JSON object (checkpoint_meta.c)
 *   .   P  payload: parameters, then the optimiser moments (count float32
 *          each), in version 2 the epoch's per-sample losses and hits so
 *          far (npartial float32 each), then the caller's blob
 *   .   16 XXH3-128 of every byte before it, canonical (big-endian) form
 * A file is read whole and checked before anything is handed back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack: no allocation */
#include <xxhash.h>

#include "byteorder.h"
#include "checkpoint_meta.h"
#include "internal.h"

#define HEADER_BYTES 24
#define SUM_BYTES 16

static void put_floats(unsigned char *p, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        detrun_put_le32(p + 4 * i, u);
    }
}

static void get_floats(float *x, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = detrun_get_le32(p + 4 * i);
        memcpy(&x[i], &u, 4);
    }
}

/* Bytes of a block of count floats as read and capture allocate it. */
static size_t floats_block(size_t count)
{
    return (count > 0 ? count : 1) * sizeof(float);
}

/* ---- write ------------------------------------------------------------------ */

detrun_status detrun_checkpoint_write(detrun_runtime *rt, const char *path,
                                      const detrun_checkpoint *c)
{
    if (path == NULL || c == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint: no path or no state to write");
    if (c->count > 0 && (c->params == NULL || c->m == NULL))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: checkpoint without parameters or moments",
                             path);
    size_t npartial = c->batch > 0 ? c->npartial : 0;
    if (npartial > 0 && (c->partial_loss == NULL || c->partial_hit == NULL))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: checkpoint inside an epoch without its "
                             "results so far", path);
    int moments = c->v != NULL ? 2 : 1;
    cJSON *meta = detrun_checkpoint_meta_build(c, moments);
    char *text = meta != NULL ? cJSON_PrintUnformatted(meta) : NULL;
    cJSON_Delete(meta);
    size_t model_bytes = c->count * 4 * (size_t)(1 + moments);
    size_t floats_bytes = model_bytes + npartial * 4 * 2;
    unsigned char *floats = detrun_malloc(rt, floats_bytes);
    if (text == NULL || floats == NULL) {
        cJSON_free(text);
        detrun_free(rt, floats, floats_bytes);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory writing a checkpoint",
                             path);
    }
    put_floats(floats, c->params, c->count);
    put_floats(floats + 4 * c->count, c->m, c->count);
    if (moments == 2)
        put_floats(floats + 8 * c->count, c->v, c->count);
    put_floats(floats + model_bytes, c->partial_loss, npartial);
    put_floats(floats + model_bytes + 4 * npartial, c->partial_hit, npartial);

    size_t meta_len = strlen(text);
    unsigned char head[HEADER_BYTES];
    memcpy(head, DETRUN_CHECKPOINT_MAGIC, 8);
    detrun_put_le32(head + 8, c->batch > 0 ? DETRUN_CHECKPOINT_VERSION
                                           : DETRUN_CHECKPOINT_VERSION_EPOCH);
    detrun_put_le32(head + 12, (uint32_t)meta_len);
    detrun_put_le64(head + 16, (uint64_t)floats_bytes + c->bloblen);

    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, head, sizeof head);
    XXH3_128bits_update(&st, text, meta_len);
    XXH3_128bits_update(&st, floats, floats_bytes);
    if (c->bloblen > 0)
        XXH3_128bits_update(&st, c->blob, c->bloblen);
    XXH128_canonical_t sum;
    XXH128_canonicalFromHash(&sum, XXH3_128bits_digest(&st));

    const void *parts[5] = { head, text, floats, c->blob, sum.digest };
    size_t lens[5] = { sizeof head, meta_len, floats_bytes, c->bloblen, SUM_BYTES };
    detrun_status s = detrun_write_file_atomic(rt, path, parts, lens, 5);
    cJSON_free(text);
    detrun_free(rt, floats, floats_bytes);
    return s;
}

/* ---- read ------------------------------------------------------------------- */

/* The whole file into *buf (len bytes, allocated through rt). */
static detrun_status read_file(detrun_runtime *rt, const char *path, unsigned char **buf,
                               size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > DETRUN_CHECKPOINT_MAX_BYTES) {
        fclose(f);
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: not a valid detrun checkpoint: "
                             "%lld bytes is more than any checkpoint", path, (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *b = detrun_malloc(rt, n);
    if (b == NULL) {
        fclose(f);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        detrun_free(rt, b, n);
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot read (%zu of %zu bytes)", path, got, n);
    }
    *buf = b;
    *len = n;
    return DETRUN_OK;
}

/* Magic, version, announced length and checksum of the len bytes at buf;
 * the lengths of the metadata and the payload in *meta_len and *payload. */
static detrun_status check_frame(detrun_runtime *rt, const char *path, const unsigned char *buf,
                                 size_t len, uint64_t *meta_len, uint64_t *payload,
                                 uint32_t *version_out)
{
    if (len < HEADER_BYTES + SUM_BYTES || memcmp(buf, DETRUN_CHECKPOINT_MAGIC, 8) != 0)
        return detrun_checkpoint_invalid(
            rt, path, len == 0 ? "the file is empty"
                      : len < 8 || memcmp(buf, DETRUN_CHECKPOINT_MAGIC, 8) != 0
                          ? "no checkpoint magic at the start (another kind of file?)"
                          : "shorter than a header and a checksum");
    uint32_t version = detrun_get_le32(buf + 8);
    if (version != DETRUN_CHECKPOINT_VERSION && version != DETRUN_CHECKPOINT_VERSION_EPOCH)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: checkpoint format version %" PRIu32
                             ", but detrun %s reads versions %u to %u", path, version,
                             DETRUN_VERSION, DETRUN_CHECKPOINT_VERSION_EPOCH,
                             DETRUN_CHECKPOINT_VERSION);
    *version_out = version;
    *meta_len = detrun_get_le32(buf + 12);
    *payload = detrun_get_le64(buf + 16);
    if (*payload > DETRUN_CHECKPOINT_MAX_BYTES ||
        HEADER_BYTES + *meta_len + *payload + SUM_BYTES != len) {
        char what[160];
        snprintf(what, sizeof what, "%zu bytes, but the header announces %" PRIu64
                 " (truncated or extended)", len, HEADER_BYTES + *meta_len + *payload + SUM_BYTES);
        return detrun_checkpoint_invalid(rt, path, what);
    }
    XXH128_canonical_t want;
    XXH128_canonicalFromHash(&want, XXH3_128bits(buf, len - SUM_BYTES));
    if (memcmp(want.digest, buf + len - SUM_BYTES, SUM_BYTES) != 0)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: damaged checkpoint: the checksum does "
                             "not match its contents", path);
    return DETRUN_OK;
}

/* The payload at p into newly allocated blocks of c. */
static detrun_status load_payload(detrun_checkpoint *c, const char *path, const unsigned char *p,
                                  int moments)
{
    detrun_runtime *rt = c->rt;
    c->params = detrun_malloc(rt, floats_block(c->count));
    c->m = detrun_malloc(rt, floats_block(c->count));
    c->v = moments == 2 ? detrun_malloc(rt, floats_block(c->count)) : NULL;
    c->blob = c->bloblen > 0 ? detrun_malloc(rt, c->bloblen) : NULL;
    c->partial_loss = c->npartial > 0 ? detrun_malloc(rt, floats_block(c->npartial)) : NULL;
    c->partial_hit = c->npartial > 0 ? detrun_malloc(rt, floats_block(c->npartial)) : NULL;
    if (c->params == NULL || c->m == NULL || (moments == 2 && c->v == NULL) ||
        (c->bloblen > 0 && c->blob == NULL) ||
        (c->npartial > 0 && (c->partial_loss == NULL || c->partial_hit == NULL)))
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    get_floats(c->params, p, c->count);
    get_floats(c->m, p + 4 * c->count, c->count);
    if (moments == 2)
        get_floats(c->v, p + 8 * c->count, c->count);
    p += c->count * 4 * (size_t)(1 + moments);
    get_floats(c->partial_loss, p, c->npartial);
    get_floats(c->partial_hit, p + 4 * c->npartial, c->npartial);
    p += c->npartial * 4 * 2;
    if (c->bloblen > 0)
        memcpy(c->blob, p, c->bloblen);
    return DETRUN_OK;
}

detrun_status detrun_checkpoint_read(detrun_runtime *rt, const char *path, detrun_checkpoint *c)
{
    if (c == NULL || path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint: no path or no state to read into");
    memset(c, 0, sizeof *c);
    c->rt = rt;
    unsigned char *buf;
    size_t len;
    detrun_status s = read_file(rt, path, &buf, &len);
    if (s != DETRUN_OK)
        return s;
    cJSON *meta = NULL;
    int moments = 0;
    uint64_t meta_len = 0, payload = 0;
    uint32_t version = 0;
    s = check_frame(rt, path, buf, len, &meta_len, &payload, &version);
    if (s == DETRUN_OK) {
        meta = cJSON_ParseWithLength((const char *)buf + HEADER_BYTES, (size_t)meta_len);
        if (meta == NULL || !cJSON_IsObject(meta))
            s = detrun_checkpoint_invalid(rt, path, "the metadata is not a JSON object");
    }
    if (s == DETRUN_OK)
        s = detrun_checkpoint_meta_parse(path, meta, version, c, &moments);
    if (s == DETRUN_OK && payload != (uint64_t)c->count * 4 * (uint64_t)(1 + moments) +
                                         (uint64_t)c->npartial * 8 + c->bloblen)
        s = detrun_checkpoint_invalid(rt, path, "the payload length does not match \"count\", "
                                      "\"moments\", \"partial\" and \"blob\"");
    if (s == DETRUN_OK)
        s = load_payload(c, path, buf + HEADER_BYTES + meta_len, moments);
    cJSON_Delete(meta);
    detrun_free(rt, buf, len);
    if (s != DETRUN_OK)
        detrun_checkpoint_free(c);
    return s;
}

void detrun_checkpoint_free(detrun_checkpoint *c)
{
    if (c == NULL)
        return;
    detrun_runtime *rt = c->rt;
    if (rt == NULL) {
        /* Filled by the caller with its own malloc blocks. */
        free(c->stats);
        free(c->tensors);
        free(c->params);
        free(c->m);
        free(c->v);
        free(c->blob);
        free(c->partial_loss);
        free(c->partial_hit);
    } else {
        detrun_free(rt, c->stats, (c->nstats > 0 ? (size_t)c->nstats : 1) * sizeof *c->stats);
        detrun_free(rt, c->tensors,
                    (c->ntensors > 0 ? (size_t)c->ntensors : 1) * sizeof *c->tensors);
        detrun_free(rt, c->params, floats_block(c->count));
        detrun_free(rt, c->m, floats_block(c->count));
        detrun_free(rt, c->v, floats_block(c->count));
        detrun_free(rt, c->blob, c->bloblen);
        if (c->partial_loss != NULL)
            detrun_free(rt, c->partial_loss, floats_block(c->npartial));
        if (c->partial_hit != NULL)
            detrun_free(rt, c->partial_hit, floats_block(c->npartial));
    }
    memset(c, 0, sizeof *c);
}
