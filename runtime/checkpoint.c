/*
 * checkpoint.c - the checkpoint file: format, atomic write, checked read
 * (docs/regression.md, "Checkpoints"), and the hooks a fit calls.
 *
 * Layout, little-endian:
 *   0   8  magic "DRCKPT\r\n"
 *   8   4  version (1)
 *   12  4  L: length of the metadata
 *   16  8  P: length of the payload
 *   24  L  metadata: a JSON object (counters, the fit, tensor names and shapes,
 *          the epochs so far)
 *   .   P  payload: parameters, then the optimiser moments (count float32
 *          each), then the caller's blob
 *   .   16 XXH3-128 of every byte before it, canonical (big-endian) form
 * Floats and doubles in the metadata are C99 hex floats ("%a"), which read
 * back to the same bits; 64-bit counters are decimal strings, which JSON
 * numbers (doubles) could not hold exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "byteorder.h"
#include "checkpoint.h"
#include "model.h"

#define HEADER_BYTES 24
#define SUM_BYTES 16
/* A checkpoint larger than this is not one of ours (and is not read into memory). */
#define MAX_FILE_BYTES ((uint64_t)1 << 34)

/* ---- little helpers ----------------------------------------------------- */

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

static const char *mode_name(detrun_mode m)
{
    return m == DETRUN_FAST ? "fast" : "deterministic";
}

/* ---- atomic write ------------------------------------------------------- */

static detrun_status write_all(detrun_runtime *rt, int fd, const char *path, const void *buf,
                               size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return DETRUN_OK;
}

/* The folder is fsynced too: the rename is only durable once its entry is. */
detrun_status detrun_write_file_atomic(detrun_runtime *rt, const char *path,
                                       const void *const *parts, const size_t *lens, int nparts)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (tmp == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    detrun_status s = DETRUN_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return s;
    }
    for (int i = 0; i < nparts && s == DETRUN_OK; i++)
        s = write_all(rt, fd, tmp, parts[i], lens[i]);
    if (s == DETRUN_OK && fsync(fd) != 0)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot sync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && s == DETRUN_OK)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot close: %s", tmp, strerror(errno));
    if (s == DETRUN_OK && rename(tmp, path) != 0)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot rename to %s: %s", tmp, path,
                          strerror(errno));
    if (s != DETRUN_OK) {
        unlink(tmp);
        free(tmp);
        return s;
    }
    free(tmp);
    /* The rename is only durable once the folder's entry is on disk. */
    char *dir = strdup(path);
    if (dir != NULL) {
        char *slash = strrchr(dir, '/');
        const char *d = ".";
        if (slash == dir)
            d = "/";
        else if (slash != NULL) {
            *slash = '\0';
            d = dir;
        }
        int dfd = open(d, O_RDONLY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return DETRUN_OK;
}

/* ---- metadata ----------------------------------------------------------- */

static cJSON *hexnum(double d)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%a", d);
    return cJSON_CreateString(buf);
}

static cJSON *u64str(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateString(buf);
}

static cJSON *build_meta(const detrun_checkpoint *c, int moments)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "format", "detrun checkpoint");
    cJSON_AddStringToObject(o, "detrun", DETRUN_VERSION);
    cJSON_AddNumberToObject(o, "epoch", c->epoch);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddItemToObject(o, "step", u64str(c->step));
    cJSON_AddItemToObject(o, "beta1_t", hexnum(c->beta1_t));
    cJSON_AddItemToObject(o, "beta2_t", hexnum(c->beta2_t));
    cJSON_AddStringToObject(o, "mode", mode_name(c->mode));
    cJSON_AddItemToObject(o, "seed", u64str(c->seed));
    cJSON_AddNumberToObject(o, "stream", c->stream);
    cJSON_AddNumberToObject(o, "epochs", c->epochs);
    cJSON_AddNumberToObject(o, "batch_size", c->batch_size);
    cJSON_AddItemToObject(o, "data", u64str(c->data));
    cJSON *opt = cJSON_AddObjectToObject(o, "optimizer");
    if (opt != NULL) {
        cJSON_AddStringToObject(opt, "kind", c->optimizer.kind == DETRUN_OPT_SGD ? "sgd" : "adam");
        cJSON_AddItemToObject(opt, "lr", hexnum(c->optimizer.lr));
        cJSON_AddItemToObject(opt, "beta1", hexnum(c->optimizer.beta1));
        cJSON_AddItemToObject(opt, "beta2", hexnum(c->optimizer.beta2));
        cJSON_AddItemToObject(opt, "eps", hexnum(c->optimizer.eps));
        cJSON_AddItemToObject(opt, "momentum", hexnum(c->optimizer.momentum));
    }
    cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
    for (int i = 0; ts != NULL && i < c->ntensors; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(ts, t);
        cJSON_AddStringToObject(t, "name", c->tensors[i].name);
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(c->tensors[i].dims,
                                                               c->tensors[i].ndims));
    }
    cJSON_AddItemToObject(o, "count", u64str(c->count));
    cJSON_AddNumberToObject(o, "moments", moments);
    cJSON_AddItemToObject(o, "blob", u64str(c->bloblen));
    cJSON *hs = cJSON_AddArrayToObject(o, "history");
    for (int i = 0; hs != NULL && i < c->nstats; i++) {
        const detrun_epoch_stats *s = &c->stats[i];
        cJSON *h = cJSON_CreateObject();
        cJSON_AddItemToArray(hs, h);
        cJSON_AddNumberToObject(h, "epoch", s->epoch);
        cJSON_AddItemToObject(h, "loss", hexnum(s->loss));
        cJSON_AddItemToObject(h, "accuracy", hexnum(s->accuracy));
        cJSON_AddItemToObject(h, "val_loss", hexnum(s->val_loss));
        cJSON_AddItemToObject(h, "val_accuracy", hexnum(s->val_accuracy));
        cJSON_AddItemToObject(h, "seconds", hexnum(s->seconds));
        cJSON_AddStringToObject(h, "fingerprint", s->fingerprint);
    }
    return o;
}

detrun_status detrun_checkpoint_write(detrun_runtime *rt, const char *path,
                                      const detrun_checkpoint *c)
{
    if (path == NULL || c == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint: no path or no state to write");
    if (c->count > 0 && (c->params == NULL || c->m == NULL))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: checkpoint without parameters or moments",
                             path);
    int moments = c->v != NULL ? 2 : 1;
    cJSON *meta = build_meta(c, moments);
    char *text = meta != NULL ? cJSON_PrintUnformatted(meta) : NULL;
    cJSON_Delete(meta);
    size_t floats_bytes = c->count * 4 * (size_t)(1 + moments);
    unsigned char *floats = malloc(floats_bytes > 0 ? floats_bytes : 1);
    if (text == NULL || floats == NULL) {
        free(text);
        free(floats);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory writing a checkpoint",
                             path);
    }
    put_floats(floats, c->params, c->count);
    put_floats(floats + 4 * c->count, c->m, c->count);
    if (moments == 2)
        put_floats(floats + 8 * c->count, c->v, c->count);

    size_t meta_len = strlen(text);
    unsigned char head[HEADER_BYTES];
    memcpy(head, DETRUN_CHECKPOINT_MAGIC, 8);
    detrun_put_le32(head + 8, DETRUN_CHECKPOINT_VERSION);
    detrun_put_le32(head + 12, (uint32_t)meta_len);
    detrun_put_le64(head + 16, (uint64_t)floats_bytes + c->bloblen);

    XXH3_state_t *st = XXH3_createState();
    if (st == NULL) {
        free(text);
        free(floats);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory writing a checkpoint",
                             path);
    }
    XXH3_128bits_reset(st);
    XXH3_128bits_update(st, head, sizeof head);
    XXH3_128bits_update(st, text, meta_len);
    XXH3_128bits_update(st, floats, floats_bytes);
    if (c->bloblen > 0)
        XXH3_128bits_update(st, c->blob, c->bloblen);
    XXH128_canonical_t sum;
    XXH128_canonicalFromHash(&sum, XXH3_128bits_digest(st));
    XXH3_freeState(st);

    const void *parts[5] = { head, text, floats, c->blob, sum.digest };
    size_t lens[5] = { sizeof head, meta_len, floats_bytes, c->bloblen, SUM_BYTES };
    detrun_status s = detrun_write_file_atomic(rt, path, parts, lens, 5);
    free(text);
    free(floats);
    return s;
}

/* ---- checked read ------------------------------------------------------- */

typedef struct reader {
    detrun_runtime *rt;
    const char *path;
    detrun_status status;
} reader;

static int bad(reader *r, const char *fmt, const char *what)
{
    if (r->status == DETRUN_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, fmt, what);
        r->status = detrun_seterr(r->rt, DETRUN_ERR_FORMAT, "%s: not a valid detrun checkpoint: %s",
                                  r->path, msg);
    }
    return 0;
}

static const cJSON *field(reader *r, const cJSON *o, const char *key)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);
    if (f == NULL)
        bad(r, "metadata lacks \"%s\"", key);
    return f;
}

static double get_hex(reader *r, const cJSON *o, const char *key)
{
    const cJSON *f = field(r, o, key);
    if (f == NULL)
        return 0;
    char *end = NULL;
    double d = cJSON_IsString(f) ? strtod(f->valuestring, &end) : 0;
    if (!cJSON_IsString(f) || end == f->valuestring || *end != '\0') {
        bad(r, "metadata \"%s\" is not a hex float string", key);
        return 0;
    }
    return d;
}

static float get_hexf(reader *r, const cJSON *o, const char *key)
{
    double d = get_hex(r, o, key);
    float f = (float)d;
    if (!isnan(d) && (double)f != d)
        bad(r, "metadata \"%s\" is not a float32 value", key);
    return f;
}

static uint64_t get_u64str(reader *r, const cJSON *o, const char *key)
{
    const cJSON *f = field(r, o, key);
    if (f == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = 0;
    if (cJSON_IsString(f) && f->valuestring[0] >= '0' && f->valuestring[0] <= '9')
        v = strtoull(f->valuestring, &end, 10);
    if (end == NULL || *end != '\0' || errno != 0) {
        bad(r, "metadata \"%s\" is not an unsigned decimal string", key);
        return 0;
    }
    return (uint64_t)v;
}

static int get_int(reader *r, const cJSON *o, const char *key, int lo, int hi)
{
    const cJSON *f = field(r, o, key);
    if (f == NULL)
        return 0;
    double d = cJSON_IsNumber(f) ? f->valuedouble : -1e300;
    if (!(d >= lo && d <= hi) || d != (double)(int)d) {
        bad(r, "metadata \"%s\" is out of range", key);
        return 0;
    }
    return (int)d;
}

static void parse_meta(reader *r, const cJSON *o, detrun_checkpoint *c, int *moments)
{
    const cJSON *fmt = field(r, o, "format");
    if (fmt != NULL && !(cJSON_IsString(fmt) && strcmp(fmt->valuestring, "detrun checkpoint") == 0))
        bad(r, "metadata \"%s\" is not \"detrun checkpoint\"", "format");
    c->epoch = get_int(r, o, "epoch", 0, 1 << 30);
    c->batch = get_int(r, o, "batch", 0, 1 << 30);
    c->step = get_u64str(r, o, "step");
    c->beta1_t = get_hexf(r, o, "beta1_t");
    c->beta2_t = get_hexf(r, o, "beta2_t");
    const cJSON *mode = field(r, o, "mode");
    if (mode != NULL) {
        if (cJSON_IsString(mode) && strcmp(mode->valuestring, "fast") == 0)
            c->mode = DETRUN_FAST;
        else if (cJSON_IsString(mode) && strcmp(mode->valuestring, "deterministic") == 0)
            c->mode = DETRUN_DETERMINISTIC;
        else
            bad(r, "metadata \"%s\" is neither \"deterministic\" nor \"fast\"", "mode");
    }
    c->seed = get_u64str(r, o, "seed");
    const cJSON *stream = field(r, o, "stream");
    if (stream != NULL) {
        double d = cJSON_IsNumber(stream) ? stream->valuedouble : -1;
        if (!(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d)
            bad(r, "metadata \"%s\" is out of range", "stream");
        else
            c->stream = (uint32_t)d;
    }
    c->epochs = get_int(r, o, "epochs", 0, 1 << 30);
    c->batch_size = get_int(r, o, "batch_size", 0, 1 << 30);
    c->data = get_u64str(r, o, "data");
    const cJSON *opt = field(r, o, "optimizer");
    if (opt != NULL) {
        const cJSON *kind = field(r, opt, "kind");
        if (kind != NULL) {
            if (cJSON_IsString(kind) && strcmp(kind->valuestring, "adam") == 0)
                c->optimizer.kind = DETRUN_OPT_ADAM;
            else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "sgd") == 0)
                c->optimizer.kind = DETRUN_OPT_SGD;
            else
                bad(r, "optimizer \"%s\" is neither \"adam\" nor \"sgd\"", "kind");
        }
        c->optimizer.lr = get_hexf(r, opt, "lr");
        c->optimizer.beta1 = get_hexf(r, opt, "beta1");
        c->optimizer.beta2 = get_hexf(r, opt, "beta2");
        c->optimizer.eps = get_hexf(r, opt, "eps");
        c->optimizer.momentum = get_hexf(r, opt, "momentum");
    }
    *moments = get_int(r, o, "moments", 1, 2);
    uint64_t count = get_u64str(r, o, "count");
    c->bloblen = (size_t)get_u64str(r, o, "blob");
    if (r->status != DETRUN_OK)
        return;
    if (count > MAX_FILE_BYTES / 4) {
        bad(r, "metadata \"%s\" is too large", "count");
        return;
    }
    c->count = (size_t)count;

    const cJSON *ts = field(r, o, "tensors");
    if (ts == NULL)
        return;
    if (!cJSON_IsArray(ts)) {
        bad(r, "metadata \"%s\" is not an array", "tensors");
        return;
    }
    int nt = cJSON_GetArraySize(ts);
    c->tensors = calloc(nt > 0 ? (size_t)nt : 1, sizeof *c->tensors);
    if (c->tensors == NULL) {
        r->status = detrun_seterr(r->rt, DETRUN_ERR_MEMORY, "%s: out of memory", r->path);
        return;
    }
    c->ntensors = nt;
    size_t offset = 0;
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        detrun_checkpoint_tensor *d = &c->tensors[i++];
        const cJSON *name = field(r, t, "name");
        const cJSON *shape = field(r, t, "shape");
        if (r->status != DETRUN_OK)
            return;
        if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof d->name) {
            bad(r, "tensor %s has no valid name", "entry");
            return;
        }
        strcpy(d->name, name->valuestring);
        int nd = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
        if (nd < 1 || nd > 4) {
            bad(r, "tensor %s has no valid shape (1 to 4 dims)", d->name);
            return;
        }
        d->ndims = nd;
        size_t n = 1;
        for (int k = 0; k < nd; k++) {
            const cJSON *dim = cJSON_GetArrayItem(shape, k);
            double v = cJSON_IsNumber(dim) ? dim->valuedouble : 0;
            if (!(v >= 1 && v <= (1 << 30)) || v != (double)(int)v) {
                bad(r, "tensor %s has a dimension that is not a positive integer", d->name);
                return;
            }
            d->dims[k] = (int)v;
            if (n > c->count / (size_t)v + 1) {
                bad(r, "tensor %s is larger than \"count\"", d->name);
                return;
            }
            n *= (size_t)v;
        }
        d->offset = offset;
        d->count = n;
        offset += n;
        if (offset > c->count) {
            bad(r, "tensor %s is larger than \"count\"", d->name);
            return;
        }
    }
    if (offset != c->count) {
        bad(r, "%s: the tensors' sizes do not add up to \"count\"", "tensors");
        return;
    }

    const cJSON *hs = field(r, o, "history");
    if (hs == NULL)
        return;
    if (!cJSON_IsArray(hs)) {
        bad(r, "metadata \"%s\" is not an array", "history");
        return;
    }
    int nh = cJSON_GetArraySize(hs);
    c->stats = calloc(nh > 0 ? (size_t)nh : 1, sizeof *c->stats);
    if (c->stats == NULL) {
        r->status = detrun_seterr(r->rt, DETRUN_ERR_MEMORY, "%s: out of memory", r->path);
        return;
    }
    c->nstats = nh;
    i = 0;
    const cJSON *h;
    cJSON_ArrayForEach(h, hs) {
        detrun_epoch_stats *s = &c->stats[i];
        s->epoch = get_int(r, h, "epoch", 0, 1 << 30);
        s->loss = get_hex(r, h, "loss");
        s->accuracy = get_hex(r, h, "accuracy");
        s->val_loss = get_hex(r, h, "val_loss");
        s->val_accuracy = get_hex(r, h, "val_accuracy");
        s->seconds = get_hex(r, h, "seconds");
        const cJSON *fp = field(r, h, "fingerprint");
        if (r->status != DETRUN_OK)
            return;
        if (!cJSON_IsString(fp) || strlen(fp->valuestring) != 32) {
            bad(r, "history entry %s has no 32-digit fingerprint", "");
            return;
        }
        memcpy(s->fingerprint, fp->valuestring, 33);
        if (s->epoch != i) {
            bad(r, "history entries are not epochs 0, 1, 2, ... in order%s", "");
            return;
        }
        i++;
    }
    if (nh != c->epoch)
        bad(r, "history does not hold one entry per finished epoch%s", "");
}

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
    if ((uint64_t)sb.st_size > MAX_FILE_BYTES) {
        fclose(f);
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: not a valid detrun checkpoint: "
                             "%lld bytes is more than any checkpoint", path, (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *b = malloc(n > 0 ? n : 1);
    if (b == NULL) {
        fclose(f);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(b);
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot read (%zu of %zu bytes)", path, got, n);
    }
    *buf = b;
    *len = n;
    return DETRUN_OK;
}

detrun_status detrun_checkpoint_read(detrun_runtime *rt, const char *path, detrun_checkpoint *c)
{
    if (c == NULL || path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint: no path or no state to read into");
    memset(c, 0, sizeof *c);
    unsigned char *buf;
    size_t len;
    detrun_status s = read_file(rt, path, &buf, &len);
    if (s != DETRUN_OK)
        return s;
    reader r = { rt, path, DETRUN_OK };
    cJSON *meta = NULL;
    int moments = 0;
    if (len < HEADER_BYTES + SUM_BYTES || memcmp(buf, DETRUN_CHECKPOINT_MAGIC, 8) != 0) {
        bad(&r, "%s", len == 0 ? "the file is empty"
                      : len < 8 || memcmp(buf, DETRUN_CHECKPOINT_MAGIC, 8) != 0
                          ? "no checkpoint magic at the start (another kind of file?)"
                          : "shorter than a header and a checksum");
        goto fail;
    }
    uint32_t version = detrun_get_le32(buf + 8);
    if (version != DETRUN_CHECKPOINT_VERSION) {
        s = detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: checkpoint format version %" PRIu32
                          ", but detrun %s reads version %u", path, version, DETRUN_VERSION,
                          DETRUN_CHECKPOINT_VERSION);
        goto fail_s;
    }
    uint64_t meta_len = detrun_get_le32(buf + 12);
    uint64_t payload = detrun_get_le64(buf + 16);
    if (payload > MAX_FILE_BYTES || HEADER_BYTES + meta_len + payload + SUM_BYTES != len) {
        char what[160];
        snprintf(what, sizeof what, "%zu bytes, but the header announces %" PRIu64
                 " (truncated or extended)", len, HEADER_BYTES + meta_len + payload + SUM_BYTES);
        bad(&r, "%s", what);
        goto fail;
    }
    XXH128_canonical_t want;
    XXH128_canonicalFromHash(&want, XXH3_128bits(buf, len - SUM_BYTES));
    if (memcmp(want.digest, buf + len - SUM_BYTES, SUM_BYTES) != 0) {
        s = detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: damaged checkpoint: the checksum does not "
                          "match its contents", path);
        goto fail_s;
    }
    meta = cJSON_ParseWithLength((const char *)buf + HEADER_BYTES, (size_t)meta_len);
    if (meta == NULL || !cJSON_IsObject(meta)) {
        bad(&r, "%s", "the metadata is not a JSON object");
        goto fail;
    }
    parse_meta(&r, meta, c, &moments);
    if (r.status != DETRUN_OK)
        goto fail;
    size_t floats_bytes = c->count * 4 * (size_t)(1 + moments);
    if (payload != (uint64_t)floats_bytes + c->bloblen) {
        bad(&r, "%s", "the payload length does not match \"count\", \"moments\" and \"blob\"");
        goto fail;
    }
    size_t n = c->count > 0 ? c->count : 1;
    c->params = malloc(n * sizeof(float));
    c->m = malloc(n * sizeof(float));
    c->v = moments == 2 ? malloc(n * sizeof(float)) : NULL;
    c->blob = c->bloblen > 0 ? malloc(c->bloblen) : NULL;
    if (c->params == NULL || c->m == NULL || (moments == 2 && c->v == NULL) ||
        (c->bloblen > 0 && c->blob == NULL)) {
        s = detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
        goto fail_s;
    }
    const unsigned char *p = buf + HEADER_BYTES + meta_len;
    get_floats(c->params, p, c->count);
    get_floats(c->m, p + 4 * c->count, c->count);
    if (moments == 2)
        get_floats(c->v, p + 8 * c->count, c->count);
    if (c->bloblen > 0)
        memcpy(c->blob, p + floats_bytes, c->bloblen);
    cJSON_Delete(meta);
    free(buf);
    return DETRUN_OK;

fail:
    s = r.status;
fail_s:
    cJSON_Delete(meta);
    free(buf);
    detrun_checkpoint_free(c);
    return s;
}

void detrun_checkpoint_free(detrun_checkpoint *c)
{
    if (c == NULL)
        return;
    free(c->stats);
    free(c->tensors);
    free(c->params);
    free(c->m);
    free(c->v);
    free(c->blob);
    memset(c, 0, sizeof *c);
}

/* ---- the model's state -------------------------------------------------- */

detrun_status detrun_checkpoint_capture(detrun_model *m, detrun_checkpoint *c)
{
    if (m == NULL || c == NULL)
        return DETRUN_ERR_ARG;
    detrun_runtime *rt = m->rt;
    memset(c, 0, sizeof *c);
    if (!m->compiled)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint: the model is not compiled");
    size_t count = 0;
    for (int i = 0; i < m->nparams; i++)
        count += m->params[i].count;
    c->tensors = calloc(m->nparams > 0 ? (size_t)m->nparams : 1, sizeof *c->tensors);
    c->params = malloc((count > 0 ? count : 1) * sizeof(float));
    c->m = malloc((count > 0 ? count : 1) * sizeof(float));
    c->v = m->v != NULL ? malloc((count > 0 ? count : 1) * sizeof(float)) : NULL;
    if (c->tensors == NULL || c->params == NULL || c->m == NULL || (m->v != NULL && c->v == NULL)) {
        detrun_checkpoint_free(c);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "checkpoint: out of memory");
    }
    c->ntensors = m->nparams;
    c->count = count;
    c->step = m->step;
    c->beta1_t = m->beta1_t;
    c->beta2_t = m->beta2_t;
    c->optimizer = m->opt;
    detrun_backend *b = rt->backend;
    size_t at = 0;
    for (int i = 0; i < m->nparams; i++) {
        const detrun_param *p = &m->params[i];
        detrun_checkpoint_tensor *t = &c->tensors[i];
        snprintf(t->name, sizeof t->name, "%s", p->name);
        t->ndims = p->ndims;
        memcpy(t->dims, p->dims, sizeof t->dims);
        t->offset = at;
        t->count = p->count;
        size_t bytes = p->count * sizeof(float);
        detrun_status s = b->ops->download(b, c->params + at, m->p + p->offset, bytes);
        if (s == DETRUN_OK)
            s = b->ops->download(b, c->m + at, m->m + p->offset, bytes);
        if (s == DETRUN_OK && m->v != NULL)
            s = b->ops->download(b, c->v + at, m->v + p->offset, bytes);
        if (s != DETRUN_OK) {
            detrun_checkpoint_free(c);
            return detrun_seterr(rt, s, "checkpoint: cannot copy %s from the device", p->name);
        }
        at += p->count;
    }
    return DETRUN_OK;
}

static int same_optimizer(const detrun_optimizer *a, const detrun_optimizer *b)
{
    return a->kind == b->kind && memcmp(&a->lr, &b->lr, sizeof a->lr) == 0 &&
           memcmp(&a->beta1, &b->beta1, sizeof a->beta1) == 0 &&
           memcmp(&a->beta2, &b->beta2, sizeof a->beta2) == 0 &&
           memcmp(&a->eps, &b->eps, sizeof a->eps) == 0 &&
           memcmp(&a->momentum, &b->momentum, sizeof a->momentum) == 0;
}

detrun_status detrun_checkpoint_apply(detrun_model *m, const detrun_checkpoint *c)
{
    if (m == NULL || c == NULL)
        return DETRUN_ERR_ARG;
    detrun_runtime *rt = m->rt;
    if (!m->compiled)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint: the model is not compiled");
    /* Every check comes before the first byte is restored. */
    if (c->ntensors != m->nparams)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE, "checkpoint holds %d parameter tensors, "
                             "the model has %d", c->ntensors, m->nparams);
    if (!same_optimizer(&c->optimizer, &m->opt))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint was written with another optimiser "
                             "or other optimiser settings than the model's");
    if ((c->v != NULL) != (m->v != NULL))
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "checkpoint holds %d moment blocks, the "
                             "model's optimiser needs %d", c->v != NULL ? 2 : 1,
                             m->v != NULL ? 2 : 1);
    for (int i = 0; i < m->nparams; i++) {
        const detrun_param *p = &m->params[i];
        const detrun_checkpoint_tensor *t = &c->tensors[i];
        if (strcmp(t->name, p->name) != 0)
            return detrun_seterr(rt, DETRUN_ERR_SHAPE, "checkpoint tensor %d is %s, the model's "
                                 "is %s", i, t->name, p->name);
        int same = t->ndims == p->ndims && t->count == p->count && t->offset + t->count <= c->count;
        for (int k = 0; same && k < p->ndims; k++)
            same = t->dims[k] == p->dims[k];
        if (!same)
            return detrun_seterr(rt, DETRUN_ERR_SHAPE, "checkpoint tensor %s has another shape "
                                 "than the model's", p->name);
    }
    detrun_backend *b = rt->backend;
    for (int i = 0; i < m->nparams; i++) {
        const detrun_param *p = &m->params[i];
        const detrun_checkpoint_tensor *t = &c->tensors[i];
        size_t bytes = p->count * sizeof(float);
        detrun_status s = b->ops->upload(b, m->p + p->offset, c->params + t->offset, bytes);
        if (s == DETRUN_OK)
            s = b->ops->upload(b, m->m + p->offset, c->m + t->offset, bytes);
        if (s == DETRUN_OK && m->v != NULL)
            s = b->ops->upload(b, m->v + p->offset, c->v + t->offset, bytes);
        if (s != DETRUN_OK)
            return detrun_seterr(rt, s, "checkpoint: cannot copy %s to the device", p->name);
    }
    m->step = c->step;
    m->beta1_t = c->beta1_t;
    m->beta2_t = c->beta2_t;
    return DETRUN_OK;
}

/* ---- the hooks of detrun_model_fit -------------------------------------- */

struct detrun_fit_ckpt {
    detrun_runtime *rt;
    char *path;
    detrun_checkpoint fit;     /* the fit fields only; no tensors */
    detrun_epoch_stats *stats;
    int nstats, cap;
};

/* Keys the rows (and the validation split, which picks the last of them) so
 * that a checkpoint of another fold is refused rather than continued. */
static uint64_t data_key(const uint32_t *rows, size_t nrows, double validation_split)
{
    XXH3_state_t *st = XXH3_createState();
    if (st == NULL)
        return 0;
    XXH3_64bits_reset(st);
    unsigned char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < nrows; i++) {
        detrun_put_le32(buf + k, rows != NULL ? rows[i] : (uint32_t)i);
        k += 4;
        if (k == sizeof buf) {
            XXH3_64bits_update(st, buf, k);
            k = 0;
        }
    }
    uint64_t bits;
    memcpy(&bits, &validation_split, 8);
    detrun_put_le64(buf + k, bits);
    detrun_put_le64(buf + k + 8, (uint64_t)nrows);
    XXH3_64bits_update(st, buf, k + 16);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static detrun_status push_stats(detrun_fit_ckpt *c, const detrun_epoch_stats *st)
{
    if (c->nstats == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        detrun_epoch_stats *ns = realloc(c->stats, (size_t)cap * sizeof *ns);
        if (ns == NULL)
            return detrun_seterr(c->rt, DETRUN_ERR_MEMORY, "checkpoint: out of memory");
        c->stats = ns;
        c->cap = cap;
    }
    c->stats[c->nstats++] = *st;
    return DETRUN_OK;
}

static detrun_status refuse(detrun_runtime *rt, const char *path, const char *what)
{
    return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: the checkpoint is of another fit (%s); "
                         "remove it to start over", path, what);
}

detrun_status detrun_fit_ckpt_begin(detrun_model *m, const uint32_t *rows, size_t nrows,
                                    const detrun_fit_options *opt, detrun_epoch_fn cb, void *ud,
                                    detrun_fit_ckpt **out, int *start_epoch, int *done)
{
    *out = NULL;
    *start_epoch = 0;
    *done = 0;
    detrun_runtime *rt = m->rt;
    detrun_fit_ckpt *c = calloc(1, sizeof *c);
    if (c == NULL || (c->path = strdup(opt->checkpoint)) == NULL) {
        free(c);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "checkpoint: out of memory");
    }
    c->rt = rt;
    c->fit.mode = rt->mode;
    c->fit.seed = opt->seed;
    c->fit.stream = opt->stream;
    c->fit.epochs = opt->epochs;
    c->fit.batch_size = opt->batch;
    c->fit.data = data_key(rows, nrows, opt->validation_split);
    if (!opt->resume || access(opt->checkpoint, F_OK) != 0) {
        *out = c;
        return DETRUN_OK;
    }

    detrun_checkpoint k;
    detrun_status s = detrun_checkpoint_read(rt, opt->checkpoint, &k);
    if (s == DETRUN_OK) {
        if (k.mode != c->fit.mode)
            s = refuse(rt, c->path, k.mode == DETRUN_FAST ? "fast mode" : "deterministic mode");
        else if (k.seed != c->fit.seed || k.stream != c->fit.stream)
            s = refuse(rt, c->path, "another seed or stream");
        else if (k.batch_size != c->fit.batch_size)
            s = refuse(rt, c->path, "another batch size");
        else if (k.epochs != c->fit.epochs)
            s = refuse(rt, c->path, "another number of epochs");
        else if (k.data != c->fit.data)
            s = refuse(rt, c->path, "other rows or another validation split");
        else if (k.batch != 0)
            s = refuse(rt, c->path, "it stops inside an epoch, which this detrun cannot resume");
    }
    if (s == DETRUN_OK)
        s = detrun_checkpoint_apply(m, &k);
    if (s == DETRUN_OK) {
        for (int i = 0; i < k.nstats && s == DETRUN_OK; i++)
            s = push_stats(c, &k.stats[i]);
    }
    if (s != DETRUN_OK) {
        detrun_checkpoint_free(&k);
        detrun_fit_ckpt_end(c);
        return s;
    }
    *start_epoch = k.epoch;
    *done = k.epoch >= opt->epochs;
    /* The callback sees every epoch, as an uninterrupted fit would show it. */
    for (int i = 0; i < k.nstats && cb != NULL; i++)
        if (cb(ud, &k.stats[i]) != 0) {
            *done = 1;
            break;
        }
    detrun_checkpoint_free(&k);
    *out = c;
    return DETRUN_OK;
}

detrun_status detrun_fit_ckpt_epoch(detrun_fit_ckpt *c, detrun_model *m,
                                    const detrun_epoch_stats *st)
{
    detrun_status s = push_stats(c, st);
    if (s != DETRUN_OK)
        return s;
    detrun_checkpoint k;
    s = detrun_checkpoint_capture(m, &k);
    if (s != DETRUN_OK)
        return s;
    k.epoch = st->epoch + 1;
    k.batch = 0;
    k.mode = c->fit.mode;
    k.seed = c->fit.seed;
    k.stream = c->fit.stream;
    k.epochs = c->fit.epochs;
    k.batch_size = c->fit.batch_size;
    k.data = c->fit.data;
    k.stats = c->stats;
    k.nstats = c->nstats;
    s = detrun_checkpoint_write(c->rt, c->path, &k);
    k.stats = NULL;   /* borrowed */
    k.nstats = 0;
    detrun_checkpoint_free(&k);
    return s;
}

void detrun_fit_ckpt_end(detrun_fit_ckpt *c)
{
    if (c == NULL)
        return;
    free(c->stats);
    free(c->path);
    free(c);
}
