/* The trace file and the first divergence (docs/regression.md, "Traces"),
 * on tensors written by hand: equal traces agree; one changed value is
 * found at its fit, step and tensor with the fingerprint the determinism
 * contract defines; values give the largest differences and are dumped;
 * traces of other shapes, cut short, foreign or of another version are
 * reported as such. */
#include <math.h>
#include <stdint.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regress_util.h"
#include "trace.h"

#define N 50

/* A little "run": 2 fits of 5 steps, each step an output, a gradient and a
 * parameter. (fit, step, which, element) picks one value to move by delta. */
typedef struct change {
    int fit, step, which;
    size_t element;
    float delta;
} change;

static void values(float *v, int fit, int step, int which)
{
    for (int i = 0; i < N; i++)
        v[i] = (float)((fit + 1) * 1000 + step * 10 + which) / (float)(i + 1);
}

static detrun_status write_run(detrun_runtime *rt, const char *path, unsigned flags, int every,
                               int steps, const change *ch)
{
    detrun_trace *tr;
    detrun_status s = detrun_trace_open(rt, path, every, flags, "{\"test\":true}", &tr);
    if (s != DETRUN_OK)
        return s;
    float v[N];
    int wdims[2] = { 5, 10 }, odims[3] = { 2, 5, 1 };
    for (int fit = 0; fit < 2 && s == DETRUN_OK; fit++) {
        detrun_trace_set_label(tr, fit == 0 ? "fold 0" : "fold 1");
        s = detrun_trace_fit(tr, fit == 0 ? DETRUN_DETERMINISTIC : DETRUN_FAST, 7, (uint32_t)fit,
                             NULL);
        for (int step = 0; step < steps && s == DETRUN_OK; step++) {
            if (!detrun_trace_wants(tr, (uint64_t)step))
                continue;
            s = detrun_trace_step(tr, step / 2, (uint64_t)step);
            const char *names[3] = { "dense_1.output", "dense_1.weight.grad", "dense_1.weight" };
            detrun_trace_kind kinds[3] = { DETRUN_TRACE_OUTPUT, DETRUN_TRACE_GRAD,
                                           DETRUN_TRACE_PARAM };
            for (int w = 0; w < 3 && s == DETRUN_OK; w++) {
                values(v, fit, step, w);
                if (ch != NULL && ch->fit == fit && ch->step == step && ch->which == w)
                    v[ch->element] += ch->delta;
                s = detrun_trace_tensor(tr, kinds[w], 0, names[w], w == 0 ? 3 : 2,
                                        w == 0 ? odims : wdims, v, N);
            }
        }
    }
    if (s != DETRUN_OK) {
        detrun_trace_discard(tr);
        return s;
    }
    return detrun_trace_close(rt, tr);
}

static void diff_fails(detrun_runtime *rt, const char *a, const char *b, detrun_status want,
                       const char *text, const char *why)
{
    detrun_trace_divergence d;
    detrun_status s = detrun_trace_diff(rt, a, b, NULL, &d);
    if (getenv("DETRUN_TEST_VERBOSE") != NULL)
        printf("%s: %s\n", why, detrun_errmsg(rt));
    CHECK(s == want, "%s: status %d, want %d", why, (int)s, (int)want);
    CHECK(strstr(detrun_errmsg(rt), text) != NULL, "%s: message '%s' lacks '%s'", why,
          detrun_errmsg(rt), text);
}

int main(void)
{
    detrun_runtime *rt = test_runtime();
    char dir[] = "/tmp/detrun-trace-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char a[256], b[256], c[256], prefix[256], path[300];
    snprintf(a, sizeof a, "%s/a.trace", dir);
    snprintf(b, sizeof b, "%s/b.trace", dir);
    snprintf(c, sizeof c, "%s/c.trace", dir);
    snprintf(prefix, sizeof prefix, "%s/dump", dir);
    detrun_trace_divergence d;

    for (unsigned flags = 0; flags <= DETRUN_TRACE_VALUES; flags++) {
        /* Same run twice: no difference. */
        CHECK(write_run(rt, a, flags, 1, 5, NULL) == DETRUN_OK, "write a: %s", detrun_errmsg(rt));
        CHECK(write_run(rt, b, flags, 1, 5, NULL) == DETRUN_OK, "write b: %s", detrun_errmsg(rt));
        glob_t g;
        snprintf(path, sizeof path, "%s.*.tmp", a);
        CHECK(glob(path, 0, NULL, &g) == GLOB_NOMATCH, "temporary file left behind");
        globfree(&g);
        CHECK(detrun_trace_diff(rt, a, b, prefix, &d) == DETRUN_OK, "diff: %s", detrun_errmsg(rt));
        CHECK(!d.differ, "equal traces reported as different: %s", d.what);
        /* 2 fits x (fit + 5 steps x (step + 3 tensors)) + 3 names. */
        CHECK(d.records == 2 * (1 + 5 * 4), "records %llu", (unsigned long long)d.records);

        /* One value of the gradient of fit 1, step 3 moves by one ulp-ish. */
        change ch = { 1, 3, 1, 17, 0.0f };
        float v[N];
        values(v, 1, 3, 1);
        ch.delta = nextafterf(v[17], INFINITY) - v[17];
        CHECK(write_run(rt, b, flags, 1, 5, &ch) == DETRUN_OK, "write b': %s", detrun_errmsg(rt));
        unlink(prefix);
        CHECK(detrun_trace_diff(rt, a, b, prefix, &d) == DETRUN_OK, "diff: %s", detrun_errmsg(rt));
        CHECK(d.differ && !d.structural, "a moved value not found");
        CHECK(d.fit == 1 && d.mode == DETRUN_FAST && d.stream == 1 &&
              strcmp(d.label, "fold 1") == 0, "fit %u %d %u '%s'", d.fit, (int)d.mode, d.stream,
              d.label);
        CHECK(d.step == 3 && d.epoch == 1, "step %llu epoch %d", (unsigned long long)d.step,
              d.epoch);
        CHECK(d.kind == DETRUN_TRACE_GRAD && strcmp(d.name, "dense_1.weight.grad") == 0,
              "tensor %s", d.name);
        /* The fingerprints are those of docs/determinism.md. */
        char want[33];
        int wdims[2] = { 5, 10 };
        detrun_fingerprint_tensor("dense_1.weight.grad", 2, wdims, v, want);
        CHECK(strcmp(d.fingerprint_a, want) == 0, "fingerprint a %s, want %s", d.fingerprint_a,
              want);
        v[17] += ch.delta;
        detrun_fingerprint_tensor("dense_1.weight.grad", 2, wdims, v, want);
        CHECK(strcmp(d.fingerprint_b, want) == 0, "fingerprint b %s, want %s", d.fingerprint_b,
              want);
        if (flags & DETRUN_TRACE_VALUES) {
            v[17] -= ch.delta;
            CHECK(d.have_values && d.count == N && d.differing == 1, "values: %d %zu %zu",
                  d.have_values, d.count, d.differing);
            CHECK(d.max_abs == (double)ch.delta && d.max_abs_at == 17, "max abs %g at %zu",
                  d.max_abs, d.max_abs_at);
            double rel = (double)ch.delta / fabs((double)v[17] + (double)ch.delta);
            CHECK(d.max_rel == rel && d.max_rel_at == 17, "max rel %g at %zu, want %g",
                  d.max_rel, d.max_rel_at, rel);
            size_t len;
            snprintf(path, sizeof path, "%s.a.f32", prefix);
            unsigned char *da = slurp(path, &len);
            CHECK(da != NULL && len == 4 * N && memcmp(da, v, 4 * N) == 0, "dump a");
            free(da);
            unlink(path);
            snprintf(path, sizeof path, "%s.b.f32", prefix);
            unsigned char *db = slurp(path, &len);
            v[17] += ch.delta;
            CHECK(db != NULL && len == 4 * N && memcmp(db, v, 4 * N) == 0, "dump b");
            free(db);
            unlink(path);
        } else {
            CHECK(!d.have_values, "values reported without values");
        }

        /* An earlier change wins: the output of fit 0, step 1. */
        change early = { 0, 1, 0, 3, 1.0f };
        CHECK(write_run(rt, b, flags, 1, 5, &early) == DETRUN_OK, "write: %s", detrun_errmsg(rt));
        CHECK(detrun_trace_diff(rt, a, b, NULL, &d) == DETRUN_OK, "diff: %s", detrun_errmsg(rt));
        CHECK(d.differ && d.fit == 0 && d.step == 1 && d.kind == DETRUN_TRACE_OUTPUT,
              "early change: fit %u step %llu kind %d", d.fit, (unsigned long long)d.step,
              (int)d.kind);
        CHECK(!(flags & DETRUN_TRACE_VALUES) || d.max_abs == 1.0, "max abs %g", d.max_abs);

        /* A run with more steps: the traces differ in structure. */
        CHECK(write_run(rt, b, flags, 1, 6, NULL) == DETRUN_OK, "write: %s", detrun_errmsg(rt));
        CHECK(detrun_trace_diff(rt, a, b, NULL, &d) == DETRUN_OK, "diff: %s", detrun_errmsg(rt));
        CHECK(d.differ && d.structural && strstr(d.what, "step 5") != NULL, "structural: %s",
              d.what);
    }

    /* Every 2nd step only. */
    CHECK(write_run(rt, a, 0, 2, 5, NULL) == DETRUN_OK, "write: %s", detrun_errmsg(rt));
    CHECK(write_run(rt, b, 0, 2, 5, NULL) == DETRUN_OK, "write: %s", detrun_errmsg(rt));
    CHECK(detrun_trace_diff(rt, a, b, NULL, &d) == DETRUN_OK && !d.differ &&
          d.records == 2 * (1 + 3 * 4), "every 2: records %llu", (unsigned long long)d.records);
    change odd = { 0, 1, 2, 0, 5.0f };   /* step 1 is not recorded */
    CHECK(write_run(rt, b, 0, 2, 5, &odd) == DETRUN_OK, "write: %s", detrun_errmsg(rt));
    CHECK(detrun_trace_diff(rt, a, b, NULL, &d) == DETRUN_OK && !d.differ,
          "an unrecorded step was seen");

    /* Damaged and foreign files. */
    size_t len;
    unsigned char *good = slurp(a, &len);
    CHECK(good != NULL && len > 100, "slurp");
    spit(c, good, len - 5);
    diff_fails(rt, a, c, DETRUN_ERR_FORMAT, "cut short", "cut short");
    spit(c, good, 30);
    diff_fails(rt, a, c, DETRUN_ERR_FORMAT, "cut short", "cut in the header JSON");
    good[8] = 9;
    spit(c, good, len);
    diff_fails(rt, c, a, DETRUN_ERR_FORMAT, "version 9", "version 9");
    good[8] = 1;
    good[len - 9] = 'Q';   /* the end record's type byte */
    spit(c, good, len);
    diff_fails(rt, a, c, DETRUN_ERR_FORMAT, "unknown record type", "unknown record");
    spit(c, "hello, world\n", 13);
    diff_fails(rt, c, a, DETRUN_ERR_FORMAT, "not a detrun trace", "a text file");
    snprintf(path, sizeof path, "%s/missing.trace", dir);
    diff_fails(rt, a, path, DETRUN_ERR_IO, "missing.trace", "a missing file");
    free(good);

    /* Bad arguments. */
    detrun_trace *tr;
    CHECK(detrun_trace_open(rt, a, 0, 0, NULL, &tr) == DETRUN_ERR_ARG && tr == NULL, "every 0");
    snprintf(path, sizeof path, "%s/no/such/dir/x.trace", dir);
    CHECK(detrun_trace_open(rt, path, 1, 0, NULL, &tr) == DETRUN_ERR_IO && tr == NULL &&
          strstr(detrun_errmsg(rt), "no/such/dir") != NULL, "unwritable: %s", detrun_errmsg(rt));

    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
    detrun_close(rt);
    return test_report("test_trace");
}
