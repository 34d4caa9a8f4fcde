/*
 * checkpoint_meta.h - the checkpoint's metadata, a JSON object, both ways
 * (checkpoint_meta.c), shared with the binary layout (checkpoint_file.c).
 */
#ifndef DETRUN_CHECKPOINT_META_H
#define DETRUN_CHECKPOINT_META_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"

/* A checkpoint larger than this is not one of ours (and is not read into memory). */
#define DETRUN_CHECKPOINT_MAX_BYTES ((uint64_t)1 << 34)

/* The metadata of c, which holds moments (1 or 2) blocks of moments; NULL
 * when out of memory. */
cJSON *detrun_checkpoint_meta_build(const detrun_checkpoint *c, int moments);
/* Reads o, the metadata of a file of format version `version`, into c (whose
 * tensors and epochs are allocated through c->rt) and *moments; the message
 * names path and the first fault. */
detrun_status detrun_checkpoint_meta_parse(const char *path, const cJSON *o, uint32_t version,
                                           detrun_checkpoint *c, int *moments);
/* "path: not a valid detrun checkpoint: what", as DETRUN_ERR_FORMAT. */
detrun_status detrun_checkpoint_invalid(detrun_runtime *rt, const char *path, const char *what);

#endif
