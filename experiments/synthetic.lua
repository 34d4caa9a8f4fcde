-- A seeded synthetic data set that needs no data package: 3 classes of 8x8
-- grey images, each class two Gaussian blobs in pixel space (two prototype
-- images drawn with dr.tensor.uniform, per-image noise with
-- dr.tensor.normal). Every pixel is a pure function of the seed, so the
-- data and the fingerprints are the same on every machine.
--   detrun experiments/synthetic.lua
local dr = require "detrun"
local T = dr.tensor

local classes, blobs, side, rows, seed = 3, 2, 8, 600, 7

-- One prototype image per (class, blob), pixels in [0.2, 0.8).
local centres = T.uniform { { classes * blobs, side * side }, seed = seed, stream = 0,
                            low = 0.2, high = 0.8 }
-- Row i is class (i - 1) % 3, blob ((i - 1) // 3) % 2: a one-hot row picks its
-- prototype (a product with 0 and 1 is exact), noise makes the blob.
local pick, labels = T.zeros { rows, classes * blobs }, T.zeros { rows }
for i = 1, rows do
  local class, blob = (i - 1) % classes, ((i - 1) // classes) % blobs
  pick[{ i, class * blobs + blob + 1 }] = 1
  labels[i] = class
end
local noise = T.normal { { rows, side * side }, seed = seed, stream = 1, std = 0.15 }
local images = (pick:matmul(centres) + noise):clamp(0, 1):reshape { rows, 1, side, side }
local data = assert(dr.data.tensors(images, labels))

local function network()
  return dr.nn.sequential {
    dr.nn.conv2d  { filters = 4, kernel = 3, activation = "relu" },
    dr.nn.maxpool { size = 2 },
    dr.nn.flatten (),
    dr.nn.dense   { units = 16, activation = "relu" },
    dr.nn.dropout { rate = 0.1 },
    dr.nn.dense   { units = classes, activation = "softmax" },
  }
end

return dr.experiment {
  name    = "synthetic",
  seed    = 0,
  data    = data,
  folds   = 3,
  repeats = 2,
  modes   = { "deterministic", "fast" },
  model   = network,
  compile = { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy",
              metrics = { "accuracy" } },
  fit     = { epochs = 10, batch = 10, validation_split = 0.2 },
}
