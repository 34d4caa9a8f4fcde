/*
 * dataset.c - images (uint8) and labels, from IDX files or from memory.
 *
 * A data set keeps the allocator it was made with, not the runtime, so that
 * it can be freed after the runtime is closed.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "dataset.h"
#include "idx.h"
#include "internal.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

struct detrun_dataset {
    size_t count;          /* rows in use (detrun_dataset_limit lowers it) */
    size_t rows;           /* rows allocated */
    int c, h, w;
    int classes;
    uint8_t *images;       /* rows * c*h*w */
    uint8_t *labels;       /* rows */
    detrun_alloc_fn alloc;
    void *alloc_ud;
    uint64_t identity;     /* see detrun_dataset_identity */
    /* Fits training on it now (detrun_dataset_use), and the runtime of the
     * latest, which a refused change reports on. */
    _Atomic int in_use;
    detrun_runtime *_Atomic user;
};

static size_t image_bytes(const detrun_dataset *ds)
{
    return (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
}

void detrun_dataset_free(detrun_dataset *ds)
{
    if (ds == NULL)
        return;
    if (ds->images != NULL)
        ds->alloc(ds->alloc_ud, ds->images, ds->rows * image_bytes(ds), 0);
    if (ds->labels != NULL)
        ds->alloc(ds->alloc_ud, ds->labels, ds->rows, 0);
    ds->alloc(ds->alloc_ud, ds, sizeof *ds, 0);
}

size_t detrun_dataset_count(const detrun_dataset *ds)
{
    return ds != NULL ? ds->count : 0;
}

void detrun_dataset_shape(const detrun_dataset *ds, int *c, int *h, int *w)
{
    if (c != NULL)
        *c = ds != NULL ? ds->c : 0;
    if (h != NULL)
        *h = ds != NULL ? ds->h : 0;
    if (w != NULL)
        *w = ds != NULL ? ds->w : 0;
}

int detrun_dataset_classes(const detrun_dataset *ds)
{
    return ds != NULL ? ds->classes : 0;
}

const uint8_t *detrun_dataset_images(const detrun_dataset *ds)
{
    return ds != NULL ? ds->images : NULL;
}

const uint8_t *detrun_dataset_labels(const detrun_dataset *ds)
{
    return ds != NULL ? ds->labels : NULL;
}

detrun_status detrun_dataset_limit(detrun_dataset *ds, size_t n)
{
    if (ds == NULL)
        return DETRUN_ERR_ARG;
    if (atomic_load(&ds->in_use) > 0)
        return detrun_seterr(atomic_load(&ds->user), DETRUN_ERR_BUSY,
                             "dataset limit: the data set is in use by a running fit and cannot "
                             "change under it; limit it before the fit or after it returns "
                             "(or evaluate on a limited copy, or on rows of it)");
    if (n < ds->count)
        ds->count = n;
    return DETRUN_OK;
}

/* The fit holds the data set for its whole length: its rows were checked
 * against the count and its device copy was made of these bytes. */
void detrun_dataset_use(const detrun_dataset *ds, detrun_runtime *rt)
{
    detrun_dataset *w = (detrun_dataset *)ds;   /* only the atomics change */
    atomic_store(&w->user, rt);
    atomic_fetch_add(&w->in_use, 1);
}

void detrun_dataset_unuse(const detrun_dataset *ds)
{
    atomic_fetch_sub(&((detrun_dataset *)ds)->in_use, 1);
}

void detrun_dataset_hash(const detrun_dataset *ds, char out[33])
{
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    if (ds != NULL) {
        uint64_t head[5] = { ds->count, (uint64_t)ds->c, (uint64_t)ds->h, (uint64_t)ds->w,
                             (uint64_t)ds->classes };
        XXH3_128bits_update(&st, head, sizeof head);
        XXH3_128bits_update(&st, ds->images, ds->count * image_bytes(ds));
        XXH3_128bits_update(&st, ds->labels, ds->count);
    }
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
}

static detrun_dataset *new_dataset(detrun_runtime *rt)
{
    detrun_alloc_fn fn;
    void *ud;
    detrun_data_allocator(rt, &fn, &ud);
    detrun_dataset *ds = fn(ud, NULL, 0, sizeof *ds);
    if (ds == NULL)
        return NULL;
    memset(ds, 0, sizeof *ds);
    ds->alloc = fn;
    ds->alloc_ud = ud;
    /* The address and the creation time: a later data set at a freed one's
     * address still differs. It keys caches only, never any numbers. */
    struct { const void *self, *rt; struct timespec mono, real; } seed;
    memset(&seed, 0, sizeof seed);
    seed.self = ds;
    seed.rt = rt;
    clock_gettime(CLOCK_MONOTONIC, &seed.mono);
    clock_gettime(CLOCK_REALTIME, &seed.real);
    ds->identity = XXH3_64bits(&seed, sizeof seed);
    return ds;
}

uint64_t detrun_dataset_identity(const detrun_dataset *ds)
{
    return ds->identity;
}

detrun_status detrun_dataset_from_memory(detrun_runtime *rt, const uint8_t *images,
                                         const uint8_t *labels, size_t count, int c, int h,
                                         int w, int classes, detrun_dataset **out)
{
    if (out == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_from_memory: out is NULL");
    *out = NULL;
    if (count == 0)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_from_memory: count is 0 (no rows)");
    if (images == NULL || labels == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_from_memory: %s is NULL",
                             images == NULL ? "images" : "labels");
    if (c <= 0 || h <= 0 || w <= 0)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "dataset_from_memory: image shape %dx%dx%d must be positive", c, h, w);
    if ((size_t)c * (size_t)h > (size_t)INT_MAX / (size_t)w)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "dataset_from_memory: image shape %dx%dx%d is too large", c, h, w);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if (count > SIZE_MAX / per || count > UINT32_MAX)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "dataset_from_memory: %zu images of %zu bytes overflow", count, per);
    if (classes < 2 || classes > 256)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "dataset_from_memory: classes is %d (2 to 256 for uint8 labels)",
                             classes);
    for (size_t i = 0; i < count; i++)
        if (labels[i] >= classes)
            return detrun_seterr(rt, DETRUN_ERR_ARG,
                                 "dataset_from_memory: label %d at row %zu is out of range 0..%d",
                                 labels[i], i, classes - 1);

    detrun_dataset *ds = new_dataset(rt);
    if (ds == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "dataset_from_memory: out of memory");
    ds->images = ds->alloc(ds->alloc_ud, NULL, 0, count * per);
    ds->labels = ds->images != NULL ? ds->alloc(ds->alloc_ud, NULL, 0, count) : NULL;
    if (ds->labels == NULL) {
        detrun_dataset_free(ds);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY,
                             "dataset_from_memory: out of memory for %zu images", count);
    }
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->classes = classes;
    ds->rows = ds->count = count;
    memcpy(ds->images, images, count * per);
    memcpy(ds->labels, labels, count);
    *out = ds;
    return DETRUN_OK;
}

/* ---- IDX files ---------------------------------------------------------- */

static detrun_status check_images(detrun_runtime *rt, const char *path, const detrun_idx *a,
                                  int *c, int *h, int *w)
{
    if (a->type != DETRUN_IDX_U8)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT,
                             "%s: images must be unsigned bytes (IDX type 0x08), the file holds "
                             "%s (0x%02x)", path, detrun_idx_type_name(a->type), (unsigned)a->type);
    if (a->ndims != 3 && a->ndims != 4)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT,
                             "%s: images must have 3 dimensions (count, height, width) or 4 "
                             "(count, channels, height, width), the file has %d", path, a->ndims);
    uint32_t cc = a->ndims == 4 ? a->dims[1] : 1;
    uint32_t hh = a->dims[a->ndims - 2], ww = a->dims[a->ndims - 1];
    if (a->dims[0] == 0)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: the file holds no images (count 0)", path);
    if (cc == 0 || hh == 0 || ww == 0)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT,
                             "%s: images of %lux%lux%lu (channels x height x width) are empty",
                             path, (unsigned long)cc, (unsigned long)hh, (unsigned long)ww);
    if ((uint64_t)cc * hh * ww > INT_MAX)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT,
                             "%s: images of %lux%lux%lu are too large", path, (unsigned long)cc,
                             (unsigned long)hh, (unsigned long)ww);
    *c = (int)cc;
    *h = (int)hh;
    *w = (int)ww;
    return DETRUN_OK;
}

/* Labels are uint8 in MNIST; other integer types are accepted when every
 * label fits a byte, and converted. */
static detrun_status check_labels(detrun_runtime *rt, const char *path, detrun_idx *a,
                                  int *classes)
{
    if (a->ndims != 1)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT,
                             "%s: labels must have 1 dimension, the file has %d", path, a->ndims);
    if (a->type == DETRUN_IDX_F32 || a->type == DETRUN_IDX_F64)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT,
                             "%s: labels must be integers (IDX type 0x08), the file holds %s",
                             path, detrun_idx_type_name(a->type));
    if (a->count == 0)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "%s: the file holds no labels (count 0)", path);
    int maxl = 0;
    uint8_t *bytes = a->data;
    for (size_t i = 0; i < a->count; i++) {
        long v;
        switch (a->type) {
        case DETRUN_IDX_I8: v = ((const int8_t *)a->data)[i]; break;
        case DETRUN_IDX_I16: v = ((const int16_t *)a->data)[i]; break;
        case DETRUN_IDX_I32: v = ((const int32_t *)a->data)[i]; break;
        default: v = ((const uint8_t *)a->data)[i]; break;
        }
        if (v < 0 || v > 255)
            return detrun_seterr(rt, DETRUN_ERR_FORMAT,
                                 "%s: label %ld at row %zu is out of range 0..255", path, v, i);
        bytes[i] = (uint8_t)v;   /* in place: byte i is written after element i is read */
        if (v > maxl)
            maxl = (int)v;
    }
    if (maxl < 1)
        return detrun_seterr(rt, DETRUN_ERR_FORMAT,
                             "%s: every label is 0; a classifier needs at least 2 classes", path);
    *classes = maxl + 1;
    return DETRUN_OK;
}

detrun_status detrun_dataset_load_idx(detrun_runtime *rt, const char *images_path,
                                      const char *labels_path, detrun_dataset **out)
{
    if (out == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_load_idx: out is NULL");
    *out = NULL;
    if (images_path == NULL || labels_path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_load_idx: %s path is NULL",
                             images_path == NULL ? "images" : "labels");
    detrun_idx im, lb;
    detrun_status st = detrun_idx_read(rt, images_path, &im);
    if (st != DETRUN_OK)
        return st;
    int c = 0, h = 0, w = 0, classes = 0;
    if ((st = check_images(rt, images_path, &im, &c, &h, &w)) != DETRUN_OK) {
        detrun_idx_free(&im);
        return st;
    }
    if ((st = detrun_idx_read(rt, labels_path, &lb)) != DETRUN_OK) {
        detrun_idx_free(&im);
        return st;
    }
    if ((st = check_labels(rt, labels_path, &lb, &classes)) != DETRUN_OK)
        goto fail;
    if (lb.count != im.dims[0]) {
        st = detrun_seterr(rt, DETRUN_ERR_FORMAT,
                           "%s holds %lu images but %s holds %zu labels; the counts must agree",
                           images_path, (unsigned long)im.dims[0], labels_path, lb.count);
        goto fail;
    }
    detrun_dataset *ds = new_dataset(rt);
    if (ds == NULL) {
        st = detrun_seterr(rt, DETRUN_ERR_MEMORY, "dataset_load_idx: out of memory");
        goto fail;
    }
    /* The reader's buffers become the data set's: the same allocator made them. */
    ds->images = im.data;
    ds->rows = ds->count = lb.count;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->classes = classes;
    if (lb.bytes != lb.count) {
        uint8_t *shrunk = lb.alloc(lb.alloc_ud, lb.data, lb.bytes, lb.count);
        if (shrunk == NULL) {
            ds->images = NULL;
            detrun_dataset_free(ds);
            st = detrun_seterr(rt, DETRUN_ERR_MEMORY, "dataset_load_idx: out of memory");
            goto fail;
        }
        lb.data = shrunk;
    }
    ds->labels = lb.data;
    *out = ds;
    return DETRUN_OK;
fail:
    detrun_idx_free(&im);
    detrun_idx_free(&lb);
    return st;
}

const char *detrun_default_data_dir(void)
{
    const char *env = getenv("DETRUN_DATA");
    return env != NULL && env[0] != '\0' ? env : DEFAULT_DATA_DIR;
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* dir/<set>-<kind>[.gz], gz preferred; 0 when neither exists. */
static int find_file(char *buf, size_t size, const char *dir, const char *set, const char *kind)
{
    int n = snprintf(buf, size, "%s/%s-%s.gz", dir, set, kind);
    if (n < 0 || (size_t)n >= size)
        return 0;
    if (is_file(buf))
        return 1;
    buf[n - 3] = '\0';
    return is_file(buf);
}

detrun_status detrun_dataset_load_mnist(detrun_runtime *rt, const char *dir, const char *set,
                                        detrun_dataset **out)
{
    if (out == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_load_mnist: out is NULL");
    *out = NULL;
    if (set == NULL || (strcmp(set, "train") != 0 && strcmp(set, "t10k") != 0))
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "dataset_load_mnist: set is \"%s\", expected \"train\" or \"t10k\"",
                             set != NULL ? set : "(null)");
    if (dir == NULL)
        dir = detrun_default_data_dir();
    char ipath[4096], lpath[4096];
    const char *missing = NULL;
    if (!find_file(ipath, sizeof ipath, dir, set, "images-idx3-ubyte"))
        missing = "images-idx3-ubyte";
    else if (!find_file(lpath, sizeof lpath, dir, set, "labels-idx1-ubyte"))
        missing = "labels-idx1-ubyte";
    if (missing != NULL)
        return detrun_seterr(rt, DETRUN_ERR_IO,
                             "%s: no %s-%s[.gz] there; install the default data with "
                             "'apt-get install dataset-fashion-mnist', or point --data DIR "
                             "(or DETRUN_DATA) at a folder holding the MNIST files",
                             dir, set, missing);
    return detrun_dataset_load_idx(rt, ipath, lpath, out);
}
