/* The sandbox through the C API: hostile scripts run on one script handle,
 * each refused with a clear message while the host goes on, and a normal
 * experiment gives the same fingerprint with and without the sandbox.
 *   test_sandbox WORK_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "detrun_script.h"

#include "../common.h"

static detrun_runtime *rt;
static char work[2048], out[2100], outside[2100];

/* Runs code; the status is `want` and the message holds `needle`. */
static void expect(detrun_script *sc, const char *what, const char *code, detrun_status want,
                   const char *needle)
{
    detrun_results *res = NULL;
    detrun_status st = detrun_script_run_string(sc, what, code, &res);
    const char *msg = detrun_script_errmsg(sc);
    CHECK(st == want, "%s: status %d, not %d (%s)", what, (int)st, (int)want, msg);
    if (st != DETRUN_OK && needle != NULL)
        CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle);
    if (st == want)
        printf("ok   %s\n", what);
    detrun_results_free(res);
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static detrun_script *open_handle(int sandbox, size_t memory, uint64_t instructions)
{
    detrun_script *sc = NULL;
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.data_dir = getenv("DETRUN_TEST_DATA");
    so.out_dir = out;
    so.verbosity = 0;
    so.sandbox = sandbox;
    so.memory_limit = memory;
    so.instruction_limit = instructions;
    if (detrun_script_open(&sc, rt) != DETRUN_OK ||
        detrun_script_set_options(sc, &so) != DETRUN_OK) {
        printf("FAIL opening a script handle: %s\n", detrun_script_errmsg(sc));
        exit(1);
    }
    return sc;
}

/* The library, the process and the files a sandboxed script must not reach. */
static void escapes(detrun_script *sc)
{
    char code[8192], marker[2200];
    snprintf(marker, sizeof marker, "%s/executed", work);
    expect(sc, "io.open", "return io.open('/etc/passwd'):read('a')", DETRUN_ERR_SCRIPT,
           "io: not available in the sandbox");
    snprintf(code, sizeof code, "os.execute('touch %s')", marker);
    expect(sc, "os.execute", code, DETRUN_ERR_SCRIPT, "os.execute: not available");
    CHECK(!exists(marker), "os.execute ran a command: %s exists", marker);
    expect(sc, "os.exit", "os.exit(0)", DETRUN_ERR_SCRIPT, "os.exit: not available");
    expect(sc, "os.getenv", "return os.getenv('HOME')", DETRUN_ERR_SCRIPT, "os.getenv");
    expect(sc, "os.remove", "os.remove('/tmp/x')", DETRUN_ERR_SCRIPT, "os.remove");
    expect(sc, "require of a C module", "require 'lpeg'", DETRUN_ERR_SCRIPT,
           "require \"lpeg\": refused by the sandbox");
    expect(sc, "require of a standard library", "return require('io').open", DETRUN_ERR_SCRIPT,
           "require \"io\": refused");
    expect(sc, "require of a detrun name that is no module", "require 'detrun.evil'",
           DETRUN_ERR_SCRIPT, "require \"detrun.evil\": refused");
    expect(sc, "package.loadlib", "package.loadlib('libc.so.6', 'system')", DETRUN_ERR_SCRIPT,
           "package: not available");
    expect(sc, "dofile", "dofile('/etc/passwd')", DETRUN_ERR_SCRIPT, "dofile: not available");
    expect(sc, "loadfile", "loadfile('/etc/passwd')", DETRUN_ERR_SCRIPT, "loadfile");
    expect(sc, "load of a binary chunk", "assert(load(string.dump(function() end)))",
           DETRUN_ERR_SCRIPT, "attempt to load a binary chunk");
    expect(sc, "load of a binary chunk, mode b", "assert(load(string.dump(print), 'x', 'b'))",
           DETRUN_ERR_SCRIPT, "binary chunk");
    expect(sc, "load of text sees the sandbox's globals",
           "assert(load('return io'))()", DETRUN_ERR_SCRIPT, "io: not available");
    expect(sc, "load of text works", "assert(load('return 1 + 1')() == 2)", DETRUN_OK, NULL);
    expect(sc, "debug", "debug.getregistry()['detrun.runtime'] = 1", DETRUN_ERR_SCRIPT,
           "debug: not available");
    expect(sc, "a __gc finalizer", "setmetatable({}, { __gc = function() while true do end end })",
           DETRUN_ERR_SCRIPT, "__gc is refused by the sandbox");
    expect(sc, "the allowed libraries",
           "assert(os.time() > 0 and os.clock() >= 0 and os.date('%Y') and string.rep('a', 3) "
           "and table.concat({ 1, 2 }) == '12' and math.floor(2.5) == 2 and utf8.char(72) == 'H' "
           "and coroutine.wrap(function() return 1 end)() == 1)",
           DETRUN_OK, NULL);
}

/* Files: only the data and output folders, with no way out by ".." or a link. */
static void paths(detrun_script *sc)
{
    char code[8192], link[2200], escaped[2200];
    expect(sc, "/etc/passwd through dr.data.idx",
           "local dr = require 'detrun'; return dr.data.idx('/etc/passwd', '/etc/passwd')",
           DETRUN_ERR_SCRIPT, "dr.data.idx: /etc/passwd: refused by the sandbox");
    expect(sc, "/etc through dr.data.mnist",
           "local dr = require 'detrun'; return dr.data.mnist { dir = '/etc' }.train",
           DETRUN_ERR_SCRIPT, "dr.data.mnist: /etc: refused by the sandbox");
    snprintf(escaped, sizeof escaped, "%s/escape.npy", work);
    snprintf(code, sizeof code,
             "local dr = require 'detrun'; dr.tensor.zeros { 2 }:save('%s/../escape.npy')", out);
    expect(sc, "a path escape by ..", code, DETRUN_ERR_SCRIPT, "refused by the sandbox");
    CHECK(!exists(escaped), "the escape by .. wrote %s", escaped);
    snprintf(link, sizeof link, "%s/etc", out);
    if (symlink("/etc", link) != 0 && !exists(link))
        printf("FAIL cannot make the link %s\n", link);
    snprintf(code, sizeof code,
             "local dr = require 'detrun'; return dr.data.idx('%s/passwd', '%s/passwd')", link,
             link);
    expect(sc, "a link out of the output folder (read)", code, DETRUN_ERR_SCRIPT,
           "refused by the sandbox");
    snprintf(link, sizeof link, "%s/t10k-labels-idx1-ubyte", out);
    if (symlink("/etc/passwd", link) != 0 && !exists(link))
        printf("FAIL cannot make the link %s\n", link);
    snprintf(code, sizeof code,
             "local dr = require 'detrun'; return dr.data.mnist { dir = '%s' }.test", out);
    expect(sc, "a data file that links out of the folder", code, DETRUN_ERR_SCRIPT,
           "t10k-labels-idx1-ubyte: refused by the sandbox");
    snprintf(link, sizeof link, "%s/outside", out);
    if (symlink(outside, link) != 0 && !exists(link))
        printf("FAIL cannot make the link %s\n", link);
    snprintf(code, sizeof code,
             "local dr = require 'detrun'; dr.tensor.zeros { 2 }:save('%s/t.npy')", link);
    expect(sc, "a link out of the output folder (write)", code, DETRUN_ERR_SCRIPT,
           "refused by the sandbox");
    snprintf(escaped, sizeof escaped, "%s/t.npy", outside);
    CHECK(!exists(escaped), "the write through a link made %s", escaped);
    snprintf(code, sizeof code,
             "local dr = require 'detrun'; local t = dr.tensor.arange(4)\n"
             "assert(t:save('%s/t.npy'))\n"
             "local u = assert(dr.tensor.load('%s/t.npy'))\n"
             "assert(u:fingerprint() == t:fingerprint())", out, out);
    expect(sc, "tensor save and load inside the output folder", code, DETRUN_OK, NULL);
    expect(sc, "a cell record outside the output folder, through detrun.core",
           "require('detrun.core')._record_write('/tmp/evil.json', {})", DETRUN_ERR_SCRIPT,
           "record: /tmp/evil.json: refused by the sandbox");
}

/* The binding's objects and registry slots. */
static void tampering(detrun_script *sc)
{
    expect(sc, "getmetatable of a tensor gives its name",
           "local dr = require 'detrun'\n"
           "error('VERDICT ' .. tostring(getmetatable(dr.tensor.zeros { 1 })))",
           DETRUN_ERR_SCRIPT, "VERDICT detrun.tensor");
    expect(sc, "the tensor metatable cannot be changed",
           "local dr = require 'detrun'; getmetatable(dr.tensor.zeros { 1 }).__index = nil",
           DETRUN_ERR_SCRIPT, "attempt to index a string value");
    expect(sc, "setmetatable on a userdata",
           "local dr = require 'detrun'; setmetatable(dr.run(), {})",
           DETRUN_ERR_SCRIPT, "table expected");
    expect(sc, "the string metatable is hidden",
           "error('VERDICT ' .. tostring(getmetatable('')))", DETRUN_ERR_SCRIPT, "VERDICT nil");
    expect(sc, "the library copies are the script's own",
           "string.rep = nil; assert(('a'):rep(2) == 'aa'); error('VERDICT done')",
           DETRUN_ERR_SCRIPT, "VERDICT done");
    expect(sc, "the binding still works after a tampering attempt",
           "local dr = require 'detrun'\n"
           "assert(dr.tensor.ones { 3 }:fingerprint() == dr.tensor.ones { 3 }:fingerprint())",
           DETRUN_OK, NULL);
}

/* The limits: each ends the script, never the host. */
static void limits(detrun_script *sc)
{
    expect(sc, "an infinite loop", "while true do end", DETRUN_ERR_SCRIPT,
           "ran past its instruction budget of 10000000 Lua instructions");
    expect(sc, "an infinite loop under pcall",
           "while true do pcall(function() while true do end end) end", DETRUN_ERR_SCRIPT,
           "instruction budget");
    expect(sc, "an infinite loop in a coroutine",
           "while true do coroutine.resume(coroutine.create(function() while true do end end)) "
           "end", DETRUN_ERR_SCRIPT, "instruction budget");
    expect(sc, "an unbounded table",
           "local t = {}; local i = 0; while true do i = i + 1; t[i] = { i } end",
           DETRUN_ERR_MEMORY, "Lua heap reached its limit of 67108864 bytes");
    expect(sc, "a huge string", "local s = string.rep('x', 1 << 30)", DETRUN_ERR_MEMORY,
           "limit of 67108864 bytes");
    expect(sc, "an unbounded table under pcall",
           "local t = {}; for r = 1, 1000 do pcall(function() local i = 0\n"
           "while true do i = i + 1; t[#t + 1] = i end end) end", DETRUN_ERR_SCRIPT,
           "instruction budget");
}

/* A non-sandboxed script that writes a file handle into the runtime's
 * registry slot gets an error, not a crash. */
static void registry_slot(void)
{
    detrun_script *sc = open_handle(0, 0, 0);
    expect(sc, "a FILE* in the runtime's registry slot",
           "local dr = require 'detrun'\n"
           "debug.getregistry()['detrun.runtime'] = io.stdout\n"
           "return dr.tensor.zeros { 1 }", DETRUN_ERR_SCRIPT, "no runtime");
    expect(sc, "getmetatable of the binding's objects gives their names",
           "local dr = require 'detrun'\n"
           "assert(getmetatable(dr.run()) == 'detrun.run')", DETRUN_OK, NULL);
    detrun_script_close(sc);
}

static int host_answer(lua_State *L)
{
    lua_pushinteger(L, 42);
    return 1;
}

/* What the docs promise besides: the host's functions in the sandbox, the
 * limits without it, no writes without an output folder. */
static void promises(void)
{
    detrun_script *sc = open_handle(1, 0, 0);
    CHECK(detrun_script_register(sc, "host_answer", host_answer) == DETRUN_OK, "register: %s",
          detrun_script_errmsg(sc));
    expect(sc, "a host's function in the sandbox", "assert(host_answer() == 42)", DETRUN_OK,
           NULL);
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.sandbox = 1;
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_OK, "set_options: %s",
          detrun_script_errmsg(sc));
    expect(sc, "no output folder: no writes",
           "local dr = require 'detrun'; dr.tensor.zeros { 1 }:save('t.npy')", DETRUN_ERR_SCRIPT,
           "writes only inside the output folder (none)");
    detrun_script_close(sc);
    sc = open_handle(0, (size_t)32 << 20, 1000000);
    expect(sc, "the instruction budget without the sandbox", "while true do end",
           DETRUN_ERR_SCRIPT, "instruction budget of 1000000 Lua instructions");
    expect(sc, "the memory limit without the sandbox", "local s = string.rep('x', 1 << 26)",
           DETRUN_ERR_MEMORY, "limit of 33554432 bytes");
    detrun_script_close(sc);
    sc = open_handle(1, 100, 0);
    expect(sc, "a memory limit too small for Lua itself", "", DETRUN_ERR_MEMORY,
           "limit of 100 bytes");
    detrun_script_close(sc);
    sc = open_handle(0, 0, 0);
    expect(sc, "io without the sandbox", "assert(io.open ~= nil and os.getenv ~= nil)", DETRUN_OK,
           NULL);
    detrun_script_close(sc);
}

static const char experiment[] =
    "local dr = require 'detrun'\n"
    "return dr.experiment { name = 'same', seed = 3, data = dr.data.mnist().train,\n"
    "  limit = 300, folds = 2, repeats = 1, modes = { 'deterministic' },\n"
    "  model = function() return dr.nn.sequential { dr.nn.flatten(),\n"
    "    dr.nn.dense { units = 16, activation = 'relu' },\n"
    "    dr.nn.dense { units = 10, activation = 'softmax' } } end,\n"
    "  compile = { optimizer = dr.optim.adam {} }, fit = { epochs = 1, batch = 50 } }\n";

/* The fingerprint of the experiment above, or "" on failure. */
static void fingerprint(detrun_script *sc, char fp[33])
{
    detrun_results *res = NULL;
    fp[0] = '\0';
    if (detrun_script_run_string(sc, "=same", experiment, &res) != DETRUN_OK) {
        CHECK(0, "the experiment failed: %s", detrun_script_errmsg(sc));
        return;
    }
    const char *f = detrun_results_fingerprint(res, "deterministic", 0);
    if (f != NULL)
        snprintf(fp, 33, "%s", f);
    detrun_results_free(res);
}

static int write_chunk(lua_State *L, const void *p, size_t n, void *ud)
{
    (void)L;
    return fwrite(p, 1, n, ud) == n ? 0 : 1;
}

/* A script file that is bytecode: Lua does not check bytecode, so the
 * sandbox runs source text only. */
static void bytecode_file(detrun_script *sc)
{
    char path[2200];
    snprintf(path, sizeof path, "%s/chunk.luac", work);
    lua_State *L = luaL_newstate();
    FILE *f = fopen(path, "wb");
    int ok = L != NULL && f != NULL && luaL_loadstring(L, "return nil") == LUA_OK &&
             lua_dump(L, write_chunk, f, 0) == 0;
    if (f != NULL)
        fclose(f);
    if (L != NULL)
        lua_close(L);
    CHECK(ok, "cannot write %s", path);
    detrun_status st = detrun_script_run_file(sc, path, NULL);
    CHECK(st == DETRUN_ERR_SCRIPT && strstr(detrun_script_errmsg(sc), "binary chunk") != NULL &&
              strstr(detrun_script_errmsg(sc), "chunk.luac") != NULL,
          "a bytecode file: status %d, %s", (int)st, detrun_script_errmsg(sc));
    printf("ok   a bytecode file is refused\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_sandbox WORK_DIR\n");
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    snprintf(out, sizeof out, "%s/out", work);
    snprintf(outside, sizeof outside, "%s/outside", work);
    mkdir(work, 0777);
    mkdir(out, 0777);
    mkdir(outside, 0777);
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 2;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        printf("FAIL detrun_open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_script *sc = open_handle(1, (size_t)64 << 20, 10000000);
    escapes(sc);
    paths(sc);
    tampering(sc);
    limits(sc);
    bytecode_file(sc);
    char fp_sandboxed[33], fp_plain[33];
    fingerprint(sc, fp_sandboxed);
    detrun_script_close(sc);
    registry_slot();
    promises();
    sc = open_handle(0, 0, 0);
    fingerprint(sc, fp_plain);
    detrun_script_close(sc);
    CHECK(fp_plain[0] != '\0' && strcmp(fp_plain, fp_sandboxed) == 0,
          "the experiment's fingerprint: %s in the sandbox, %s without", fp_sandboxed, fp_plain);
    detrun_close(rt);
    return test_report("test_sandbox");
}
