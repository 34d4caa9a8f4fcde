-- detrun.experiment: modes x repeats x folds, each grid cell an independent
-- unit of work with its own record, then aggregated into the results.
--
-- A cell (mode, repeat, fold) starts from fresh state: a new model from the
-- script's model(), math.random reseeded from (seed, fold), the runtime set
-- to the cell's mode. Every repeat uses the same seed, so deterministic mode
-- must give one fingerprint however many repeats run. Cells depend on
-- nothing but the plan, so a subset of them can run elsewhere and the
-- records be aggregated later.
local core = require "detrun.core"
local data = require "detrun.data"
local jobs = require "detrun.jobs"
local nn = require "detrun.nn"
local report = require "detrun.report"
local util = require "detrun.util"

local experiment = {}

local SPEC = { "name", "seed", "data", "folds", "repeats", "modes", "model", "compile", "fit",
               "evaluate", "threads", "jobs", "limit", "out" }
local FIT = { "epochs", "batch", "validation_split", "shuffle" }

local function count(v, what, min)
  local i = math.tointeger(v)
  if i == nil or i < min then
    error(string.format("dr.experiment: %s must be an integer >= %d, not %s", what, min, tostring(v)), 4)
  end
  return i
end

-- The validated spec with the command's overrides applied.
function experiment.plan(spec, opts)
  util.check_options(spec, SPEC, "dr.experiment", 3)
  local p = {}
  p.name = spec.name or "experiment"
  if type(p.name) ~= "string" or not p.name:match("^[%w_%.%-]+$") then
    error("dr.experiment: name must be letters, digits, '_', '-' or '.', not " .. tostring(p.name), 3)
  end
  p.seed = count(opts.seed or spec.seed or 0, "seed", 0)
  if type(spec.data) ~= "userdata" or not pcall(function() return spec.data:shape() end) then
    error("dr.experiment: data must be a dataset (e.g. dr.data.mnist().train)", 3)
  end
  p.data = spec.data
  p.rows = #spec.data
  local limit = opts.limit or spec.limit
  if limit ~= nil then p.rows = math.min(p.rows, count(limit, "limit", 1)) end
  p.folds = count(opts.folds or spec.folds or 10, "folds", 2)
  if p.folds > p.rows then
    error(string.format("dr.experiment: %d folds need at least %d rows, the data has %d",
                        p.folds, p.folds, p.rows), 3)
  end
  p.repeats = count(opts.repeats or spec.repeats or 1, "repeats", 1)
  local modes = spec.modes or { "deterministic" }
  if type(modes) == "string" then modes = { modes } end
  if opts.mode then modes = { opts.mode } end
  p.modes = {}
  for i, m in ipairs(modes) do
    if m ~= "deterministic" and m ~= "fast" then
      error(string.format("dr.experiment: modes[%d] must be \"deterministic\" or \"fast\", not %s",
                          i, tostring(m)), 3)
    end
    p.modes[i] = m
  end
  if #p.modes == 0 then error("dr.experiment: no modes", 3) end
  if type(spec.model) ~= "function" then
    error("dr.experiment: model must be a function that returns a new dr.nn.sequential{...}", 3)
  end
  p.model = spec.model
  p.compile = spec.compile or {}
  local fit = spec.fit or {}
  util.check_options(fit, FIT, "dr.experiment: fit", 3)
  p.fit = {
    epochs = count(opts.epochs or fit.epochs or 1, "fit.epochs", 1),
    batch = count(fit.batch or 32, "fit.batch", 1),
    validation_split = fit.validation_split or 0,
    shuffle = fit.shuffle ~= false,
  }
  local ev = spec.evaluate or {}
  util.check_options(ev, { "batch" }, "dr.experiment: evaluate", 3)
  p.eval_batch = count(ev.batch or 100, "evaluate.batch", 1)
  p.threads = spec.threads and count(spec.threads, "threads", 0) or core.threads()
  -- The command's -j, else the spec's, else the host's default (the command:
  -- auto; the C API and the stock interpreter: one at a time, in process).
  local j = opts.jobs or spec.jobs
  if j ~= nil and j ~= "auto" then j = count(j, "jobs", 1) end
  if j == nil then j = opts.jobs_default or 1 end
  p.device = core.device()
  -- Cells in flight at once, and each one's threads: the command's threads
  -- shared among them.
  p.jobs = jobs.count(j, p.device)
  p.cell_threads = math.max(1, (p.threads == 0 and core._cores() or p.threads) // p.jobs)
  p.out = opts.out or spec.out
  p.resume = opts.resume ~= nil and opts.resume ~= 0 and opts.resume ~= false
  if p.resume and not p.out then
    error("dr.experiment: resuming needs the results folder of the run (-o DIR)", 3)
  end
  p.verbosity = opts.verbosity or 0
  p.cells = {}
  for _, mode in ipairs(p.modes) do
    for r = 0, p.repeats - 1 do
      for f = 0, p.folds - 1 do
        p.cells[#p.cells + 1] = { mode = mode, ["repeat"] = r, fold = f }
      end
    end
  end
  return p
end

-- What the cells share and only read: the k-fold split.
function experiment.prepare(p)
  return { split = data.kfold(p.rows, p.folds, p.seed) }
end

-- Calls f(...); an error that does not point at a line of the script (one
-- the runtime raised: a NaN, a data set that does not fit) is raised again
-- naming the cell.
local function in_cell(cell, f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  local loc = type(a) == "string" and a:match("^([^%s]-):%d+: ")
  if type(a) == "string" and (not loc or loc:match("^%[detrun%.")) then
    error(string.format("%s repeat %d fold %d: %s", cell.mode, cell["repeat"], cell.fold,
                        (a:gsub("^%[detrun%.[%w_]+%]:%d+: ", ""))), 0)
  end
  error(a, 0)
end

-- Runs one cell; returns its record. With checkpoint (a file name) the fit
-- saves its state there after every epoch, and continues from it when
-- resuming (docs/regression.md).
-- threads: the cell's threads when not the experiment's.
function experiment.run_cell(p, ctx, cell, progress, checkpoint, threads)
  local t0 = core.clock()
  core.randomseed(p.seed, cell.fold)
  local run = core.run { seed = p.seed, mode = cell.mode,
                         threads = threads or p.threads }
  local made = p.model { mode = cell.mode, ["repeat"] = cell["repeat"], fold = cell.fold }
  if getmetatable(made) ~= nn.Model then
    error("dr.experiment: model() must return a new dr.nn.sequential{...}, not " .. tostring(made), 0)
  end
  local m <close> = made
  local c = {}
  for _, k in ipairs({ "optimizer", "loss", "metrics" }) do c[k] = p.compile[k] end
  c.seed, c.stream = p.seed, cell.fold
  m:compile(c)
  local history = in_cell(cell, m.fit, m, run, p.data, {
    epochs = p.fit.epochs, batch = p.fit.batch, validation_split = p.fit.validation_split,
    shuffle = p.fit.shuffle, stream = cell.fold, rows = ctx.split:train(cell.fold + 1),
    checkpoint = checkpoint, resume = p.resume,
    on_epoch = progress and function(st) progress:epoch(cell, st) end })
  local loss, acc = in_cell(cell, m.evaluate, m, run, p.data,
                            { rows = ctx.split:test(cell.fold + 1), batch = p.eval_batch })
  local rec = { mode = cell.mode, ["repeat"] = cell["repeat"], fold = cell.fold, loss = loss,
                accuracy = acc, fingerprint = m:fingerprint(), epochs = history }
  rec.seconds = core.clock() - t0
  return rec
end

-- Population variance, computed on values shifted by the first one so that
-- equal values give exactly 0.
local function variance(xs)
  local n = #xs
  if n == 0 then return 0 / 0 end
  local s = 0
  for i = 1, n do s = s + (xs[i] - xs[1]) end
  local mean = s / n
  local v = 0
  for i = 1, n do
    local d = (xs[i] - xs[1]) - mean
    v = v + d * d
  end
  return v / n
end

-- The results table from the plan and the cells' records (any order): what
-- dr.aggregate gives to users (docs/lua.md).
function experiment.aggregate(p, records)
  local by = {}
  for _, r in ipairs(records) do by[r.mode .. "/" .. r["repeat"] .. "/" .. r.fold] = r end
  local res = {
    experiment = p.name, detrun_version = core.version, lua_version = _VERSION, seed = p.seed,
    threads = p.threads, device = p.device,
    settings = { rows = p.rows, folds = p.folds, repeats = p.repeats, modes = p.modes,
                 epochs = p.fit.epochs, batch = p.fit.batch,
                 validation_split = p.fit.validation_split, shuffle = p.fit.shuffle },
    modes = {},
  }
  local seconds = {}
  for _, mode in ipairs(p.modes) do
    local mrec = { mode = mode, repeats = {}, seconds = 0 }
    local fps, distinct = {}, 0
    for r = 0, p.repeats - 1 do
      local rep = { ["repeat"] = r, folds = {}, seconds = 0 }
      local fold_fps = {}
      for f = 0, p.folds - 1 do
        local rec = by[mode .. "/" .. r .. "/" .. f]
        if rec then
          rep.folds[#rep.folds + 1] = rec
          rep.seconds = rep.seconds + rec.seconds
          fold_fps[#fold_fps + 1] = rec.fingerprint
        end
      end
      if #rep.folds > 0 then
        if #rep.folds == p.folds then
          rep.fingerprint = core.fingerprint_strings(fold_fps)
          if not fps[rep.fingerprint] then fps[rep.fingerprint] = true; distinct = distinct + 1 end
        end
        mrec.repeats[#mrec.repeats + 1] = rep
        mrec.seconds = mrec.seconds + rep.seconds
      end
    end
    local vl, va, nf = 0, 0, 0
    mrec.fold_means = {}
    for f = 0, p.folds - 1 do
      local ls, as = {}, {}
      for r = 0, p.repeats - 1 do
        local rec = by[mode .. "/" .. r .. "/" .. f]
        if rec then ls[#ls + 1] = rec.loss; as[#as + 1] = rec.accuracy end
      end
      if #ls > 0 then
        vl, va, nf = vl + variance(ls), va + variance(as), nf + 1
        local sl, sa = 0, 0
        for i = 1, #ls do sl, sa = sl + ls[i], sa + as[i] end
        mrec.fold_means[#mrec.fold_means + 1] = { fold = f, loss = sl / #ls, accuracy = sa / #as }
      end
    end
    mrec.variance = { loss = nf > 0 and vl / nf or 0 / 0, accuracy = nf > 0 and va / nf or 0 / 0 }
    mrec.distinct_fingerprints = distinct
    mrec.run_seconds = #mrec.repeats > 0 and mrec.seconds / #mrec.repeats or 0
    seconds[mode] = mrec.seconds
    res.modes[#res.modes + 1] = mrec
  end
  if seconds.deterministic and seconds.fast and seconds.fast > 0 then
    res.overhead = seconds.deterministic / seconds.fast
  end
  return res
end

-- dr.experiment in one process: every cell of the grid, then the results.
function experiment.run(spec)
  local p = experiment.plan(spec, core.options())
  local ctx = experiment.prepare(p)
  local progress = p.verbosity >= 2 and report.progress(p) or nil
  local records = {}
  -- Each finished cell's record, and the checkpoint of the cell being run,
  -- are kept in the results folder so that a killed run can be resumed.
  local cells = p.out and (p.out .. "/" .. p.name .. ".cells") or nil
  local plan = string.format("seed %d rows %d folds %d epochs %d batch %d split %.17g shuffle %s",
                             p.seed, p.rows, p.folds, p.fit.epochs, p.fit.batch,
                             p.fit.validation_split, tostring(p.fit.shuffle))
  local function base_of(cell)
    return cells and string.format("%s/%s-r%d-f%d", cells, cell.mode, cell["repeat"], cell.fold)
  end
  -- A fresh run starts from nothing: no record of an earlier run may be
  -- taken for its own by a later resume.
  if cells then core._mkdirs(cells) end
  for _, cell in ipairs(cells and not p.resume and p.cells or {}) do
    os.remove(base_of(cell) .. ".json")
    os.remove(base_of(cell) .. ".ckpt")
  end
  -- What a killed run can leave behind beside a finished cell's record: its
  -- checkpoint (killed between the record and the removal) and the temporary
  -- files of an atomic write that never reached its rename.
  local function clear_leftovers(base)
    os.remove(base .. ".ckpt")
    os.remove(base .. ".ckpt.tmp")
    os.remove(base .. ".json.tmp")
  end
  local todo = {}
  for i, cell in ipairs(p.cells) do
    local base = base_of(cell)
    local rec = base and p.resume and core._record_read(base .. ".json") or nil
    if rec and rec.plan ~= plan then
      error(string.format("dr.experiment: %s.json was written by another run (%s, not %s); " ..
                          "run without resuming to start over", base, tostring(rec.plan), plan), 2)
    end
    if rec then
      if base then clear_leftovers(base) end
      rec.plan = nil
      records[i] = rec
      if progress then progress:cell(cell, rec) end
    else
      todo[#todo + 1] = { index = i, cell = cell, base = base }
    end
  end
  -- The cells still to run, p.jobs at a time; each record is written here
  -- as its cell finishes, so that a resume finds every finished cell.
  jobs.run(todo, p.jobs, p.cell_threads, progress, {
    run = function(it, prog, threads)
      return experiment.run_cell(p, ctx, it.cell, prog, it.base and it.base .. ".ckpt", threads)
    end,
    done = function(it, rec)
      if it.base then
        rec.plan = plan
        core._record_write(it.base .. ".json", rec)
        clear_leftovers(it.base)
      end
      rec.plan = nil
      records[it.index] = rec
      if progress then progress:cell(it.cell, rec) end
    end,
  })
  if progress then progress:finish() end
  local tbl = experiment.aggregate(p, records)
  local res = core._results(tbl)
  local files
  if p.out then
    local json, csv = res:write(p.out, p.name)
    if not json then error("dr.experiment: " .. csv, 2) end
    files = { json, csv }
  end
  if p.verbosity >= 1 then io.stdout:write(report.table(tbl, files)) end
  return res
end

return experiment
