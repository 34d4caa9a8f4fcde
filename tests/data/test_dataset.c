/*
 * test_dataset.c - data sets from memory and from the MNIST file layout,
 * the default data folder, and the real Fashion-MNIST files compared with
 * their bytes as zlib decompresses them here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dataset.h"
#include "datatest.h"
#include "detrun.h"

static detrun_runtime *rt;
static char dir[512];

/* An allocator that counts live bytes by the sizes the caller states, so a
 * wrong old size on free shows up as a leak or an underflow. */
static long long live_bytes;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (ptr == NULL)
        osize = 0;
    live_bytes += (long long)nsize - (long long)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

static void expect_err(detrun_status got, detrun_status st, const char *frag)
{
    const char *msg = detrun_errmsg(rt);
    CHECK(got == st, "status %s, expected %s (%s)", detrun_status_string(got),
          detrun_status_string(st), msg);
    CHECK(strstr(msg, frag) != NULL, "message lacks \"%s\": %s", frag, msg);
}

static void from_memory(void)
{
    uint8_t im[6 * 6], lb[6] = { 0, 1, 2, 3, 4, 9 };
    for (int i = 0; i < 36; i++)
        im[i] = (uint8_t)(200 - i);
    detrun_dataset *ds = NULL;
    CHECK(detrun_dataset_from_memory(rt, im, lb, 6, 1, 2, 3, 10, &ds) == DETRUN_OK, "%s",
          detrun_errmsg(rt));
    if (ds == NULL)
        return;
    im[0] = 0;   /* the data set holds a copy */
    lb[0] = 7;
    int c, h, w;
    detrun_dataset_shape(ds, &c, &h, &w);
    CHECK(c == 1 && h == 2 && w == 3, "shape %dx%dx%d", c, h, w);
    CHECK(detrun_dataset_count(ds) == 6, "count %zu", detrun_dataset_count(ds));
    CHECK(detrun_dataset_classes(ds) == 10, "classes %d", detrun_dataset_classes(ds));
    CHECK(detrun_dataset_images(ds)[0] == 200 && detrun_dataset_images(ds)[35] == 165,
          "pixels not copied");
    CHECK(detrun_dataset_labels(ds)[0] == 0 && detrun_dataset_labels(ds)[5] == 9,
          "labels not copied");
    detrun_dataset_limit(ds, 10);
    CHECK(detrun_dataset_count(ds) == 6, "limit above the count changed it");
    detrun_dataset_limit(ds, 4);
    CHECK(detrun_dataset_count(ds) == 4, "limit 4 gave %zu", detrun_dataset_count(ds));
    CHECK(detrun_dataset_classes(ds) == 10, "limit changed the classes");
    detrun_dataset_free(ds);

    lb[0] = 0;
    lb[5] = 10;   /* the first value out of range */
    expect_err(detrun_dataset_from_memory(rt, im, lb, 6, 1, 2, 3, 10, &ds), DETRUN_ERR_ARG,
               "label 10 at row 5 is out of range 0..9");
    CHECK(ds == NULL, "out not cleared");
    expect_err(detrun_dataset_from_memory(rt, im, lb, 6, 1, 2, 3, 1, &ds), DETRUN_ERR_ARG,
               "classes is 1");
    expect_err(detrun_dataset_from_memory(rt, im, lb, 6, 1, 0, 3, 10, &ds), DETRUN_ERR_SHAPE,
               "image shape 1x0x3 must be positive");
    expect_err(detrun_dataset_from_memory(rt, im, lb, 0, 1, 2, 3, 10, &ds), DETRUN_ERR_ARG,
               "count is 0");
    expect_err(detrun_dataset_from_memory(rt, NULL, lb, 6, 1, 2, 3, 10, &ds), DETRUN_ERR_ARG,
               "images is NULL");
    expect_err(detrun_dataset_from_memory(rt, im, lb, 6, 65536, 65536, 3, 10, &ds),
               DETRUN_ERR_SHAPE, "too large");

    /* The NULL accessors are harmless. */
    detrun_dataset_free(NULL);
    CHECK(detrun_dataset_count(NULL) == 0 && detrun_dataset_images(NULL) == NULL,
          "NULL data set accessors");
}

/* A data set outlives its runtime, and every byte goes back to the
 * runtime's allocator with the size it was taken with. */
static void allocator(void)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 1;
    opt.alloc = counting_alloc;
    detrun_runtime *r2 = NULL;
    if (detrun_open(&r2, &opt) != DETRUN_OK) {
        CHECK(0, "detrun_open with an allocator: %s", detrun_errmsg(r2));
        detrun_close(r2);
        return;
    }
    char ip[600], lp[600];
    snprintf(ip, sizeof ip, "%s/alloc-images.gz", dir);
    snprintf(lp, sizeof lp, "%s/alloc-labels", dir);
    blob im = { NULL, 0, 0 }, lb = { NULL, 0, 0 };
    uint32_t d3[3] = { 5, 3, 3 }, d1[1] = { 5 };
    blob_header(&im, 0x08, 3, d3);
    for (int i = 0; i < 45; i++)
        blob_be(&im, (uint32_t)i, 1);
    blob_header(&lb, 0x0B, 1, d1);   /* int16 labels: converted and shrunk */
    for (int i = 0; i < 5; i++)
        blob_be(&lb, (uint32_t)(i & 1), 2);
    write_gz(ip, &im);
    write_raw(lp, &lb);

    long long before = live_bytes;
    detrun_dataset *a = NULL, *b = NULL, *c = NULL;
    CHECK(detrun_dataset_load_idx(r2, ip, lp, &a) == DETRUN_OK, "%s", detrun_errmsg(r2));
    long long after_a = live_bytes;
    CHECK(after_a >= before + 45 + 5, "the runtime's allocator was not used");
    if (a != NULL) {
        static const uint8_t want[5] = { 0, 1, 0, 1, 0 };
        CHECK(memcmp(detrun_dataset_labels(a), want, 5) == 0, "int16 labels converted wrongly");
        CHECK(detrun_dataset_classes(a) == 2, "classes %d", detrun_dataset_classes(a));
    }
    CHECK(detrun_dataset_from_memory(r2, im.p + 16, detrun_dataset_labels(a), 5, 1, 3, 3, 2, &b) ==
              DETRUN_OK, "%s", detrun_errmsg(r2));
    detrun_dataset_free(b);
    CHECK(live_bytes == after_a, "from_memory + free: %lld bytes live", live_bytes - after_a);
    /* A failing load (gzip images as labels: 3 dimensions) gives back all it took. */
    CHECK(detrun_dataset_load_idx(r2, ip, ip, &c) == DETRUN_ERR_FORMAT, "images as labels");
    CHECK(live_bytes == after_a, "failed load: %lld bytes live", live_bytes - after_a);
    detrun_close(r2);
    long long closed = live_bytes;
    detrun_dataset_free(a);
    CHECK(closed - live_bytes == after_a - before, "freeing after close gave back %lld of %lld",
          closed - live_bytes, after_a - before);
    blob_free(&im);
    blob_free(&lb);
    remove(ip);
    remove(lp);
}

/* The decompressed bytes of a gzip file, read with zlib directly. */
static blob gunzip(const char *path)
{
    blob b = { NULL, 0, 0 };
    gzFile g = gzopen(path, "rb");
    if (g == NULL) {
        CHECK(0, "cannot open %s", path);
        return b;
    }
    static uint8_t buf[1 << 16];
    int n;
    while ((n = gzread(g, buf, sizeof buf)) > 0)
        blob_put(&b, buf, (size_t)n);
    gzclose(g);
    return b;
}

static void fashion_mnist(const char *set, size_t count)
{
    detrun_dataset *ds = NULL;
    detrun_status st = detrun_dataset_load_mnist(rt, NULL, set, &ds);
    CHECK(st == DETRUN_OK, "load_mnist %s: %s", set, detrun_errmsg(rt));
    if (ds == NULL)
        return;
    int c, h, w;
    detrun_dataset_shape(ds, &c, &h, &w);
    CHECK(detrun_dataset_count(ds) == count, "%s: count %zu", set, detrun_dataset_count(ds));
    CHECK(c == 1 && h == 28 && w == 28, "%s: shape %dx%dx%d", set, c, h, w);
    CHECK(detrun_dataset_classes(ds) == 10, "%s: classes %d", set, detrun_dataset_classes(ds));

    char p[600];
    snprintf(p, sizeof p, "/usr/share/datasets/fashion-mnist/%s-images-idx3-ubyte.gz", set);
    blob im = gunzip(p);
    snprintf(p, sizeof p, "/usr/share/datasets/fashion-mnist/%s-labels-idx1-ubyte.gz", set);
    blob lb = gunzip(p);
    CHECK(im.n == 16 + count * 784, "%s: decompressed images hold %zu bytes", set, im.n);
    CHECK(lb.n == 8 + count, "%s: decompressed labels hold %zu bytes", set, lb.n);
    if (im.n == 16 + count * 784 && lb.n == 8 + count) {
        const uint8_t *L = detrun_dataset_labels(ds), *I = detrun_dataset_images(ds);
        CHECK(L[0] == lb.p[8], "%s: first label %d, file says %d", set, L[0], lb.p[8]);
        CHECK(memcmp(I + 300, im.p + 16 + 300, 100) == 0, "%s: pixels of image 0 differ", set);
        CHECK(memcmp(L, lb.p + 8, count) == 0, "%s: labels differ", set);
        CHECK(memcmp(I, im.p + 16, count * 784) == 0, "%s: images differ", set);
        size_t per[10] = { 0 };
        for (size_t i = 0; i < count; i++)
            per[L[i] < 10 ? L[i] : 0]++;
        /* Fashion-MNIST is balanced: every class has count / 10 images. */
        for (int k = 0; k < 10; k++)
            CHECK(per[k] == count / 10, "%s: class %d has %zu images", set, k, per[k]);
    }
    blob_free(&im);
    blob_free(&lb);
    detrun_dataset_free(ds);
}

static void write_pair(const char *d, const char *set, int gz, uint8_t fill)
{
    char p[700];
    blob im = { NULL, 0, 0 }, lb = { NULL, 0, 0 };
    uint32_t d3[3] = { 4, 2, 2 }, d1[1] = { 4 };
    blob_header(&im, 0x08, 3, d3);
    for (int i = 0; i < 16; i++)
        blob_put(&im, &fill, 1);
    blob_header(&lb, 0x08, 1, d1);
    blob_put(&lb, "\0\1\2\3", 4);
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", d, set, gz ? ".gz" : "");
    gz ? write_gz(p, &im) : write_raw(p, &im);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte%s", d, set, gz ? ".gz" : "");
    gz ? write_gz(p, &lb) : write_raw(p, &lb);
    blob_free(&im);
    blob_free(&lb);
}

static void data_dir(void)
{
    unsetenv("DETRUN_DATA");
    CHECK(strcmp(detrun_default_data_dir(), "/usr/share/datasets/fashion-mnist") == 0,
          "default dir %s", detrun_default_data_dir());
    setenv("DETRUN_DATA", "", 1);
    CHECK(strcmp(detrun_default_data_dir(), "/usr/share/datasets/fashion-mnist") == 0,
          "empty DETRUN_DATA gave %s", detrun_default_data_dir());
    setenv("DETRUN_DATA", dir, 1);
    CHECK(strcmp(detrun_default_data_dir(), dir) == 0, "DETRUN_DATA ignored");

    detrun_dataset *ds = NULL;
    expect_err(detrun_dataset_load_mnist(rt, NULL, "train", &ds), DETRUN_ERR_IO,
               "apt-get install dataset-fashion-mnist");
    CHECK(strstr(detrun_errmsg(rt), "--data DIR") && strstr(detrun_errmsg(rt), "DETRUN_DATA") &&
              strncmp(detrun_errmsg(rt), dir, strlen(dir)) == 0 &&
              strstr(detrun_errmsg(rt), "train-images-idx3-ubyte"),
          "missing files message: %s", detrun_errmsg(rt));
    expect_err(detrun_dataset_load_mnist(rt, NULL, "test", &ds), DETRUN_ERR_ARG,
               "expected \"train\" or \"t10k\"");

    /* Raw files only: they load. */
    write_pair(dir, "t10k", 0, 11);
    CHECK(detrun_dataset_load_mnist(rt, NULL, "t10k", &ds) == DETRUN_OK, "%s", detrun_errmsg(rt));
    if (ds != NULL)
        CHECK(detrun_dataset_images(ds)[0] == 11 && detrun_dataset_classes(ds) == 4,
              "raw t10k files not read");
    detrun_dataset_free(ds);
    ds = NULL;
    /* Both: the gzip files win. */
    write_pair(dir, "t10k", 1, 22);
    CHECK(detrun_dataset_load_mnist(rt, dir, "t10k", &ds) == DETRUN_OK, "%s", detrun_errmsg(rt));
    if (ds != NULL)
        CHECK(detrun_dataset_images(ds)[0] == 22, "the .gz files were not preferred");
    detrun_dataset_free(ds);
    /* Labels missing: named. */
    char p[700];
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
    remove(p);
    expect_err(detrun_dataset_load_mnist(rt, dir, "t10k", &ds), DETRUN_ERR_IO,
               "no t10k-labels-idx1-ubyte[.gz]");
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir);
    remove(p);
    unsetenv("DETRUN_DATA");
}

int main(void)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 1;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        fprintf(stderr, "test_dataset: detrun_open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    make_tmpdir(dir, sizeof dir);
    from_memory();
    allocator();
    data_dir();
    fashion_mnist("train", 60000);
    fashion_mnist("t10k", 10000);
    rmdir(dir);
    detrun_close(rt);
    return test_report("test_dataset");
}
