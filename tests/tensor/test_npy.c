/* .npy files (docs/c-api.md, "Tensors"): round trips in float32 and uint8,
 * numpy's exact header bytes, and damaged or unsupported files refused with
 * the file named. Takes a scratch folder as its argument. */
#include <stdlib.h>

#include "tensor_test.h"

static char dir[1024];

static const char *path_of(const char *name)
{
    static char buf[2048];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void roundtrip(detrun_runtime *rt)
{
    for (int nd = 1; nd <= 4; nd++) {
        int dims[4] = { 3, 2, 5, 1 };
        detrun_tensor *t = NULL, *u = NULL;
        detrun_tensor_new(rt, nd, dims, &t);
        detrun_tensor_normal(rt, t, nd, 0, 0.0f, 1.0f);
        const char *p = path_of("rt.npy");
        CHECK(detrun_tensor_save_npy(rt, t, p, DETRUN_NPY_F32) == DETRUN_OK, "%s",
              detrun_errmsg(rt));
        detrun_npy_type type = DETRUN_NPY_U8;
        CHECK(detrun_tensor_load_npy(rt, p, &u, &type) == DETRUN_OK, "%s", detrun_errmsg(rt));
        CHECK(type == DETRUN_NPY_F32, "type");
        int got[4];
        CHECK(u != NULL && detrun_tensor_shape(u, got) == nd &&
              memcmp(got, dims, (size_t)nd * sizeof(int)) == 0, "shape of %d dims", nd);
        CHECK(u != NULL && memcmp(detrun_tensor_data(t), detrun_tensor_data(u),
                                  detrun_tensor_count(t) * 4) == 0, "values of %d dims", nd);
        detrun_tensor_free(t);
        detrun_tensor_free(u);
    }
    /* uint8: integers 0..255 only; read back as the bytes' values. */
    detrun_tensor *t = vec(NULL, 256), *u = NULL;
    for (int i = 0; i < 256; i++)
        detrun_tensor_data(t)[i] = (float)i;
    CHECK(detrun_tensor_save_npy(rt, t, path_of("u8.npy"), DETRUN_NPY_U8) == DETRUN_OK, "u8");
    detrun_npy_type type;
    CHECK(detrun_tensor_load_npy(rt, path_of("u8.npy"), &u, &type) == DETRUN_OK &&
          type == DETRUN_NPY_U8, "u8 read");
    CHECK(u != NULL && memcmp(detrun_tensor_data(t), detrun_tensor_data(u), 1024) == 0, "u8");
    detrun_tensor_free(u);
    detrun_tensor_data(t)[7] = 7.5f;
    CHECK(detrun_tensor_save_npy(rt, t, path_of("u8b.npy"), DETRUN_NPY_U8) == DETRUN_ERR_ARG,
          "7.5 as uint8");
    CHECK(strstr(detrun_errmsg(rt), "element 7 is 7.5") != NULL, "%s", detrun_errmsg(rt));
    detrun_tensor_free(t);
}

/* The bytes numpy.save writes for a (2, 3) float32 array. */
static void header_bytes(detrun_runtime *rt)
{
    int dims[2] = { 2, 3 };
    detrun_tensor *t = NULL;
    detrun_tensor_new(rt, 2, dims, &t);
    detrun_tensor_save_npy(rt, t, path_of("h.npy"), DETRUN_NPY_F32);
    detrun_tensor_free(t);
    unsigned char buf[256];
    FILE *f = fopen(path_of("h.npy"), "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(n == 128 + 24, "file size %zu", n);
    CHECK(memcmp(buf, "\x93NUMPY\x01\x00\x76\x00", 10) == 0, "preamble");
    CHECK(memcmp(buf + 10, dict, strlen(dict)) == 0 && buf[127] == '\n' && buf[126] == ' ',
          "header text");
}

static void write_raw(const char *name, const char *header, size_t data_bytes)
{
    FILE *f = fopen(path_of(name), "wb");
    size_t hl = strlen(header);
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hl,
                              (unsigned char)(hl >> 8) };
    fwrite(pre, 1, 10, f);
    fwrite(header, 1, hl, f);
    for (size_t i = 0; i < data_bytes; i++)
        fputc(0, f);
    fclose(f);
}

static void refused(detrun_runtime *rt, const char *name, const char *header, size_t bytes,
                    const char *why)
{
    write_raw(name, header, bytes);
    detrun_tensor *t = (detrun_tensor *)&t;
    detrun_status st = detrun_tensor_load_npy(rt, path_of(name), &t, NULL);
    CHECK(st == DETRUN_ERR_FORMAT && t == NULL, "%s: status %d", name, (int)st);
    CHECK(strstr(detrun_errmsg(rt), path_of(name)) != NULL, "%s: file not named: %s", name,
          detrun_errmsg(rt));
    CHECK(strstr(detrun_errmsg(rt), why) != NULL, "%s: '%s' not in: %s", name, why,
          detrun_errmsg(rt));
}

static void bad_files(detrun_runtime *rt)
{
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }         \n";
    write_raw("ok.npy", ok, 24);
    detrun_tensor *t = NULL;
    CHECK(detrun_tensor_load_npy(rt, path_of("ok.npy"), &t, NULL) == DETRUN_OK, "%s",
          detrun_errmsg(rt));
    detrun_tensor_free(t);
    refused(rt, "f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 16,
            "dtype '<f8' is not supported");
    refused(rt, "be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8,
            "'>f4'");
    refused(rt, "fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n",
            16, "Fortran order");
    refused(rt, "short.npy", ok, 20, "truncated: 5 of 6");
    refused(rt, "long.npy", ok, 28, "bytes follow");
    refused(rt, "zero.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }\n", 0,
            "dimension 2 is 0");
    refused(rt, "scalar.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", 4,
            "0-dimensional");
    refused(rt, "five.npy",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }\n", 4,
            "more than 4 dimensions");
    refused(rt, "nokey.npy", "{'descr': '<f4', 'shape': (2,), }\n", 8, "lacks 'fortran_order'");
    refused(rt, "twice.npy",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 8,
            "repeated key 'descr'");
    refused(rt, "extra.npy",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }\n", 8, "'x'");
    refused(rt, "nonl.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8,
            "newline");
    refused(rt, "neg.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", 8,
            "non-negative integers");
    refused(rt, "huge.npy",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536), }\n", 8,
            "2^32 - 1");
    FILE *f = fopen(path_of("magic.npy"), "wb");
    fputs("PK\x03\x04 not numpy at all", f);
    fclose(f);
    t = NULL;
    CHECK(detrun_tensor_load_npy(rt, path_of("magic.npy"), &t, NULL) == DETRUN_ERR_FORMAT &&
          strstr(detrun_errmsg(rt), "magic") != NULL, "zip file: %s", detrun_errmsg(rt));
    f = fopen(path_of("v2.npy"), "wb");
    fwrite("\x93NUMPY\x02\x00\x00\x00\x00\x00", 1, 12, f);
    fclose(f);
    CHECK(detrun_tensor_load_npy(rt, path_of("v2.npy"), &t, NULL) == DETRUN_ERR_FORMAT &&
          strstr(detrun_errmsg(rt), "version 2.0") != NULL, "v2: %s", detrun_errmsg(rt));
    CHECK(detrun_tensor_load_npy(rt, path_of("absent.npy"), &t, NULL) == DETRUN_ERR_IO &&
          strstr(detrun_errmsg(rt), "absent.npy") != NULL, "absent: %s", detrun_errmsg(rt));
}

int main(int argc, char **argv)
{
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    detrun_runtime *rt = open_rt(1);
    if (rt == NULL)
        return 1;
    roundtrip(rt);
    header_bytes(rt);
    bad_files(rt);
    detrun_close(rt);
    return test_report("test_npy");
}
