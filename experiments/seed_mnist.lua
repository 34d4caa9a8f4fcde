-- The seed protocol: is a 10x repeated 10-fold cross-validation of a small
-- CNN bit-for-bit reproducible, and what does that cost next to fast mode?
--   detrun experiments/seed_mnist.lua
local dr = require "detrun"

local data = dr.data.mnist()   -- Fashion-MNIST from Debian unless --data DIR

local function network()       -- a fresh model for every fold
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
  name    = "seed_mnist",
  seed    = 0,
  data    = data.train,                       -- 60000 images, 28x28
  folds   = 10,
  repeats = 10,
  modes   = { "deterministic", "fast" },      -- the memo's "with" / "without" option
  model   = network,
  compile = { optimizer = dr.optim.adam {},   -- lr 1e-3, 0.9, 0.999, 1e-7 (Keras)
              loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } },
  fit     = { epochs = 10, batch = 100, validation_split = 0.2 },
}
