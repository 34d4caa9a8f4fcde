/* Prints seeded draws as `kind seed stream index hexbits` lines, for
 * tensor_ref.py to recompute independently (the test tensor.reference).
 * `write DIR` saves normal.npy (3x4x5 float32, seed 1, stream 0) and
 * bytes.npy (16x16 uint8, 0..255) for numpy to read; `read PATH` prints a
 * .npy file's type, shape and elements' bits (npy_numpy.py). */
#include <inttypes.h>
#include <stdio.h>

#include "tensor_test.h"

static void dump(detrun_runtime *rt, const char *kind, uint64_t seed, uint32_t stream, int n)
{
    detrun_tensor *t = vec(rt, n);
    if (t == NULL)
        return;
    detrun_status st = kind[0] == 'u' ? detrun_tensor_uniform(rt, t, seed, stream, 0.0f, 1.0f)
                     : kind[0] == 'n' ? detrun_tensor_normal(rt, t, seed, stream, 0.0f, 1.0f)
                                      : detrun_tensor_glorot(rt, t, seed, stream, 16, 3);
    CHECK(st == DETRUN_OK, "%s", detrun_errmsg(rt));
    const float *d = detrun_tensor_cdata(t);
    for (int i = 0; i < n; i++)
        printf("%s %" PRIu64 " %u %d %08x\n", kind, seed, stream, i, fbits(d[i]));
    detrun_tensor_free(t);
}

static int write_files(detrun_runtime *rt, const char *dir)
{
    char path[2048];
    int d3[3] = { 3, 4, 5 }, d2[2] = { 16, 16 };
    detrun_tensor *t = NULL, *b = NULL;
    CHECK(detrun_tensor_new(rt, 3, d3, &t) == DETRUN_OK, "new");
    CHECK(detrun_tensor_normal(rt, t, 1, 0, 0.0f, 1.0f) == DETRUN_OK, "normal");
    snprintf(path, sizeof path, "%s/normal.npy", dir);
    CHECK(detrun_tensor_save_npy(rt, t, path, DETRUN_NPY_F32) == DETRUN_OK, "%s", detrun_errmsg(rt));
    CHECK(detrun_tensor_new(rt, 2, d2, &b) == DETRUN_OK, "new");
    for (int i = 0; i < 256; i++)
        detrun_tensor_data(b)[i] = (float)i;
    snprintf(path, sizeof path, "%s/bytes.npy", dir);
    CHECK(detrun_tensor_save_npy(rt, b, path, DETRUN_NPY_U8) == DETRUN_OK, "%s", detrun_errmsg(rt));
    detrun_tensor_free(t);
    detrun_tensor_free(b);
    return failures != 0;
}

static int read_file(detrun_runtime *rt, const char *path)
{
    detrun_tensor *t = NULL;
    detrun_npy_type type;
    if (detrun_tensor_load_npy(rt, path, &t, &type) != DETRUN_OK) {
        printf("error %s\n", detrun_errmsg(rt));
        return 1;
    }
    int d[4];
    int nd = detrun_tensor_shape(t, d);
    printf("%s", type == DETRUN_NPY_U8 ? "uint8" : "float32");
    for (int k = 0; k < nd; k++)
        printf(" %d", d[k]);
    printf("\n");
    for (size_t i = 0; i < detrun_tensor_count(t); i++)
        printf("%08x\n", fbits(detrun_tensor_data(t)[i]));
    detrun_tensor_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    detrun_runtime *rt = open_rt(1);
    if (rt == NULL)
        return 1;
    if (argc == 3) {
        int rc = strcmp(argv[1], "write") == 0 ? write_files(rt, argv[2]) : read_file(rt, argv[2]);
        detrun_close(rt);
        return rc;
    }
    dump(rt, "uniform", 1, 0, 1000);
    dump(rt, "uniform", 0x123456789abcdef0ull, 16777215, 1000);
    dump(rt, "normal", 1, 0, 3000);
    dump(rt, "normal", 0xfedcba9876543210ull, 12345, 3000);
    dump(rt, "glorot", 7, 1, 500);
    detrun_close(rt);
    return failures != 0;
}
