/*
 * idx.c - the IDX reader: raw or gzip, from a file or a buffer.
 *
 * One path serves both sources: bytes come from the source, pass through
 * inflate when the first two are gzip's magic, and land in a buffer that grows
 * by at most GROW_CHUNK beyond what has been read, so a header that promises
 * terabytes allocates one chunk and then reports the file as truncated.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "idx.h"
#include "internal.h"

#define IN_CHUNK ((size_t)64 << 10)
#define GROW_CHUNK ((size_t)4 << 20)

typedef struct reader {
    detrun_runtime *rt;
    const char *name;
    detrun_alloc_fn alloc;
    void *alloc_ud;

    FILE *f;                       /* the source is a file ... */
    const uint8_t *mem;            /* ... or a buffer */
    size_t mem_len, mem_pos;
    size_t src_left;               /* bytes the source still holds, when known */
    int src_known;                 /* src_left is valid */
    int src_eof;

    uint8_t *in;                   /* bytes taken from the source, not yet used */
    size_t in_len, in_pos;

    int gz;                        /* the source is a gzip stream */
    int z_live, z_ended, z_cut;    /* inflate initialised / at a member's end / input ran out mid-stream */
    z_stream z;
} reader;

static detrun_status fail(reader *r, detrun_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static detrun_status fail(reader *r, detrun_status st, const char *fmt, ...)
{
    char msg[DETRUN_ERRMSG_MAX - 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return detrun_seterr(r->rt, st, "%s: %s", r->name, msg);
}

void detrun_data_allocator(const detrun_runtime *rt, detrun_alloc_fn *fn, void **ud)
{
    if (rt != NULL && rt->alloc != NULL) {
        *fn = rt->alloc;
        *ud = rt->alloc_ud;
    } else {
        *fn = detrun_default_alloc;
        *ud = NULL;
    }
}

const char *detrun_idx_type_name(int type)
{
    switch (type) {
    case DETRUN_IDX_U8: return "uint8";
    case DETRUN_IDX_I8: return "int8";
    case DETRUN_IDX_I16: return "int16";
    case DETRUN_IDX_I32: return "int32";
    case DETRUN_IDX_F32: return "float32";
    case DETRUN_IDX_F64: return "float64";
    default: return NULL;
    }
}

size_t detrun_idx_type_size(int type)
{
    switch (type) {
    case DETRUN_IDX_U8:
    case DETRUN_IDX_I8: return 1;
    case DETRUN_IDX_I16: return 2;
    case DETRUN_IDX_I32:
    case DETRUN_IDX_F32: return 4;
    case DETRUN_IDX_F64: return 8;
    default: return 0;
    }
}

void detrun_idx_free(detrun_idx *a)
{
    if (a == NULL)
        return;
    if (a->data != NULL)
        a->alloc(a->alloc_ud, a->data, a->bytes, 0);
    a->data = NULL;
    a->bytes = 0;
    a->count = 0;
}

/* ---- the byte source ---------------------------------------------------- */

static detrun_status fill(reader *r)
{
    if (r->in_pos < r->in_len || r->src_eof)
        return DETRUN_OK;
    size_t n;
    if (r->f != NULL) {
        n = fread(r->in, 1, IN_CHUNK, r->f);
        if (n < IN_CHUNK && ferror(r->f))
            return fail(r, DETRUN_ERR_IO, "read error: %s", strerror(errno));
    } else {
        n = r->mem_len - r->mem_pos;
        if (n > IN_CHUNK)
            n = IN_CHUNK;
        if (n > 0)
            memcpy(r->in, r->mem + r->mem_pos, n);
        r->mem_pos += n;
    }
    if (r->src_known)
        r->src_left = n <= r->src_left ? r->src_left - n : 0;
    r->in_pos = 0;
    r->in_len = n;
    if (n == 0)
        r->src_eof = 1;
    return DETRUN_OK;
}

/* Reads up to want bytes of (decompressed) data; *got < want only at the end. */
static detrun_status get(reader *r, uint8_t *dst, size_t want, size_t *got)
{
    detrun_status st;
    *got = 0;
    while (*got < want) {
        /* Raw data in large reads goes straight to its place, not through r->in. */
        if (!r->gz && r->f != NULL && r->in_pos == r->in_len && !r->src_eof &&
            want - *got >= IN_CHUNK) {
            size_t n = fread(dst + *got, 1, want - *got, r->f);
            if (n < want - *got && ferror(r->f))
                return fail(r, DETRUN_ERR_IO, "read error: %s", strerror(errno));
            if (r->src_known)
                r->src_left = n <= r->src_left ? r->src_left - n : 0;
            if (n == 0)
                r->src_eof = 1;
            *got += n;
            continue;
        }
        if ((st = fill(r)) != DETRUN_OK)
            return st;
        size_t avail = r->in_len - r->in_pos;
        if (!r->gz) {
            if (avail == 0)
                return DETRUN_OK;
            size_t n = want - *got < avail ? want - *got : avail;
            memcpy(dst + *got, r->in + r->in_pos, n);
            r->in_pos += n;
            *got += n;
            continue;
        }
        if (r->z_ended) {
            if (avail == 0)
                return DETRUN_OK;
            /* More input after a member's end: the next member of a multi-member gzip. */
            if (inflateReset(&r->z) != Z_OK)
                return fail(r, DETRUN_ERR_FORMAT, "corrupt gzip stream");
            r->z_ended = 0;
        }
        if (avail == 0) {
            r->z_cut = 1;
            return DETRUN_OK;
        }
        size_t out_room = want - *got;
        r->z.next_in = r->in + r->in_pos;
        r->z.avail_in = (uInt)avail;
        r->z.next_out = dst + *got;
        r->z.avail_out = out_room > UINT_MAX ? UINT_MAX : (uInt)out_room;
        uInt out_before = r->z.avail_out;
        int ret = inflate(&r->z, Z_NO_FLUSH);
        r->in_pos = r->in_len - r->z.avail_in;
        *got += out_before - r->z.avail_out;
        switch (ret) {
        case Z_STREAM_END:
            r->z_ended = 1;
            break;
        case Z_OK:
            break;
        case Z_BUF_ERROR:
            if (r->z.avail_in != 0)
                return fail(r, DETRUN_ERR_FORMAT, "corrupt gzip stream (no progress)");
            break;
        case Z_MEM_ERROR:
            return fail(r, DETRUN_ERR_MEMORY, "out of memory while decompressing");
        default:
            return fail(r, DETRUN_ERR_FORMAT, "corrupt gzip stream (%s)",
                        r->z.msg != NULL ? r->z.msg : "unknown zlib error");
        }
    }
    return DETRUN_OK;
}

/* zlib frees without a size; the runtime's allocator wants one, so each
 * block carries its size in front (16 bytes keep the alignment). */
#define ZHEAD 16

static void *zalloc_fn(void *opaque, uInt items, uInt size)
{
    reader *r = opaque;
    if (size != 0 && items > (SIZE_MAX - ZHEAD) / size)
        return NULL;
    size_t bytes = (size_t)items * size + ZHEAD;
    uint8_t *p = r->alloc(r->alloc_ud, NULL, 0, bytes);
    if (p == NULL)
        return NULL;
    memcpy(p, &bytes, sizeof bytes);
    return p + ZHEAD;
}

static void zfree_fn(void *opaque, void *p)
{
    reader *r = opaque;
    if (p == NULL)
        return;
    size_t bytes;
    uint8_t *base = (uint8_t *)p - ZHEAD;
    memcpy(&bytes, base, sizeof bytes);
    r->alloc(r->alloc_ud, base, bytes, 0);
}

/* Takes the first bytes from the source and decides between raw and gzip. */
static detrun_status start(reader *r)
{
    r->in = r->alloc(r->alloc_ud, NULL, 0, IN_CHUNK);
    if (r->in == NULL)
        return fail(r, DETRUN_ERR_MEMORY, "out of memory");
    detrun_status st = fill(r);
    if (st != DETRUN_OK)
        return st;
    if (r->in_len == 0)
        return fail(r, DETRUN_ERR_FORMAT, "empty file (no IDX header)");
    /* A one-byte 1f could only start a gzip stream cut after one byte. */
    if (r->in[0] == 0x1f && (r->in_len < 2 || r->in[1] == 0x8b)) {
        r->gz = 1;
        r->z.zalloc = zalloc_fn;
        r->z.zfree = zfree_fn;
        r->z.opaque = r;
        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK)
            return fail(r, DETRUN_ERR_MEMORY, "cannot start gzip decompression");
        r->z_live = 1;
    }
    return DETRUN_OK;
}

static void finish(reader *r)
{
    if (r->z_live)
        inflateEnd(&r->z);
    if (r->in != NULL)
        r->alloc(r->alloc_ud, r->in, IN_CHUNK, 0);
    if (r->f != NULL)
        fclose(r->f);
}

/* ---- the IDX layer -------------------------------------------------------- */

static void dims_string(const uint32_t *dims, int ndims, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndims && used < size; i++) {
        int n = snprintf(buf + used, size - used, i ? "x%lu" : "%lu", (unsigned long)dims[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Big-endian elements to host order, in place; independent of the host's order. */
static void to_host(uint8_t *p, size_t count, size_t esize)
{
    if (esize == 1)
        return;
    for (size_t i = 0; i < count; i++, p += esize) {
        if (esize == 2) {
            uint16_t v = (uint16_t)(p[0] << 8 | p[1]);
            memcpy(p, &v, 2);
        } else if (esize == 4) {
            uint32_t v = be32(p);
            memcpy(p, &v, 4);
        } else if (esize == 8) {
            uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
            memcpy(p, &v, 8);
        }
    }
}

static const char *cut_note(const reader *r)
{
    return r->z_cut ? " (the gzip stream is cut short)" : "";
}

/* What an IDX header says. */
typedef struct idx_header {
    int type, ndims;
    uint32_t dims[DETRUN_IDX_MAX_DIMS];
    size_t esize;             /* bytes per element */
    size_t count, total;      /* elements, bytes */
    char ds[DETRUN_IDX_MAX_DIMS * 11 + 1];   /* the dims as text, for messages */
} idx_header;

/* The magic, element type and dimensions, checked. */
/* Declared sizes above the caps are refused before any data is read (the
 * buffer only grows as bytes arrive, but a gzip stream of zeros inflates a
 * thousandfold). DETRUN_MAX_ROWS and DETRUN_MAX_DATA_BYTES raise them. */
#define DEFAULT_MAX_ROWS (1LL << 24)
#define DEFAULT_MAX_DATA_BYTES (4LL << 30)

static detrun_status check_caps(reader *r, const idx_header *h)
{
    long long max_rows = detrun_limit("DETRUN_MAX_ROWS", DEFAULT_MAX_ROWS);
    long long max_bytes = detrun_limit("DETRUN_MAX_DATA_BYTES", DEFAULT_MAX_DATA_BYTES);
    if (h->ndims > 0 && (long long)h->dims[0] > max_rows)
        return fail(r, DETRUN_ERR_FORMAT,
                    "header declares %lu rows (dimensions %s), above the limit of %lld rows; "
                    "raise it with DETRUN_MAX_ROWS=N", (unsigned long)h->dims[0], h->ds, max_rows);
    if ((unsigned long long)h->total > (unsigned long long)max_bytes)
        return fail(r, DETRUN_ERR_FORMAT,
                    "header declares %zu bytes of data (dimensions %s), above the limit of %lld "
                    "bytes; raise it with DETRUN_MAX_DATA_BYTES=N", h->total, h->ds, max_bytes);
    return DETRUN_OK;
}

static detrun_status read_header(reader *r, idx_header *h)
{
    detrun_status st;
    uint8_t head[4 + 4 * DETRUN_IDX_MAX_DIMS];
    size_t got;

    if ((st = start(r)) != DETRUN_OK)
        return st;
    if ((st = get(r, head, 4, &got)) != DETRUN_OK)
        return st;
    if (got == 0)
        return fail(r, DETRUN_ERR_FORMAT, r->z_cut ? "the gzip stream is cut short before any data"
                                                    : "the gzip stream holds no data");
    if (got < 4)
        return fail(r, DETRUN_ERR_FORMAT, "file ends inside the IDX header, after %zu bytes%s",
                    got, cut_note(r));
    if (head[0] != 0 || head[1] != 0)
        return fail(r, DETRUN_ERR_FORMAT,
                    "not an IDX file: it starts with %02x %02x %02x %02x, an IDX file with "
                    "00 00 <type> <ndims> (or a gzip stream with 1f 8b)",
                    head[0], head[1], head[2], head[3]);
    h->type = head[2];
    h->ndims = head[3];
    h->esize = detrun_idx_type_size(h->type);
    if (h->esize == 0)
        return fail(r, DETRUN_ERR_FORMAT,
                    "unknown IDX element type 0x%02x (known: 08 uint8, 09 int8, 0b int16, "
                    "0c int32, 0d float32, 0e float64)", (unsigned)h->type);
    if (h->ndims < 1 || h->ndims > DETRUN_IDX_MAX_DIMS)
        return fail(r, DETRUN_ERR_FORMAT, "IDX header declares %d dimensions (detrun reads 1 to %d)",
                    h->ndims, DETRUN_IDX_MAX_DIMS);
    size_t hdims = 4 * (size_t)h->ndims;
    if ((st = get(r, head + 4, hdims, &got)) != DETRUN_OK)
        return st;
    if (got < hdims)
        return fail(r, DETRUN_ERR_FORMAT,
                    "file ends inside the IDX header: %d dimensions need %zu bytes, %zu present%s",
                    h->ndims, 4 + hdims, 4 + got, cut_note(r));

    size_t count = 1;
    int overflow = 0;
    for (int i = 0; i < h->ndims; i++) {
        h->dims[i] = be32(head + 4 + 4 * i);
        if (h->dims[i] != 0 && count > (size_t)PTRDIFF_MAX / h->esize / h->dims[i])
            overflow = 1;
        else
            count *= h->dims[i];
    }
    dims_string(h->dims, h->ndims, h->ds, sizeof h->ds);
    if (overflow) {
        for (int i = 0; i < h->ndims; i++)
            if (h->dims[i] == 0)
                overflow = 0;
        if (overflow)
            return fail(r, DETRUN_ERR_FORMAT,
                        "IDX dimensions %s of %s overflow the size of memory", h->ds,
                        detrun_idx_type_name(h->type));
        count = 0;
    }
    h->count = count;
    h->total = count * h->esize;
    return check_caps(r, h);
}

/* The h->total bytes of data into *data (*cap bytes allocated, NULL when 0);
 * nothing is left allocated on failure. */
static detrun_status read_data(reader *r, const idx_header *h, uint8_t **data, size_t *cap_out)
{
    detrun_status st;
    size_t got, total = h->total;
    /* The first allocation is what the source can hold (known for raw data),
     * else one chunk; it grows by a chunk at a time after that. */
    size_t cap = total;
    if (!r->gz && r->src_known) {
        size_t avail = r->src_left + (r->in_len - r->in_pos);
        if (cap > avail)
            cap = avail;
    } else if (cap > GROW_CHUNK) {
        cap = GROW_CHUNK;
    }
    if (cap == 0 && total > 0)
        cap = total < GROW_CHUNK ? total : GROW_CHUNK;
    uint8_t *d = NULL;
    if (cap > 0 && (d = r->alloc(r->alloc_ud, NULL, 0, cap)) == NULL)
        return fail(r, DETRUN_ERR_MEMORY, "out of memory for %zu bytes of data", cap);
    size_t filled = 0;
    while (filled < total) {
        if (filled == cap) {
            size_t ncap = total - cap > GROW_CHUNK ? cap + GROW_CHUNK : total;
            uint8_t *nd = r->alloc(r->alloc_ud, d, cap, ncap);
            if (nd == NULL) {
                r->alloc(r->alloc_ud, d, cap, 0);
                return fail(r, DETRUN_ERR_MEMORY, "out of memory for %zu bytes of data", ncap);
            }
            d = nd;
            cap = ncap;
        }
        if ((st = get(r, d + filled, cap - filled, &got)) != DETRUN_OK) {
            r->alloc(r->alloc_ud, d, cap, 0);
            return st;
        }
        filled += got;
        if (filled < cap)
            break;
    }
    if (filled < total) {
        r->alloc(r->alloc_ud, d, cap, 0);
        if (h->esize == 1)
            return fail(r, DETRUN_ERR_FORMAT, "header promises %s bytes, file ends after %zu%s",
                        h->ds, filled, cut_note(r));
        return fail(r, DETRUN_ERR_FORMAT,
                    "header promises %s %s values (%zu bytes), file ends after %zu bytes%s", h->ds,
                    detrun_idx_type_name(h->type), total, filled, cut_note(r));
    }
    *data = d;
    *cap_out = cap;
    return DETRUN_OK;
}

static detrun_status read_idx(reader *r, detrun_idx *out)
{
    idx_header h;
    memset(&h, 0, sizeof h);
    uint8_t *data = NULL;
    size_t cap = 0, got;
    detrun_status st = read_header(r, &h);
    if (st == DETRUN_OK)
        st = read_data(r, &h, &data, &cap);
    if (st != DETRUN_OK)
        return st;
    /* Reading past the promised end checks the gzip trailer and catches a
     * header that promises less than the file holds. */
    uint8_t extra;
    if ((st = get(r, &extra, 1, &got)) != DETRUN_OK) {
        if (data != NULL)
            r->alloc(r->alloc_ud, data, cap, 0);
        return st;
    }
    if (got != 0) {
        if (data != NULL)
            r->alloc(r->alloc_ud, data, cap, 0);
        return fail(r, DETRUN_ERR_FORMAT,
                    "file holds more data than its header promises (%s %s values, %zu bytes)",
                    h.ds, detrun_idx_type_name(h.type), h.total);
    }
    to_host(data, h.count, h.esize);

    out->type = h.type;
    out->ndims = h.ndims;
    memcpy(out->dims, h.dims, sizeof h.dims);
    out->count = h.count;
    out->bytes = h.total;
    out->data = data;
    return DETRUN_OK;
}

static void init_reader(reader *r, detrun_runtime *rt, const char *name, detrun_idx *out)
{
    memset(r, 0, sizeof *r);
    r->rt = rt;
    r->name = name != NULL ? name : "(unnamed)";
    detrun_data_allocator(rt, &r->alloc, &r->alloc_ud);
    memset(out, 0, sizeof *out);
    out->alloc = r->alloc;
    out->alloc_ud = r->alloc_ud;
}

detrun_status detrun_idx_read(detrun_runtime *rt, const char *path, detrun_idx *out)
{
    if (out == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "idx_read: out is NULL");
    reader r;
    init_reader(&r, rt, path, out);
    if (path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "idx_read: path is NULL");
    r.f = fopen(path, "rb");
    if (r.f == NULL)
        return fail(&r, DETRUN_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fileno(r.f), &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            finish(&r);
            return detrun_seterr(rt, DETRUN_ERR_IO, "%s: is a directory, not an IDX file", path);
        }
        if (S_ISREG(sb.st_mode) && sb.st_size >= 0) {
            r.src_known = 1;
            r.src_left = (size_t)sb.st_size;
        }
    }
    detrun_status st = read_idx(&r, out);
    finish(&r);
    return st;
}

detrun_status detrun_idx_read_memory(detrun_runtime *rt, const char *name, const void *buf,
                                     size_t len, detrun_idx *out)
{
    if (out == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "idx_read_memory: out is NULL");
    reader r;
    init_reader(&r, rt, name, out);
    if (buf == NULL && len > 0)
        return fail(&r, DETRUN_ERR_ARG, "buffer is NULL");
    r.mem = buf;
    r.mem_len = len;
    r.src_known = 1;
    r.src_left = len;
    detrun_status st = read_idx(&r, out);
    finish(&r);
    return st;
}
