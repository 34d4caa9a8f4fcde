-- The failing.lua network, whose model() waits until the file named by
-- DETRUN_TEST_GO exists: a shard that holds its lock for as long as the test
-- needs (tests/slurm/test_shard_locks.sh).
local dr = require "detrun"
local go = os.getenv("DETRUN_TEST_GO")

local function wait_for_go()
  for _ = 1, 1200 do
    local f = go and io.open(go, "rb")
    if f or not go then
      if f then f:close() end
      return
    end
    os.execute("sleep 0.05")
  end
  error("waiting.lua: " .. go .. " did not appear", 0)
end

return dr.experiment {
  name = "waiting", seed = 3, data = dr.data.mnist().train, limit = 400,
  folds = 2, repeats = 1, modes = { "deterministic" },
  model = function()
    wait_for_go()
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
