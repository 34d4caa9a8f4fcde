/*
 * golden.c - golden fingerprint files (docs/regression.md, "Golden files").
 *
 * A golden file is plain text that diffs well: '#' header lines (version,
 * script, options, machine: for people; the options are compared with the
 * run's only to explain a mismatch), then one line per
 * fingerprint, in run order:
 *
 *   deterministic repeat 0 fold 1 epoch 0 <32 hex digits>
 *   deterministic repeat 0 fold 1 final <32 hex digits>
 *   deterministic repeat 0 final <32 hex digits>
 *
 * Only deterministic mode is recorded: fast mode's bits depend on thread
 * timing by design.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define KEY_MAX 128

static detrun_status fail(char *err, detrun_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static detrun_status fail(char *err, detrun_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, DETRUN_GOLDEN_ERR_MAX, fmt, ap);
    va_end(ap);
    return st;
}

typedef struct line {
    char key[KEY_MAX];
    char fp[33];
    int used;
} line;

typedef struct lines {
    line *v;
    size_t n, cap;
    char options[512];   /* a golden file's "# options" header, or "" */
} lines;

static int add(lines *l, const char *key, const char *fp)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        line *nv = realloc(l->v, cap * sizeof *nv);
        if (nv == NULL)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    line *e = &l->v[l->n++];
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->fp, sizeof e->fp, "%s", fp);
    e->used = 0;
    return 0;
}

static int is_fp(const char *s)
{
    if (s == NULL || strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static const char *fp_of(const cJSON *o)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "fingerprint");
    return cJSON_IsString(f) && is_fp(f->valuestring) ? f->valuestring : NULL;
}

static int int_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : -1;
}

/* The golden lines of a run's results. */
static detrun_status from_results(const detrun_results *res, lines *out, char *err)
{
    memset(out, 0, sizeof *out);
    const char *json = detrun_results_json(res);
    cJSON *root = json != NULL ? cJSON_Parse(json) : NULL;
    if (root == NULL)
        return fail(err, DETRUN_ERR_ARG, "golden: the script returned no experiment "
                             "results to take fingerprints from");
    int oom = 0;
    char key[KEY_MAX];
    const cJSON *mode, *rep, *fold, *ep;
    cJSON_ArrayForEach(mode, cJSON_GetObjectItemCaseSensitive(root, "modes")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(mode, "mode");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, "deterministic") != 0)
            continue;
        cJSON_ArrayForEach(rep, cJSON_GetObjectItemCaseSensitive(mode, "repeats")) {
            int r = int_of(rep, "repeat");
            cJSON_ArrayForEach(fold, cJSON_GetObjectItemCaseSensitive(rep, "folds")) {
                int f = int_of(fold, "fold");
                cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(fold, "epochs")) {
                    if (fp_of(ep) == NULL)
                        continue;
                    snprintf(key, sizeof key, "deterministic repeat %d fold %d epoch %d", r, f,
                             int_of(ep, "epoch"));
                    oom |= add(out, key, fp_of(ep));
                }
                if (fp_of(fold) != NULL) {
                    snprintf(key, sizeof key, "deterministic repeat %d fold %d final", r, f);
                    oom |= add(out, key, fp_of(fold));
                }
            }
            if (fp_of(rep) != NULL) {
                snprintf(key, sizeof key, "deterministic repeat %d final", r);
                oom |= add(out, key, fp_of(rep));
            }
        }
    }
    cJSON_Delete(root);
    if (oom)
        return fail(err, DETRUN_ERR_MEMORY, "golden: out of memory");
    if (out->n == 0)
        return fail(err, DETRUN_ERR_ARG, "golden: the results hold no deterministic-mode "
                             "fingerprints (run the deterministic mode to record or check)");
    return DETRUN_OK;
}

detrun_status detrun_golden_write(detrun_runtime *rt, const detrun_results *res,
                                  const char *path, const char *script, const char *options,
                                  char *err)
{
    lines l;
    detrun_status s = from_results(res, &l, err);
    if (s != DETRUN_OK) {
        free(l.v);
        return s;
    }
    char machine[400];
    detrun_machine(rt, machine, sizeof machine);
    size_t cap = 1024 + l.n * (KEY_MAX + 40) + strlen(script) + strlen(options);
    char *text = malloc(cap);
    if (text == NULL) {
        free(l.v);
        return fail(err, DETRUN_ERR_MEMORY, "golden: out of memory");
    }
    size_t k = (size_t)snprintf(text, cap,
                                "# detrun golden fingerprints, format 1\n"
                                "# detrun %s\n# script %s\n# options %s\n# machine %s\n"
                                "# fast mode is not recorded: its bits depend on thread timing\n",
                                DETRUN_VERSION, script, options, machine);
    for (size_t i = 0; i < l.n && k < cap; i++)
        k += (size_t)snprintf(text + k, cap - k, "%s %s\n", l.v[i].key, l.v[i].fp);
    const void *parts[1] = { text };
    size_t lens[1] = { strlen(text) };
    s = detrun_write_atomic(rt, path, parts, lens, 1);
    if (s != DETRUN_OK)
        fail(err, s, "%s", detrun_errmsg(rt));
    free(text);
    free(l.v);
    return s;
}

/* Reads a golden file's lines; a line that is not "<key> <fingerprint>" is
 * an error naming the file and the line. */
static detrun_status read_golden(const char *path, lines *out, char *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return fail(err, DETRUN_ERR_IO, "%s: cannot open the golden file: %s", path,
                             strerror(errno));
    char buf[512];
    int lineno = 0;
    detrun_status s = DETRUN_OK;
    while (s == DETRUN_OK && fgets(buf, sizeof buf, f) != NULL) {
        lineno++;
        size_t len = strlen(buf);
        if (len == sizeof buf - 1 && buf[len - 1] != '\n') {
            s = fail(err, DETRUN_ERR_FORMAT, "%s:%d: line too long", path, lineno);
            break;
        }
        buf[strcspn(buf, "\r\n")] = '\0';
        if (strncmp(buf, "# options ", 10) == 0 && out->options[0] == '\0')
            snprintf(out->options, sizeof out->options, "%s", buf + 10);
        if (buf[0] == '#' || buf[0] == '\0')
            continue;
        char *sp = strrchr(buf, ' ');
        if (sp == NULL || !is_fp(sp + 1) || sp - buf >= KEY_MAX ||
            strncmp(buf, "deterministic repeat ", 21) != 0) {
            s = fail(err, DETRUN_ERR_FORMAT, "%s:%d: not a golden line (want "
                              "'deterministic repeat R [fold F] epoch E|final <32 hex digits>')",
                              path, lineno);
            break;
        }
        *sp = '\0';
        for (size_t i = 0; i < out->n && s == DETRUN_OK; i++)
            if (strcmp(out->v[i].key, buf) == 0)
                s = fail(err, DETRUN_ERR_FORMAT, "%s:%d: '%s' appears twice", path,
                                  lineno, buf);
        if (s == DETRUN_OK && add(out, buf, sp + 1) != 0)
            s = fail(err, DETRUN_ERR_MEMORY, "golden: out of memory");
    }
    if (s == DETRUN_OK && ferror(f))
        s = fail(err, DETRUN_ERR_IO, "%s: cannot read", path);
    fclose(f);
    if (s == DETRUN_OK && out->n == 0)
        s = fail(err, DETRUN_ERR_FORMAT, "%s: no fingerprints in the golden file", path);
    if (s != DETRUN_OK) {
        free(out->v);
        memset(out, 0, sizeof *out);
    }
    return s;
}

detrun_status detrun_golden_check(const detrun_results *res, const char *path,
                                  const char *options, FILE *report, FILE *mismatch_report,
                                  int *mismatch, char *err)
{
    *mismatch = 0;
    lines want, got;
    detrun_status s = read_golden(path, &want, err);
    if (s != DETRUN_OK)
        return s;
    s = from_results(res, &got, err);
    if (s != DETRUN_OK) {
        free(want.v);
        free(got.v);
        return s;
    }
    size_t differ = 0, missing = 0, extra = 0;
    const line *first = NULL, *first_got = NULL;
    for (size_t i = 0; i < want.n; i++) {
        const line *g = NULL;
        for (size_t j = 0; j < got.n && g == NULL; j++)
            if (!got.v[j].used && strcmp(got.v[j].key, want.v[i].key) == 0) {
                got.v[j].used = 1;
                g = &got.v[j];
            }
        if (g != NULL && strcmp(g->fp, want.v[i].fp) == 0)
            continue;
        if (g == NULL)
            missing++;
        else
            differ++;
        if (first == NULL) {
            first = &want.v[i];
            first_got = g;
        }
    }
    const line *first_extra = NULL;
    for (size_t j = 0; j < got.n; j++)
        if (!got.v[j].used) {
            extra++;
            if (first_extra == NULL)
                first_extra = &got.v[j];
        }
    *mismatch = differ + missing + extra > 0;
    if (!*mismatch && report != NULL)
        fprintf(report, "golden check: %zu fingerprints match %s\n", want.n, path);
    FILE *mr = mismatch_report;
    if (*mismatch && mr != NULL) {
        fprintf(mr, "golden check: %s does not match the run (%zu differ, %zu missing, "
                "%zu new)\n", path, differ, missing, extra);
        if (first != NULL)
            fprintf(mr, "  first difference: %s\n    expected %s\n    got      %s\n",
                    first->key, first->fp, first_got != NULL ? first_got->fp : "(none)");
        else
            fprintf(mr, "  first difference: %s\n    expected (none)\n    got      %s\n",
                    first_extra->key, first_extra->fp);
        detrun_golden_compare_options(want.options[0] ? want.options : NULL, options, mr);
    }
    free(want.v);
    free(got.v);
    return DETRUN_OK;
}
