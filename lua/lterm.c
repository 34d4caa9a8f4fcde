/*
 * lterm.c - what the progress line needs to know about the terminal.
 */
#include <sys/ioctl.h>
#include <unistd.h>

#include "ldetrun.h"

/* core.term_width() -> the columns of the terminal on stderr (where progress
 * goes); 80 when stderr is not a terminal or does not say. A redrawn line
 * longer than this would wrap, and each redraw would become a new line. */
int detrun_lua_term_width(lua_State *L)
{
    struct winsize ws;
    int cols = 80;
    if (isatty(STDERR_FILENO) && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        cols = ws.ws_col;
    lua_pushinteger(L, cols);
    return 1;
}
