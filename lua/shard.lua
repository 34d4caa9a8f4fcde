-- detrun.shard: `detrun --shard K/N`, one shard of an experiment's grid.
--
-- The cells are numbered from 0 in the order a single process runs them
-- (the script's modes, then repeats, then folds). Shard K of N runs the cells
-- whose number i has i % N == K: a fixed assignment, independent of timing,
-- that spreads every mode and repeat over the shards. Each finished cell's
-- record is written whole or not at all to OUT/shards/<mode>-r<R>-f<F>.json;
-- a cell already recorded there is not run again, so rerunning a shard after
-- a failure redoes only its missing or failed cells. OUT/shards/plan.json
-- describes the grid for `detrun merge` (lua/merge.lua).
local core = require "detrun.core"
local experiment = require "detrun.experiment"
local jobs = require "detrun.jobs"
local report = require "detrun.report"

local shard = {}

function shard.dir(out) return out .. "/shards" end

function shard.cell_name(cell)
  return string.format("%s-r%d-f%d", cell.mode, cell["repeat"], cell.fold)
end

-- Cell i (from 0) belongs to shard i % n.
local function owner(i, n) return i % n end

-- The cells of a grid, in the order experiment.plan lists them.
function shard.cells(modes, repeats, folds)
  local cells = {}
  for _, mode in ipairs(modes) do
    for r = 0, repeats - 1 do
      for f = 0, folds - 1 do cells[#cells + 1] = { mode = mode, ["repeat"] = r, fold = f } end
    end
  end
  return cells
end

-- What merge needs of the plan. `grid` holds what makes two runs' cells
-- interchangeable; threads and device only describe the machine.
local function plan_record(p)
  -- The hashes of the script's text, the data and the model description
  -- (experiment.resume_plan): shards of an edited script or of other data
  -- must not mix either.
  local inputs = experiment.resume_plan(p, "")
  return {
    grid = { experiment = p.name, detrun_version = core.version, seed = p.seed,
             inputs = { script = inputs.script, data = inputs.data, model = inputs.model },
             settings = { rows = p.rows, folds = p.folds, repeats = p.repeats, modes = p.modes,
                          epochs = p.fit.epochs, batch = p.fit.batch,
                          validation_split = p.fit.validation_split, shuffle = p.fit.shuffle } },
    threads = p.threads, device = p.device, cells = #p.cells,
  }
end

local function canonical(t) return core._results(t):json() end

-- Writes plan.json, or checks that the one there describes the same grid
-- (shards of another experiment, or of other settings, must not mix).
local function ensure_plan(p, dir)
  local path = dir .. "/plan.json"
  local mine = plan_record(p)
  local have = core._record_read(path)
  if have then
    if type(have.grid) ~= "table" or canonical(have.grid) ~= canonical(mine.grid) then
      error(string.format("%s describes another grid than this run's (%s): use another --out, "
                          .. "or remove %s to start over", path, canonical(mine.grid):gsub("%s+", " "),
                          dir), 0)
    end
    return
  end
  core._record_write(path, mine)
end

-- The record of a cell if it finished in an earlier run, else nil: a
-- failed, damaged or misplaced record is run again (and overwritten).
local function recorded(path, cell)
  local ok, rec = pcall(core._record_read, path)
  if ok and rec and pcall(experiment.check_record, rec, cell, path) and rec.error == nil then
    return rec
  end
  return nil
end

-- Planning builds the first cell's model once, compiled and sized for the
-- data but not trained, so that a broken model() or layer stops the plan
-- instead of failing in every task.
local function build_once(p)
  local m <close> = experiment.model(p, p.cells[1])
  m:_build_for(p.data)
end

-- Runs shard k of n of the plan p (k < 0: only writes the plan).
function shard.run(p, k, n)
  if not p.out then error("dr.experiment: --shard needs a results folder (--out)", 0) end
  if k < 0 then build_once(p) end
  -- Shards share the folder; each shard (and the planning) is one process
  -- at a time, and detrun merge, which locks the whole folder, waits for all.
  local lock <close> = core._lock(p.out, k < 0 and "plan" or string.format("shard-%d-of-%d", k, n))
  local dir = shard.dir(p.out)
  core._mkdirs(dir)
  ensure_plan(p, dir)
  if k < 0 then return end

  local mine = {}
  for i, cell in ipairs(p.cells) do
    if owner(i - 1, n) == k then mine[#mine + 1] = cell end
  end
  local todo, done = {}, 0
  for _, cell in ipairs(mine) do
    if recorded(dir .. "/" .. shard.cell_name(cell) .. ".json", cell) then
      done = done + 1
    else
      todo[#todo + 1] = cell
    end
  end
  local progress = (p.verbosity >= 2 and #todo > 0) and report.progress(p) or nil
  if progress then progress.total = #todo end
  local ctx = #todo > 0 and experiment.prepare(p) or nil
  -- A cell killed in mid-training continues from its checkpoint (the
  -- resume rules of docs/regression.md, per cell).
  p.resume = true
  local failed = {}
  local items = {}
  for i, cell in ipairs(todo) do
    items[i] = { cell = cell, base = dir .. "/" .. shard.cell_name(cell) }
  end
  -- The shard's cells, p.jobs at a time.
  jobs.run(items, p.jobs, p.cell_threads, progress, {
    run = function(it, prog, threads)
      core._trace_label(string.format("%s repeat %d fold %d", it.cell.mode, it.cell["repeat"],
                                      it.cell.fold))
      return experiment.run_cell(p, ctx, it.cell, prog, p.checkpoints and it.base .. ".ckpt" or nil,
                                 threads)
    end,
    done = function(it, rec)
      if progress then progress:cell(it.cell, rec) end
      core._record_write(it.base .. ".json", rec)
      os.remove(it.base .. ".ckpt")
    end,
    -- Recorded too, so that merge can say why; a rerun runs it again.
    failed = function(it, msg)
      failed[#failed + 1] = shard.cell_name(it.cell) .. ": " .. msg
      core._record_write(it.base .. ".json", { mode = it.cell.mode, ["repeat"] = it.cell["repeat"],
                                               fold = it.cell.fold, error = msg })
    end,
  })
  if progress then progress:finish() end
  if p.verbosity >= 1 then
    io.stdout:write(string.format("%s: shard %d/%d: %d cells run, %d already recorded, %d failed; "
                                  .. "records in %s\n", p.name, k, n, #todo, done, #failed, dir))
  end
  if #failed > 0 then
    error(string.format("shard %d/%d: %d of its cells failed:\n  %s", k, n, #failed,
                        table.concat(failed, "\n  ")), 0)
  end
end

return shard
