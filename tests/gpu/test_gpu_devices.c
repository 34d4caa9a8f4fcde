/* Device discovery: the listing names every device, or says plainly that
 * there is none; the backend refuses bad requests with a message. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "gpu.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

int main(void)
{
    char text[4096];
    memset(text, 'x', sizeof text);
    int n = detrun_gpu_list_devices(text, sizeof text);
    CHECK(memchr(text, '\0', sizeof text) != NULL, "listing not NUL-terminated");
    printf("%s", text);
    CHECK(n >= 0, "negative device count %d", n);
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
    detrun_gpu_list_devices(small, 5);
    CHECK(memchr(small, '\0', 5) != NULL && small[5] == 'x', "small buffer overrun");

    char err[256] = "";
    detrun_backend *b = NULL;
    detrun_status st = detrun_cuda_backend_new(&b, 0, "tensorcore", DETRUN_DETERMINISTIC, err,
                                               sizeof err);
    CHECK(st != DETRUN_OK && b == NULL && err[0], "unknown kernels accepted");
#ifdef DETRUN_GPU_BUILT
    CHECK(st == DETRUN_ERR_ARG && strstr(err, "tensorcore"), "unknown kernels: %d '%s'", st, err);
#else
    CHECK(st == DETRUN_ERR_UNSUPPORTED && strstr(err, "without CUDA"), "no-CUDA build: '%s'", err);
#endif
    err[0] = '\0';
    st = detrun_cuda_backend_new(&b, n, "portable", DETRUN_DETERMINISTIC, err, sizeof err);
    CHECK(st != DETRUN_OK && b == NULL && err[0], "device cuda:%d (one past the last) accepted", n);
    printf("cuda:%d -> %s\n", n, err);
    if (n > 0) {
        st = detrun_cuda_backend_new(&b, 0, "portable", DETRUN_DETERMINISTIC, err, sizeof err);
        CHECK(st == DETRUN_OK && b, "cuda:0 refused: %s", err);
        if (b)
            b->destroy(b);
    }
    if (failures)
        printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
