/*
 * test_idx.c - the IDX reader: every element type round-trips through files
 * the test writes itself (raw, gzip, multi-member gzip, from memory), and
 * short files are reported with what the header promised.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datatest.h"
#include "detrun.h"
#include "idx.h"

static detrun_runtime *rt;
static char dir[512];

/* Element i's bits: a mix of a hash and chosen edge cases per size. */
static uint64_t bits_of(size_t i, size_t esize)
{
    static const uint32_t f32_edges[] = { 0x80000000u /* -0 */, 0x00000001u /* denormal */,
                                          0x7f800000u /* inf */, 0x7fc01234u /* NaN */,
                                          0x3fc00000u /* 1.5 */, 0xff7fffffu };
    static const uint64_t f64_edges[] = { 0x8000000000000000ull, 0x0000000000000001ull,
                                          0xfff0000000000000ull, 0x7ff8000000abcdefull,
                                          0x3ff8000000000000ull };
    uint64_t h = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    if (esize == 4 && i < sizeof f32_edges / sizeof f32_edges[0])
        return f32_edges[i];
    if (esize == 8 && i < sizeof f64_edges / sizeof f64_edges[0])
        return f64_edges[i];
    if (esize == 2 && i == 0)
        return 0x8000;   /* INT16_MIN */
    return h;
}

static void native_store(uint8_t *dst, uint64_t v, size_t esize)
{
    uint8_t b8 = (uint8_t)v;
    uint16_t b16 = (uint16_t)v;
    uint32_t b32 = (uint32_t)v;
    switch (esize) {
    case 1: memcpy(dst, &b8, 1); break;
    case 2: memcpy(dst, &b16, 2); break;
    case 4: memcpy(dst, &b32, 4); break;
    default: memcpy(dst, &v, 8); break;
    }
}

static void check_array(const char *what, const detrun_idx *a, int type, int ndims,
                        const uint32_t *dims, size_t count, const uint8_t *expect)
{
    size_t esize = detrun_idx_type_size(type);
    CHECK(a->type == type, "%s: type 0x%02x, expected 0x%02x", what, a->type, type);
    CHECK(a->ndims == ndims, "%s: ndims %d, expected %d", what, a->ndims, ndims);
    for (int d = 0; d < ndims && d < a->ndims; d++)
        CHECK(a->dims[d] == dims[d], "%s: dim %d is %u, expected %u", what, d, a->dims[d], dims[d]);
    CHECK(a->count == count, "%s: count %zu, expected %zu", what, a->count, count);
    CHECK(a->bytes == count * esize, "%s: bytes %zu", what, a->bytes);
    if (a->count == count && count > 0)
        CHECK(memcmp(a->data, expect, count * esize) == 0, "%s: values differ", what);
}

static void round_trip(int type, int ndims, const uint32_t *dims)
{
    size_t esize = detrun_idx_type_size(type);
    size_t count = 1;
    for (int d = 0; d < ndims; d++)
        count *= dims[d];
    blob file = { NULL, 0, 0 };
    blob_header(&file, type, ndims, dims);
    uint8_t *expect = malloc(count * esize + 1);
    for (size_t i = 0; i < count; i++) {
        uint64_t v = bits_of(i, esize);
        blob_be(&file, v, (int)esize);
        native_store(expect + i * esize, v, esize);
    }
    char what[256], raw[600], gz[600], multi[600];
    snprintf(what, sizeof what, "%s, %d dims, %zu elements", detrun_idx_type_name(type), ndims,
             count);
    snprintf(raw, sizeof raw, "%s/rt.idx", dir);
    snprintf(gz, sizeof gz, "%s/rt.idx.gz", dir);
    snprintf(multi, sizeof multi, "%s/rt-multi.gz", dir);
    write_raw(raw, &file);
    write_gz(gz, &file);
    /* Two gzip members, split inside the data. */
    blob first = { file.p, file.n / 2, 0 };
    blob second = { file.p + file.n / 2, file.n - file.n / 2, 0 };
    write_gz(multi, &first);
    blob mg = slurp(multi);
    write_gz(multi, &second);
    blob m2 = slurp(multi);
    blob_put(&mg, m2.p, m2.n);
    write_raw(multi, &mg);

    const char *paths[3] = { raw, gz, multi };
    const char *kinds[3] = { "raw", "gzip", "two gzip members" };
    for (int k = 0; k < 3; k++) {
        char label[400];
        detrun_idx a;
        snprintf(label, sizeof label, "%s (%s file)", what, kinds[k]);
        detrun_status st = detrun_idx_read(rt, paths[k], &a);
        CHECK(st == DETRUN_OK, "%s: %s", label, detrun_errmsg(rt));
        if (st == DETRUN_OK)
            check_array(label, &a, type, ndims, dims, count, expect);
        detrun_idx_free(&a);

        blob bytes = slurp(paths[k]);
        snprintf(label, sizeof label, "%s (%s in memory)", what, kinds[k]);
        st = detrun_idx_read_memory(rt, "mem", bytes.p, bytes.n, &a);
        CHECK(st == DETRUN_OK, "%s: %s", label, detrun_errmsg(rt));
        if (st == DETRUN_OK)
            check_array(label, &a, type, ndims, dims, count, expect);
        detrun_idx_free(&a);
        blob_free(&bytes);
    }
    blob_free(&mg);
    blob_free(&m2);
    blob_free(&file);
    free(expect);
    remove(raw);
    remove(gz);
    remove(multi);
}

/* Expects failure with status st and a message holding each fragment. */
static void expect_error(const char *path, detrun_status st, const char *frag1, const char *frag2)
{
    detrun_idx a;
    detrun_status got = detrun_idx_read(rt, path, &a);
    const char *msg = detrun_errmsg(rt);
    CHECK(got == st, "%s: status %s, expected %s (%s)", path, detrun_status_string(got),
          detrun_status_string(st), msg);
    CHECK(strncmp(msg, path, strlen(path)) == 0, "message does not start with the path: %s", msg);
    CHECK(strstr(msg, frag1) != NULL, "message lacks \"%s\": %s", frag1, msg);
    if (frag2 != NULL)
        CHECK(strstr(msg, frag2) != NULL, "message lacks \"%s\": %s", frag2, msg);
    CHECK(a.data == NULL, "%s: data left allocated after an error", path);
    if (got == DETRUN_OK)
        detrun_idx_free(&a);
}

static void truncation(void)
{
    char path[600], gzpath[600];
    snprintf(path, sizeof path, "%s/short.idx", dir);
    snprintf(gzpath, sizeof gzpath, "%s/short.idx.gz", dir);

    /* The message of the format's own example: MNIST's header, 99984 bytes of pixels. */
    uint32_t dims[3] = { 60000, 28, 28 };
    blob b = { NULL, 0, 0 };
    blob_header(&b, 0x08, 3, dims);
    for (int i = 0; i < 99984; i++) {
        uint8_t v = (uint8_t)i;
        blob_put(&b, &v, 1);
    }
    write_raw(path, &b);
    expect_error(path, DETRUN_ERR_FORMAT, "header promises 60000x28x28 bytes, file ends after 99984",
                 NULL);
    write_gz(gzpath, &b);
    expect_error(gzpath, DETRUN_ERR_FORMAT,
                 "header promises 60000x28x28 bytes, file ends after 99984", NULL);
    /* A gzip file cut in the middle of its compressed stream. */
    blob z = slurp(gzpath);
    blob half = { z.p, z.n / 2, 0 };
    write_raw(gzpath, &half);
    expect_error(gzpath, DETRUN_ERR_FORMAT, "header promises 60000x28x28 bytes, file ends after",
                 "gzip stream is cut short");
    blob_free(&z);
    blob_free(&b);

    /* Wider elements: the count of values and of bytes. */
    uint32_t d2[2] = { 10, 3 };
    blob_header(&b, 0x0C, 2, d2);
    for (int i = 0; i < 99; i++) {
        uint8_t v = 7;
        blob_put(&b, &v, 1);
    }
    write_raw(path, &b);
    expect_error(path, DETRUN_ERR_FORMAT,
                 "header promises 10x3 int32 values (120 bytes), file ends after 99 bytes", NULL);
    blob_free(&b);

    /* A header that promises less than the file holds. */
    uint32_t d1[1] = { 4 };
    blob_header(&b, 0x08, 1, d1);
    blob_put(&b, "abcde", 5);
    write_raw(path, &b);
    expect_error(path, DETRUN_ERR_FORMAT, "more data than its header promises", NULL);
    write_gz(gzpath, &b);
    expect_error(gzpath, DETRUN_ERR_FORMAT, "more data than its header promises", NULL);
    blob_free(&b);

    /* Data past a complete gzip stream that is not another member. */
    blob_header(&b, 0x08, 1, d1);
    blob_put(&b, "abcd", 4);
    write_gz(gzpath, &b);
    blob g = slurp(gzpath);
    blob_put(&g, "junk", 4);
    write_raw(gzpath, &g);
    expect_error(gzpath, DETRUN_ERR_FORMAT, "corrupt gzip stream", NULL);
    blob_free(&g);
    blob_free(&b);

    snprintf(path, sizeof path, "%s/does-not-exist.idx", dir);
    expect_error(path, DETRUN_ERR_IO, "cannot open", "No such file");
    expect_error(dir, DETRUN_ERR_IO, "is a directory", NULL);
    remove(gzpath);
    snprintf(path, sizeof path, "%s/short.idx", dir);
    remove(path);
}

int main(void)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 1;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        fprintf(stderr, "test_idx: detrun_open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    make_tmpdir(dir, sizeof dir);

    static const int types[] = { 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E };
    static const uint32_t shapes[4][4] = { { 7 }, { 3, 5 }, { 2, 3, 4 }, { 2, 1, 3, 2 } };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int nd = 1; nd <= 4; nd++)
            round_trip(types[t], nd, shapes[nd - 1]);
    /* Larger than the reader's input chunk (64 KiB) and its growth chunk (4 MiB). */
    uint32_t big[3] = { 3000, 40, 40 };
    round_trip(0x08, 3, big);
    uint32_t longf[1] = { 70001 };
    round_trip(0x0E, 1, longf);
    /* A zero dimension is a valid, empty array at this level. */
    uint32_t empty[2] = { 0, 4 };
    round_trip(0x0D, 2, empty);

    truncation();

    /* The reader needs no runtime; then only the status reports. */
    detrun_idx a;
    CHECK(detrun_idx_read_memory(NULL, "x", "\x00\x00\x08\x01\x00\x00\x00\x01\x2a", 9, &a) ==
              DETRUN_OK && a.count == 1 && ((uint8_t *)a.data)[0] == 42,
          "read without a runtime");
    detrun_idx_free(&a);
    CHECK(detrun_idx_read_memory(NULL, "x", "\x01", 1, &a) == DETRUN_ERR_FORMAT,
          "error without a runtime");

    rmdir(dir);
    detrun_close(rt);
    return test_report("test_idx");
}
