-- The seed experiment's shape at a size that runs in about a minute on two
-- cores: the first 6000 training images, 3 folds, 2 epochs, 2 repeats.
--   detrun experiments/quick.lua
local dr = require "detrun"

local data = dr.data.mnist()

local function network()
  return dr.nn.sequential {
    dr.nn.conv2d  { filters = 8, kernel = 3, activation = "relu" },
    dr.nn.maxpool { size = 2 },
    dr.nn.conv2d  { filters = 8, kernel = 3, activation = "relu" },
    dr.nn.maxpool { size = 2 },
    dr.nn.flatten (),
    dr.nn.dense   { units = 128, activation = "relu" },
    dr.nn.dropout { rate = 0.2 },
    dr.nn.dense   { units = 10, activation = "softmax" },
  }
end

return dr.experiment {
  name    = "quick",
  seed    = 0,
  data    = data.train,
  limit   = 6000,
  folds   = 3,
  repeats = 2,
  modes   = { "deterministic", "fast" },
  model   = network,
  compile = { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy",
              metrics = { "accuracy" } },
  fit     = { epochs = 2, batch = 100, validation_split = 0.2 },
}
