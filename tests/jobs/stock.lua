-- jobs from the stock lua5.4 (detrun.so as a module): dr.set_options{jobs}
-- and dr.experiment{jobs} give the results of one cell at a time.
--   LUA_CPATH=build/lua/?.so lua5.4 tests/jobs/stock.lua DATA_DIR
local dr = require "detrun"
local data_dir = ...

local function run(jobs, via_options)
  dr.set_options { verbosity = 0, data = data_dir, jobs = via_options and jobs or nil }
  local res = dr.experiment {
    name = "stock", seed = 1, data = dr.data.mnist().train, limit = 400, folds = 2, repeats = 2,
    jobs = not via_options and jobs or nil,
    model = function()
      return dr.nn.sequential { dr.nn.flatten(), dr.nn.dense { units = 10, activation = "softmax" } }
    end,
    compile = { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy" },
  }
  -- The JSON without what may differ: timings and threads.
  local lines = {}
  for line in res:json():gmatch("[^\n]+") do
    if not line:find('"seconds"', 1, true) and not line:find('"run_seconds"', 1, true) and
       not line:find('"threads"', 1, true) and not line:find('"wall_seconds"', 1, true) and
       not line:find('"machine"', 1, true) then
      lines[#lines + 1] = line
    end
  end
  return table.concat(lines, "\n"), res:fingerprint("deterministic", 1)
end

local one, fp = run(1, false)
assert(fp and #fp == 32, "no repeat fingerprint")
for _, v in ipairs({ { 2, false }, { 3, true } }) do
  local got = run(v[1], v[2])
  if got ~= one then
    error(string.format("jobs %d (%s) differ from one job", v[1], v[2] and "options" or "spec"), 0)
  end
end
print("ok: the stock interpreter's jobs give one job's results")
