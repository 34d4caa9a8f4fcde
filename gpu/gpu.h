/*
 * gpu.h - what the GPU backend offers beyond the backend table.
 */
#ifndef DETRUN_GPU_H
#define DETRUN_GPU_H

#include <stddef.h>

#include "detrun.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a human-readable list of the CUDA devices (name, compute capability,
 * SMs, memory) and the CUDA runtime, driver and cuDNN versions into buf
 * (always NUL-terminated, truncated to len). Returns the number of devices:
 * 0 when there is none or when this build has no CUDA, which the text says. */
int detrun_gpu_list_devices(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
