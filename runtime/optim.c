/*
 * optim.c - the optimiser step over the whole parameter block.
 *
 * beta^t are running float products, advanced before step t's update
 * (docs/determinism.md, "Adam"): never powf, whose bits differ between libms.
 */
#include "model.h"

detrun_status detrun_model_optimizer_step(detrun_model *m)
{
    detrun_backend *be = m->rt->backend;
    const detrun_optimizer *o = &m->opt;
    if (o->kind == DETRUN_OPT_ADAM) {
        m->beta1_t = m->beta1_t * o->beta1;
        m->beta2_t = m->beta2_t * o->beta2;
        detrun_adam_params a;
        a.lr = o->lr;
        a.beta1 = o->beta1;
        a.beta2 = o->beta2;
        a.eps = o->eps;
        a.beta1_t = m->beta1_t;
        a.beta2_t = m->beta2_t;
        be->ops->adam_step(be, m->p, m->g, m->m, m->v, m->total, &a);
    } else {
        be->ops->sgd_step(be, m->p, m->g, m->m, m->total, o->lr, o->momentum);
    }
    m->step++;
    return DETRUN_OK;
}
