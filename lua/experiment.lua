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
local divergence = require "detrun.divergence"
local html = require "detrun.html"
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
  local cap_err = experiment.check_grid(#p.modes, p.repeats, p.folds)
  if cap_err then error("dr.experiment: " .. cap_err, 3) end
  if type(spec.model) ~= "function" then
    error("dr.experiment: model must be a function that returns a new dr.nn.sequential{...}", 3)
  end
  p.model = spec.model
  p.compile = spec.compile or {}
  util.check_options(p.compile, { "optimizer", "loss", "metrics" }, "dr.experiment: compile", 3)
  local fit = spec.fit or {}
  util.check_options(fit, FIT, "dr.experiment: fit", 3)
  p.fit = {
    epochs = count(opts.epochs or fit.epochs or 1, "fit.epochs", 1),
    batch = count(fit.batch or 32, "fit.batch", 1),
    validation_split = fit.validation_split or 0,
    shuffle = fit.shuffle ~= false,
  }
  local vs = p.fit.validation_split
  if type(vs) ~= "number" or not (vs >= 0 and vs < 1) then
    error("dr.experiment: fit.validation_split must be a number from 0 to below 1, not "
          .. tostring(vs), 3)
  end
  if fit.shuffle ~= nil and type(fit.shuffle) ~= "boolean" then
    error("dr.experiment: fit.shuffle must be true or false, not " .. tostring(fit.shuffle), 3)
  end
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
  if p.out ~= nil and (type(p.out) ~= "string" or p.out == "") then
    error("dr.experiment: the results folder (out, -o DIR) must be a non-empty path, not "
          .. string.format("%q", tostring(p.out)), 3)
  end
  p.checkpoints = not opts.no_checkpoint
  if p.resume and not p.checkpoints then
    error("dr.experiment: resuming needs the checkpoints that --no-checkpoint gives up", 3)
  end
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

-- The caps on a grid's declared size (docs/regression.md, "Limits"): a
-- script or plan asking for 2^53 repeats is refused before anything is
-- allocated. Returns a message, or nil when the grid fits.
function experiment.check_grid(modes, repeats, folds)
  local max_repeats = core._limit("DETRUN_MAX_REPEATS", 1000000)
  local max_cells = core._limit("DETRUN_MAX_CELLS", 1000000)
  if repeats > max_repeats then
    return string.format("repeats %d is above the limit of %d; raise it with "
                         .. "DETRUN_MAX_REPEATS=N", repeats, max_repeats)
  end
  if folds > max_cells or modes * repeats > max_cells // folds then
    return string.format("%d modes x %d repeats x %d folds is above the limit of %d cells; "
                         .. "raise it with DETRUN_MAX_CELLS=N", modes, repeats, folds, max_cells)
  end
  return nil
end

local function is_hex32(v) return type(v) == "string" and #v == 32 and v:match("^%x+$") ~= nil end
local function is_num(v) return math.type(v) ~= nil end

-- A cell's record as read back from path: every field of the right type and
-- range, and the cell its file name says. Returns the record, or raises an
-- error naming the file and the field. A record of a failed cell (error set)
-- needs only its coordinates.
function experiment.check_record(rec, cell, path)
  local function bad(what)
    error(string.format("%s: damaged cell record: %s; remove it to run the cell again", path,
                        what), 0)
  end
  if type(rec) ~= "table" then bad("not a JSON object") end
  if rec.mode ~= cell.mode or math.type(rec["repeat"]) ~= "integer"
     or rec["repeat"] ~= cell["repeat"] or math.type(rec.fold) ~= "integer"
     or rec.fold ~= cell.fold then
    -- Named from 1, as every message names cells; the fields hold 0-based numbers.
    local function from1(v) return math.type(v) == "integer" and tostring(v + 1) or tostring(v) end
    bad(string.format("it holds %s repeat %s fold %s, but the file is %s's", tostring(rec.mode),
                      from1(rec["repeat"]), from1(rec.fold), jobs.label(cell)))
  end
  if rec.error ~= nil then
    if type(rec.error) ~= "string" then bad("error is not a string") end
    return rec
  end
  if not is_hex32(rec.fingerprint) then bad("fingerprint is missing or not 32 hex digits") end
  if not is_num(rec.loss) then bad("loss is missing or not a number") end
  if not is_num(rec.accuracy) or not (rec.accuracy >= 0 and rec.accuracy <= 1) then
    bad("accuracy is missing or not a number from 0 to 1")
  end
  if not is_num(rec.seconds) or not (rec.seconds >= 0 and rec.seconds < math.huge) then
    bad("seconds is missing or not a non-negative number")
  end
  if rec.epochs ~= nil and type(rec.epochs) ~= "table" then bad("epochs is not a list") end
  if rec.plan ~= nil and type(rec.plan) ~= "string" then bad("plan is not a string") end
  return rec
end

-- A description of what a cell's model is and how it is compiled: what
-- --resume compares besides the script's text (a model built in code the
-- script loads from elsewhere).
local function model_description(p)
  local c = p.cells[1]
  local ok, m = pcall(p.model, { mode = c.mode, ["repeat"] = c["repeat"], fold = c.fold })
  if not ok or getmetatable(m) ~= nn.Model then return "unknown" end
  local parts = { m:summary(), "input " .. table.concat(m.input or {}, "x") }
  local function flat(t, prefix)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = t[k] == nil and t[math.tointeger(k) or k] or t[k]
      if type(v) == "table" then flat(v, prefix .. k .. ".")
      elseif math.type(v) == "float" then parts[#parts + 1] = string.format("%s%s=%.17g", prefix, k, v)
      else parts[#parts + 1] = prefix .. k .. "=" .. tostring(v) end
    end
  end
  flat(p.compile, "compile.")
  if m.close then m:close() end
  return core.fingerprint_strings(parts)
end

-- What determines the bits of every cell (docs/regression.md, "Resume"):
-- resuming is refused when any of these differs from the run's.
local RESUME_KEYS = {
  { "settings", "the grid settings" }, { "script", "the script's text" },
  { "data", "the data" }, { "model", "the model or its compile settings" },
  { "version", "the detrun version" }, { "modes", "the modes" },
  { "kernels", "the device and kernels" },
}

function experiment.resume_plan(p, settings)
  local script = rawget(_G, "arg") and type(arg[0]) == "string" and core._file_hash(arg[0])
  return {
    settings = settings, script = script or "none", data = core._data_hash(p.data),
    model = model_description(p), version = core.version, modes = table.concat(p.modes, ","),
    kernels = p.device,
  }
end

-- Checks the plan of the run being resumed (path) against mine; the error
-- names every part that changed.
function experiment.check_resume_plan(have, mine, path)
  local changed = {}
  for _, k in ipairs(RESUME_KEYS) do
    if type(have[k[1]]) ~= "string" then
      changed[#changed + 1] = k[2] .. " (not recorded)"
    elseif have[k[1]] ~= mine[k[1]] then
      changed[#changed + 1] = string.format("%s (was %s, now %s)", k[2], have[k[1]], mine[k[1]])
    end
  end
  if #changed > 0 then
    error(string.format("cannot resume the run in %s: it would mix bits of two runs, since "
                        .. "%s changed; run without --resume to start over", path,
                        table.concat(changed, ", ")), 0)
  end
end

-- What the cells share and only read: the k-fold split.
function experiment.prepare(p)
  return { split = data.kfold(p.rows, p.folds, p.seed) }
end

-- Calls f(...); an error of the runtime (a NaN, a data set that does not
-- fit) is raised again naming the cell: in place of detrun's own line, or
-- after the script's line when it points at one (a NaN names the line of the
-- layer it is about). The script's own errors (a layer typo) stay as they are.
local function in_cell(cell, f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  if type(a) ~= "string" then error(a, 0) end
  local name = jobs.label(cell)
  local where, rest = a:match("^([^%s]-:%d+): (.*)$")
  if where and not where:match("^%[detrun%.") then
    if rest:match("^fit: ") or rest:match("^evaluate: ") then
      error(string.format("%s: %s: %s", where, name, rest), 0)
    end
    error(a, 0)
  end
  error(string.format("%s: %s", name, (a:gsub("^%[detrun%.[%w_]+%]:%d+: ", ""))), 0)
end

-- Runs one cell; returns its record. With checkpoint (a file name) the fit
-- saves its state there after every epoch, and continues from it when
-- resuming (docs/regression.md).
-- threads: the cell's threads when not the experiment's.
-- The script's model for a cell, compiled with the plan's settings (seed,
-- the fold as stream), not yet built.
function experiment.model(p, cell)
  -- The script sees Lua's 1-based numbers; records keep the 0-based ones.
  local made = p.model { mode = cell.mode, ["repeat"] = cell["repeat"] + 1, fold = cell.fold + 1 }
  if getmetatable(made) ~= nn.Model then
    error("dr.experiment: model() must return a new dr.nn.sequential{...}, not " .. tostring(made), 0)
  end
  local c = {}
  for _, k in ipairs({ "optimizer", "loss", "metrics" }) do c[k] = p.compile[k] end
  c.seed, c.stream = p.seed, cell.fold
  return made:compile(c)
end

function experiment.run_cell(p, ctx, cell, progress, checkpoint, threads)
  local t0 = core.clock()
  if progress then progress:start(cell) end
  -- Batch updates only where they are drawn (a terminal), at most every 0.2 s.
  local on_batch, shown = nil, t0
  if progress and progress.tty then
    on_batch = function(k, n, loss)
      local now = core.clock()
      if now - shown >= 0.2 then
        shown = now
        progress:batch(cell, k, n, loss)
      end
    end
  end
  core.randomseed(p.seed, cell.fold)
  -- Fast mode differs from deterministic mode by its threads' races: a fast
  -- cell among parallel jobs gets at least 2 threads, so that its repeats
  -- still drift apart as the comparison expects (docs/lua.md, "Jobs").
  if threads and threads < 2 and cell.mode == "fast" and (p.jobs or 1) > 1 then threads = 2 end
  local run = core.run { seed = p.seed, mode = cell.mode,
                         threads = threads or p.threads }
  local m <close> = experiment.model(p, cell)
  -- Repeat 0's weights per epoch, beside the records, for the later repeats'
  -- divergence curve (lua/divergence.lua).
  local wdir = p.repeats > 1 and (p.weights_dir or (checkpoint and checkpoint:match("^(.*)/[^/]*$")))
                or nil
  local track, tracked = divergence.tracker(wdir, cell, m)
  local history = in_cell(cell, m.fit, m, run, p.data, {
    epochs = p.fit.epochs, batch = p.fit.batch, validation_split = p.fit.validation_split,
    shuffle = p.fit.shuffle, stream = cell.fold, rows = ctx.split:train(cell.fold + 1),
    checkpoint = checkpoint, resume = p.resume,
    on_epoch = (progress or track) and function(st)
      if track then track(st) end
      if progress then return progress:epoch(cell, st) end
    end, on_batch = on_batch })
  if tracked then tracked() end
  local loss, acc = in_cell(cell, m.evaluate, m, run, p.data,
                            { rows = ctx.split:test(cell.fold + 1), batch = p.eval_batch })
  local rec = { mode = cell.mode, ["repeat"] = cell["repeat"], fold = cell.fold, loss = loss,
                accuracy = acc, fingerprint = m:fingerprint(), epochs = history }
  rec.seconds = core.clock() - t0
  return rec
end

local function variance(xs)
  return select(2, util.mean_var(xs))
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
    mrec.divergence = divergence.summary(records, mode)
    mrec.run_seconds = #mrec.repeats > 0 and mrec.seconds / #mrec.repeats or 0
    seconds[mode] = mrec.seconds
    res.modes[#res.modes + 1] = mrec
  end
  if seconds.deterministic and seconds.fast and seconds.fast > 0 then
    res.overhead = seconds.deterministic / seconds.fast
  end
  return res
end

-- Writes the results set into out: NAME.json and NAME.csv, and unless
-- --no-report NAME.html and NAME.epochs.csv (lua/html.lua), as one set
-- that becomes out/current at once, or not at all (r:write). Returns the JSON's and the CSV's paths and the page's (or nil).
function experiment.write_results(p, res, tbl, out, what)
  local report_files = not core.options().no_report and html.files(tbl, p.name) or nil
  local json, csv = res:write(out, p.name, report_files)
  if not json then error(what .. ": " .. csv, 0) end
  return json, csv, report_files and string.format("%s/%s.html", out, p.name) or nil
end

-- Without a results folder, repeat 1's weights for the divergence curve go
-- to a temporary folder, removed at the end.
local function weights_tmp(p)
  if p.out or p.repeats < 2 then return nil end
  local dir = os.tmpname()
  os.remove(dir)
  core._mkdirs(dir)
  return dir
end

function experiment.run(spec)
  local t_start = core.clock()
  local p = experiment.plan(spec, core.options())
  p.weights_dir = weights_tmp(p)
  local ctx = experiment.prepare(p)
  local progress = p.verbosity >= 2 and report.progress(p) or nil
  local records, resumed = {}, {}
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
  -- One run at a time in a results folder (the second names the first).
  local lock <close> = p.out and core._lock(p.out) or nil
  -- What determines the bits, kept beside the records: a resume is refused
  -- when anything of it changed. A run killed before writing it had started
  -- no cell, so resuming it is starting over.
  local mine = cells and experiment.resume_plan(p, plan)
  local have = cells and p.resume and core._record_read(cells .. "/run.plan")
  local fresh = cells and not have
  if cells then
    core._mkdirs(cells)
    core._remove_temps(cells)   -- the lock is ours: any temporary is a dead writer's
  end
  for _, cell in ipairs(fresh and p.cells or {}) do
    os.remove(base_of(cell) .. ".json")
    os.remove(base_of(cell) .. ".ckpt")
  end
  if have then
    experiment.check_resume_plan(have, mine, cells .. "/run.plan")
  elseif cells then
    core._record_write(cells .. "/run.plan", mine)
  end
  -- What a killed run can leave behind beside a finished cell's record: its
  -- checkpoint (killed between the record and the removal) and the temporary
  -- files of an atomic write that never reached its rename.
  local function clear_leftovers(base)
    os.remove(base .. ".ckpt")
  end
  local todo = {}
  for i, cell in ipairs(p.cells) do
    local base = base_of(cell)
    local rec = base and p.resume and core._record_read(base .. ".json") or nil
    if rec then experiment.check_record(rec, cell, base .. ".json") end
    if rec and rec.error ~= nil then rec = nil end
    if rec and rec.plan ~= plan then
      error(string.format("dr.experiment: %s.json was written by another run (%s, not %s); " ..
                          "run without resuming to start over", base, tostring(rec.plan), plan), 2)
    end
    if rec then
      resumed[#resumed + 1] = cell
      if base then clear_leftovers(base) end
      rec.plan = nil
      records[i] = rec
      if progress then
        -- The mark is the display's: the record itself stays as written.
        progress:cell(cell, setmetatable({ resumed = true }, { __index = rec }))
      end
    else
      todo[#todo + 1] = { index = i, cell = cell, base = base }
    end
  end
  -- The cells still to run, p.jobs at a time; each record is written here
  -- as its cell finishes, so that a resume finds every finished cell.
  jobs.run(todo, p.jobs, p.cell_threads, progress, {
    run = function(it, prog, threads)
      core._trace_label(string.format("%s repeat %d fold %d", it.cell.mode, it.cell["repeat"],
                                      it.cell.fold))
      return experiment.run_cell(p, ctx, it.cell, prog,
                                 it.base and p.checkpoints and it.base .. ".ckpt" or nil, threads)
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
  tbl.wall_seconds, tbl.machine = core.clock() - t_start, core._machine()
  -- The id of the results set, carried by each of its files.
  if p.out then tbl.set = core._set_id() end
  local res = core._results(tbl)
  local files, page
  if p.out then
    local json, csv
    json, csv, page = experiment.write_results(p, res, tbl, p.out, "dr.experiment")
    files = { json, csv }
  end
  divergence.cleanup(p.weights_dir or cells, p)
  if not cells and p.weights_dir then os.remove(p.weights_dir) end
  if p.verbosity >= 1 then
    io.stdout:write(report.table(tbl, files, { resumed = resumed }))
    if page then io.stdout:write("report: ", page, "\n") end
  end
  return res
end

return experiment
