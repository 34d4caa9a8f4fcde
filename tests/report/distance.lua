-- The divergence measure against hand computations: distance() on small
-- tensors, then a tracker pair (repeat 1 saves, a later repeat measures) on a
-- model whose one weight is changed to a value known exactly.
--   detrun distance.lua DIR
local dr = require "detrun"
local div = require "detrun.divergence"
local T = dr.tensor
local dir = assert(arg[1], "usage: detrun distance.lua DIR")

-- |0|, |-0.5|, |-2| -> max 2; 0 + 0.25 + 4; 1 + 6.25 + 1.
local mx, dd, bb, n = div.distance(T.from { 1, 2, -3 }, T.from { 1, 2.5, -1 })
assert(mx == 2 and dd == 4.25 and bb == 8.25 and n == 3,
       string.format("distance: %g %g %g %d", mx, dd, bb, n))
assert(div.distance(T.from { 1, 2 }, T.from { 1, 2, 3 }) == nil, "sizes that differ")

local m = dr.nn.sequential { input = { 1, 2, 2 }, dr.nn.flatten(),
                             dr.nn.dense { units = 2, activation = "softmax" } }
m:compile { optimizer = dr.optim.sgd {}, loss = "sparse_categorical_crossentropy" }
local save, finish = div.tracker(dir, { mode = "fast", ["repeat"] = 0, fold = 4 }, m)
assert(div.tracker(dir, { mode = "fast", ["repeat"] = 1, fold = 4 }, m) == nil,
       "a later repeat measured before repeat 1 finished")
save { epoch = 0 }
finish()
local ref = {}
local count, sumsq = 0, 0
for i = 1, #m:params() do
  local t = m:param(i)
  ref[i] = t
  for k = 1, #t do count, sumsq = count + 1, sumsq + t[k] * t[k] end
end
local w = m:param(1)
local old = w[1]
w[1] = 0.25
m:set_param(1, w)
local measure = div.tracker(dir, { mode = "fast", ["repeat"] = 2, fold = 4 }, m)
local st = { epoch = 0 }
measure(st)
local want_max = math.abs(0.25 - old)
local want_rms = math.sqrt(want_max * want_max / count) / math.sqrt(sumsq / count)
assert(st.divergence.max_abs == want_max,
       string.format("max_abs %.17g, want %.17g", st.divergence.max_abs, want_max))
assert(math.abs(st.divergence.rms - want_rms) <= 1e-15 * want_rms,
       string.format("rms %.17g, want %.17g", st.divergence.rms, want_rms))
local none = { epoch = 1 }   -- repeat 1 saved no epoch 1: no measure
measure(none)
assert(none.divergence == nil, "a measure without repeat 1's weights")

div.cleanup(dir, { modes = { "fast" }, folds = 5, fit = { epochs = 1 } })
assert(io.open(dir .. "/fast-r0-f4.e0.p1.weights.npy") == nil, "cleanup left a weights file")
assert(io.open(dir .. "/fast-r0-f4.weights.done") == nil, "cleanup left the done mark")
print("ok")
