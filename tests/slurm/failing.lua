-- The quick experiment's network, whose fold DETRUN_TEST_FAIL_FOLD (1-based, when set)
-- fails to build: the failed-cell path of tests/slurm/test_shards.sh.
local dr = require "detrun"
local bad = tonumber(os.getenv("DETRUN_TEST_FAIL_FOLD") or "")

return dr.experiment {
  name = "failing", seed = 3, data = dr.data.mnist().train, limit = 400,
  folds = 2, repeats = 2, modes = { "deterministic", "fast" },
  model = function(cell)
    if cell.fold == bad then error("fold " .. cell.fold .. " refuses to train", 0) end
    return dr.nn.sequential {
      dr.nn.conv2d { filters = 4, kernel = 3, activation = "relu" },
      dr.nn.maxpool { size = 2 },
      dr.nn.flatten (),
      dr.nn.dense { units = 10, activation = "softmax" },
    }
  end,
  compile = { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy" },
  fit = { epochs = 1, batch = 100 },
}
