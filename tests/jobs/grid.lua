-- A small grid for tests/jobs/test_jobs.sh. In every cell of repeat r > 0,
-- model() checks that the cell of repeat 0 of its fold has finished (its
-- record is written), the order the jobs scheduler promises (outside
-- --shard runs, whose other shards may run anywhere). With
-- DETRUN_TEST_FAIL_CELL=R/F the cell of repeat R fold F fails to build.
local dr = require "detrun"
local out = dr.options().out
-- A shard's cells wait only for cells of the same shard: no check there.
if dr.options().shards then out = nil end
local fail = os.getenv("DETRUN_TEST_FAIL_CELL")

return dr.experiment {
  name = "grid", seed = 5, data = dr.data.mnist().train, limit = 600,
  folds = 3, repeats = 3, modes = { "deterministic" },
  model = function(cell)
    -- The script sees 1-based numbers; records and file names are 0-based.
    local r, f = cell["repeat"] - 1, cell.fold - 1
    if fail == r .. "/" .. f then error("cell " .. fail .. " refuses to train", 0) end
    if r > 0 and out then
      local first = string.format("%s/grid.cells/%s-r0-f%d.json", out, cell.mode, f)
      local fh = io.open(first)
      if not fh then error("repeat " .. r .. " fold " .. f .. " started before " .. first, 0) end
      fh:close()
    end
    return dr.nn.sequential {
      dr.nn.conv2d { filters = 4, kernel = 3, activation = "relu" },
      dr.nn.maxpool { size = 2 },
      dr.nn.flatten (),
      dr.nn.dense { units = 32, activation = "relu" },
      dr.nn.dropout { rate = 0.2 },
      dr.nn.dense { units = 10, activation = "softmax" },
    }
  end,
  compile = { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy",
              metrics = { "accuracy" } },
  fit = { epochs = 2, batch = 50, validation_split = 0.2 },
}
