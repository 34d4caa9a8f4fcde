/*
 * lworker.c - the process primitives behind an experiment's jobs (lua/jobs.lua):
 * a worker is a forked copy of the process that runs one cell and talks back
 * over a pipe, one JSON object per line.
 *
 *   core._fork()            -> pid, fd  (parent: the child's pid and the read end;
 *                                        child: 0 and the write end)
 *   core._send(fd, value)   one value as a line of JSON (numbers keep every bit)
 *   core._decode(text)      -> the value of one such line
 *   core._poll(fds)         -> the indexes of the fds that can be read (blocks;
 *                              none when a signal came, e.g. Ctrl-C)
 *   core._cancelled()       -> whether the runtime was asked to stop (detrun_cancel)
 *   core._read(fd)          -> what is there, "" at end of file
 *   core._close(fd)
 *   core._reap(pid)         -> "exit", code | "signal", number (waits for it)
 *   core._terminate(pid)    SIGTERM
 *   core._exit(code)        ends a child: closes its Lua state, then _exit
 *   core._cores()           -> the CPUs this process may run on
 *   core._set_threads(n)    -> the runtime's former thread count
 *
 * Forking is only safe with one thread, so the caller sets the runtime's
 * threads to 1 first (the pool then has no worker threads); each child makes
 * its own pool at its first fit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ldetrun.h"

#define MAX_WORKERS 4096

static int l_fork(lua_State *L)
{
    int fds[2];
    if (pipe(fds) != 0)
        return luaL_error(L, "jobs: cannot make a pipe: %s", strerror(errno));
    pid_t parent = getpid();
    fflush(NULL);   /* else the child would write the parent's buffered output again */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return luaL_error(L, "jobs: cannot start a worker process: %s", strerror(e));
    }
    if (pid == 0) {
        /* A worker dies with the command, however the command ends, and at
         * once: SIGTERM is the command's request to stop at the next step
         * (keeping a checkpoint), which must not follow a SIGKILL of the
         * command and overwrite what was on disk when it died. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        close(fds[0]);
        lua_pushinteger(L, 0);
        lua_pushinteger(L, fds[1]);
        return 2;
    }
    close(fds[1]);
    lua_pushinteger(L, pid);
    lua_pushinteger(L, fds[0]);
    return 2;
}

static int box_gc(lua_State *L)
{
    cJSON **root = lua_touserdata(L, 1);
    cJSON_Delete(*root);
    *root = NULL;
    return 0;
}

/* A userdata that frees the tree it holds when collected, so that a Lua
 * error cannot leak it. */
static cJSON **new_box(lua_State *L)
{
    cJSON **root = lua_newuserdatauv(L, sizeof *root, 0);
    *root = NULL;
    if (luaL_newmetatable(L, "detrun.worker_json")) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return root;
}

static int l_send(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    luaL_checkany(L, 2);
    cJSON **root = new_box(L);
    *root = cJSON_CreateArray();
    if (*root == NULL)
        return luaL_error(L, "jobs: out of memory");
    detrun_lua_to_json(L, 2, *root, NULL, "jobs", DETRUN_JSON_NONFINITE_STRINGS, 0);
    char *text = cJSON_PrintUnformatted(cJSON_GetArrayItem(*root, 0));
    if (text == NULL)
        return luaL_error(L, "jobs: out of memory");
    size_t len = strlen(text), off = 0;
    text[len] = '\n';   /* over the NUL: the line's end; no string functions follow */
    len++;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            cJSON_free(text);
            return luaL_error(L, "jobs: cannot write to the command: %s", strerror(e));
        }
        off += (size_t)n;
    }
    cJSON_free(text);
    return 0;
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    cJSON **root = new_box(L);
    *root = cJSON_ParseWithLength(text, len);
    if (*root == NULL)
        return luaL_error(L, "jobs: a worker sent a line that is not JSON: %.80s", text);
    detrun_lua_push_json(L, *root, DETRUN_JSON_NONFINITE_STRINGS, 0);
    return 1;
}

static int l_poll(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n < 1 || n > MAX_WORKERS)
        return luaL_error(L, "jobs: poll of %d fds", (int)n);
    struct pollfd *p = lua_newuserdatauv(L, (size_t)n * sizeof *p, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        p[i].fd = (int)luaL_checkinteger(L, -1);
        p[i].events = POLLIN;
        p[i].revents = 0;
        lua_pop(L, 1);
    }
    /* A signal (Ctrl-C) ends the wait with nothing ready, so that the
     * caller sees a cancel at once rather than at the next worker's line. */
    int r = poll(p, (nfds_t)n, -1);
    if (r < 0 && errno != EINTR)
        return luaL_error(L, "jobs: poll: %s", strerror(errno));
    lua_newtable(L);
    if (r < 0)
        return 1;
    lua_Integer k = 1;
    for (lua_Integer i = 0; i < n; i++)
        if (p[i].revents != 0) {
            lua_pushinteger(L, i + 1);
            lua_seti(L, -2, k++);
        }
    return 1;
}

static int l_read(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return luaL_error(L, "jobs: cannot read from a worker: %s", strerror(errno));
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int l_close(lua_State *L)
{
    close((int)luaL_checkinteger(L, 1));
    return 0;
}

static int l_reap(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return luaL_error(L, "jobs: cannot wait for worker %d: %s", (int)pid, strerror(errno));
    if (WIFSIGNALED(status)) {
        lua_pushliteral(L, "signal");
        lua_pushinteger(L, WTERMSIG(status));
    } else {
        lua_pushliteral(L, "exit");
        lua_pushinteger(L, WEXITSTATUS(status));
    }
    return 2;
}

static int l_terminate(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    if (pid > 0)
        kill(pid, SIGTERM);
    return 0;
}

/* As os.exit(code, true) does: the state is closed first (its objects freed,
 * so that a leak checker sees a clean child), then the process ends without
 * the host's atexit handlers, which belong to the command. */
static int l_exit(lua_State *L)
{
    int code = (int)luaL_optinteger(L, 1, 0);
    fflush(NULL);
    /* Loaded as a module (the stock interpreter), this code lives in a
     * library that closing the state would unload (the package library's
     * _CLIBS finalizer) before the _exit below runs: keep it loaded. */
    if (lua_getfield(L, LUA_REGISTRYINDEX, "_CLIBS") == LUA_TTABLE && lua_getmetatable(L, -1)) {
        lua_pushnil(L);
        lua_setfield(L, -2, "__gc");
    }
    lua_close(L);
    _exit(code);
    return 0;
}

static int l_cores(lua_State *L)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n < 1) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    lua_pushinteger(L, n);
    return 1;
}

static int l_cancelled(lua_State *L)
{
    lua_pushboolean(L, detrun_cancel_requested(detrun_lua_runtime(L)));
    return 1;
}

static int l_set_threads(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    int n = (int)luaL_checkinteger(L, 1);
    int old = detrun_get_threads(rt);
    if (detrun_set_threads(rt, n) != DETRUN_OK)
        return luaL_error(L, "%s", detrun_errmsg(rt));
    lua_pushinteger(L, old);
    return 1;
}

void detrun_lua_open_worker(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "_fork", l_fork },
        { "_send", l_send },
        { "_decode", l_decode },
        { "_poll", l_poll },
        { "_read", l_read },
        { "_close", l_close },
        { "_reap", l_reap },
        { "_terminate", l_terminate },
        { "_exit", l_exit },
        { "_cores", l_cores },
        { "_set_threads", l_set_threads },
        { "_cancelled", l_cancelled },
        { NULL, NULL }
    };
    luaL_setfuncs(L, funcs, 0);
}
