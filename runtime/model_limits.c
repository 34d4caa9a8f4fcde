/*
 * model_limits.c - caps on what a model's description may ask for, checked
 * at compile before anything is allocated: a script line such as
 * `units = 300000` must be refused with a message, not run the machine out
 * of memory. The caps are generous defaults that a user can raise through
 * the environment (docs/c-api.md, "Limits").
 */
#include "model.h"

#define DEFAULT_MAX_PARAMS (1LL << 25)        /* floats of parameters in all */
#define DEFAULT_MAX_ACTIVATIONS (1LL << 22)   /* floats of one layer's output per sample */

/* The layer with the most parameters (its weights and bias). */
static int largest_layer(const detrun_model *m)
{
    int best = 0;
    size_t most = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const detrun_layer *l = &m->layers[i];
        size_t n = (l->wparam >= 0 ? m->params[l->wparam].count : 0) +
                   (l->bparam >= 0 ? m->params[l->bparam].count : 0);
        if (n > most) {
            most = n;
            best = i;
        }
    }
    return best;
}

detrun_status detrun_model_check_limits(detrun_model *m)
{
    long long max_params = detrun_limit("DETRUN_MAX_PARAMS", DEFAULT_MAX_PARAMS);
    long long max_act = detrun_limit("DETRUN_MAX_ACTIVATIONS", DEFAULT_MAX_ACTIVATIONS);
    for (int i = 0; i < m->nlayers; i++) {
        const detrun_layer *l = &m->layers[i];
        long long out = (long long)l->out_c * l->out_h * l->out_w;
        if (out > max_act)
            return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                                 "%s: its output of %dx%dx%d = %lld values per sample is above "
                                 "the limit of %lld; raise it with DETRUN_MAX_ACTIVATIONS=N",
                                 l->name, l->out_c, l->out_h, l->out_w, out, max_act);
    }
    if ((long long)m->total > max_params)
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "compile: the model's %zu parameters are above the limit of %lld "
                             "(the largest layer: %s); raise it with DETRUN_MAX_PARAMS=N",
                             m->total, max_params, m->layers[largest_layer(m)].name);
    return DETRUN_OK;
}
