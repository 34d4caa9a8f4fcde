/*
 * graph.cu - recorded training steps: a step's launches captured once into a
 * CUDA graph and replayed as one launch.
 *
 * A step of the reference network is some twenty-five tiny kernels and cuDNN
 * calls; issuing them costs the host more than the GPU takes to run them. The
 * training loop hands each step to run_step (backend.h), which brackets its
 * calls with step_begin/step_end below.
 * The first step of a batch size runs plainly (cuDNN chooses its algorithms
 * and sizes its workspace outside any capture); the second is captured and
 * its graph launched; later ones are replays: every table entry is still
 * called, launches nothing and folds its op and fixed arguments (pointers,
 * shapes, flags) into a hash, while the four kernels whose arguments change
 * per step (gather's rows, dropout's Philox address, softmax's result
 * pointers, Adam's parameters) hand their new arguments to their graph
 * nodes. At step_end the hash must equal the recording's, or nothing has run
 * and run_step rewinds the caller's host state and issues the step again
 * plainly. A replay launches exactly
 * the kernels, with exactly the arguments, that plain calls would: the bits
 * are the same (docs/determinism.md, GPU).
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"

#define MAX_VAR 16   /* varying kernels per step */

struct detrun_cuda_graph {
    uint64_t key;
    uint64_t hash;            /* the fixed arguments of the recorded calls */
    uint64_t ws_gen;          /* the cuDNN workspace it uses */
    int nvar;
    const void *func[MAX_VAR];
    cudaGraphNode_t node[MAX_VAR];
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

static void graph_free(detrun_cuda_graph *r)
{
    if (!r)
        return;
    /* An executable graph still running is freed when it completes. */
    if (r->exec)
        cudaGraphExecDestroy(r->exec);
    if (r->graph)
        cudaGraphDestroy(r->graph);
    free(r);
}

void detrun_cuda_graphs_free(detrun_cuda *g)
{
    for (int i = 0; i < DETRUN_CUDA_GRAPHS; i++) {
        graph_free(g->graphs[i]);
        g->graphs[i] = NULL;
    }
    if (g->rec == DETRUN_REC_RECORD) {
        graph_free(g->rec_graph);
        g->rec_graph = NULL;
    }
    g->warm = 0;
}

static uint64_t mix(uint64_t h, uint64_t w)
{
    h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

int detrun_cuda_note(detrun_cuda *g, int op, const uint64_t *words, size_t nwords)
{
    if (g->rec == DETRUN_REC_PLAIN)
        return 0;
    uint64_t h = mix(g->rec_hash, (uint64_t)op);
    for (size_t i = 0; i < nwords; i++)
        h = mix(h, words[i]);
    g->rec_hash = mix(h, (uint64_t)nwords);
    return g->rec == DETRUN_REC_REPLAY;
}

void detrun_cuda_not_recordable(detrun_cuda *g)
{
    g->rec_bad = 1;
}

void detrun_cuda_launch_var(detrun_cuda *g, const void *func, dim3 grid, dim3 block,
                            size_t shmem, void **args, const char *what)
{
    if (g->rec == DETRUN_REC_REPLAY) {
        detrun_cuda_graph *r = g->rec_graph;
        int i = g->rec_nvar++;
        if (g->rec_bad || i >= r->nvar || r->func[i] != func) {
            g->rec_bad = 1;
            return;
        }
        cudaKernelNodeParams p = {};
        p.func = (void *)func;
        p.gridDim = grid;
        p.blockDim = block;
        p.sharedMemBytes = (unsigned)shmem;
        p.kernelParams = args;
        /* Affects the launches after this call only; the arguments are copied. */
        if (cudaGraphExecKernelNodeSetParams(r->exec, r->node[i], &p) != cudaSuccess) {
            cudaGetLastError();
            g->rec_bad = 1;
        }
        return;
    }
    if (!detrun_cuda_ok(g, cudaLaunchKernel(func, grid, block, args, shmem, g->stream), what))
        return;
    if (g->rec != DETRUN_REC_RECORD)
        return;
    /* Captured on one stream: the node just added is the stream's only
     * dependency now. */
    detrun_cuda_graph *r = g->rec_graph;
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    const cudaGraphNode_t *deps = NULL;
    size_t ndeps = 0;
    if (cudaStreamGetCaptureInfo(g->stream, &cs, NULL, NULL, &deps, NULL, &ndeps) != cudaSuccess ||
        cs != cudaStreamCaptureStatusActive || ndeps != 1 || r->nvar >= MAX_VAR) {
        cudaGetLastError();
        g->rec_bad = 1;
        return;
    }
    r->func[r->nvar] = func;
    r->node[r->nvar] = deps[0];
    r->nvar++;
}

static detrun_cuda_graph **find(detrun_cuda *g, uint64_t key)
{
    for (int i = 0; i < DETRUN_CUDA_GRAPHS; i++)
        if (g->graphs[i] && g->graphs[i]->key == key)
            return &g->graphs[i];
    return NULL;
}

static uint64_t hash_seed(const detrun_cuda *g)
{
    return mix(mix(0x6a09e667f3bcc908ull, (uint64_t)g->mode), (uint64_t)g->portable);
}

/* 0: issue the calls as usual, no step_end. 1: issue them, then call
 * step_end, which returns 1 when the step has been done, or 0 when nothing
 * of it was done. */
static int step_begin(detrun_backend *b, uint64_t key)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || g->graphs_off || g->rec != DETRUN_REC_PLAIN)
        return 0;
    g->rec_bad = 0;
    g->rec_hash = hash_seed(g);
    g->rec_nvar = 0;
    g->rec_key = key;
    detrun_cuda_graph **slot = find(g, key);
    if (slot && (*slot)->ws_gen != g->ws_gen) {
        graph_free(*slot);   /* its workspace has moved */
        *slot = NULL;
        slot = NULL;
    }
    if (slot) {
        g->rec_graph = *slot;
        g->rec = DETRUN_REC_REPLAY;
        return 1;
    }
    if (!g->warm || g->warm_key != key) {
        g->warm = 1;
        g->warm_key = key;
        return 0;
    }
    detrun_cuda_graph *r = (detrun_cuda_graph *)calloc(1, sizeof *r);
    if (!r)
        return 0;
    r->key = key;
    r->ws_gen = g->ws_gen;
    if (cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeRelaxed) != cudaSuccess) {
        cudaGetLastError();
        free(r);
        g->graphs_off = 1;
        return 0;
    }
    g->rec_graph = r;
    g->rec = DETRUN_REC_RECORD;
    return 1;
}

/* The first failure during a recording belongs to the recording, not to
 * the run: the caller issues the step again plainly, which meets any real
 * error again. */
static int record_failed(detrun_cuda *g, detrun_cuda_graph *r)
{
    cudaGetLastError();
    g->status = DETRUN_OK;
    g->err[0] = '\0';
    graph_free(r);
    g->graphs_off = 1;
    return 0;
}

static int step_end(detrun_backend *b)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    detrun_cuda_rec rec = g->rec;
    detrun_cuda_graph *r = g->rec_graph;
    g->rec = DETRUN_REC_PLAIN;
    g->rec_graph = NULL;
    if (rec == DETRUN_REC_REPLAY) {
        if (g->status != DETRUN_OK)
            return 1;   /* nothing more runs; the error is kept */
        if (g->rec_bad || g->rec_hash != r->hash || g->rec_nvar != r->nvar) {
            detrun_cuda_graph **slot = find(g, r->key);
            graph_free(r);
            if (slot)
                *slot = NULL;
            g->warm = 0;
            return 0;
        }
        detrun_cuda_ok(g, cudaGraphLaunch(r->exec, g->stream), "cudaGraphLaunch (training step)");
        return 1;
    }
    if (rec != DETRUN_REC_RECORD)
        return 1;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(g->stream, &graph);
    r->graph = graph;
    if (e != cudaSuccess || graph == NULL || g->rec_bad || g->status != DETRUN_OK)
        return record_failed(g, r);
    if (cudaGraphInstantiate(&r->exec, graph, 0) != cudaSuccess) {
        r->exec = NULL;
        return record_failed(g, r);
    }
    r->hash = g->rec_hash;
    /* The recorded step has not run yet: this launch runs it. */
    if (!detrun_cuda_ok(g, cudaGraphLaunch(r->exec, g->stream), "cudaGraphLaunch (training step)")) {
        graph_free(r);
        return 1;
    }
    detrun_cuda_graph **slot = find(g, r->key);
    if (!slot) {
        for (int i = 0; i < DETRUN_CUDA_GRAPHS && !slot; i++)
            if (!g->graphs[i])
                slot = &g->graphs[i];
        if (!slot)
            slot = &g->graphs[0];   /* all taken: the first goes */
    }
    graph_free(*slot);
    *slot = r;
    return 1;
}

detrun_status detrun_cuda_run_step(detrun_backend *b, const detrun_step *step)
{
    int rec = step_begin(b, step->key);
    for (;;) {
        detrun_status st = step->issue(step->ctx);
        if (!rec || step_end(b) || st != DETRUN_OK)
            return st;
        /* Nothing of the step ran: its host side is put back, then it is
         * issued plainly. */
        rec = 0;
        step->rewind(step->ctx);
    }
}
