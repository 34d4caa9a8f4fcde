/*
 * tensor_model.c - models speak tensors: parameters as tensors, parameters
 * set from tensors, predictions of a tensor of images.
 *
 * Parameters may live in device memory; these copy through the backend like
 * detrun_model_param_get/set, so a tensor is always a host-side copy.
 */
#include <string.h>

#include "model.h"
#include "tensor.h"

static detrun_status check_param(detrun_model *m, const char *what, int i)
{
    if (!m->compiled)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: the model is not compiled yet", what);
    if (i < 0 || i >= m->nparams)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: no parameter %d (the model has %d)",
                             what, i, m->nparams);
    return DETRUN_OK;
}

detrun_status detrun_model_param_tensor(detrun_model *m, int i, detrun_tensor **out)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    if (out == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "param_tensor: out is NULL");
    *out = NULL;
    detrun_status st = check_param(m, "param_tensor", i);
    if (st != DETRUN_OK)
        return st;
    const detrun_param *p = &m->params[i];
    if ((st = detrun_tensor_new(m->rt, p->ndims, p->dims, out)) != DETRUN_OK)
        return st;
    if ((st = detrun_model_param_get(m, i, (*out)->data, (*out)->count)) != DETRUN_OK) {
        detrun_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

detrun_status detrun_model_set_param_tensor(detrun_model *m, int i, const detrun_tensor *t)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    detrun_status st = check_param(m, "set_param", i);
    if (st != DETRUN_OK)
        return st;
    const detrun_param *p = &m->params[i];
    if (t == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "set_param: %s: the tensor is NULL",
                             p->name);
    if (t->ndims != p->ndims || memcmp(t->dims, p->dims, (size_t)p->ndims * sizeof(int)) != 0) {
        char want[64], got[64];
        detrun_tensor_shape_string(p->ndims, p->dims, want, sizeof want);
        detrun_tensor_shape_string(t->ndims, t->dims, got, sizeof got);
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "set_param: %s has shape %s, the tensor has shape %s", p->name,
                             want, got);
    }
    return detrun_model_param_set(m, i, t->data, t->count);
}

detrun_status detrun_model_predict_tensor(detrun_model *m, const detrun_tensor *x,
                                          detrun_tensor **probs)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    if (probs == NULL || x == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "predict: %s is NULL",
                             x == NULL ? "the input" : "out");
    *probs = NULL;
    if (!m->compiled)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "predict: the model is not compiled yet");
    if (x->ndims != 4 || x->dims[1] != m->c || x->dims[2] != m->h || x->dims[3] != m->w) {
        char got[64];
        detrun_tensor_shape_string(x->ndims, x->dims, got, sizeof got);
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "predict: the model takes images of N x %d x %d x %d, not %s", m->c,
                             m->h, m->w, got);
    }
    int dims[2] = { x->dims[0], detrun_model_classes(m) };
    detrun_tensor *logits = NULL;
    detrun_status st = detrun_tensor_new(m->rt, 2, dims, &logits);
    if (st == DETRUN_OK)
        st = detrun_model_predict(m, x->data, (size_t)x->dims[0], logits->data);
    if (st == DETRUN_OK)
        st = detrun_tensor_softmax(m->rt, logits, probs);
    detrun_tensor_free(logits);
    return st;
}
