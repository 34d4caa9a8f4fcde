/*
 * repeat_fingerprint.c - a repeat's fingerprint from its folds' (part of the
 * determinism contract, docs/determinism.md): XXH3-128 over the strings, each
 * preceded by its length as uint32 little-endian, as 32 lowercase hex digits.
 */
#include <string.h>

#include <xxhash.h>

#include "internal.h"

detrun_status detrun_repeat_fingerprint(const char *const *strings, const size_t *lens, size_t n,
                                        char out[33])
{
    if (out == NULL || (n > 0 && strings == NULL))
        return DETRUN_ERR_ARG;
    out[0] = '\0';
    XXH3_state_t *s = XXH3_createState();
    if (s == NULL)
        return DETRUN_ERR_MEMORY;
    XXH3_128bits_reset(s);
    for (size_t i = 0; i < n; i++) {
        if (strings[i] == NULL) {
            XXH3_freeState(s);
            return DETRUN_ERR_ARG;
        }
        size_t len = lens != NULL ? lens[i] : strlen(strings[i]);
        unsigned char le[4] = { (unsigned char)len, (unsigned char)(len >> 8),
                                (unsigned char)(len >> 16), (unsigned char)(len >> 24) };
        XXH3_128bits_update(s, le, 4);
        XXH3_128bits_update(s, strings[i], len);
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s));
    XXH3_freeState(s);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[c.digest[i] >> 4];
        out[2 * i + 1] = digits[c.digest[i] & 15];
    }
    out[32] = '\0';
    return DETRUN_OK;
}
