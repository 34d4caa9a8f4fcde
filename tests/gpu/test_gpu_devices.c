/* Device discovery through the registry: the listing names every device, or
 * says plainly that there is none or that the build has no CUDA; the
 * backend refuses bad requests with a message. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "../common.h"


static detrun_status open_cuda(const char *device, const char *options, detrun_backend **b,
                               char *err, size_t errlen)
{
    detrun_backend_params p = { 0, options, DETRUN_DETERMINISTIC, 1, NULL, NULL };
    return detrun_backend_open(device, &p, b, err, errlen);
}

int main(void)
{
    char text[4096];
    memset(text, 'x', sizeof text);
    int all = -1;
    CHECK(detrun_list_devices(text, sizeof text, &all) == DETRUN_OK, "listing refused");
    CHECK(memchr(text, '\0', sizeof text) != NULL, "listing not NUL-terminated");
    printf("%s", text);
    CHECK(all >= 0, "negative device count %d", all);

    const detrun_backend_reg *reg = detrun_backend_reg_find("cuda");
    char err[256] = "";
    detrun_backend *b = NULL;
#ifdef DETRUN_GPU_BUILT
    CHECK(reg != NULL && reg->list_devices != NULL, "a CUDA build without the cuda backend");
#else
    CHECK(reg == NULL, "the cuda backend is registered in a build without CUDA");
#endif
    if (reg == NULL) {
        CHECK(strstr(text, "no cuda device: built without CUDA") != NULL,
              "no CUDA, but the listing does not say so");
        detrun_status st = open_cuda("cuda:0", "kernels=portable", &b, err, sizeof err);
        CHECK(st == DETRUN_ERR_UNSUPPORTED && b == NULL && strstr(err, "without CUDA"),
              "no-CUDA build: %d '%s'", st, err);
        goto done;
    }

    int n = reg->list_devices(text, sizeof text);
    if (n == 0) {
        CHECK(strstr(text, "no CUDA device") != NULL, "no device, but the text does not say so");
    } else {
        char want[32];
        snprintf(want, sizeof want, "cuda:%d ", n - 1);
        CHECK(strstr(text, "cuda:0 ") && strstr(text, want), "%d devices, not all listed", n);
        CHECK(strstr(text, "compute capability") && strstr(text, "SMs") && strstr(text, "GiB"),
              "device line lacks capability, SMs or memory");
        CHECK(strstr(text, "CUDA runtime") && strstr(text, "cuDNN"), "versions missing");
    }

    /* A tiny buffer is filled, truncated and terminated, never overrun. */
    char small[8];
    memset(small, 'x', sizeof small);
    reg->list_devices(small, 5);
    CHECK(memchr(small, '\0', 5) != NULL && small[5] == 'x', "small buffer overrun");

    detrun_status st = open_cuda("cuda:0", "kernels=tensorcore", &b, err, sizeof err);
    CHECK(st == DETRUN_ERR_ARG && b == NULL && strstr(err, "tensorcore"),
          "unknown kernels: %d '%s'", st, err);
    err[0] = '\0';
    char dev[32];
    snprintf(dev, sizeof dev, "cuda:%d", n);
    st = open_cuda(dev, "kernels=portable", &b, err, sizeof err);
    CHECK(st != DETRUN_OK && b == NULL && err[0], "device cuda:%d (one past the last) accepted", n);
    printf("cuda:%d -> %s\n", n, err);
    if (n > 0) {
        st = open_cuda("cuda", "kernels=portable", &b, err, sizeof err);
        CHECK(st == DETRUN_OK && b, "cuda (cuda:0) refused: %s", err);
        if (b) {
            char name[64];
            b->ops->describe(b, DETRUN_INFO_DEVICE, name, sizeof name);
            CHECK(strcmp(name, "cuda:0 (portable)") == 0, "device name '%s'", name);
            b->ops->destroy(b);
        }
    }
done:
    return test_report("test_gpu_devices");
}
