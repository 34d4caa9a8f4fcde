-- detrun.merge: `detrun merge OUT`, the results of a sharded run.
--
-- Reads OUT/shards/plan.json and one record per cell (lua/shard.lua), and
-- aggregates them exactly as a single process does (experiment.aggregate),
-- so every fingerprint, loss and accuracy is the same; only timings differ.
-- A missing or failed cell is named, and the merge refused unless partial.
local core = require "detrun.core"
local divergence = require "detrun.divergence"
local experiment = require "detrun.experiment"
local jobs = require "detrun.jobs"
local report = require "detrun.report"
local shard = require "detrun.shard"

local merge = {}

-- The plan that experiment.aggregate reads, rebuilt from plan.json, every
-- field checked for its type and range: a damaged plan is refused naming the
-- file and the field, never merged into empty or wrong results.
function merge.plan_from(rec, path)
  local function bad(what) error(string.format("%s: damaged plan: %s", path, what), 0) end
  if type(rec.grid) ~= "table" then bad("no grid") end
  local g = rec.grid
  if type(g.settings) ~= "table" then bad("no grid.settings") end
  local s = g.settings
  local mins = { rows = 2, folds = 2, repeats = 1, epochs = 1, batch = 1 }
  for _, k in ipairs({ "rows", "folds", "repeats", "epochs", "batch" }) do
    if math.type(s[k]) ~= "integer" then
      error(string.format("%s: settings.%s is missing or not an integer", path, k), 0)
    end
    if s[k] < mins[k] then bad(string.format("settings.%s is %d, below %d", k, s[k], mins[k])) end
  end
  if s.folds > s.rows then bad(string.format("%d folds of %d rows", s.folds, s.rows)) end
  if type(g.experiment) ~= "string" or type(s.modes) ~= "table" or #s.modes == 0 then
    error(path .. ": not a detrun plan (no experiment name or modes)", 0)
  end
  if not g.experiment:match("^[%w_%.%-]+$") then bad("experiment is not a file name") end
  local seen = {}
  for i, m in ipairs(s.modes) do
    if (m ~= "deterministic" and m ~= "fast") or seen[m] then
      bad(string.format("settings.modes[%d] is %s", i, tostring(m)))
    end
    seen[m] = true
  end
  if math.type(g.seed) ~= "integer" or g.seed < 0 then bad("seed is not a non-negative integer") end
  local vs = s.validation_split
  if math.type(vs) == nil or not (vs >= 0 and vs < 1) then
    bad("settings.validation_split is not a number in [0, 1)")
  end
  if type(s.shuffle) ~= "boolean" then bad("settings.shuffle is not true or false") end
  if rec.threads ~= nil and math.type(rec.threads) ~= "integer" then bad("threads is not an integer") end
  if rec.device ~= nil and type(rec.device) ~= "string" then bad("device is not a string") end
  local cap = experiment.check_grid(#s.modes, s.repeats, s.folds)
  if cap then bad(cap) end
  if g.detrun_version ~= core.version then
    error(string.format("%s: the shards were run by detrun %s, this is %s: merge with that "
                        .. "version", path, tostring(g.detrun_version), core.version), 0)
  end
  return {
    name = g.experiment, seed = g.seed, threads = rec.threads, device = rec.device,
    rows = s.rows, folds = s.folds, repeats = s.repeats, modes = s.modes,
    fit = { epochs = s.epochs, batch = s.batch, validation_split = s.validation_split,
            shuffle = s.shuffle },
    cells = shard.cells(s.modes, s.repeats, s.folds),
  }
end

-- Cells counted from 1 in plan order, repeats and folds from 1 (jobs.label).
local function label(i, cell)
  return string.format("cell %d (%s)", i, jobs.label(cell))
end

-- Merges the shards in out; partial: write results even if cells are
-- missing. Returns the results.
function merge.run(out, partial, verbosity)
  local dir = shard.dir(out)
  local path = dir .. "/plan.json"
  -- One merge or run at a time writes the results of this folder, and none
  -- while a shard holds its part of it (the lock names the shard). Taken
  -- before anything is read, so no shard writes meanwhile; a folder that is
  -- not there is not made.
  local lock <close> = os.rename(out, out) and core._lock(out) or nil
  local rec = core._record_read(path)
  if not rec then
    error(path .. ": cannot open: no shards ran with this results folder (detrun --shard K/N "
          .. "or detrun slurm, with -o " .. out .. ")", 0)
  end
  local p = merge.plan_from(rec, path)
  p.out = out
  local records, problems = {}, {}
  for i, cell in ipairs(p.cells) do
    local cpath = dir .. "/" .. shard.cell_name(cell) .. ".json"
    local r = core._record_read(cpath)
    if r then experiment.check_record(r, cell, cpath) end
    if not r then
      problems[#problems + 1] = label(i, cell) .. ": missing"
    elseif r.error ~= nil then
      problems[#problems + 1] = label(i, cell) .. ": failed: " .. tostring(r.error):gsub("\n.*", "")
    else
      records[#records + 1] = r
    end
  end
  if #problems > 0 then
    local msg = string.format("merge %s: %d of %d cells are missing or failed:\n  %s",
                              out, #problems, #p.cells, table.concat(problems, "\n  "))
    if not partial then
      error(msg .. "\nrerun the shards to fill them in (the same detrun slurm or detrun --shard "
            .. "command; recorded cells are kept), or merge --partial", 0)
    end
    io.stderr:write(msg, "\nwriting partial results\n")
  end
  local tbl = experiment.aggregate(p, records)
  if #problems > 0 then tbl.incomplete = problems end
  tbl.set = core._set_id()   -- carried by each file of the set
  local res = core._results(tbl)
  local json, csv, page = experiment.write_results(p, res, tbl, out, "merge")
  if #problems == 0 then divergence.cleanup(dir, p) end
  if verbosity >= 1 then
    io.stdout:write(report.table(tbl, { json, csv }))
    if page then io.stdout:write("report: ", page, "\n") end
  end
  return res
end

-- `detrun merge` runs require("detrun.merge").main with the command's options.
function merge.main(partial)
  local opts = core.options()
  return merge.run(opts.out, partial == "partial", opts.verbosity or 0)
end

return merge
