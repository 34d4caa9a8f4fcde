/* Device discovery for the registry: `detrun --devices` and reports. */
#include <stdarg.h>
#include <stdio.h>

#include <cuda_runtime.h>
#include <cudnn.h>

#include "cuda_backend.h"

typedef struct text { char *buf; size_t len, used; } text;

static void put(text *t, const char *fmt, ...)
{
    if (!t->buf || t->used + 1 >= t->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->used += (size_t)n < t->len - t->used ? (size_t)n : t->len - t->used - 1;
}

static void put_version(text *t, const char *what, int v)
{
    if (v > 0)
        put(t, "%s %d.%d", what, v / 1000, (v % 1000) / 10);
    else
        put(t, "%s none", what);
}

int detrun_cuda_list_devices(char *buf, size_t len)
{
    text t = { buf, len, 0 };
    if (buf && len)
        buf[0] = '\0';
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    size_t cudnn = cudnnGetVersion();

    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        /* The runtime's words for a machine without the driver ("CUDA
         * driver version is insufficient for CUDA runtime version") send
         * people to update a driver that is not there: say what is true. */
        if (driver <= 0 && (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice ||
                            e == cudaSuccess))
            put(&t, "no CUDA device: no NVIDIA driver found (libcuda.so.1 is not installed "
                    "or not loadable; the CPU backend works without it)\n");
        else if (e == cudaErrorInsufficientDriver)
            put(&t, "no CUDA device: the NVIDIA driver (CUDA %d.%d) is older than this "
                    "build's CUDA runtime %d.%d: update the driver\n", driver / 1000,
                (driver % 1000) / 10, runtime / 1000, (runtime % 1000) / 10);
        else if (e == cudaErrorNoDevice || e == cudaSuccess)
            put(&t, "no CUDA device: the NVIDIA driver finds no GPU\n");
        else
            put(&t, "no CUDA device (%s)\n", cudaGetErrorString(e));
        count = 0;
    }
    for (int i = 0; i < count; i++) {
        cudaDeviceProp p;
        e = cudaGetDeviceProperties(&p, i);
        if (e != cudaSuccess) {
            put(&t, "cuda:%d  (properties unavailable: %s)\n", i, cudaGetErrorString(e));
            continue;
        }
        put(&t, "cuda:%d  %s, compute capability %d.%d, %d SMs, %.1f GiB\n", i, p.name, p.major,
            p.minor, p.multiProcessorCount, (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    }
    put_version(&t, "CUDA runtime", runtime);
    put_version(&t, ", driver", driver);
    put(&t, ", cuDNN %zu.%zu.%zu (built with %d.%d.%d)\n", cudnn / 10000, (cudnn % 10000) / 100,
        cudnn % 100, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
    return count;
}
