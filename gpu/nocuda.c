/* The CUDA backend's entry point in a build without CUDA. */
#include <stdio.h>

#include "backend.h"

detrun_status detrun_cuda_backend_new(detrun_backend **out, int device, const char *kernels,
                                      detrun_mode mode, char *err, size_t errlen)
{
    (void)device; (void)kernels; (void)mode;
    *out = NULL;
    snprintf(err, errlen, "this detrun was built without CUDA (configure with -DDETRUN_CUDA=ON "
                          "on a machine with the CUDA toolkit and cuDNN)");
    return DETRUN_ERR_UNSUPPORTED;
}
