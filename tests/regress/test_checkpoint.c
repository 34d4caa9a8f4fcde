/* The checkpoint file (docs/regression.md, "Checkpoints"): every field comes
 * back with the same bits, and a damaged, cut, extended, foreign or
 * newer-version file is refused with a message naming the file, leaving
 * nothing half-loaded. */
#include <math.h>
#include <stdint.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "regress_util.h"

static void fill(detrun_checkpoint *c, size_t count)
{
    memset(c, 0, sizeof *c);
    c->epoch = 2;
    c->batch = 0;
    c->step = 5000000000ull;   /* beyond what a double-backed JSON number holds exactly */
    c->beta1_t = 0x1.2345p-7f;
    c->beta2_t = 0x1p-149f;    /* a denormal */
    c->mode = DETRUN_FAST;
    c->seed = 0xfedcba9876543210ull;
    c->stream = 4000000000u;
    c->epochs = 10;
    c->batch_size = 100;
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    c->optimizer = adam;
    c->nstats = 2;
    c->stats = calloc(2, sizeof *c->stats);
    for (int i = 0; i < 2; i++) {
        c->stats[i].epoch = i;
        c->stats[i].loss = 1.0 / 3.0 + i;
        c->stats[i].accuracy = 0.1 * (i + 1);
        c->stats[i].val_loss = i == 0 ? NAN : 0x1.fffffffffffffp-3;
        c->stats[i].val_accuracy = -0.0;
        c->stats[i].seconds = 12.5;
        snprintf(c->stats[i].fingerprint, 33, "%032x", 0xabc + i);
    }
    c->ntensors = 2;
    c->tensors = calloc(2, sizeof *c->tensors);
    strcpy(c->tensors[0].name, "dense_1.weight");
    c->tensors[0].ndims = 2;
    c->tensors[0].dims[0] = 3;
    c->tensors[0].dims[1] = (int)(count - 3) / 3;
    c->tensors[0].count = count - 3;
    strcpy(c->tensors[1].name, "dense_1.bias");
    c->tensors[1].ndims = 1;
    c->tensors[1].dims[0] = 3;
    c->tensors[1].offset = count - 3;
    c->tensors[1].count = 3;
    c->count = count;
    c->params = malloc(count * sizeof(float));
    c->m = malloc(count * sizeof(float));
    c->v = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) {
        uint32_t a = (uint32_t)(i * 2654435761u), b = a ^ 0x80000000u, d = (uint32_t)i;
        memcpy(&c->params[i], &a, 4);
        memcpy(&c->m[i], &b, 4);
        memcpy(&c->v[i], &d, 4);   /* small integers: denormals and +0 */
    }
    c->bloblen = 7;
    c->blob = malloc(7);
    memcpy(c->blob, "{\"a\":1}", 7);
}

static int same_bits(const void *a, const void *b, size_t n)
{
    return memcmp(a, b, n) == 0;
}

static void compare(const detrun_checkpoint *a, const detrun_checkpoint *b)
{
    CHECK(a->epoch == b->epoch && a->batch == b->batch, "epoch/batch");
    CHECK(a->step == b->step, "step %llu vs %llu", (unsigned long long)a->step,
          (unsigned long long)b->step);
    CHECK(same_bits(&a->beta1_t, &b->beta1_t, 4) && same_bits(&a->beta2_t, &b->beta2_t, 4),
          "beta products");
    CHECK(a->mode == b->mode && a->seed == b->seed && a->stream == b->stream, "mode/seed/stream");
    CHECK(a->epochs == b->epochs && a->batch_size == b->batch_size, "epochs/batch size");
    CHECK(a->optimizer.kind == b->optimizer.kind &&
          same_bits(&a->optimizer.lr, &b->optimizer.lr, 4) &&
          same_bits(&a->optimizer.eps, &b->optimizer.eps, 4), "optimizer");
    CHECK(a->nstats == b->nstats, "nstats");
    for (int i = 0; i < a->nstats && i < b->nstats; i++) {
        const detrun_epoch_stats *x = &a->stats[i], *y = &b->stats[i];
        CHECK(x->epoch == y->epoch, "stats %d epoch", i);
        CHECK(same_bits(&x->loss, &y->loss, 8) && same_bits(&x->accuracy, &y->accuracy, 8) &&
              same_bits(&x->val_accuracy, &y->val_accuracy, 8) &&
              same_bits(&x->seconds, &y->seconds, 8), "stats %d numbers", i);
        CHECK(isnan(x->val_loss) ? isnan(y->val_loss) : same_bits(&x->val_loss, &y->val_loss, 8),
              "stats %d val_loss", i);
        CHECK(strcmp(x->fingerprint, y->fingerprint) == 0, "stats %d fingerprint", i);
    }
    CHECK(a->ntensors == b->ntensors, "ntensors");
    for (int i = 0; i < a->ntensors && i < b->ntensors; i++) {
        CHECK(strcmp(a->tensors[i].name, b->tensors[i].name) == 0, "tensor %d name", i);
        CHECK(a->tensors[i].ndims == b->tensors[i].ndims &&
              same_bits(a->tensors[i].dims, b->tensors[i].dims,
                        sizeof(int) * (size_t)a->tensors[i].ndims) &&
              a->tensors[i].offset == b->tensors[i].offset &&
              a->tensors[i].count == b->tensors[i].count, "tensor %d shape", i);
    }
    CHECK(a->count == b->count, "count");
    CHECK(same_bits(a->params, b->params, 4 * a->count), "params");
    CHECK(same_bits(a->m, b->m, 4 * a->count), "m");
    CHECK(b->v != NULL && same_bits(a->v, b->v, 4 * a->count), "v");
    CHECK(a->bloblen == b->bloblen && same_bits(a->blob, b->blob, a->bloblen), "blob");
}

/* The file must be refused with DETRUN_ERR_FORMAT, the message must name
 * the file and contain `want`, and the output must hold nothing. */
static void refused(detrun_runtime *rt, const char *path, const char *want, const char *why)
{
    detrun_checkpoint c;
    memset(&c, 0x5a, sizeof c);
    detrun_status s = detrun_checkpoint_read(rt, path, &c);
    if (getenv("DETRUN_TEST_VERBOSE") != NULL)
        printf("%s: %s\n", why, detrun_errmsg(rt));
    CHECK(s == DETRUN_ERR_FORMAT, "%s: status %d, want DETRUN_ERR_FORMAT", why, (int)s);
    CHECK(strstr(detrun_errmsg(rt), path) != NULL, "%s: message '%s' lacks the path", why,
          detrun_errmsg(rt));
    CHECK(strstr(detrun_errmsg(rt), want) != NULL, "%s: message '%s' lacks '%s'", why,
          detrun_errmsg(rt), want);
    CHECK(c.params == NULL && c.m == NULL && c.v == NULL && c.tensors == NULL &&
          c.stats == NULL && c.blob == NULL && c.count == 0, "%s: half-loaded", why);
    detrun_checkpoint_free(&c);
}

int main(void)
{
    detrun_runtime *rt = test_runtime();
    char dir[] = "/tmp/detrun-ckpt-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], bad_path[300];
    snprintf(path, sizeof path, "%s/fit.ckpt", dir);
    snprintf(bad_path, sizeof bad_path, "%s/bad.ckpt", dir);

    detrun_checkpoint a, b;
    fill(&a, 3003);
    CHECK(detrun_checkpoint_write(rt, path, &a) == DETRUN_OK, "write: %s", detrun_errmsg(rt));
    char tmp[300];
    glob_t g;
    snprintf(tmp, sizeof tmp, "%s.*.tmp", path);
    CHECK(glob(tmp, 0, NULL, &g) == GLOB_NOMATCH, "the temporary file is left behind");
    globfree(&g);
    CHECK(detrun_checkpoint_read(rt, path, &b) == DETRUN_OK, "read: %s", detrun_errmsg(rt));
    compare(&a, &b);
    detrun_checkpoint_free(&b);
    CHECK(b.params == NULL && b.count == 0, "free leaves the struct zeroed");

    /* SGD: one moment block. */
    a.optimizer.kind = DETRUN_OPT_SGD;
    float *v = a.v;
    a.v = NULL;
    CHECK(detrun_checkpoint_write(rt, path, &a) == DETRUN_OK, "write sgd: %s", detrun_errmsg(rt));
    CHECK(detrun_checkpoint_read(rt, path, &b) == DETRUN_OK, "read sgd: %s", detrun_errmsg(rt));
    CHECK(b.v == NULL && b.optimizer.kind == DETRUN_OPT_SGD, "sgd has no second moment");
    CHECK(same_bits(a.m, b.m, 4 * a.count), "sgd velocity");
    detrun_checkpoint_free(&b);
    a.v = v;
    a.optimizer.kind = DETRUN_OPT_ADAM;

    /* Rewriting replaces the old file whole. */
    CHECK(detrun_checkpoint_write(rt, path, &a) == DETRUN_OK, "rewrite: %s", detrun_errmsg(rt));
    size_t len;
    unsigned char *good = slurp(path, &len);
    CHECK(good != NULL && len > 200, "slurp");

    /* One flipped bit anywhere: in the header, the metadata, the payload or
     * the checksum itself. */
    size_t spots[] = { 3, 9, 13, 17, 30, len / 2, len - 20, len - 1 };
    const char *expect[] = { "magic", "version", "", "", "checksum", "checksum", "checksum",
                             "checksum" };
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        good[spots[i]] ^= 0x10;
        spit(bad_path, good, len);
        good[spots[i]] ^= 0x10;
        char why[64];
        snprintf(why, sizeof why, "bit flipped at byte %zu", spots[i]);
        refused(rt, bad_path, expect[i], why);
    }
    /* Cut short at several places, and extended. */
    size_t cuts[] = { 0, 5, 23, 39, 100, len - 17, len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit(bad_path, good, cuts[i]);
        char why[64];
        snprintf(why, sizeof why, "cut at %zu bytes", cuts[i]);
        refused(rt, bad_path, "not a valid detrun checkpoint", why);
    }
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, good, len);
    longer[len] = 0;
    spit(bad_path, longer, len + 1);
    refused(rt, bad_path, "truncated or extended", "one byte appended");
    free(longer);
    /* A foreign file. */
    const char *text = "{\"not\": \"a checkpoint\"}\n............................\n";
    spit(bad_path, text, strlen(text));
    refused(rt, bad_path, "magic", "a JSON file");
    /* A later version (with a checksum that matches, so only the version speaks). */
    good[8] = 2;
    rechecksum(good, len);
    spit(bad_path, good, len);
    refused(rt, bad_path, "version 2", "version 2");
    good[8] = 1;
    /* Sound checksum, lying metadata: the tensors claim more than count. */
    {
        char *meta = (char *)good + 24;
        uint32_t mlen = (uint32_t)good[12] | (uint32_t)good[13] << 8 | (uint32_t)good[14] << 16;
        char *shape = find(meta, mlen, "[3,1000]");
        CHECK(shape != NULL, "the metadata holds the shape");
        if (shape != NULL) {
            memcpy(shape, "[3,1001]", 8);
            rechecksum(good, len);
            spit(bad_path, good, len);
            refused(rt, bad_path, "count", "shape larger than count");
            memcpy(shape, "[3,1000]", 8);
        }
    }
    /* A missing file is an I/O error, not a format error. */
    detrun_checkpoint c;
    snprintf(bad_path, sizeof bad_path, "%s/missing.ckpt", dir);
    CHECK(detrun_checkpoint_read(rt, bad_path, &c) == DETRUN_ERR_IO, "missing file");
    CHECK(strstr(detrun_errmsg(rt), "missing.ckpt") != NULL, "missing file message: %s",
          detrun_errmsg(rt));

    free(good);
    detrun_checkpoint_free(&a);
    snprintf(bad_path, sizeof bad_path, "%s/bad.ckpt", dir);
    unlink(bad_path);
    unlink(path);
    rmdir(dir);
    detrun_close(rt);
    return test_report("test_checkpoint");
}
