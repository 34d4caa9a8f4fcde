/*
 * checkpoint_meta.c - the checkpoint's metadata (docs/regression.md,
 * "Checkpoints"): a JSON object with the counters, the fit, the tensor names
 * and shapes and the epochs so far, built for a write and checked field by
 * field on a read.
 *
 * Floats and doubles are C99 hex floats ("%a"), which read back to the same
 * bits; 64-bit counters are decimal strings, which JSON numbers (doubles)
 * could not hold exactly.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_meta.h"
#include "internal.h"

static const char *mode_name(detrun_mode m)
{
    return m == DETRUN_FAST ? "fast" : "deterministic";
}

/* ---- build ----------------------------------------------------------------- */

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

cJSON *detrun_checkpoint_meta_build(const detrun_checkpoint *c, int moments)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "format", "detrun checkpoint");
    cJSON_AddStringToObject(o, "detrun", DETRUN_VERSION);
    cJSON_AddNumberToObject(o, "epoch", c->epoch);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    if (c->batch > 0) {
        cJSON_AddItemToObject(o, "partial", u64str(c->npartial));
        cJSON_AddItemToObject(o, "partial_seconds", hexnum(c->partial_seconds));
    }
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

/* ---- parse ----------------------------------------------------------------- */

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
        r->status = detrun_checkpoint_invalid(r->rt, r->path, msg);
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

/* Where the fit stands and what it is. */
static void parse_fit(reader *r, const cJSON *o, detrun_checkpoint *c)
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
}

static void parse_optimizer(reader *r, const cJSON *o, detrun_checkpoint *c)
{
    const cJSON *opt = field(r, o, "optimizer");
    if (opt == NULL)
        return;
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

/* One entry of "tensors", placed at *offset; 0 (and the message) when it is
 * not valid or does not fit in "count". */
static int parse_tensor(reader *r, const cJSON *t, detrun_checkpoint_tensor *d, size_t count,
                        size_t *offset)
{
    const cJSON *name = field(r, t, "name");
    const cJSON *shape = field(r, t, "shape");
    if (r->status != DETRUN_OK)
        return 0;
    if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof d->name)
        return bad(r, "tensor %s has no valid name", "entry");
    strcpy(d->name, name->valuestring);
    int nd = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
    if (nd < 1 || nd > 4)
        return bad(r, "tensor %s has no valid shape (1 to 4 dims)", d->name);
    d->ndims = nd;
    size_t n = 1;
    for (int k = 0; k < nd; k++) {
        const cJSON *dim = cJSON_GetArrayItem(shape, k);
        double v = cJSON_IsNumber(dim) ? dim->valuedouble : 0;
        if (!(v >= 1 && v <= (1 << 30)) || v != (double)(int)v)
            return bad(r, "tensor %s has a dimension that is not a positive integer", d->name);
        d->dims[k] = (int)v;
        if (n > count / (size_t)v + 1)
            return bad(r, "tensor %s is larger than \"count\"", d->name);
        n *= (size_t)v;
    }
    d->offset = *offset;
    d->count = n;
    *offset += n;
    if (*offset > count)
        return bad(r, "tensor %s is larger than \"count\"", d->name);
    return 1;
}

static void parse_tensors(reader *r, const cJSON *o, detrun_checkpoint *c)
{
    const cJSON *ts = field(r, o, "tensors");
    if (ts == NULL)
        return;
    if (!cJSON_IsArray(ts)) {
        bad(r, "metadata \"%s\" is not an array", "tensors");
        return;
    }
    int nt = cJSON_GetArraySize(ts);
    c->tensors = detrun_calloc(c->rt, nt > 0 ? (size_t)nt : 1, sizeof *c->tensors);
    if (c->tensors == NULL) {
        r->status = detrun_seterr(r->rt, DETRUN_ERR_MEMORY, "%s: out of memory", r->path);
        return;
    }
    c->ntensors = nt;
    size_t offset = 0;
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        if (!parse_tensor(r, t, &c->tensors[i++], c->count, &offset))
            return;
    }
    if (offset != c->count)
        bad(r, "%s: the tensors' sizes do not add up to \"count\"", "tensors");
}

/* The epochs so far: epochs 0, 1, 2, ... in order, one per finished epoch. */
static void parse_history(reader *r, const cJSON *o, detrun_checkpoint *c)
{
    const cJSON *hs = field(r, o, "history");
    if (hs == NULL)
        return;
    if (!cJSON_IsArray(hs)) {
        bad(r, "metadata \"%s\" is not an array", "history");
        return;
    }
    int nh = cJSON_GetArraySize(hs);
    c->stats = detrun_calloc(c->rt, nh > 0 ? (size_t)nh : 1, sizeof *c->stats);
    if (c->stats == NULL) {
        r->status = detrun_seterr(r->rt, DETRUN_ERR_MEMORY, "%s: out of memory", r->path);
        return;
    }
    c->nstats = nh;
    int i = 0;
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

/* Inside an epoch (version 2): how many samples' results the payload holds.
 * An epoch boundary (version 1) holds none. */
static void parse_partial(reader *r, const cJSON *o, uint32_t version, detrun_checkpoint *c)
{
    if (version == DETRUN_CHECKPOINT_VERSION_EPOCH) {
        if (c->batch != 0)
            bad(r, "metadata \"%s\" is not 0 in a version 1 file", "batch");
        return;
    }
    if (c->batch == 0)
        bad(r, "metadata \"%s\" is 0 in a version 2 (inside an epoch) file", "batch");
    uint64_t n = get_u64str(r, o, "partial");
    c->partial_seconds = get_hex(r, o, "partial_seconds");
    if (r->status == DETRUN_OK && n > DETRUN_CHECKPOINT_MAX_BYTES / 8)
        bad(r, "metadata \"%s\" is too large", "partial");
    else
        c->npartial = (size_t)n;
}

detrun_status detrun_checkpoint_meta_parse(const char *path, const cJSON *o, uint32_t version,
                                           detrun_checkpoint *c, int *moments)
{
    reader r = { c->rt, path, DETRUN_OK };
    parse_fit(&r, o, c);
    parse_partial(&r, o, version, c);
    parse_optimizer(&r, o, c);
    *moments = get_int(&r, o, "moments", 1, 2);
    uint64_t count = get_u64str(&r, o, "count");
    uint64_t blob = get_u64str(&r, o, "blob");
    if (r.status != DETRUN_OK)
        return r.status;
    /* Both capped, so that the payload length they add up to cannot wrap
     * around to the file's and let a huge blob through. */
    if (count > DETRUN_CHECKPOINT_MAX_BYTES / 4 || blob > DETRUN_CHECKPOINT_MAX_BYTES) {
        bad(&r, "metadata \"%s\" is too large",
            blob > DETRUN_CHECKPOINT_MAX_BYTES ? "blob" : "count");
        return r.status;
    }
    c->count = (size_t)count;
    c->bloblen = (size_t)blob;
    parse_tensors(&r, o, c);
    if (r.status == DETRUN_OK)
        parse_history(&r, o, c);
    return r.status;
}

detrun_status detrun_checkpoint_invalid(detrun_runtime *rt, const char *path, const char *what)
{
    return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: not a valid detrun checkpoint: %s", path,
                         what);
}
