-- The stock lua5.4 loads detrun.so and trains a tiny model by hand.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local h = require "harness"
local dr = require "detrun"

h.check(type(dr.version) == "string" and dr.version:match("^%d+%.%d+%.%d+$"), "module has a version")
local data = dr.data.mnist()
local train = data.train
h.check(#train == 60000 and select(2, train:shape()) == 28, "Fashion-MNIST train set loads", tostring(train))

local function net()
  return dr.nn.sequential {
    dr.nn.conv2d { filters = 4, kernel = 3, activation = "relu" },
    dr.nn.maxpool { size = 2 },
    dr.nn.flatten(),
    dr.nn.dense { units = 10, activation = "softmax" },
  }
end

local rows = dr.data.rows(500)

-- Rows count from 1 in Lua: rows(n) is 1..n, a list names row numbers, a
-- split's lists hold row numbers from 1, ds:label(r) is row r's label. Row 1
-- trained alone and row 1 named in a list give the same model.
h.check(rows[1] == 1 and rows[500] == 500 and rows[501] == nil, "rows(n) holds rows 1..n")
local listed = dr.data.rows { 1, 2, 60000 }
h.check(listed[1] == 1 and listed[3] == 60000, "a row list keeps the numbers given")
h.check(not pcall(dr.data.rows, { 0 }), "row 0 is refused")
do
  local split = dr.data.kfold(10, 2, 1)
  local all = {}
  for f = 1, 2 do
    local t = split:test(f)
    for i = 1, #t do all[#all + 1] = t[i] end
  end
  table.sort(all)
  h.check(#all == 10 and all[1] == 1 and all[10] == 10, "a split's rows are 1..n", table.concat(all, " "))
end
h.check(train:label(1) == dr.data.mnist().train:label(1) and not pcall(train.label, train, 0) and
        not pcall(train.label, train, 60001) and pcall(train.label, train, 60000),
        "ds:label counts rows from 1 to #ds")
do
  local function one(r)
    local m <close> = net()
    m:compile { optimizer = dr.optim.adam {}, seed = 4 }
    m:fit(dr.run { seed = 4 }, train, { epochs = 1, batch = 1, rows = r, shuffle = false })
    return m:fingerprint()
  end
  h.check(one(dr.data.rows(1)) == one(dr.data.rows { 1 }) and
          one(dr.data.rows { 2 }) ~= one(dr.data.rows { 1 }), "rows{1} is the first row")
end
local function train_once(threads)
  local m <close> = net()
  m:compile { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy", seed = 3 }
  local run = dr.run { seed = 3, mode = "deterministic", threads = threads }
  local seen = {}
  local history = m:fit(run, train, { epochs = 2, batch = 50, validation_split = 0.2, rows = rows,
                                      on_epoch = function(st) seen[#seen + 1] = st.epoch end })
  local loss, acc = m:evaluate(run, train, { rows = dr.data.rows(200) })
  return m:fingerprint(), history, seen, loss, acc, m
end

local fp1, hist, seen, loss, acc = train_once(1)
local fp2 = train_once(2)
h.check(h.is_fingerprint(fp1), "fingerprint is 32 hex digits", fp1)
h.check(fp1 == fp2, "same fingerprint at 1 and 2 threads", fp1 .. " " .. tostring(fp2))
h.check(#hist == 2 and seen[1] == 0 and seen[2] == 1, "fit calls back once per epoch")
h.check(hist[2].loss < hist[1].loss + 1 and loss > 0 and acc >= 0 and acc <= 1, "evaluate gives loss and accuracy")

-- Training changes the weights; a fresh model with the same seed starts equal.
local a = dr.nn.sequential { input = { 1, 28, 28 }, dr.nn.flatten(), dr.nn.dense { units = 10 } }
local b = dr.nn.sequential { input = { 1, 28, 28 }, dr.nn.flatten(), dr.nn.dense { units = 10 } }
a:compile { seed = 5 }; b:compile { seed = 5 }
h.check(a:fingerprint() == b:fingerprint(), "same seed, same initial weights")
a:fit(dr.run { seed = 5 }, train, { epochs = 1, batch = 50, rows = dr.data.rows(100) })
h.check(a:fingerprint() ~= b:fingerprint(), "fit changes the weights")
h.check(#a:params() == 2 and a:params()[1].name == "dense_1.weight", "parameters are named")

-- a callback error stops training and surfaces after fit returns
local c = net()
c:compile {}
local ok, err = pcall(c.fit, c, dr.run(), train, { rows = dr.data.rows(100), epochs = 3, batch = 50,
  on_epoch = function() error("stop here") end })
h.check(not ok and tostring(err):find("stop here", 1, true), "callback errors reach the caller", err)
c:close()
h.check(tostring(c):find("sequential", 1, true), "models print")

-- The public table holds no private members; its parts are modules of their own.
local private = {}
for _, t in ipairs { dr, dr.data, dr.nn, dr.optim, dr.report } do
  for k in pairs(t) do
    if tostring(k):sub(1, 1) == "_" then private[#private + 1] = tostring(k) end
  end
end
table.sort(private)
h.check(#private == 0, "no private members on the module's tables", table.concat(private, " "))
h.check(require "detrun.nn" == dr.nn and require "detrun.data" == dr.data and
        require "detrun.experiment".aggregate == dr.aggregate, "the modules can be required by name")

-- dr.aggregate: the results of any set of cells' records.
local plan = { name = "agg", seed = 1, threads = 1, device = "cpu", rows = 10, folds = 2, repeats = 2,
               modes = { "deterministic" }, fit = { epochs = 1, batch = 5, validation_split = 0,
               shuffle = true } }
local function rec(r, f, loss, fp)
  return { mode = "deterministic", ["repeat"] = r, fold = f, loss = loss, accuracy = 0.5,
           fingerprint = fp, seconds = 1 }
end
local res = dr.aggregate(plan, { rec(1, 1, 0.25, "b"), rec(0, 0, 0.5, "a"), rec(1, 0, 0.5, "a"),
                                 rec(0, 1, 0.75, "b") })
local mode = res.modes[1]
h.check(mode.distinct_fingerprints == 1 and mode.repeats[1].fingerprint == dr.fingerprint_strings { "a", "b" }
        and mode.variance.loss == 0.03125 and mode.variance.accuracy == 0,
        "dr.aggregate gives each repeat's fingerprint and the variances", mode.variance.loss)
res = dr.aggregate(plan, { rec(0, 0, 0.5, "a") })
h.check(#res.modes[1].repeats == 1 and res.modes[1].repeats[1].fingerprint == nil,
        "a repeat missing folds has no fingerprint")
h.done()
