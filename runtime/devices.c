/*
 * devices.c - detrun_list_devices: the GPU devices this build can use, for
 * hosts and the command's --devices.
 */
#include <stdio.h>

#include "internal.h"

/* The GPU backend's lister (gpu/); a build without CUDA says why there is
 * no device. */
int detrun_gpu_list_devices(char *buf, size_t len);

detrun_status detrun_list_devices(char *buf, size_t len, int *count)
{
    if (count != NULL)
        *count = 0;
    if (buf == NULL || len == 0)
        return DETRUN_ERR_ARG;
    int n = detrun_gpu_list_devices(buf, len);
    if (count != NULL)
        *count = n;
    return DETRUN_OK;
}
