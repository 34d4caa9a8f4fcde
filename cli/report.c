/*
 * report.c - `detrun report RESULTS.json [-o FILE.html]`: the command's side
 * of lua/html.lua, which draws the page in a script state from the results
 * file alone (the page a run writes at its end).
 *
 * Exit status: 0 written; 1 an unreadable results file or an unwritable
 * page; 2 a usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char report_usage[] =
    "usage: detrun report RESULTS.json [-o FILE.html]\n"
    "  writes the results as one self-contained HTML page (default: RESULTS.html)\n"
    "  -o, --out FILE  the page to write\n";

static int report_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "detrun report: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", report_usage);
    return 2;
}

int detrun_report_main(int argc, char **argv)
{
    const char *json = NULL, *page = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc)
                return report_usage_error("%s needs a file name", a);
            page = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(report_usage, stdout);
            return 0;
        } else if (a[0] == '-' && a[1] != '\0') {
            return report_usage_error("%s: unknown option", a);
        } else if (json != NULL) {
            fprintf(stderr, "detrun report: one results file, not '%s' and '%s'\n%s", json, a,
                    report_usage);
            return 2;
        } else
            json = a;
    }
    if (json == NULL)
        return report_usage_error("%s", "no RESULTS.json given");

    detrun_options ro = DETRUN_OPTIONS_INIT;
    ro.threads = 1;   /* drawing trains nothing */
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    char *args[] = { "report", (char *)json, (char *)page };   /* the chunk's ... from args[1] */
    so.argc = 3;
    so.argv = args;
    detrun_runtime *rt = NULL;
    detrun_script *sc = NULL;
    int status = 0;
    if (detrun_open(&rt, &ro) != DETRUN_OK) {
        fprintf(stderr, "detrun report: %s\n", detrun_errmsg(rt));
        status = 1;
    } else if (detrun_script_open(&sc, rt) != DETRUN_OK) {
        fprintf(stderr, "detrun report: %s\n", detrun_script_errmsg(sc));
        status = 1;
    } else if (detrun_script_set_options(sc, &so) != DETRUN_OK ||
               detrun_script_run_string(sc, "=report", "return require('detrun.html').main(...)",
                                        NULL) != DETRUN_OK) {
        /* The message names the file and what is wrong with it; the
         * traceback would only show the drawing code. */
        const char *msg = detrun_script_errmsg(sc), *tb = strstr(msg, "\nstack traceback:");
        fprintf(stderr, "detrun report: %.*s\n", tb ? (int)(tb - msg) : (int)strlen(msg), msg);
        status = 1;
    }
    detrun_script_close(sc);
    detrun_close(rt);
    return status;
}
