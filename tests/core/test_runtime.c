/* The runtime handle: open/close, errors, allocator hook, settings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../common.h"


typedef struct counting { long live_blocks; long long live_bytes; long calls; long fail_after; } counting;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counting *c = ud;
    c->calls++;
    if (nsize == 0) {
        if (ptr != NULL) {
            c->live_blocks--;
            c->live_bytes -= (long long)osize;
        }
        free(ptr);
        return NULL;
    }
    if (c->fail_after >= 0 && c->calls > c->fail_after)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p != NULL) {
        if (ptr == NULL)
            c->live_blocks++;
        c->live_bytes += (long long)nsize - (long long)(ptr ? osize : 0);
    }
    return p;
}


int main(void)
{
    CHECK(strcmp(detrun_version(), DETRUN_VERSION) == 0, "version %s", detrun_version());
    CHECK(strcmp(detrun_status_string(DETRUN_OK), "ok") == 0, "status ok");
    CHECK(strstr(detrun_status_string(DETRUN_ERR_NUMERIC), "NaN") != NULL, "numeric string");
    CHECK(detrun_errmsg(NULL) != NULL && strlen(detrun_errmsg(NULL)) > 0, "errmsg(NULL)");
    detrun_close(NULL);

    /* Defaults: all cores, deterministic, cpu. */
    detrun_runtime *rt = NULL;
    detrun_status st = detrun_open(&rt, NULL);
    CHECK(st == DETRUN_OK, "open(NULL options): %s", detrun_errmsg(rt));
    CHECK(detrun_get_threads(rt) == detrun_cpu_count(), "threads %d, cores %d",
          detrun_get_threads(rt), detrun_cpu_count());
    CHECK(detrun_get_mode(rt) == DETRUN_DETERMINISTIC, "mode");
    CHECK(strcmp(detrun_device_name(rt), "cpu") == 0, "device %s", detrun_device_name(rt));
    CHECK(detrun_set_threads(rt, 3) == DETRUN_OK && detrun_get_threads(rt) == 3, "set_threads 3");
    CHECK(detrun_set_threads(rt, -1) == DETRUN_ERR_ARG, "set_threads -1");
    CHECK(strstr(detrun_errmsg(rt), "-1") != NULL, "message names -1: %s", detrun_errmsg(rt));
    CHECK(detrun_get_threads(rt) == 3, "a refused setting leaves the old one");
    CHECK(detrun_set_mode(rt, DETRUN_FAST) == DETRUN_OK && detrun_get_mode(rt) == DETRUN_FAST,
          "set_mode fast");
    CHECK(detrun_set_mode(rt, (detrun_mode)7) == DETRUN_ERR_ARG, "set_mode 7");
    detrun_set_seed(rt, 0x1234567890ull);
    CHECK(detrun_get_seed(rt) == 0x1234567890ull, "seed");
    CHECK(detrun_seterr(rt, DETRUN_ERR_SHAPE, "layer %s step %d", "dense_1", 7) ==
          DETRUN_ERR_SHAPE, "seterr returns its status");
    CHECK(strcmp(detrun_errmsg(rt), "layer dense_1 step 7") == 0, "errmsg %s", detrun_errmsg(rt));
    void *ud = &ud;
    CHECK(detrun_get_allocator(rt, &ud) == rt->alloc && ud == rt->alloc_ud,
          "get_allocator gives the runtime's allocator");
    detrun_close(rt);

    /* Bad options: a handle comes back with a message naming the fault. */
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.device = "tpu:0";
    rt = NULL;
    st = detrun_open(&rt, &o);
    CHECK(st == DETRUN_ERR_DEVICE, "device tpu: status %d", st);
    CHECK(rt != NULL && strstr(detrun_errmsg(rt), "tpu:0") != NULL, "message: %s",
          detrun_errmsg(rt));
    detrun_close(rt);

    o = (detrun_options)DETRUN_OPTIONS_INIT;
    o.device = "cuda:x";
    st = detrun_open(&rt, &o);
    CHECK(st == DETRUN_ERR_DEVICE, "device cuda:x: status %d", st);
    detrun_close(rt);

    o = (detrun_options)DETRUN_OPTIONS_INIT;
    o.threads = -4;
    st = detrun_open(&rt, &o);
    CHECK(st == DETRUN_ERR_ARG && strstr(detrun_errmsg(rt), "threads") != NULL, "threads -4: %s",
          detrun_errmsg(rt));
    detrun_close(rt);

    /* Backend options are key=value items: anything else is refused before
     * any backend sees it; keys of other backends are theirs to check. */
    o = (detrun_options)DETRUN_OPTIONS_INIT;
    o.backend_options = "fastest";
    st = detrun_open(&rt, &o);
    CHECK(st == DETRUN_ERR_ARG && strstr(detrun_errmsg(rt), "fastest") != NULL, "options: %s",
          detrun_errmsg(rt));
    detrun_close(rt);
    o.backend_options = "kernels=portable";
    st = detrun_open(&rt, &o);
    CHECK(st == DETRUN_OK && strcmp(detrun_device_name(rt), "cpu") == 0,
          "cpu with a cuda option: %s", detrun_errmsg(rt));
    detrun_close(rt);

    /* The registry: cpu is always there; it has one device. */
    CHECK(detrun_backend_reg_get(0) != NULL && strcmp(detrun_backend_reg_get(0)->name, "cpu") == 0,
          "the first backend is not cpu");
    CHECK(detrun_backend_reg_find("cpu") == detrun_backend_reg_get(0), "find cpu");
    CHECK(detrun_backend_reg_find("tpu") == NULL, "find tpu");
    o = (detrun_options)DETRUN_OPTIONS_INIT;
    o.device = "cpu:1";
    st = detrun_open(&rt, &o);
    CHECK(st == DETRUN_ERR_DEVICE && strstr(detrun_errmsg(rt), "cpu:1") != NULL, "cpu:1: %s",
          detrun_errmsg(rt));
    detrun_close(rt);
    char list[4096];
    memset(list, 'x', sizeof list);
    CHECK(detrun_list_devices(list, sizeof list, NULL) == DETRUN_OK && memchr(list, '\0', sizeof list) != NULL,
          "device listing");
    if (detrun_backend_reg_find("cuda") == NULL) {
        CHECK(strstr(list, "no cuda device: built without CUDA") != NULL, "listing: %s", list);
        o.device = "cuda:0";
        o.backend_options = "kernels=tensorcore";
        st = detrun_open(&rt, &o);
        CHECK(st == DETRUN_ERR_UNSUPPORTED &&
              strstr(detrun_errmsg(rt), "device cuda:0: no backend 'cuda' in this build "
                                        "(built without CUDA") != NULL,
              "cuda:0 without CUDA: %d %s", st, detrun_errmsg(rt));
        detrun_close(rt);
    }

    /* cuda: without a CUDA build or device the backend says why; the status
     * passes through and the message names the device. */
    o = (detrun_options)DETRUN_OPTIONS_INIT;
    o.device = "cuda:0";
    st = detrun_open(&rt, &o);
    if (st == DETRUN_OK) {
        CHECK(strncmp(detrun_device_name(rt), "cuda:0", 6) == 0, "name %s",
              detrun_device_name(rt));
    } else {
        CHECK(st == DETRUN_ERR_UNSUPPORTED || st == DETRUN_ERR_DEVICE, "cuda:0 status %d", st);
        CHECK(strstr(detrun_errmsg(rt), "cuda:0") != NULL && strlen(detrun_errmsg(rt)) > 12,
              "cuda message: %s", detrun_errmsg(rt));
    }
    detrun_close(rt);

    /* The allocator hook sees every runtime allocation, and everything is
     * given back on close. */
    counting c = { 0, 0, 0, -1 };
    o = (detrun_options)DETRUN_OPTIONS_INIT;
    o.threads = 2;
    o.alloc = counting_alloc;
    o.alloc_ud = &c;
    st = detrun_open(&rt, &o);
    CHECK(st == DETRUN_OK, "open with allocator: %s", detrun_errmsg(rt));
    CHECK(c.live_blocks >= 1, "the handle did not come from the allocator");
    /* The backend's buffers come from the hook too, 64-byte aligned. */
    long blocks = c.live_blocks;
    unsigned char *buf = rt->backend->ops->alloc(rt->backend, 1000);
    CHECK(buf != NULL && ((uintptr_t)buf & 63) == 0 && buf[999] == 0,
          "backend buffer: not aligned or not zeroed");
    CHECK(c.live_blocks == blocks + 1, "the backend buffer did not come from the hook");
    rt->backend->ops->free(rt->backend, buf);
    CHECK(c.live_blocks == blocks, "the backend buffer did not go back to the hook");
    const char *lname = "x";
    CHECK(detrun_error_layer(rt, &lname) == -1 && lname == NULL, "no error, yet a layer");
    void *p = detrun_calloc(rt, 10, 8);
    CHECK(p != NULL && c.live_bytes >= (long long)sizeof(detrun_runtime) + 80, "calloc");
    CHECK(((unsigned char *)p)[79] == 0, "calloc zeroes");
    p = detrun_realloc(rt, p, 80, 160);
    detrun_free(rt, p, 160);
    CHECK(detrun_calloc(rt, (size_t)-1 / 2, 4) == NULL, "calloc overflow is refused");
    detrun_close(rt);
    CHECK(c.live_blocks == 0 && c.live_bytes == 0, "after close: %ld blocks, %lld bytes live",
          c.live_blocks, c.live_bytes);

    /* The handle itself cannot be allocated: a status, and NULL. */
    counting f = { 0, 0, 0, 0 };
    o.alloc_ud = &f;
    rt = (detrun_runtime *)&f;
    st = detrun_open(&rt, &o);
    CHECK(st == DETRUN_ERR_MEMORY && rt == NULL, "failing allocator: status %d", st);

    return test_report("test_runtime");
}
