-- detrun.jobs: the cells of a grid, up to `jobs` of them at once.
--
-- With one job the cells run here, one after the other. With more, each cell
-- runs in a worker: a fork of this process made after the data set was
-- loaded, so the worker shares the data set's pages with the command instead
-- of a copy, and has the script's model() and callbacks in its own copy of
-- the Lua state (no Lua state is ever used by two threads). A worker trains
-- its one cell on threads / jobs threads and sends its progress and its
-- record back over a pipe, one JSON line each; the command writes every
-- record, so the files are the same whoever ran the cell
-- (docs/architecture.md says why processes and not threads).
--
-- The order cells start in: plan order, except that a cell of repeat r > 0
-- waits until the cell (mode, repeat 0, fold) that it follows has finished,
-- since later repeats may read what repeat 0 leaves beside its record.
local core = require "detrun.core"

local jobs = {}

-- A cell as messages name it: repeats and folds counted from 1, as the
-- progress display and the script's model(cell) count them (records and
-- file names keep the 0-based numbers).
function jobs.label(cell)
  return string.format("%s repeat %d fold %d", cell.mode, cell["repeat"] + 1, cell.fold + 1)
end

local function key(mode, r, f) return mode .. "/" .. r .. "/" .. f end

-- The number of cells in flight: a count, or "auto" for one per core.
-- Devices other than the CPU run one cell at a time.
function jobs.count(setting, device)
  if device ~= "cpu" then return 1 end
  if setting == "auto" then return core._cores() end
  return setting
end

-- A message naming the cell unless it already does.
local function named(cell, msg)
  msg = tostring(msg)
  if msg:find(jobs.label(cell), 1, true) then return msg end
  return jobs.label(cell) .. ": " .. msg
end

-- In one process, in order. With failed, a failing cell is handed to it and
-- the others still run; without, its error ends the run.
local function run_here(items, progress, hooks)
  for _, it in ipairs(items) do
    if progress and progress.start then progress:start(it.cell) end
    core._trace_label(jobs.label(it.cell))
    if hooks.failed then
      local ok, rec = pcall(hooks.run, it, progress)
      if ok then hooks.done(it, rec) else hooks.failed(it, named(it.cell, rec)) end
    else
      hooks.done(it, hooks.run(it, progress))
    end
  end
end

-- In a worker: runs the cell and sends its record, or its error, then ends.
local function worker(it, fd, threads, progress, hooks)
  local function send(t) core._send(fd, t) end
  local proxy = progress and {
    tty = progress.tty,
    start = function() end,   -- the command counts the cell as running when it forks it
    epoch = function(_, _, st) send { k = "epoch", st = st } end,
    batch = function(_, _, b, n, loss) send { k = "batch", b = b, n = n, loss = loss } end,
  }
  local ok, rec = pcall(hooks.run, it, proxy, threads)
  if ok then ok, rec = pcall(send, { k = "record", rec = rec }) end
  if not ok then pcall(send, { k = "error", msg = named(it.cell, rec) }) end
  core._exit(ok and 0 or 1)
end

-- The first item, in plan order, that may start now.
local function next_ready(pending, unfinished)
  for i, it in ipairs(pending) do
    local c = it.cell
    if c["repeat"] == 0 or not unfinished[key(c.mode, 0, c.fold)] then return i end
  end
  return nil
end

-- One line from a worker.
local function on_line(w, line, progress)
  local m = core._decode(line)
  if m.k == "record" then
    w.rec = m.rec
  elseif m.k == "error" then
    w.err = m.msg
  elseif progress and m.k == "epoch" then
    progress:epoch(w.item.cell, m.st)
  elseif progress and m.k == "batch" and progress.batch then
    progress:batch(w.item.cell, m.b, m.n, m.loss)
  end
end

-- Stops every worker still running and waits for them.
local function stop_all(running)
  for _, w in ipairs(running) do core._terminate(w.pid) end
  for _, w in ipairs(running) do
    core._close(w.fd)
    core._reap(w.pid)
  end
  for i = #running, 1, -1 do running[i] = nil end
end

-- A cancel (Ctrl-C, detrun_cancel): no cell starts any more, and each
-- worker is asked to stop at its next step (its SIGTERM handler cancels its
-- runtime), keeping its checkpoint of that step; records that arrive are kept.
local function cancel(state, running)
  if state.cancelled or not core._cancelled() then return end
  state.cancelled = true
  for _, w in ipairs(running) do
    w.stopped = true
    core._terminate(w.pid)
  end
end

-- A worker that has closed its pipe: its record, or why there is none.
local function finished(w)
  core._close(w.fd)
  local how, code = core._reap(w.pid)
  if w.rec and how == "exit" and code == 0 then return w.rec, nil end
  if w.err then return nil, w.err end
  return nil, named(w.item.cell, how == "signal"
                    and string.format("the worker process was killed by signal %d", code)
                    or string.format("the worker process exited with status %d", code))
end

-- A failure that ends the run: the first in plan order. Workers of later
-- cells are stopped at once; those of earlier cells run to their end, since
-- one of them may fail too and is then the one named, as with one job.
local function fail(state, w, err, running)
  if state.failed and state.failed.order < w.order then return end
  state.failed = { order = w.order, err = err }
  for _, o in ipairs(running) do
    if o.order > w.order and not o.stopped then
      o.stopped = true
      core._terminate(o.pid)
    end
  end
end

-- A worker whose pipe has closed.
local function settle(state, w, hooks, running)
  local rec, err = finished(w)
  local c = w.item.cell
  if rec then   -- kept even if stopped: it finished before the signal came
    state.unfinished[key(c.mode, c["repeat"], c.fold)] = nil
    hooks.done(w.item, rec)
  elseif w.stopped then
    return
  elseif hooks.failed then
    state.unfinished[key(c.mode, c["repeat"], c.fold)] = nil
    hooks.failed(w.item, err)
  else
    fail(state, w, err, running)
  end
end

-- Starts the cells that may start now.
local function start(state, n, threads, progress, hooks, running)
  while #running < n and not state.failed and not state.cancelled do
    local i = next_ready(state.pending, state.unfinished)
    if not i then return end
    local it = table.remove(state.pending, i)
    if progress and progress.start then progress:start(it.cell) end
    local pid, fd = core._fork()
    if pid == 0 then worker(it, fd, threads, progress, hooks) end
    running[#running + 1] = { item = it, order = state.order[it], pid = pid, fd = fd, buf = "" }
  end
end

local function schedule(items, n, threads, progress, hooks, running)
  local state = { pending = {}, unfinished = {}, order = {} }
  for i, it in ipairs(items) do
    state.pending[i] = it
    state.order[it] = i
    state.unfinished[key(it.cell.mode, it.cell["repeat"], it.cell.fold)] = true
  end
  while (#state.pending > 0 and not state.failed and not state.cancelled) or #running > 0 do
    cancel(state, running)
    start(state, n, threads, progress, hooks, running)
    local fds = {}
    for i, w in ipairs(running) do fds[i] = w.fd end
    local ready = #fds > 0 and core._poll(fds) or {}
    for j = #ready, 1, -1 do
      local w = running[ready[j]]
      local chunk = core._read(w.fd)
      w.buf = w.buf .. chunk
      for line in w.buf:gmatch("([^\n]*)\n") do on_line(w, line, progress) end
      w.buf = w.buf:match("[^\n]*$")
      if chunk == "" then
        table.remove(running, ready[j])
        settle(state, w, hooks, running)
      end
    end
  end
  if state.failed then error(state.failed.err, 0) end
  if state.cancelled then error("cancelled: the cells still running stopped at their next step", 0) end
end

-- Runs items ({cell = ..., ...}, in plan order) n at a time with threads
-- threads each. hooks.run(item, progress, threads) runs one cell and returns
-- its record; hooks.done(item, rec) takes it in this process; hooks.failed
-- (optional) takes a failure, else a failure stops the other cells and ends
-- the run with the error of the first failing cell in plan order.
function jobs.run(items, n, threads, progress, hooks)
  if n <= 1 or #items <= 1 then return run_here(items, progress, hooks) end
  -- Forking needs a process of one thread: the runtime's pool is let go
  -- here and made again after.
  local before = core._set_threads(1)
  local running = {}
  local ok, err = pcall(schedule, items, n, threads, progress, hooks, running)
  stop_all(running)
  core._set_threads(before)
  if not ok then error(err, 0) end
end

return jobs
