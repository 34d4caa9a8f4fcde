/*
 * test_corpus.c - damaged IDX files through detrun_dataset_load_idx: each
 * must fail with the status and message written here, naming the file.
 *
 * The files are made here and left in the folder given as argv[1]; the fuzz
 * target's driver runs them afterwards as its corpus.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datatest.h"
#include "detrun.h"

static detrun_runtime *rt;
static const char *dir;

enum { RAW, GZ };

/* A well-formed pair: 10 images of 4x4, labels i % 3. */
static blob good_images(void)
{
    blob b = { NULL, 0, 0 };
    uint32_t d[3] = { 10, 4, 4 };
    blob_header(&b, 0x08, 3, d);
    for (int i = 0; i < 160; i++) {
        uint8_t v = (uint8_t)(i * 7);
        blob_put(&b, &v, 1);
    }
    return b;
}

static blob good_labels(void)
{
    blob b = { NULL, 0, 0 };
    uint32_t d[1] = { 10 };
    blob_header(&b, 0x08, 1, d);
    for (int i = 0; i < 10; i++) {
        uint8_t v = (uint8_t)(i % 3);
        blob_put(&b, &v, 1);
    }
    return b;
}

static blob bytes(const void *p, size_t n)
{
    blob b = { NULL, 0, 0 };
    blob_put(&b, p, n);
    return b;
}

static void save(const char *path, const blob *b, int how)
{
    if (how == GZ)
        write_gz(path, b);
    else
        write_raw(path, b);
}

/* Loads the pair; expects st and a message that starts with the path of the
 * file at fault (bad_is_labels) and holds frag. Takes the blobs. */
static void expect(const char *name, blob im, int im_how, blob lb, int lb_how, int bad_is_labels,
                   detrun_status st, const char *frag)
{
    char ip[700], lp[700];
    snprintf(ip, sizeof ip, "%s/%s-images.idx%s", dir, name, im_how == GZ ? ".gz" : "");
    snprintf(lp, sizeof lp, "%s/%s-labels.idx%s", dir, name, lb_how == GZ ? ".gz" : "");
    save(ip, &im, im_how);
    save(lp, &lb, lb_how);
    blob_free(&im);
    blob_free(&lb);
    detrun_dataset *ds = (detrun_dataset *)&ds;   /* must be overwritten with NULL */
    detrun_status got = detrun_dataset_load_idx(rt, ip, lp, &ds);
    const char *msg = detrun_errmsg(rt);
    const char *at = bad_is_labels ? lp : ip;
    CHECK(got == st, "%s: status %s, expected %s (%s)", name, detrun_status_string(got),
          detrun_status_string(st), msg);
    if (got == DETRUN_OK) {
        detrun_dataset_free(ds);
        return;
    }
    CHECK(ds == NULL, "%s: out not cleared on failure", name);
    CHECK(strncmp(msg, at, strlen(at)) == 0, "%s: message does not start with %s: %s", name, at, msg);
    CHECK(strstr(msg, frag) != NULL, "%s: message lacks \"%s\": %s", name, frag, msg);
}

static blob header_only(int type, int ndims, const uint32_t *dims, size_t data_bytes)
{
    blob b = { NULL, 0, 0 };
    blob_header(&b, type, ndims, dims);
    for (size_t i = 0; i < data_bytes; i++) {
        uint8_t v = (uint8_t)(i * 13 + 1);
        blob_put(&b, &v, 1);
    }
    return b;
}

static blob gz_bytes(const blob *b)
{
    char p[700];
    snprintf(p, sizeof p, "%s/.scratch.gz", dir);
    write_gz(p, b);
    blob z = slurp(p);
    remove(p);
    return z;
}

static void header_cases(void)
{
    expect("empty", bytes("", 0), RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT, "empty file");
    expect("garbage", bytes("hello, this is not an IDX file\n", 31), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "not an IDX file: it starts with 68 65 6c 6c");
    uint32_t d3[3] = { 10, 4, 4 };
    blob b = header_only(0x08, 3, d3, 160);
    b.p[0] = 0x01;
    b.p[1] = 0x02;
    expect("wrong-magic", b, RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "not an IDX file: it starts with 01 02 08 03");
    expect("unknown-type", header_only(0x0A, 3, d3, 160), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "unknown IDX element type 0x0a");
    expect("ndims-0", bytes("\0\0\x08\0", 4), RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "declares 0 dimensions");
    expect("ndims-9", bytes("\0\0\x08\x09\0\0\0\x01", 8), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "declares 9 dimensions");
    expect("short-header", bytes("\0\0\x08\x03\0\0\0", 7), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "file ends inside the IDX header");
    expect("tiny", bytes("\0\0", 2), RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "file ends inside the IDX header, after 2 bytes");
}

static void size_cases(void)
{
    uint32_t d[3] = { 100, 28, 28 };
    expect("truncated", header_only(0x08, 3, d, 5000), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "header promises 100x28x28 bytes, file ends after 5000");
    expect("truncated-gz", header_only(0x08, 3, d, 5000), GZ, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "header promises 100x28x28 bytes, file ends after 5000");
    uint32_t l10[1] = { 10 };
    expect("labels-truncated", good_images(), RAW, header_only(0x08, 1, l10, 6), RAW, 1,
           DETRUN_ERR_FORMAT, "header promises 10 bytes, file ends after 6");
    /* 2^46 bytes promised: no overflow, so the reader must discover that the
     * data is not there without allocating what the header asks for. */
    uint32_t huge[3] = { 0x80000000u, 0x8000u, 1 };
    expect("huge-dims", header_only(0x08, 3, huge, 10), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "header declares 2147483648 rows (dimensions 2147483648x32768x1), "
                              "above the limit of 16777216 rows; raise it with DETRUN_MAX_ROWS");
    expect("huge-dims-gz", header_only(0x08, 3, huge, 10), GZ, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "above the limit of 16777216 rows; raise it with DETRUN_MAX_ROWS");
    /* With the caps raised, the buffer still grows only as bytes arrive. */
    setenv("DETRUN_MAX_ROWS", "4294967296", 1);
    setenv("DETRUN_MAX_DATA_BYTES", "140737488355328", 1);
    expect("huge-dims-raised", header_only(0x08, 3, huge, 10), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "header promises 2147483648x32768x1 bytes, file ends after 10");
    expect("huge-dims-raised-gz", header_only(0x08, 3, huge, 10), GZ, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "header promises 2147483648x32768x1 bytes, file ends after 10");
    setenv("DETRUN_MAX_ROWS", "99", 1);
    uint32_t d100[3] = { 100, 28, 28 };
    expect("rows-cap", header_only(0x08, 3, d100, 10), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "100 rows (dimensions 100x28x28), above the limit of 99 rows");
    unsetenv("DETRUN_MAX_ROWS");
    setenv("DETRUN_MAX_DATA_BYTES", "78399", 1);
    expect("bytes-cap", header_only(0x08, 3, d100, 10), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "header declares 78400 bytes of data (dimensions 100x28x28), "
                              "above the limit of 78399 bytes; raise it with DETRUN_MAX_DATA_BYTES");
    unsetenv("DETRUN_MAX_DATA_BYTES");
    uint32_t over[4] = { 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu };
    expect("overflow", header_only(0x08, 4, over, 16), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "IDX dimensions 4294967295x4294967295x4294967295x4294967295 of "
                              "uint8 overflow the size of memory");
    /* 2^31 * 2^31 * 8 bytes = 2^65: the element size makes it overflow. */
    uint32_t over8[2] = { 0x80000000u, 0x80000000u };
    expect("overflow-f64", header_only(0x0E, 2, over8, 16), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "overflow the size of memory");
    blob t = good_images();
    blob_put(&t, "x", 1);
    expect("trailing", t, RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "more data than its header promises");
}

static void gzip_cases(void)
{
    blob im = good_images();
    blob z = gz_bytes(&im);
    blob_free(&im);
    /* The CRC-32 of the trailer: the stream decodes but does not check. */
    blob crc = bytes(z.p, z.n);
    crc.p[crc.n - 8] ^= 0x55;
    expect("corrupt-gz-crc", crc, RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "corrupt gzip stream (incorrect data check)");
    blob meth = bytes(z.p, z.n);
    meth.p[2] = 0x07;   /* compression method: only 8 (deflate) exists */
    expect("corrupt-gz-method", meth, RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "corrupt gzip stream (unknown compression method)");
    /* A deflate block of the reserved type 3. */
    expect("corrupt-gz-block", bytes("\x1f\x8b\x08\0\0\0\0\0\0\x03\xff\xff\xff\xff", 14), RAW,
           good_labels(), RAW, 0, DETRUN_ERR_FORMAT, "corrupt gzip stream (invalid block type)");
    blob cut = bytes(z.p, z.n / 2);
    expect("gz-cut", cut, RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "gzip stream is cut short");
    expect("gz-magic-only", bytes("\x1f\x8b", 2), RAW, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "gzip stream is cut short");
    expect("gz-empty-stream", bytes("", 0), GZ, good_labels(), RAW, 0, DETRUN_ERR_FORMAT,
           "the gzip stream holds no data");
    blob_free(&z);
    /* Labels in gzip, images raw, and the other way round, load fine. */
    expect("good-mixed", good_images(), RAW, good_labels(), GZ, 0, DETRUN_OK, "");
}

static void dataset_cases(void)
{
    uint32_t d9[1] = { 9 };
    blob l9 = header_only(0x08, 1, d9, 0);
    for (int i = 0; i < 9; i++) {
        uint8_t v = (uint8_t)(i % 2);
        blob_put(&l9, &v, 1);
    }
    expect("count-mismatch", good_images(), RAW, l9, RAW, 0, DETRUN_ERR_FORMAT,
           "holds 10 images but");
    uint32_t l10[1] = { 10 };
    blob l32 = { NULL, 0, 0 };
    blob_header(&l32, 0x0C, 1, l10);
    for (int i = 0; i < 10; i++)
        blob_be(&l32, i == 2 ? 300 : (uint32_t)i % 3, 4);
    expect("label-out-of-range", good_images(), RAW, l32, RAW, 1, DETRUN_ERR_FORMAT,
           "label 300 at row 2 is out of range 0..255");
    blob l8 = { NULL, 0, 0 };
    blob_header(&l8, 0x09, 1, l10);
    for (int i = 0; i < 10; i++)
        blob_be(&l8, i == 0 ? 0xff : (uint32_t)i % 3, 1);
    expect("label-negative", good_images(), RAW, l8, RAW, 1, DETRUN_ERR_FORMAT,
           "label -1 at row 0 is out of range 0..255");
    blob l0 = header_only(0x08, 1, l10, 0);
    for (int i = 0; i < 10; i++)
        blob_put(&l0, "\0", 1);
    expect("one-class", good_images(), RAW, l0, RAW, 1, DETRUN_ERR_FORMAT,
           "every label is 0; a classifier needs at least 2 classes");
    uint32_t d3[3] = { 10, 4, 4 };
    expect("images-float", header_only(0x0D, 3, d3, 640), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "images must be unsigned bytes (IDX type 0x08), the file holds "
                              "float32");
    uint32_t d2[2] = { 10, 16 };
    expect("images-2d", header_only(0x08, 2, d2, 160), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "images must have 3 dimensions");
    uint32_t l2[2] = { 10, 1 };
    expect("labels-2d", good_images(), RAW, header_only(0x08, 2, l2, 10), RAW, 1,
           DETRUN_ERR_FORMAT, "labels must have 1 dimension");
    expect("labels-float", good_images(), RAW, header_only(0x0D, 1, l10, 40), RAW, 1,
           DETRUN_ERR_FORMAT, "labels must be integers");
    uint32_t none[3] = { 0, 28, 28 };
    expect("no-images", header_only(0x08, 3, none, 0), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "holds no images");
    uint32_t flat[3] = { 10, 4, 0 };
    expect("zero-width", header_only(0x08, 3, flat, 0), RAW, good_labels(), RAW, 0,
           DETRUN_ERR_FORMAT, "are empty");
    uint32_t l0d[1] = { 0 };
    expect("no-labels", good_images(), RAW, header_only(0x08, 1, l0d, 0), RAW, 1,
           DETRUN_ERR_FORMAT, "holds no labels");
}

/* Good files load, and what they hold is what was written. */
static void good_cases(void)
{
    char ip[700], lp[700];
    snprintf(ip, sizeof ip, "%s/good-images.idx.gz", dir);
    snprintf(lp, sizeof lp, "%s/good-labels.idx", dir);
    blob im = good_images(), lb = good_labels();
    write_gz(ip, &im);
    write_raw(lp, &lb);
    detrun_dataset *ds = NULL;
    CHECK(detrun_dataset_load_idx(rt, ip, lp, &ds) == DETRUN_OK, "good: %s", detrun_errmsg(rt));
    if (ds != NULL) {
        int c, h, w;
        detrun_dataset_shape(ds, &c, &h, &w);
        CHECK(detrun_dataset_count(ds) == 10, "good: count %zu", detrun_dataset_count(ds));
        CHECK(c == 1 && h == 4 && w == 4, "good: shape %dx%dx%d", c, h, w);
        CHECK(detrun_dataset_classes(ds) == 3, "good: classes %d", detrun_dataset_classes(ds));
        CHECK(memcmp(detrun_dataset_images(ds), im.p + 16, 160) == 0, "good: pixels differ");
        CHECK(memcmp(detrun_dataset_labels(ds), lb.p + 8, 10) == 0, "good: labels differ");
        detrun_dataset_free(ds);
    }
    blob_free(&im);
    blob_free(&lb);

    /* 4-D images are (count, channels, height, width); int32 labels convert. */
    snprintf(ip, sizeof ip, "%s/good4d-images.idx", dir);
    snprintf(lp, sizeof lp, "%s/good4d-labels.idx", dir);
    uint32_t d4[4] = { 10, 3, 2, 2 }, l10[1] = { 10 };
    im = header_only(0x08, 4, d4, 120);
    blob_header(&lb, 0x0C, 1, l10);
    for (int i = 0; i < 10; i++)
        blob_be(&lb, (uint32_t)(i % 5), 4);
    write_raw(ip, &im);
    write_raw(lp, &lb);
    ds = NULL;
    CHECK(detrun_dataset_load_idx(rt, ip, lp, &ds) == DETRUN_OK, "good4d: %s", detrun_errmsg(rt));
    if (ds != NULL) {
        int c, h, w;
        detrun_dataset_shape(ds, &c, &h, &w);
        CHECK(c == 3 && h == 2 && w == 2, "good4d: shape %dx%dx%d", c, h, w);
        CHECK(detrun_dataset_classes(ds) == 5, "good4d: classes %d", detrun_dataset_classes(ds));
        CHECK(memcmp(detrun_dataset_images(ds), im.p + 20, 120) == 0, "good4d: pixels differ");
        for (int i = 0; i < 10; i++)
            CHECK(detrun_dataset_labels(ds)[i] == i % 5, "good4d: label %d is %d", i,
                  detrun_dataset_labels(ds)[i]);
        detrun_dataset_free(ds);
    }
    blob_free(&im);
    blob_free(&lb);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_corpus DIR (the damaged files are left in DIR)\n");
        return 2;
    }
    dir = argv[1];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "test_corpus: cannot create %s: %s\n", dir, strerror(errno));
        return 2;
    }
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 1;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        fprintf(stderr, "test_corpus: detrun_open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    header_cases();
    size_cases();
    gzip_cases();
    dataset_cases();
    good_cases();

    char p[700];
    snprintf(p, sizeof p, "%s/missing-images.idx", dir);
    detrun_dataset *ds = NULL;
    CHECK(detrun_dataset_load_idx(rt, p, p, &ds) == DETRUN_ERR_IO, "missing file: %s",
          detrun_errmsg(rt));
    CHECK(strstr(detrun_errmsg(rt), "missing-images.idx: cannot open") != NULL, "missing: %s",
          detrun_errmsg(rt));

    detrun_close(rt);
    return test_report("test_corpus");
}
