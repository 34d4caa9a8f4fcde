/*
 * script_seed.c - the seed of a script's own random numbers, drawn from
 * Philox (purpose SCRIPT) so that it is the same in every process.
 */
#include "internal.h"
#include "philox.h"

void detrun_script_seed(uint64_t seed, uint32_t stream, uint64_t out[2])
{
    uint32_t w[4];
    for (int e = 0; e < 4; e++)
        w[e] = detrun_philox_word(seed, DETRUN_RNG_SCRIPT, stream, 0, 0, (uint64_t)e);
    out[0] = ((uint64_t)w[0] << 32) | w[1];
    out[1] = ((uint64_t)w[2] << 32) | w[3];
}
