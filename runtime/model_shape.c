/*
 * model_shape.c - what a host needs to size a model's inputs and outputs
 * (predict's buffers) without seeing the model's struct.
 */
#include "internal.h"
#include "model.h"

void detrun_model_input_shape(const detrun_model *m, int *c, int *h, int *w)
{
    if (c != NULL)
        *c = m != NULL ? m->c : 0;
    if (h != NULL)
        *h = m != NULL ? m->h : 0;
    if (w != NULL)
        *w = m != NULL ? m->w : 0;
}

int detrun_model_output_size(const detrun_model *m)
{
    return m != NULL ? detrun_model_classes(m) : 0;
}

int detrun_model_is_compiled(const detrun_model *m)
{
    return m != NULL && m->compiled;
}
