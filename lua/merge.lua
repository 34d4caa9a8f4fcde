-- detrun.merge: `detrun merge OUT`, the results of a sharded run.
--
-- Reads OUT/shards/plan.json and one record per cell (lua/shard.lua), and
-- aggregates them exactly as a single process does (experiment.aggregate),
-- so every fingerprint, loss and accuracy is the same; only timings differ.
-- A missing or failed cell is named, and the merge refused unless partial.
local core = require "detrun.core"
local divergence = require "detrun.divergence"
local experiment = require "detrun.experiment"
local report = require "detrun.report"
local shard = require "detrun.shard"

local merge = {}

-- The plan that experiment.aggregate reads, rebuilt from plan.json.
local function plan_from(rec, path)
  local g = type(rec.grid) == "table" and rec.grid or {}
  local s = type(g.settings) == "table" and g.settings or {}
  for _, k in ipairs({ "rows", "folds", "repeats", "epochs", "batch" }) do
    if math.type(s[k]) ~= "integer" then
      error(string.format("%s: settings.%s is missing or not an integer", path, k), 0)
    end
  end
  if type(g.experiment) ~= "string" or type(s.modes) ~= "table" or #s.modes == 0 then
    error(path .. ": not a detrun plan (no experiment name or modes)", 0)
  end
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

local function label(i, cell)
  return string.format("cell %d (%s repeat %d fold %d)", i - 1, cell.mode, cell["repeat"], cell.fold)
end

-- Merges the shards in out; partial: write results even if cells are
-- missing. Returns the results.
function merge.run(out, partial, verbosity)
  local dir = shard.dir(out)
  local path = dir .. "/plan.json"
  local rec = core._record_read(path)
  if not rec then
    error(path .. ": cannot open: no shards ran with this results folder (detrun --shard K/N "
          .. "or detrun slurm, with -o " .. out .. ")", 0)
  end
  local p = plan_from(rec, path)
  p.out = out
  local records, problems = {}, {}
  for i, cell in ipairs(p.cells) do
    local cpath = dir .. "/" .. shard.cell_name(cell) .. ".json"
    local r = core._record_read(cpath)
    if not r then
      problems[#problems + 1] = label(i, cell) .. ": missing"
    elseif r.mode ~= cell.mode or r["repeat"] ~= cell["repeat"] or r.fold ~= cell.fold then
      error(cpath .. ": holds another cell's record", 0)
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
  local res = core._results(tbl)
  local json, csv = res:write(out, p.name)
  if not json then error("merge: " .. csv, 0) end
  local page = experiment.write_report(p, tbl)
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
