/*
 * dataset_memory.c - data sets from tensors (images and labels made by a
 * script or read from .npy files), usable wherever an IDX data set is.
 *
 * A data set holds bytes, which the gather divides by 255 (docs/
 * determinism.md, "Data"); float images in [0, 1] are stored as the nearest
 * byte, rounded half up, so that what training sees is written down.
 */
#include <stdint.h>
#include <string.h>

#include "dataset.h"
#include "internal.h"
#include "tensor.h"

static detrun_status image_shape(detrun_runtime *rt, const detrun_tensor *im, int *c, int *h,
                                 int *w)
{
    const int *d = im->dims;
    switch (im->ndims) {
    case 4: *c = d[1]; *h = d[2]; *w = d[3]; return DETRUN_OK;
    case 3: *c = 1; *h = d[1]; *w = d[2]; return DETRUN_OK;
    case 2: *c = 1; *h = 1; *w = d[1]; return DETRUN_OK;
    default:
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "dataset_from_tensors: images must be (n, c, h, w), (n, h, w) or "
                             "(n, features), not %d-dimensional", im->ndims);
    }
}

/* The byte of pixel value v, or -1 when v is not one the mode accepts. */
static int to_byte(float v, detrun_pixels pixels)
{
    if (pixels == DETRUN_PIXELS_BYTES)
        return v >= 0.0f && v <= 255.0f && v == (float)(int)v ? (int)v : -1;
    if (!(v >= 0.0f && v <= 1.0f))
        return -1;
    return (int)(v * 255.0f + 0.5f);   /* a rounded product, a rounded sum, truncation */
}

static detrun_status convert_images(detrun_runtime *rt, const detrun_tensor *im,
                                    detrun_pixels pixels, uint8_t *bytes)
{
    for (size_t i = 0; i < im->count; i++) {
        int b = to_byte(im->data[i], pixels);
        if (b < 0)
            return detrun_seterr(rt, DETRUN_ERR_ARG,
                                 "dataset_from_tensors: image element %zu is %g, not %s", i,
                                 (double)im->data[i],
                                 pixels == DETRUN_PIXELS_BYTES
                                     ? "an integer from 0 to 255 (pixels as bytes)"
                                     : "from 0 to 1 (pixels as unit floats)");
        bytes[i] = (uint8_t)b;
    }
    return DETRUN_OK;
}

static detrun_status convert_labels(detrun_runtime *rt, const detrun_tensor *lb, uint8_t *out,
                                    int *classes)
{
    int maxl = 0;
    for (size_t i = 0; i < lb->count; i++) {
        float v = lb->data[i];
        if (!(v >= 0.0f && v <= 255.0f && v == (float)(int)v))
            return detrun_seterr(rt, DETRUN_ERR_ARG,
                                 "dataset_from_tensors: label %zu is %g, not an integer from 0 "
                                 "to 255", i, (double)v);
        out[i] = (uint8_t)(int)v;
        if (out[i] > maxl)
            maxl = out[i];
    }
    if (maxl < 1)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "dataset_from_tensors: every label is 0; a classifier needs at "
                             "least 2 classes");
    *classes = maxl + 1;
    return DETRUN_OK;
}

detrun_status detrun_dataset_from_tensors(detrun_runtime *rt, const detrun_tensor *images,
                                          const detrun_tensor *labels, detrun_pixels pixels,
                                          detrun_dataset **out)
{
    if (out == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_from_tensors: out is NULL");
    *out = NULL;
    if (images == NULL || labels == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_from_tensors: %s is NULL",
                             images == NULL ? "images" : "labels");
    if (pixels != DETRUN_PIXELS_UNIT && pixels != DETRUN_PIXELS_BYTES)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "dataset_from_tensors: unknown pixels %d",
                             (int)pixels);
    int c = 0, h = 0, w = 0;
    detrun_status st = image_shape(rt, images, &c, &h, &w);
    if (st != DETRUN_OK)
        return st;
    size_t n = (size_t)images->dims[0];
    if (labels->ndims != 1 || (size_t)labels->dims[0] != n)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "dataset_from_tensors: %zu images need labels of shape (%zu), not "
                             "a %d-dimensional tensor of %zu", n, n, labels->ndims,
                             labels->count);
    uint8_t *bytes = detrun_malloc(rt, images->count + n);
    if (bytes == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "dataset_from_tensors: out of memory");
    int classes = 0;
    st = convert_images(rt, images, pixels, bytes);
    if (st == DETRUN_OK)
        st = convert_labels(rt, labels, bytes + images->count, &classes);
    if (st == DETRUN_OK)
        st = detrun_dataset_from_memory(rt, bytes, bytes + images->count, n, c, h, w, classes,
                                        out);
    detrun_free(rt, bytes, images->count + n);
    return st;
}
