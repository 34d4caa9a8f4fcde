/* The GPU entry points in a build without CUDA: each says so. */
#include <stdio.h>

#include "backend.h"
#include "gpu.h"

#define DETRUN_NOCUDA_MSG "this detrun was built without CUDA (configure with -DDETRUN_CUDA=ON " \
                          "on a machine with the CUDA toolkit and cuDNN)"

detrun_status detrun_cuda_backend_new(detrun_backend **out, int device, const char *kernels,
                                      detrun_mode mode, char *err, size_t errlen)
{
    (void)device; (void)kernels; (void)mode;
    if (out)
        *out = NULL;
    if (err && errlen)
        snprintf(err, errlen, "%s", DETRUN_NOCUDA_MSG);
    return DETRUN_ERR_UNSUPPORTED;
}

int detrun_gpu_list_devices(char *buf, size_t len)
{
    if (buf && len)
        snprintf(buf, len, "no CUDA device: %s\n", DETRUN_NOCUDA_MSG);
    return 0;
}
