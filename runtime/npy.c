/*
 * npy.c - NumPy's .npy format, version 1.0, for float32 ('<f4') and uint8
 * ('|u1') arrays in C order: what numpy.save writes and numpy.load reads.
 *
 * The header is a Python dict literal; it is read strictly (exactly the
 * keys descr, fortran_order and shape, a literal False, 1 to 4 positive
 * dimensions, the data filling the rest of the file exactly), because a
 * lenient reader would turn a wrong file into wrong numbers. Every message
 * starts with the file's name.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "checkpoint.h"   /* detrun_write_file_atomic */
#include "internal.h"
#include "tensor.h"

#define MAGIC "\x93NUMPY"
#define PREAMBLE 10       /* magic, version (2 bytes), header length (uint16 LE) */

typedef struct npy_header {
    detrun_npy_type type;
    int fortran;
    int ndims;
    int dims[DETRUN_TENSOR_MAX_DIMS];
    int seen_descr, seen_fortran, seen_shape;
} npy_header;

static detrun_status bad(detrun_runtime *rt, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static detrun_status bad(detrun_runtime *rt, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: not a .npy file detrun reads: %s", path,
                         msg);
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A quoted key or string value: 'text' (no escapes in what numpy writes). */
static const char *quoted(const char *p, char *buf, size_t len)
{
    if (*p != '\'' && *p != '"')
        return NULL;
    char q = *p++;
    size_t n = 0;
    while (*p != q) {
        if (*p == '\0' || n + 1 >= len)
            return NULL;
        buf[n++] = *p++;
    }
    buf[n] = '\0';
    return p + 1;
}

/* (d0,) or (d0, d1, ...): 1 to 4 positive decimal integers. */
static const char *shape_tuple(detrun_runtime *rt, const char *path, const char *p,
                               npy_header *h, detrun_status *st)
{
    if (*p != '(') {
        *st = bad(rt, path, "shape is not a tuple");
        return NULL;
    }
    p = skip_ws(p + 1);
    h->ndims = 0;
    while (*p != ')') {
        if (!isdigit((unsigned char)*p)) {
            *st = bad(rt, path, "shape holds something other than non-negative integers");
            return NULL;
        }
        long long v = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p++ - '0');
            if (v > 0x7fffffff) {
                *st = bad(rt, path, "a dimension of shape is too large");
                return NULL;
            }
        }
        if (h->ndims == DETRUN_TENSOR_MAX_DIMS) {
            *st = bad(rt, path, "shape has more than %d dimensions", DETRUN_TENSOR_MAX_DIMS);
            return NULL;
        }
        h->dims[h->ndims++] = (int)v;
        p = skip_ws(p);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p != ')') {
            *st = bad(rt, path, "shape is not a tuple of integers");
            return NULL;
        }
    }
    return p + 1;
}

/* One "key: value" pair of the header dict. */
static const char *header_item(detrun_runtime *rt, const char *path, const char *p,
                               npy_header *h, detrun_status *st)
{
    char key[32], val[32];
    if ((p = quoted(p, key, sizeof key)) == NULL) {
        *st = bad(rt, path, "the header dict has a key that is not a short string");
        return NULL;
    }
    p = skip_ws(p);
    if (*p++ != ':') {
        *st = bad(rt, path, "no ':' after '%s' in the header", key);
        return NULL;
    }
    p = skip_ws(p);
    if (strcmp(key, "descr") == 0 && !h->seen_descr) {
        h->seen_descr = 1;
        if ((p = quoted(p, val, sizeof val)) == NULL) {
            *st = bad(rt, path, "descr is not a string");
            return NULL;
        }
        if (strcmp(val, "<f4") == 0)
            h->type = DETRUN_NPY_F32;
        else if (strcmp(val, "|u1") == 0)
            h->type = DETRUN_NPY_U8;
        else {
            *st = bad(rt, path, "dtype '%s' is not supported (only '<f4' float32 and '|u1' "
                                "uint8)", val);
            return NULL;
        }
        return p;
    }
    if (strcmp(key, "fortran_order") == 0 && !h->seen_fortran) {
        h->seen_fortran = 1;
        if (strncmp(p, "False", 5) == 0)
            return p + 5;
        *st = bad(rt, path, strncmp(p, "True", 4) == 0
                                ? "Fortran order is not supported (save C-ordered arrays)"
                                : "fortran_order is not True or False");
        return NULL;
    }
    if (strcmp(key, "shape") == 0 && !h->seen_shape) {
        h->seen_shape = 1;
        return shape_tuple(rt, path, p, h, st);
    }
    *st = bad(rt, path, "unexpected or repeated key '%s' in the header", key);
    return NULL;
}

static detrun_status parse_header(detrun_runtime *rt, const char *path, const char *text,
                                  npy_header *h)
{
    detrun_status st = DETRUN_OK;
    memset(h, 0, sizeof *h);
    const char *p = skip_ws(text);
    if (*p++ != '{')
        return bad(rt, path, "the header is not a dict");
    p = skip_ws(p);
    while (*p != '}') {
        if ((p = header_item(rt, path, p, h, &st)) == NULL)
            return st;
        p = skip_ws(p);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p != '}')
            return bad(rt, path, "the header dict is malformed");
    }
    p = skip_ws(p + 1);
    if (*p != '\n' || p[1] != '\0')
        return bad(rt, path, "the header does not end with a newline after the dict");
    if (!h->seen_descr || !h->seen_fortran || !h->seen_shape)
        return bad(rt, path, "the header lacks '%s'",
                   !h->seen_descr ? "descr" : !h->seen_fortran ? "fortran_order" : "shape");
    if (h->ndims == 0)
        return bad(rt, path, "a 0-dimensional array (a scalar) is not a tensor");
    for (int d = 0; d < h->ndims; d++)
        if (h->dims[d] == 0)
            return bad(rt, path, "dimension %d is 0 (an empty array)", d + 1);
    return DETRUN_OK;
}

/* Reads the preamble and header text; leaves f at the data. */
static detrun_status read_header(detrun_runtime *rt, const char *path, FILE *f, npy_header *h)
{
    unsigned char pre[PREAMBLE];
    if (fread(pre, 1, PREAMBLE, f) != PREAMBLE || memcmp(pre, MAGIC, 6) != 0)
        return bad(rt, path, "no .npy magic (\\x93NUMPY) at the start");
    if (pre[6] != 1 || pre[7] != 0)
        return bad(rt, path, "format version %d.%d is not supported (1.0 only)", pre[6], pre[7]);
    size_t hl = (size_t)pre[8] | (size_t)pre[9] << 8;
    char text[65536 + 1];
    if (hl == 0 || fread(text, 1, hl, f) != hl)
        return bad(rt, path, "the header is truncated (%zu bytes announced)", hl);
    text[hl] = '\0';
    if (strlen(text) != hl)
        return bad(rt, path, "the header holds a NUL byte");
    return parse_header(rt, path, text, h);
}

static detrun_status read_data(detrun_runtime *rt, const char *path, FILE *f,
                               const npy_header *h, detrun_tensor *t)
{
    size_t esize = h->type == DETRUN_NPY_F32 ? 4 : 1;
    unsigned char *bytes = (unsigned char *)t->data;
    /* uint8 data is read into the float block's tail and widened forward. */
    unsigned char *dst = h->type == DETRUN_NPY_F32 ? bytes : bytes + 3 * t->count;
    size_t got = fread(dst, esize, t->count, f);
    if (got != t->count)
        return bad(rt, path, "the data is truncated: %zu of %zu elements", got, t->count);
    if (fgetc(f) != EOF)
        return bad(rt, path, "bytes follow the %zu elements the header announces", t->count);
    if (ferror(f))
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: read error", path);
    for (size_t i = 0; i < t->count; i++) {
        if (h->type == DETRUN_NPY_F32) {
            uint32_t u = detrun_get_le32(bytes + 4 * i);
            memcpy(&t->data[i], &u, 4);
        } else {
            t->data[i] = (float)dst[i];   /* dst[i] lies at or after t->data[i]'s last byte */
        }
    }
    return DETRUN_OK;
}

detrun_status detrun_tensor_load_npy(detrun_runtime *rt, const char *path, detrun_tensor **out,
                                     detrun_npy_type *type)
{
    if (out == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "load_npy: out is NULL");
    *out = NULL;
    if (path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "load_npy: path is NULL");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    npy_header h;
    detrun_status st = read_header(rt, path, f, &h);
    if (st == DETRUN_OK) {
        st = detrun_tensor_new(rt, h.ndims, h.dims, out);
        if (st != DETRUN_OK && st != DETRUN_ERR_MEMORY) {
            char why[512];   /* a copy: the message is rewritten in place */
            snprintf(why, sizeof why, "%s", detrun_errmsg(rt));
            st = bad(rt, path, "%s", why);
        }
    }
    if (st == DETRUN_OK && (st = read_data(rt, path, f, &h, *out)) != DETRUN_OK) {
        detrun_tensor_free(*out);
        *out = NULL;
    }
    fclose(f);
    if (st == DETRUN_OK && type != NULL)
        *type = h.type;
    return st;
}

/* The preamble and header numpy writes: padded with spaces so that the data
 * starts at a multiple of 64 bytes, ending in '\n'. */
static size_t make_header(unsigned char *buf, size_t len, const detrun_tensor *t,
                          detrun_npy_type type)
{
    char shape[128];
    size_t at = 0;
    shape[0] = '\0';
    for (int d = 0; d < t->ndims; d++)
        at += (size_t)snprintf(shape + at, sizeof shape - at, d ? ", %d" : "%d", t->dims[d]);
    if (t->ndims == 1)
        snprintf(shape + at, sizeof shape - at, ",");
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     type == DETRUN_NPY_F32 ? "<f4" : "|u1", shape);
    size_t total = PREAMBLE + (size_t)n + 1;
    total = (total + 63) / 64 * 64;
    if (total > len)
        return 0;
    memcpy(buf, MAGIC, 6);
    buf[6] = 1;
    buf[7] = 0;
    size_t hl = total - PREAMBLE;
    buf[8] = (unsigned char)hl;
    buf[9] = (unsigned char)(hl >> 8);
    memset(buf + PREAMBLE, ' ', hl);
    memcpy(buf + PREAMBLE, dict, (size_t)n);
    buf[total - 1] = '\n';
    return total;
}

detrun_status detrun_tensor_save_npy(detrun_runtime *rt, const detrun_tensor *t,
                                     const char *path, detrun_npy_type type)
{
    if (t == NULL || path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "save_npy: %s is NULL",
                             t == NULL ? "the tensor" : "path");
    if (type != DETRUN_NPY_F32 && type != DETRUN_NPY_U8)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "save_npy: %s: unknown type %d", path,
                             (int)type);
    size_t esize = type == DETRUN_NPY_F32 ? 4 : 1;
    for (size_t i = 0; type == DETRUN_NPY_U8 && i < t->count; i++) {
        float v = t->data[i];
        if (!(v >= 0.0f && v <= 255.0f && v == (float)(int)v))
            return detrun_seterr(rt, DETRUN_ERR_ARG,
                                 "save_npy: %s: element %zu is %g, not an integer from 0 to 255 "
                                 "(uint8)", path, i, (double)v);
    }
    unsigned char head[512];
    size_t hlen = make_header(head, sizeof head, t, type);
    unsigned char *data = detrun_malloc(rt, t->count * esize);
    if (data == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "save_npy: %s: out of memory", path);
    for (size_t i = 0; i < t->count; i++) {
        if (type == DETRUN_NPY_F32) {
            uint32_t u;
            memcpy(&u, &t->data[i], 4);
            detrun_put_le32(data + 4 * i, u);
        } else {
            data[i] = (unsigned char)(int)t->data[i];
        }
    }
    const void *parts[2] = { head, data };
    size_t lens[2] = { hlen, t->count * esize };
    detrun_status st = detrun_write_file_atomic(rt, path, parts, lens, 2);
    detrun_free(rt, data, t->count * esize);
    return st;
}
