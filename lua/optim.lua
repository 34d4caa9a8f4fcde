-- detrun.optim: optimiser descriptions with Keras' defaults; the C core
-- checks their ranges when the model is compiled.
local util = require "detrun.util"

local optim = {}

function optim.adam(t)
  t = t or {}
  util.check_options(t, { "lr", "beta1", "beta2", "eps" }, "dr.optim.adam", 2)
  for _, k in ipairs({ "lr", "beta1", "beta2", "eps" }) do
    util.check_type(t, k, "dr.optim.adam", "number")
  end
  return { kind = "adam", lr = t.lr or 1e-3, beta1 = t.beta1 or 0.9, beta2 = t.beta2 or 0.999,
           eps = t.eps or 1e-7 }
end

function optim.sgd(t)
  t = t or {}
  util.check_options(t, { "lr", "momentum" }, "dr.optim.sgd", 2)
  for _, k in ipairs({ "lr", "momentum" }) do util.check_type(t, k, "dr.optim.sgd", "number") end
  return { kind = "sgd", lr = t.lr or 1e-2, momentum = t.momentum or 0 }
end

return optim
