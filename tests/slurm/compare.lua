-- detrun tests/slurm/compare.lua A.json B.json
-- Fails unless two results files agree in everything but timings and the
-- machine (threads, device): the deterministic mode's records, fingerprints,
-- losses, accuracies and statistics exactly, the fast mode's cells by name
-- (its bits may differ from run to run by design).
local dr = require "detrun"
local a_path, b_path = ...
local function load(path)
  local r, err = dr.load_results(path)
  if not r then error(err, 0) end
  return r
end
local a, b = load(a_path), load(b_path)
-- divergence: a sharded run's curve may be partial (docs/cluster.md), so it
-- is not compared here; tests/report checks it.
local SKIP = { seconds = true, run_seconds = true, overhead = true, threads = true, device = true,
               wall_seconds = true, machine = true, divergence = true, set = true }

local function same(x, y, where)
  if type(x) == "table" and type(y) == "table" then
    local keys = {}
    for k in pairs(x) do keys[#keys + 1] = k end
    for k in pairs(y) do if x[k] == nil then keys[#keys + 1] = k end end
    table.sort(keys, function(p, q) return tostring(p) < tostring(q) end)
    for _, k in ipairs(keys) do
      if not SKIP[k] then same(x[k], y[k], where .. "." .. tostring(k)) end
    end
  elseif not (x == y or (x ~= x and y ~= y)) then
    error(string.format("%s differs: %s in %s, %s in %s", where, tostring(x), a_path,
                        tostring(y), b_path), 0)
  end
end

same(a.settings, b.settings, "settings")
same(a.experiment, b.experiment, "experiment")
same(a.seed, b.seed, "seed")
local checked = 0
for i, ma in ipairs(a.modes) do
  local mb = b.modes[i] or error("mode " .. ma.mode .. " missing in " .. b_path, 0)
  same(ma.mode, mb.mode, "modes[" .. i .. "].mode")
  if ma.mode == "deterministic" then
    same(ma, mb, "deterministic")
    for _, r in ipairs(ma.repeats) do checked = checked + #r.folds end
  else
    for j, r in ipairs(ma.repeats) do
      local rb = mb.repeats[j] or error(ma.mode .. " repeat " .. j .. " missing in " .. b_path, 0)
      for k, f in ipairs(r.folds) do
        local fb = rb.folds[k] or error(ma.mode .. " fold missing in " .. b_path, 0)
        same(f.fold, fb.fold, ma.mode .. " repeat " .. j .. " fold")
      end
    end
  end
end
if checked == 0 then error("no deterministic cells to compare in " .. a_path, 0) end
io.stdout:write(string.format("same: %d deterministic cells, their fingerprints, losses, "
                              .. "accuracies and statistics\n", checked))
