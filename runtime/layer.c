/*
 * layer.c - the layer kinds the build found in runtime/layers/, and the
 * reading of a layer's arguments through its kind's option table.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"

/* layer_list.h is written by the build: DETRUN_LAYER(name) for every
 * runtime/layers/<name>.c, in file name order. */
#define DETRUN_LAYER(name) extern const detrun_layer_kind detrun_layer_##name;
#include "layer_list.h"
#undef DETRUN_LAYER

#define DETRUN_LAYER(name) &detrun_layer_##name,
static const detrun_layer_kind *const kinds[] = {
#include "layer_list.h"
};
#undef DETRUN_LAYER

#define NKINDS (sizeof kinds / sizeof kinds[0])

const detrun_layer_kind *detrun_layer_kind_find(const char *name)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

void detrun_layer_kind_names(char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NKINDS && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", kinds[i]->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

detrun_pool_dims detrun_layer_pool_dims(const detrun_layer *l, int n)
{
    detrun_pool_dims d;
    d.n = n;
    d.c = l->in_c;
    d.h = l->in_h;
    d.w = l->in_w;
    d.oh = l->out_h;
    d.ow = l->out_w;
    d.size = l->size;
    d.stride = l->stride;
    return d;
}

const detrun_layer_opt detrun_layer_pool_opts[] = {
    { "size", DETRUN_LOPT_INT, offsetof(detrun_layer, size), 2, 1, DETRUN_LOPT_INT_MAX, NULL },
    { "stride", DETRUN_LOPT_INT, offsetof(detrun_layer, stride), 0, 0, DETRUN_LOPT_INT_MAX,
      NULL },
    { NULL, DETRUN_LOPT_INT, 0, 0, 0, 0, NULL }
};

detrun_status detrun_layer_pool_shape(detrun_model *m, detrun_layer *l)
{
    if (l->stride == 0)
        l->stride = l->size;
    if (l->size > l->in_h || l->size > l->in_w)
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "%s: window %dx%d is larger than its %dx%d input", l->name, l->size,
                             l->size, l->in_h, l->in_w);
    l->out_c = l->in_c;
    l->out_h = (l->in_h - l->size) / l->stride + 1;
    l->out_w = (l->in_w - l->size) / l->stride + 1;
    return DETRUN_OK;
}

const char *const detrun_layer_activations[] = { "none", "relu", "softmax", NULL };

static void set_value(detrun_layer *l, const detrun_layer_opt *o, double v)
{
    char *field = (char *)l + o->offset;
    if (o->type == DETRUN_LOPT_RATE) {
        float f = (float)v;
        memcpy(field, &f, sizeof f);
    } else {
        int i = (int)v;
        memcpy(field, &i, sizeof i);
    }
}

/* The index of name among o's choices, or -1. */
static int choice_index(const detrun_layer_opt *o, const char *name)
{
    for (int i = 0; o->choices[i] != NULL; i++)
        if (strcmp(o->choices[i], name) == 0)
            return i;
    return -1;
}

static detrun_status bad_choice(detrun_runtime *rt, const detrun_layer *l,
                                const detrun_layer_opt *o, const char *got)
{
    char names[160] = "";
    size_t used = 0;
    for (int i = 0; o->choices[i] != NULL && used < sizeof names; i++) {
        int w = snprintf(names + used, sizeof names - used, "%s\"%s\"", i ? ", " : "",
                         o->choices[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %s must be one of %s, not \"%s\"", l->name,
                         o->key, names, got);
}

/* Checks the argument a against option o and stores it in l. */
static detrun_status read_one(detrun_runtime *rt, detrun_layer *l, const detrun_layer_opt *o,
                              const detrun_layer_arg *a)
{
    double v = a->number;
    if (o->type == DETRUN_LOPT_CHOICE) {
        if (a->string != NULL) {
            int i = choice_index(o, a->string);
            if (i < 0)
                return bad_choice(rt, l, o, a->string);
            v = i;
        } else {
            int n = 0;
            while (o->choices[n] != NULL)
                n++;
            if (!(v >= 0 && v < n) || v != floor(v))
                return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: unknown %s %g", l->name, o->key, v);
        }
    } else if (a->string != NULL) {
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %s must be a number, not \"%s\"", l->name,
                             o->key, a->string);
    } else if (o->type == DETRUN_LOPT_RATE) {
        /* Checked as the float it becomes: 0.99999999999 rounds to 1. */
        float f = (float)v;
        if (!(f >= o->min && f < o->max))
            return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %s %g is not in [%g, %g)", l->name,
                                 o->key, (double)f, o->min, o->max);
    } else {
        if (v != floor(v) || isnan(v))
            return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %s must be an integer (got %g)",
                                 l->name, o->key, v);
        if (v < o->min && o->min == 1)
            return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %s must be positive (got %g)", l->name,
                                 o->key, v);
        if (v < o->min || v > o->max)
            return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %s %g is not in [%g, %g]", l->name,
                                 o->key, v, o->min, o->max);
    }
    set_value(l, o, v);
    return DETRUN_OK;
}

detrun_status detrun_layer_read_args(detrun_runtime *rt, detrun_layer *l,
                                     const detrun_layer_arg *args, int nargs)
{
    const detrun_layer_opt *opts = l->kind->opts;
    for (int i = 0; i < nargs; i++) {
        const char *key = args[i].key;
        if (key == NULL)
            return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: argument %d has no key", l->name, i);
        int known = 0;
        for (const detrun_layer_opt *o = opts; o != NULL && o->key != NULL; o++)
            known = known || strcmp(o->key, key) == 0;
        if (!known)
            return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %s takes no argument \"%s\"", l->name,
                                 l->kind->name, key);
        for (int j = 0; j < i; j++)
            if (args[j].key != NULL && strcmp(args[j].key, key) == 0)
                return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: argument \"%s\" is given twice",
                                     l->name, key);
    }
    /* In the table's order, so that the first wrong option is reported the
     * same way whatever order the arguments come in. */
    for (const detrun_layer_opt *o = opts; o != NULL && o->key != NULL; o++) {
        const detrun_layer_arg *a = NULL;
        for (int i = 0; i < nargs && a == NULL; i++)
            if (strcmp(args[i].key, o->key) == 0)
                a = &args[i];
        if (a == NULL) {
            if (isnan(o->dflt))
                return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %s is required", l->name, o->key);
            set_value(l, o, o->dflt);
            continue;
        }
        detrun_status st = read_one(rt, l, o, a);
        if (st != DETRUN_OK)
            return st;
    }
    return DETRUN_OK;
}
