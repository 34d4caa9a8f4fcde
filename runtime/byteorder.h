/*
 * byteorder.h - little-endian integers in byte buffers, the one byte order of
 * every file detrun writes (fingerprint serialisation, checkpoints, traces),
 * whatever the host's.
 */
#ifndef DETRUN_BYTEORDER_H
#define DETRUN_BYTEORDER_H

#include <stdint.h>

static inline void detrun_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void detrun_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t detrun_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t detrun_get_le64(const unsigned char *p)
{
    return (uint64_t)detrun_get_le32(p) | (uint64_t)detrun_get_le32(p + 4) << 32;
}

#endif
