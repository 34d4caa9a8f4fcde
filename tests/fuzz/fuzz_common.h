/*
 * fuzz_common.h - what the fuzz targets share (fuzz_common.c): the input as a
 * file for readers that take a path, and a runtime whose allocator counts,
 * so that a leak or an allocation the input cannot justify stops the run.
 */
#ifndef DETRUN_FUZZ_COMMON_H
#define DETRUN_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "detrun.h"

/* Writes the input to this process's input file (a private folder, removed
 * at exit) and returns its path. Aborts if the file cannot be written. */
const char *fuzz_input_file(const uint8_t *data, size_t size);
/* Another path in the same folder (name: a plain file name). */
const char *fuzz_path(const char *name);

/* A runtime opened once, on one thread, whose allocator counts live bytes. */
detrun_runtime *fuzz_runtime(void);
/* The runtime's live bytes now. */
size_t fuzz_live_bytes(void);
/* Aborts, naming the target, when a single allocation asks for more than
 * limit bytes (0: no limit); set per input from its length. */
void fuzz_set_alloc_limit(size_t limit);

/* Prints "fuzz <target>: <what>" and aborts: a parser bug. */
void fuzz_fail(const char *target, const char *what, const char *detail);

#endif
