/*
 * detrun.h - the public embedding API of detrun, a deep-learning runtime whose
 * training is reproducible bit for bit.
 *
 * This is the core's header: a host that trains models from C includes only
 * this and links only libdetrun (no Lua). Experiment scripts run through the
 * scripting layer, detrun_script.h and libdetrun-lua. The API feels like
 * Lua's C API: an opaque handle, one prefix, functions that return a status,
 * and the message of the last error kept on the handle. Nothing in the
 * library prints and exits on bad input.
 *
 *     #include <stdio.h>
 *     #include <detrun.h>
 *
 *     int main(void)
 *     {
 *         detrun_options opt = DETRUN_OPTIONS_INIT;   // deterministic, seed 0, all cores
 *         opt.threads = 2;
 *         detrun_runtime *rt = NULL;
 *         detrun_model *m = NULL;
 *         detrun_optimizer adam = DETRUN_ADAM_INIT;
 *         char fp[33];
 *         if (detrun_open(&rt, &opt) != DETRUN_OK ||
 *             detrun_model_new(rt, 1, 28, 28, &m) != DETRUN_OK ||
 *             detrun_model_add_flatten(m) != DETRUN_OK ||
 *             detrun_model_add_dense(m, 10, DETRUN_ACT_SOFTMAX) != DETRUN_OK ||
 *             detrun_model_compile(m, &adam, 42, 0) != DETRUN_OK ||
 *             detrun_model_fingerprint(m, fp) != DETRUN_OK) {
 *             fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
 *             detrun_model_free(m);
 *             detrun_close(rt);
 *             return 1;
 *         }
 *         printf("%s\n", fp);
 *         detrun_model_free(m);
 *         detrun_close(rt);
 *         return 0;
 *     }
 *
 * Groups below: the runtime handle; data sets and splits; models, training
 * and fingerprints; files and devices.
 *
 * Every function that can fail returns a detrun_status; on failure the
 * message (naming the file, line, layer or step that was wrong) is available
 * from detrun_errmsg(rt) until the next failing call.
 */
#ifndef DETRUN_H
#define DETRUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(DETRUN_STATIC_ONLY)
#define DETRUN_API __attribute__((visibility("default")))
#else
#define DETRUN_API
#endif

#define DETRUN_VERSION_MAJOR 0
#define DETRUN_VERSION_MINOR 1
#define DETRUN_VERSION_PATCH 0
#define DETRUN_VERSION "0.1.0"

/* ===================================================================== */
/* Status codes                                                          */
/* ===================================================================== */

typedef enum detrun_status {
    DETRUN_OK = 0,
    DETRUN_ERR_MEMORY,      /* an allocation failed */
    DETRUN_ERR_ARG,         /* a bad argument (a NULL handle, a negative size, ...) */
    DETRUN_ERR_SHAPE,       /* shapes that do not fit (a kernel larger than its input, ...) */
    DETRUN_ERR_IO,          /* a file could not be opened, read or written */
    DETRUN_ERR_FORMAT,      /* a file is not what it claims (bad IDX header, checkpoint, ...) */
    DETRUN_ERR_NUMERIC,     /* a NaN or an infinity in training */
    DETRUN_ERR_SCRIPT,      /* an error in an experiment script */
    DETRUN_ERR_DEVICE,      /* no such device, or the device failed */
    DETRUN_ERR_UNSUPPORTED, /* asked for something this build cannot do */
    DETRUN_ERR_CANCELLED,   /* stopped by detrun_cancel (e.g. the command's Ctrl-C) */
    DETRUN_ERR_BUSY         /* in use: a data set under a running fit, a locked folder */
} detrun_status;

DETRUN_API const char *detrun_status_string(detrun_status s);
DETRUN_API const char *detrun_version(void);

/* ===================================================================== */
/* The runtime handle                                                    */
/* ===================================================================== */

typedef struct detrun_runtime detrun_runtime;

typedef enum detrun_mode {
    DETRUN_DETERMINISTIC = 0,   /* the default: bits depend on script, data, seed, version */
    DETRUN_FAST = 1             /* anything that only reorders additions */
} detrun_mode;

/* Lua-style allocator (lua_Alloc's signature): nsize == 0 frees ptr and
 * returns NULL; otherwise behaves like realloc(ptr, nsize). osize is the old
 * size; for a new block (ptr == NULL) it is 0, or, from the scripting layer's
 * Lua states, the type of the Lua object the block is for. */
typedef void *(*detrun_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct detrun_options {
    int threads;              /* worker threads; 0 = all cores */
    detrun_mode mode;         /* deterministic (default) or fast */
    uint64_t seed;            /* default seed of runs */
    const char *device;       /* "cpu" (default), "cuda", "cuda:N" */
    const char *backend_options;  /* settings of the device's backend, "key=value,...";
                                     NULL = its defaults. cuda: kernels=cudnn|portable */
    detrun_alloc_fn alloc;    /* NULL = malloc/realloc/free */
    void *alloc_ud;
} detrun_options;

#define DETRUN_OPTIONS_INIT { 0, DETRUN_DETERMINISTIC, 0, "cpu", NULL, NULL, NULL }

/* Opens a runtime. On failure *rt may still hold a handle whose errmsg says
 * why; detrun_close() accepts it (and NULL). */
DETRUN_API detrun_status detrun_open(detrun_runtime **rt, const detrun_options *opt);
DETRUN_API void detrun_close(detrun_runtime *rt);
DETRUN_API const char *detrun_errmsg(const detrun_runtime *rt);
/* The allocator the runtime was opened with (the default one when the options
 * named none) and its ud, so that layers above the core (the scripting layer's
 * Lua state) allocate through the same hook. */
DETRUN_API detrun_alloc_fn detrun_get_allocator(const detrun_runtime *rt, void **ud);

/* Mode, threads and seed can change between runs (never during one). */
DETRUN_API detrun_status detrun_set_mode(detrun_runtime *rt, detrun_mode mode);
DETRUN_API detrun_mode detrun_get_mode(const detrun_runtime *rt);
DETRUN_API detrun_status detrun_set_threads(detrun_runtime *rt, int threads);
DETRUN_API int detrun_get_threads(const detrun_runtime *rt);
DETRUN_API void detrun_set_seed(detrun_runtime *rt, uint64_t seed);
DETRUN_API uint64_t detrun_get_seed(const detrun_runtime *rt);
/* "cpu", "cuda:0 (cudnn)", "cuda:0 (portable)" */
DETRUN_API const char *detrun_device_name(const detrun_runtime *rt);
/* After a numeric error of training: the index of the layer it names (the
 * layer whose output the non-finite loss was computed from), with *name its
 * name ("dense_2"); -1 (and *name NULL) otherwise. Cleared by the next error
 * and by the next fit. */
DETRUN_API int detrun_error_layer(const detrun_runtime *rt, const char **name);

/* Cancellation, for hosts and signal handlers: detrun_cancel may be called
 * from any thread, or from a signal handler (it only stores to a lock-free
 * atomic). A running fit or evaluate then stops at its next optimiser step
 * (batch) boundary and returns DETRUN_ERR_CANCELLED; a fit with a checkpoint
 * writes it at that step (inside the epoch), so a resumed fit goes on from
 * there and ends with the same bits and the same epoch statistics. The request stays until
 * detrun_cancel_reset: every later fit on the runtime is cancelled at once. */
DETRUN_API void detrun_cancel(detrun_runtime *rt);
DETRUN_API int detrun_cancel_requested(const detrun_runtime *rt);
DETRUN_API void detrun_cancel_reset(detrun_runtime *rt);

/* Exclusive use of a results folder across processes (an advisory lock on
 * dir/.detrun.lock holding the owner's process id, released by
 * detrun_folder_unlock or when the process ends, even by SIGKILL). A folder
 * locked by another process is DETRUN_ERR_BUSY with a message naming that
 * process. The folder is created when missing. */
typedef struct detrun_folder_lock detrun_folder_lock;
DETRUN_API detrun_status detrun_folder_lock_acquire(detrun_runtime *rt, const char *dir,
                                                    detrun_folder_lock **out);
/* One part of a results folder that several processes share on purpose (the
 * shards of a run: part "shard-2-of-4"): dir/.detrun.lock shared, so that a
 * whole-folder lock above waits for every part, and dir/.detrun.<part>.lock
 * exclusive, holding the owner's process id, so that each part has one
 * process at a time. A part held by another process, or the folder held
 * whole, is DETRUN_ERR_BUSY naming the holder's process and file; a
 * whole-folder lock refused because of a part names that part's file and
 * process. part: 1 to 64 letters, digits, '-' or '_'. Released by
 * detrun_folder_unlock, or when the process ends. */
DETRUN_API detrun_status detrun_folder_lock_part(detrun_runtime *rt, const char *dir,
                                                 const char *part, detrun_folder_lock **out);
DETRUN_API void detrun_folder_unlock(detrun_folder_lock *lock);

/* ===================================================================== */
/* Data sets and splits                                                  */
/* ===================================================================== */

typedef struct detrun_dataset detrun_dataset;   /* images (uint8) + labels */

/* Reads an IDX image file and an IDX label file (raw or gzip). */
DETRUN_API detrun_status detrun_dataset_load_idx(detrun_runtime *rt, const char *images_path,
                                                 const char *labels_path, detrun_dataset **out);
/* Reads the standard MNIST file names from dir ("train" or "t10k" set).
 * dir == NULL: $DETRUN_DATA, else /usr/share/datasets/fashion-mnist. */
DETRUN_API detrun_status detrun_dataset_load_mnist(detrun_runtime *rt, const char *dir,
                                                   const char *set, detrun_dataset **out);
/* The default data folder (see detrun_dataset_load_mnist). */
DETRUN_API const char *detrun_default_data_dir(void);
DETRUN_API void detrun_dataset_free(detrun_dataset *ds);
DETRUN_API size_t detrun_dataset_count(const detrun_dataset *ds);
/* Per-image shape: channels (1), height, width. */
DETRUN_API void detrun_dataset_shape(const detrun_dataset *ds, int *c, int *h, int *w);
DETRUN_API int detrun_dataset_classes(const detrun_dataset *ds);
DETRUN_API const uint8_t *detrun_dataset_images(const detrun_dataset *ds);  /* count*c*h*w */
DETRUN_API const uint8_t *detrun_dataset_labels(const detrun_dataset *ds);  /* count */
/* Keeps only the first n rows (n >= count: no change). A data set that a
 * fit is training on cannot change under it: limiting it from the fit's
 * epoch callback (or another thread) is DETRUN_ERR_BUSY, with the message set
 * on that fit's runtime; the data set is left as it was. */
DETRUN_API detrun_status detrun_dataset_limit(detrun_dataset *ds, size_t n);
/* A 128-bit hash (32 hex digits and a NUL) of the rows in use: shape,
 * classes, every image byte and label. What --resume compares to tell that
 * the data changed (docs/regression.md). */
DETRUN_API void detrun_dataset_hash(const detrun_dataset *ds, char out[33]);

/* k-fold cross-validation with a seeded shuffle (Philox, purpose KFOLD).
 * perm receives a permutation of 0..n-1; fold f is perm[bounds[f] .. bounds[f+1]).
 * Sizes as scikit-learn's KFold: the first n % k folds get one extra row. */
DETRUN_API detrun_status detrun_kfold(detrun_runtime *rt, size_t n, int k, uint64_t seed,
                                      uint32_t *perm, size_t *bounds /* k+1 */);
/* Keras validation_split: of n rows, the LAST floor(n*fraction) are validation
 * rows; returns how many training rows come first. */
DETRUN_API size_t detrun_validation_split(size_t n, double fraction);
/* In-place Fisher-Yates shuffle keyed by (seed, purpose, stream, step).
 * DETRUN_ERR_ARG (rows untouched) when purpose > 255, stream >
 * DETRUN_STREAM_MAX, n > 2^32-1, or rows is NULL with n >= 2. */
DETRUN_API detrun_status detrun_shuffle(uint32_t *rows, size_t n, uint64_t seed,
                                        uint32_t purpose, uint32_t stream, uint32_t step);

/* ===================================================================== */
/* Models, training and fingerprints                                     */
/* ===================================================================== */

typedef struct detrun_model detrun_model;

typedef enum detrun_activation {
    DETRUN_ACT_NONE = 0,
    DETRUN_ACT_RELU,
    DETRUN_ACT_SOFTMAX        /* only on the last layer, with the cross-entropy loss */
} detrun_activation;

typedef enum detrun_padding { DETRUN_PAD_VALID = 0, DETRUN_PAD_SAME } detrun_padding;

/* A sequential model for images of shape (c, h, w). Layers get stable names
 * per type, counted from 1: conv2d_1, conv2d_2, maxpool_1, dense_1, ...;
 * their parameters are "<layer>.weight" and "<layer>.bias". */
DETRUN_API detrun_status detrun_model_new(detrun_runtime *rt, int c, int h, int w,
                                          detrun_model **out);
DETRUN_API void detrun_model_free(detrun_model *m);
/* The image shape the model was made for (c, h, w); any pointer may be NULL. */
DETRUN_API void detrun_model_input_shape(const detrun_model *m, int *c, int *h, int *w);
/* Values per image of the last layer's output (the logits of predict); before
 * any layer is added, the input's size. */
DETRUN_API int detrun_model_output_size(const detrun_model *m);
/* Non-zero once detrun_model_compile has succeeded. */
DETRUN_API int detrun_model_is_compiled(const detrun_model *m);
DETRUN_API detrun_status detrun_model_add_conv2d(detrun_model *m, int filters, int kh, int kw,
                                                 int stride, detrun_padding pad,
                                                 detrun_activation act);
DETRUN_API detrun_status detrun_model_add_maxpool(detrun_model *m, int size, int stride);
DETRUN_API detrun_status detrun_model_add_flatten(detrun_model *m);
DETRUN_API detrun_status detrun_model_add_dense(detrun_model *m, int units, detrun_activation act);
DETRUN_API detrun_status detrun_model_add_relu(detrun_model *m);
DETRUN_API detrun_status detrun_model_add_dropout(detrun_model *m, float rate);

/* The largest random stream (compile, fit, detrun_shuffle): Philox counters
 * hold purpose << 24 | stream, so streams have 24 bits. */
#define DETRUN_STREAM_MAX 0xffffffu

/* One argument of a layer, Lua-table style: a key and a number, or a string
 * for a named choice ("relu", "same"). */
typedef struct detrun_layer_arg {
    const char *key;
    double number;
    const char *string;       /* NULL: the argument is number */
} detrun_layer_arg;

/* Adds a layer of the given kind, so that a kind needs no function of its
 * own. Kinds and their arguments (absent ones take the default shown):
 *   conv2d   filters, kh, kw, stride=1, padding="valid"|"same", activation="none"
 *   maxpool  size=2, stride=0 (0: the size)     dense    units, activation="none"
 *   dropout  rate in [0, 1)                     flatten, relu: none
 * with activation "none", "relu" or "softmax"; later kinds list theirs in
 * their descriptor (runtime/layers/) and docs/determinism.md. A choice may
 * also be given as its index (the enum's value). A dropout rate is required;
 * so are conv2d's filters, kh, kw and dense's units. An unknown
 * kind or key, a missing argument or a value out of range is an error that
 * names the layer ("conv2d_1: filters must be positive (got 0)"). */
DETRUN_API detrun_status detrun_model_add_layer(detrun_model *m, const char *kind,
                                                const detrun_layer_arg *args, int nargs);

typedef enum detrun_optimizer_kind { DETRUN_OPT_ADAM = 0, DETRUN_OPT_SGD } detrun_optimizer_kind;

typedef struct detrun_optimizer {
    detrun_optimizer_kind kind;
    float lr;
    float beta1, beta2, eps;  /* Adam */
    float momentum;           /* SGD */
} detrun_optimizer;

/* Keras' defaults: lr 1e-3, 0.9, 0.999, 1e-7. */
#define DETRUN_ADAM_INIT { DETRUN_OPT_ADAM, 1e-3f, 0.9f, 0.999f, 1e-7f, 0.0f }
#define DETRUN_SGD_INIT  { DETRUN_OPT_SGD, 1e-2f, 0.0f, 0.0f, 0.0f, 0.0f }

/* Fixes the layers, allocates parameters, gradients and optimiser state (one
 * block each) and initialises weights: Glorot-uniform from Philox keyed by
 * (seed, INIT, stream), zero biases. The loss is sparse categorical
 * cross-entropy on the last layer's logits. A layer that does not fit its
 * input is named in the error ("dense_1: units must be positive"). */
DETRUN_API detrun_status detrun_model_compile(detrun_model *m, const detrun_optimizer *opt,
                                              uint64_t seed, uint32_t stream);

DETRUN_API int detrun_model_param_count(const detrun_model *m);          /* tensors */
DETRUN_API const char *detrun_model_param_name(const detrun_model *m, int i);
/* Shape of parameter i: returns the number of dims, fills dims[0..3]. */
DETRUN_API int detrun_model_param_shape(const detrun_model *m, int i, int dims[4]);
/* Copies parameter i to host memory (count floats) / from host memory. */
DETRUN_API detrun_status detrun_model_param_get(detrun_model *m, int i, float *dst, size_t count);
DETRUN_API detrun_status detrun_model_param_set(detrun_model *m, int i, const float *src, size_t count);
DETRUN_API const char *detrun_model_layer_name(const detrun_model *m, int i); /* NULL past the end */
DETRUN_API uint64_t detrun_model_step(const detrun_model *m);           /* optimiser steps so far */

/* A fit's per-step callback, for progress displays (as Keras' fit shows
 * "k/n - loss"): epoch and batch count from 0, batches is the number of
 * optimiser steps per epoch, loss the mean loss over the epoch's samples so
 * far (in double, in row order; at the last batch it equals the epoch's
 * loss). It is called after every step, so a display rate-limits itself.
 * Computing the running loss copies the step's per-sample losses to the host
 * (a GPU synchronises once per step while a callback is set); the trained
 * bits are the same with or without it. A non-zero return stops training
 * right after that step (not an error): the unfinished epoch gets no epoch
 * callback and no checkpoint. */
typedef int (*detrun_batch_fn)(void *ud, int epoch, int batch, int batches, double loss);

typedef struct detrun_fit_options {
    int epochs;
    int batch;
    double validation_split;   /* Keras semantics: the last fraction of rows, before shuffling */
    int shuffle;               /* shuffle rows each epoch (Philox, keyed by seed, stream, epoch) */
    uint64_t seed;
    uint32_t stream;           /* e.g. the fold index: keys shuffles and dropout */
    /* Checkpoints (docs/regression.md): when set, the whole training state is
     * saved to this file (atomically) after every epoch, and at the step
     * where detrun_cancel stops the fit. With resume set and
     * the file present, the fit continues from it instead of starting over,
     * replaying the callback for the epochs already done, and ends with the
     * same bits as an uninterrupted fit. A checkpoint of another fit (mode,
     * seed, stream, rows, batch, epochs) or a damaged one is an error. */
    const char *checkpoint;
    int resume;
    detrun_batch_fn on_batch;  /* NULL: none */
    void *batch_ud;            /* its first argument */
} detrun_fit_options;

#define DETRUN_FIT_OPTIONS_INIT { 1, 32, 0.0, 1, 0, 0, NULL, 0, NULL, NULL }

typedef struct detrun_epoch_stats {
    int epoch;                 /* from 0 */
    double loss, accuracy;     /* over the training rows of this epoch */
    double val_loss, val_accuracy;   /* NaN when there is no validation set */
    double seconds;
    char fingerprint[33];      /* of the weights at the end of the epoch */
} detrun_epoch_stats;

/* Called after each epoch; a non-zero return stops training (not an error). */
typedef int (*detrun_epoch_fn)(void *ud, const detrun_epoch_stats *st);

/* Trains on the given rows of ds (row indices into ds) in the runtime's
 * current mode and thread count. */
DETRUN_API detrun_status detrun_model_fit(detrun_model *m, const detrun_dataset *ds,
                                          const uint32_t *rows, size_t nrows,
                                          const detrun_fit_options *opt,
                                          detrun_epoch_fn cb, void *ud);
/* Mean loss and accuracy over rows (all rows of ds when rows == NULL).
 * Per-sample results do not depend on the batch size. */
DETRUN_API detrun_status detrun_model_evaluate(detrun_model *m, const detrun_dataset *ds,
                                               const uint32_t *rows, size_t nrows, int batch,
                                               double *loss, double *accuracy);
/* Logits of n images given as float32 (n, c, h, w) in host memory. */
DETRUN_API detrun_status detrun_model_predict(detrun_model *m, const float *x, size_t n,
                                              float *logits);

/* Traces (docs/regression.md): from detrun_trace_start to detrun_trace_stop
 * (or detrun_close), every fit on this runtime records, at every `every`-th
 * optimiser step, the fingerprint of each layer output, gradient and
 * parameter (and their values when values != 0) to path, which appears
 * whole when the trace stops. The label names the fits that follow in the
 * trace (e.g. "deterministic repeat 0 fold 3"). */
DETRUN_API detrun_status detrun_trace_start(detrun_runtime *rt, const char *path, int every,
                                            int values);
DETRUN_API detrun_status detrun_trace_stop(detrun_runtime *rt);
DETRUN_API void detrun_trace_label(detrun_runtime *rt, const char *label);
/* Compares two trace files and writes to report (when not NULL) the first
 * fit, step, layer and tensor where they differ, or that they agree.
 * *differ is set to 1 or 0. With dump_prefix, the two tensors there are
 * written to <dump_prefix>.a.f32 and .b.f32 (traces recorded with values). */
DETRUN_API detrun_status detrun_trace_compare(detrun_runtime *rt, const char *a, const char *b,
                                              const char *dump_prefix, FILE *report,
                                              int *differ);
/* One line describing the machine a run gives its bits on, for the headers
 * of goldens and traces: CPU model, ISA path, threads, device. */
DETRUN_API void detrun_machine(detrun_runtime *rt, char *buf, size_t len);

/* Fingerprints: XXH3-128 over a canonical serialisation, 32 lowercase hex
 * digits and a NUL. See docs/determinism.md. */
DETRUN_API detrun_status detrun_model_fingerprint(detrun_model *m, char out[33]);
DETRUN_API detrun_status detrun_model_param_fingerprint(detrun_model *m, int i, char out[33]);
/* Fingerprint of one named float32 tensor in host memory. */
DETRUN_API void detrun_fingerprint_tensor(const char *name, int ndims, const int *dims,
                                          const float *data, char out[33]);
/* A repeat's fingerprint from its folds' (or any list of strings): XXH3-128
 * over the n strings, each preceded by its length as uint32 little-endian.
 * lens == NULL: the strings are NUL-terminated. */
DETRUN_API detrun_status detrun_repeat_fingerprint(const char *const *strings,
                                                   const size_t *lens, size_t n, char out[33]);
/* The two 64-bit words that seed a script's own random numbers (Lua's
 * math.randomseed) from (seed, stream): Philox, purpose SCRIPT, so that
 * scripts draw the same numbers in every process. */
DETRUN_API void detrun_script_seed(uint64_t seed, uint32_t stream, uint64_t out[2]);

/* ===================================================================== */
/* Tensors: float32 arrays in host memory, seeded draws, .npy files      */
/* ===================================================================== */

/* A contiguous, row-major float32 array of 1 to 4 dimensions in host memory
 * (backends copy what they need). Made through the runtime's allocator and
 * keeping it, so a tensor may outlive its runtime. At most 2^32 - 1
 * elements, every dimension at least 1. Arithmetic, sums and products follow
 * the orders of docs/determinism.md ("Tensors") and are single-threaded. */
typedef struct detrun_tensor detrun_tensor;

#define DETRUN_TENSOR_MAX_DIMS 4

/* A tensor of zeros of the given shape. */
DETRUN_API detrun_status detrun_tensor_new(detrun_runtime *rt, int ndims, const int *dims,
                                           detrun_tensor **out);
DETRUN_API void detrun_tensor_free(detrun_tensor *t);
/* Number of dimensions; fills dims[0 .. ndims-1] when dims is not NULL. */
DETRUN_API int detrun_tensor_shape(const detrun_tensor *t, int dims[DETRUN_TENSOR_MAX_DIMS]);
DETRUN_API size_t detrun_tensor_count(const detrun_tensor *t);
/* The elements, row-major; valid until the tensor is freed. */
DETRUN_API float *detrun_tensor_data(detrun_tensor *t);
DETRUN_API const float *detrun_tensor_cdata(const detrun_tensor *t);
/* New shape, same element count and order (in place). */
DETRUN_API detrun_status detrun_tensor_reshape(detrun_runtime *rt, detrun_tensor *t, int ndims,
                                               const int *dims);
DETRUN_API detrun_status detrun_tensor_clone(detrun_runtime *rt, const detrun_tensor *t,
                                             detrun_tensor **out);
DETRUN_API void detrun_tensor_fill(detrun_tensor *t, float value);

typedef enum detrun_tensor_op {
    DETRUN_TENSOR_ADD = 0, DETRUN_TENSOR_SUB, DETRUN_TENSOR_MUL
} detrun_tensor_op;

/* Elementwise a op b of two tensors of the same shape: one rounded operation
 * per element (no fma). */
DETRUN_API detrun_status detrun_tensor_binary(detrun_runtime *rt, detrun_tensor_op op,
                                              const detrun_tensor *a, const detrun_tensor *b,
                                              detrun_tensor **out);
/* Elementwise a op s, or s op a when scalar_first is non-zero. */
DETRUN_API detrun_status detrun_tensor_scalar(detrun_runtime *rt, detrun_tensor_op op,
                                              const detrun_tensor *a, float s, int scalar_first,
                                              detrun_tensor **out);
/* Sequential float sum from +0 in storage order; the mean is that sum
 * divided by (float)count. */
DETRUN_API float detrun_tensor_sum(const detrun_tensor *t);
DETRUN_API float detrun_tensor_mean(const detrun_tensor *t);
/* (n, k) x (k, m) -> (n, m): out[i][j] is a sequential fma chain over k
 * ascending from +0, dense's forward order. */
DETRUN_API detrun_status detrun_tensor_matmul(detrun_runtime *rt, const detrun_tensor *a,
                                              const detrun_tensor *b, detrun_tensor **out);
/* Row-wise softmax of a (n, classes) tensor in the order of the loss's
 * softmax: the probabilities that m:predict returns. */
DETRUN_API detrun_status detrun_tensor_softmax(detrun_runtime *rt, const detrun_tensor *logits,
                                               detrun_tensor **out);
/* The fingerprint of the tensor serialised under name (as parameters are). */
DETRUN_API void detrun_tensor_fingerprint(const detrun_tensor *t, const char *name, char out[33]);

/* Seeded draws (Philox purpose TENSOR, docs/determinism.md): fill t so that
 * element e is a pure function of (seed, stream, e), whatever the shape.
 * stream is from 0 to 2^24 - 1. uniform: low + (high - low) * u, u in
 * [0, 1); normal: mean + std * z, z by Marsaglia's polar method; glorot:
 * uniform on (-limit, limit), limit = sqrtf(6 / (fan_in + fan_out)). */
DETRUN_API detrun_status detrun_tensor_uniform(detrun_runtime *rt, detrun_tensor *t,
                                               uint64_t seed, uint32_t stream, float low,
                                               float high);
DETRUN_API detrun_status detrun_tensor_normal(detrun_runtime *rt, detrun_tensor *t, uint64_t seed,
                                              uint32_t stream, float mean, float std);
DETRUN_API detrun_status detrun_tensor_glorot(detrun_runtime *rt, detrun_tensor *t, uint64_t seed,
                                              uint32_t stream, int fan_in, int fan_out);

/* NumPy .npy files (format 1.0, C order, little-endian '<f4' or '|u1', 1
 * to 4 dimensions). Reading converts uint8 to float (the byte's value, not
 * scaled) and reports the file's type when type is not NULL. Writing as
 * uint8 requires every element to be an integer from 0 to 255. The file
 * appears whole or not at all. Errors name the file. */
typedef enum detrun_npy_type { DETRUN_NPY_F32 = 0, DETRUN_NPY_U8 } detrun_npy_type;
DETRUN_API detrun_status detrun_tensor_load_npy(detrun_runtime *rt, const char *path,
                                                detrun_tensor **out, detrun_npy_type *type);
DETRUN_API detrun_status detrun_tensor_save_npy(detrun_runtime *rt, const detrun_tensor *t,
                                                const char *path, detrun_npy_type type);

/* A data set from tensors: images (n, c, h, w), (n, h, w) or (n, features)
 * and labels (n) of integers from 0 to 255 (classes = largest label + 1, at
 * least 2). Data sets hold bytes, which training divides by 255:
 * DETRUN_PIXELS_BYTES takes images of integers from 0 to 255 as they are;
 * DETRUN_PIXELS_UNIT takes images from 0 to 1 and stores the byte
 * (uint8)(x * 255.0f + 0.5f). Any other value is an error naming its index. */
typedef enum detrun_pixels { DETRUN_PIXELS_UNIT = 0, DETRUN_PIXELS_BYTES } detrun_pixels;
DETRUN_API detrun_status detrun_dataset_from_tensors(detrun_runtime *rt,
                                                     const detrun_tensor *images,
                                                     const detrun_tensor *labels,
                                                     detrun_pixels pixels, detrun_dataset **out);

/* Models and tensors: parameter i as a new tensor of its shape; parameter i
 * set from a tensor of exactly its shape (the error names the parameter);
 * probabilities (n, classes) of images (n, c, h, w) of the model's input. */
DETRUN_API detrun_status detrun_model_param_tensor(detrun_model *m, int i, detrun_tensor **out);
DETRUN_API detrun_status detrun_model_set_param_tensor(detrun_model *m, int i,
                                                       const detrun_tensor *t);
DETRUN_API detrun_status detrun_model_predict_tensor(detrun_model *m, const detrun_tensor *x,
                                                     detrun_tensor **probs);

/* ===================================================================== */
/* Files and devices                                                     */
/* ===================================================================== */

/* Writes the concatenation of nparts buffers to path whole or not at all
 * (a temporary file beside it with a name unique to the writer, flushed,
 * then renamed over path). */
DETRUN_API detrun_status detrun_write_atomic(detrun_runtime *rt, const char *path,
                                             const void *const *parts, const size_t *lens,
                                             int nparts);
/* Writes a set of files that belong together (a run's results: JSON, CSV,
 * report): each to a temporary file beside it (named "<path>.<pid>.<n>.tmp",
 * unique to the writer), all flushed, and only then renamed over their
 * paths in the order given. A failure before the renames (a full disk)
 * removes the temporaries and leaves every old file of the set as it was. */
DETRUN_API detrun_status detrun_write_set(detrun_runtime *rt, int n, const char *const *paths,
                                          const void *const *texts, const size_t *lens);
/* Writes a results set that no reader sees mixed with another
 * (docs/regression.md, "Results files"): the n files names[i] (plain file
 * names) into a new folder dir/sets/<id>/, whole, then switches the link
 * dir/current to it in one rename, points dir/<names[i]> at current/<name>,
 * and removes the sets before the one it replaced. A failure before the
 * switch removes the new folder and leaves the current set as it was. id: a
 * plain file name unused in dir/sets (detrun_results_set_id makes one). */
DETRUN_API detrun_status detrun_write_results_set(detrun_runtime *rt, const char *dir,
                                                  const char *id, int n,
                                                  const char *const *names,
                                                  const void *const *texts, const size_t *lens);
/* A new set id into buf (at least 64 bytes): the UTC time to the nanosecond
 * and the process id ("20261202T145612.123456789Z-4242"), unique on the
 * machine and in time order. */
DETRUN_API void detrun_results_set_id(char *buf, size_t len);
/* Writes a human-readable list of the devices of every backend this build
 * has (and of the known backends it lacks, with the reason) into buf, always
 * NUL-terminated and truncated to len; *count (when not NULL) gets the number
 * of devices listed. */
DETRUN_API detrun_status detrun_list_devices(char *buf, size_t len, int *count);

#ifdef __cplusplus
}
#endif
#endif
