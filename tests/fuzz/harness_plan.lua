-- Plans as detrun reads them: OUT/shards/plan.json (detrun merge:
-- merge.plan_from; detrun --shard: the grid compared in its canonical JSON)
-- and OUT/NAME.cells/run.plan (--resume: experiment.check_resume_plan).
local core = require "detrun.core"
local experiment = require "detrun.experiment"
local merge = require "detrun.merge"
local common = dofile(FUZZ_DIR .. "/harness_common.lua")
local fail = common.fail

-- A run's own resume plan, as experiment.resume_plan makes one.
local mine = {
  settings = "seed 0 rows 60 folds 2 epochs 2 batch 10 split 0.20000000000000001 shuffle true",
  modes = "deterministic,fast", data = "32773bc95b4d8c460a73e3dc75b3490f", kernels = "cpu",
  model = "d034d71873b4f1ce97276c044984ff9c", script = "d7add8ffd1bc97f0da2a81e6cd33b95f",
  version = core.version,
}

-- What plan_from promises of a plan it lets through.
local function check_plan(p)
  local n = #p.modes * p.repeats * p.folds
  if #p.cells ~= n then fail("%d cells for a grid of %d", #p.cells, n) end
  if not (p.folds >= 2 and p.folds <= p.rows and p.repeats >= 1) then
    fail("a grid of %s folds of %s rows, %s repeats was accepted", p.folds, p.rows, p.repeats)
  end
  if not (p.fit.validation_split >= 0 and p.fit.validation_split < 1) then
    fail("validation_split %s was accepted", tostring(p.fit.validation_split))
  end
  for _, c in ipairs(p.cells) do
    if (c.mode ~= "deterministic" and c.mode ~= "fast") or c["repeat"] >= p.repeats
       or c.fold >= p.folds then
      fail("a cell outside the grid: %s %s %s", c.mode, c["repeat"], c.fold)
    end
  end
  if not p.name:match("^[%w_%.%-]+$") then fail("experiment %q was accepted", p.name) end
end

return function(path)
  local ok, rec = pcall(core._record_read, path)
  if not ok then return common.names(rec, path, "_record_read") end
  if type(rec) ~= "table" then fail("_record_read gave a %s", type(rec)) end
  local good, p = pcall(merge.plan_from, rec, path)
  if good then check_plan(p) else common.names(p, path, "plan_from") end
  good, p = pcall(experiment.check_resume_plan, rec, mine, path)
  if not good then common.names(p, path, "check_resume_plan") end
  if type(rec.grid) == "table" then
    -- detrun --shard compares grids as canonical JSON; any grid has one.
    local cok, json = pcall(function() return core._results(rec.grid):json() end)
    if cok and type(json) ~= "string" then fail("a grid's JSON is a %s", type(json)) end
  end
end
