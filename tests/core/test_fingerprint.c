/* Fingerprints: the canonical serialisation of docs/determinism.md, hashed
 * here independently with XXH3-128 over hand-assembled bytes. */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "detrun.h"

#include "../common.h"

static void hex128(const unsigned char *bytes, size_t len, char out[33])
{
    XXH128_hash_t h = XXH3_128bits(bytes, len);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);   /* big-endian: high half first */
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", c.digest[i]);
}

int main(void)
{
    /* "w", shape (2, 3), values 1, -2, 0.5, -0, 3e-45 (denormal), 1e30. */
    const float vals[6] = { 1.0f, -2.0f, 0.5f, -0.0f, 3e-45f, 1e30f };
    const int dims[2] = { 2, 3 };
    unsigned char bytes[4 + 1 + 4 + 8 + 24];
    size_t n = 0;
    unsigned char hdr[] = { 1, 0, 0, 0, 'w', 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0 };
    memcpy(bytes, hdr, sizeof hdr);
    n = sizeof hdr;
    /* The float bits little-endian, written out by hand from IEEE 754:
     * 1.0 = 3f800000, -2.0 = c0000000, 0.5 = 3f000000, -0 = 80000000,
     * 3e-45 rounds to 2 * 2^-149 = 00000002, 1e30 = 7149f2ca. */
    const uint32_t fbits[6] = { 0x3f800000u, 0xc0000000u, 0x3f000000u, 0x80000000u,
                                0x00000002u, 0x7149f2cau };
    for (int i = 0; i < 6; i++) {
        uint32_t u;
        memcpy(&u, &vals[i], 4);
        CHECK(u == fbits[i], "value %d has bits %08x, expected %08x", i, u, fbits[i]);
        for (int b = 0; b < 4; b++)
            bytes[n++] = (unsigned char)(fbits[i] >> (8 * b));
    }
    CHECK(n == sizeof bytes, "assembled %zu bytes", n);

    char want[33], got[33];
    hex128(bytes, n, want);
    detrun_fingerprint_tensor("w", 2, dims, vals, got);
    printf("fingerprint of w: %s\n", got);
    CHECK(strlen(got) == 32, "length %zu", strlen(got));
    for (int i = 0; i < 32; i++)
        CHECK((got[i] >= '0' && got[i] <= '9') || (got[i] >= 'a' && got[i] <= 'f'),
              "digit %d is '%c'", i, got[i]);
    CHECK(strcmp(got, want) == 0, "tensor fingerprint %s, independent hash %s", got, want);

    /* One flipped bit anywhere in the values changes it. */
    for (int i = 0; i < 6; i++)
        for (int b = 0; b < 32; b += 7) {
            float v2[6];
            memcpy(v2, vals, sizeof v2);
            uint32_t u;
            memcpy(&u, &v2[i], 4);
            u ^= 1u << b;
            memcpy(&v2[i], &u, 4);
            char fp[33];
            detrun_fingerprint_tensor("w", 2, dims, v2, fp);
            CHECK(strcmp(fp, got) != 0, "flipping bit %d of value %d left the fingerprint", b, i);
        }
    /* Name and shape are part of it: same values, other name or shape. */
    char fp[33];
    detrun_fingerprint_tensor("v", 2, dims, vals, fp);
    CHECK(strcmp(fp, got) != 0, "the name is not hashed");
    const int dims2[2] = { 3, 2 };
    detrun_fingerprint_tensor("w", 2, dims2, vals, fp);
    CHECK(strcmp(fp, got) != 0, "the shape is not hashed");
    const int dims3[1] = { 6 };
    detrun_fingerprint_tensor("w", 1, dims3, vals, fp);
    CHECK(strcmp(fp, got) != 0, "the number of dims is not hashed");

    /* A larger tensor (more than one 4 KiB chunk) against the independent hash. */
    {
        enum { N = 3000 };
        static float big[N];
        static unsigned char bb[4 + 3 + 4 + 4 + 4 * N];
        for (int i = 0; i < N; i++)
            big[i] = (float)i * 0.25f - 100.0f;
        size_t k = 0;
        unsigned char h2[] = { 3, 0, 0, 0, 'b', 'i', 'g', 1, 0, 0, 0,
                               (unsigned char)(N & 0xff), (unsigned char)(N >> 8), 0, 0 };
        memcpy(bb, h2, sizeof h2);
        k = sizeof h2;
        for (int i = 0; i < N; i++) {
            uint32_t u;
            memcpy(&u, &big[i], 4);
            for (int b = 0; b < 4; b++)
                bb[k++] = (unsigned char)(u >> (8 * b));
        }
        const int d[1] = { N };
        hex128(bb, k, want);
        detrun_fingerprint_tensor("big", 1, d, big, got);
        CHECK(strcmp(got, want) == 0, "big tensor: %s vs %s", got, want);
    }

    return test_report("test_fingerprint");
}
