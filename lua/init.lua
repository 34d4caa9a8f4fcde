-- detrun: the public module table, assembled here and nowhere else from the
-- binding's C functions (detrun.core) and the Lua modules beside this file.
-- What is not listed here is private to its module.
local core = require "detrun.core"
local experiment = require "detrun.experiment"
local shard = require "detrun.shard"

local dr = {
  version = core.version,
  -- the runtime and the command's options
  run = core.run,
  options = core.options,
  set_options = core.set_options,
  device = core.device,
  threads = core.threads,
  clock = core.clock,
  isatty = core.isatty,
  randomseed = core.randomseed,
  fingerprint_strings = core.fingerprint_strings,
  -- models, data, experiments and their results
  nn = require "detrun.nn",
  optim = require "detrun.optim",
  data = require "detrun.data",
  tensor = core.tensor,
  report = require "detrun.report",
  aggregate = experiment.aggregate,
  load_results = core.load_results,
}

-- dr.experiment{...}: every cell of the grid and the results; under
-- --shard K/N only that shard's cells, and no results (`detrun merge` makes
-- them). Both calls stay tail calls or direct calls from here, so that the
-- spec's errors are raised from the script's line.
function dr.experiment(spec)
  local opts = core.options()
  if not opts.shards then return experiment.run(spec) end
  shard.run(experiment.plan(spec, opts), opts.shard or 0, opts.shards)
  return nil
end

return dr
