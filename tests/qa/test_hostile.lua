-- The command and the Lua module used as a hostile user would: bad options
-- exit 2, bad scripts and data exit 1 with the file (and line, layer, cell or
-- step) named, nothing crashes, and results written before stay whole.
--   lua5.4 test_hostile.lua DETRUN_BINARY SOURCE_DIR WORK_DIR
package.path = arg[2] .. "/tests/lua/?.lua;" .. package.path
local h = require "harness"

local small = [[
local dr = require "detrun"
return dr.experiment { name = "small", data = dr.data.mnist().train, limit = 200, folds = 2,
  model = function() MODEL end,
  compile = { optimizer = dr.optim.adam { lr = LR } }, fit = { epochs = 2, batch = 50 } }
]]
local function experiment(lr, model)
  model = model or "return dr.nn.sequential { dr.nn.flatten(), " ..
                   "dr.nn.dense { units = 10, activation = 'softmax' } }"
  return (small:gsub("LR", lr):gsub("MODEL", model))
end
local ok_script = h.script("small.lua", experiment("1e-3"))
local out = h.work .. "/results"

-- ---- options: each bad value exits 2 naming the option -----------------------
local usage = {
  { { "-t", "-1" }, "--threads" }, { { "-t", "100000" }, "--threads" },
  { { "--limit", "0" }, "--limit" }, { { "--folds", "1" }, "--folds" },
  { { "--epochs", "0" }, "--epochs" }, { { "--repeats", "0" }, "--repeats" },
  { { "-m", "nonsense" }, "--mode" }, { { "--seed", "-1" }, "--seed" },
  { { "--seed", "18446744073709551616" }, "--seed" }, { { "--epochs", "1e3" }, "--epochs" },
  { { "--trace-every", "0" }, "--trace-every" }, { { "--shard", "2/2" }, "--shard" },
  { { "--device", "tpu" }, "--device" },
}
for _, c in ipairs(usage) do
  local args = { "-q", "-o", out }
  for _, a in ipairs(c[1]) do args[#args + 1] = a end
  args[#args + 1] = ok_script
  local code, _, err = h.run(args)
  h.check(code == 2 and err:find(c[2], 1, true) ~= nil,
          table.concat(c[1], " ") .. " exits 2 naming " .. c[2], code .. " " .. err)
end

-- ---- scripts that are not experiments ----------------------------------------
local code, _, err = h.run { "-q", h.work .. "/missing.lua" }
h.check(code == 1 and err:find("missing.lua", 1, true), "a missing script exits 1 naming it", err)
code, _, err = h.run { "-q", h.work }
h.check(code == 1 and err:find(h.work, 1, true), "a folder as script exits 1 naming it", err)
code = h.run { "-q", h.script("empty.lua", "") }
h.check(code == 0, "an empty script exits 0", code)
code, _, err = h.run { "-q", h.script("number.lua", "return 42\n") }
h.check(code == 1 and err:find("number.lua", 1, true) and err:find("returned a number", 1, true),
        "a script returning a number exits 1 saying so", err)
code, _, err = h.run { "-q", h.script("module.lua", "return require 'detrun'\n") }
h.check(code == 1 and err:find("returned a table", 1, true),
        "a script returning the module exits 1 saying so", err)

-- The experiment's own errors name the script and the line of dr.experiment{}, even after
-- `return dr.experiment{}` (a tail call).
code, _, err = h.run { "-q", "-o", out, "--folds", "100000", ok_script }
h.check(code == 1 and err:find("small.lua:2: dr.experiment: 100000 folds", 1, true),
        "--folds larger than the rows exits 1 naming the script", err)
code, _, err = h.run { "-q", "-o", ok_script, ok_script }
h.check(code == 2 and err:find("small.lua", 1, true) and err:find("is not a folder", 1, true),
        "-o naming a file is a usage error naming it", err)
for _, body in ipairs { "error('no model here')", "return 5" } do
  local s = h.script("model_fn.lua", experiment("1e-3", body))
  code, _, err = h.run { "-q", "-o", out, s }
  h.check(code == 1 and err:find("model_fn.lua", 1, true) and
          (err:find("no model here", 1, true) or err:find("must return a new", 1, true)),
          "model() that " .. body .. " exits 1 naming the script", err)
end

-- ---- a NaN in training: the cell, epoch and step named; earlier results whole --
code = h.run { "-q", "-o", out, ok_script }
local json, csv = h.slurp(out .. "/small.json"), h.slurp(out .. "/small.csv")
h.check(code == 0 and #json > 0 and #csv > 0, "a good run writes its results", code)
local nan_script = h.script("small.lua", experiment("1e30",
  "return dr.nn.sequential { dr.nn.flatten(), dr.nn.dense { units = 32, activation = 'relu' }, " ..
  "dr.nn.dense { units = 10, activation = 'softmax' } }"))
code, _, err = h.run { "-q", "-o", out, nan_script }
h.check(code == 1 and err:find("deterministic repeat 1 fold 1: fit: the loss became", 1, true) and
        err:find("at epoch 0, step %d+") ~= nil, "a NaN exits 1 naming the cell, epoch and step", err)
h.check(h.slurp(out .. "/small.json") == json and h.slurp(out .. "/small.csv") == csv,
        "the results written before the NaN run are intact")

-- ---- the module with wrong types and values -------------------------------------
-- Each case must raise an error holding every given piece; a line number
-- piece is the line of the case in this script.
local api = h.script("api.lua", [==[
local dr = require "detrun"
local data = dr.data.mnist()
local train, test = data.train, data.test
local bad = 0
-- f raises an error holding each piece; with `here`, at a line of f (the
-- script's own line, never one inside the module).
local function expect(pieces, f, here)
  local ok, err = pcall(f)
  err = tostring(err)
  local good = not ok
  for _, p in ipairs(pieces) do good = good and err:find(p, 1, true) ~= nil end
  if here then
    local info = debug.getinfo(f, "S")
    local line = tonumber(err:match("api%.lua:(%d+):"))
    good = good and line ~= nil and line >= info.linedefined and line <= info.lastlinedefined
  end
  if not good then bad = bad + 1; print("FAIL " .. table.concat(pieces, " | ") .. " -> " .. err) end
end
local function last() return dr.nn.dense { units = 10, activation = "softmax" } end
local function compiled()
  local m = dr.nn.sequential { dr.nn.flatten(), last(), input = { 1, 28, 28 } }
  m:compile {}
  return m
end
local rows = dr.data.rows(100)
expect({ "filters 2147483648 is too large" }, function()
  local _ = dr.nn.conv2d { filters = 2^31, kernel = 3 } end, true)
expect({ "units must be an integer" }, function()
  local _ = dr.nn.dense { units = 2.5 } end, true)
expect({ "unknown option 'x'" }, function() local _ = dr.nn.flatten { x = 1 } end, true)
expect({ "relu_1: the last layer" }, function()
  local m = dr.nn.sequential { dr.nn.relu(), input = { 1, 28, 28 } }; m:compile {}; local _ = m:fingerprint() end, true)
expect({ "kernel 29x29 is larger than its 28x28 input" }, function()
  local m = dr.nn.sequential { dr.nn.conv2d { filters = 2, kernel = 29 }, dr.nn.flatten(), last(),
                               input = { 1, 28, 28 } }
  m:compile {}; local _ = m:fingerprint() end, true)
expect({ "dropout_1: rate" }, function()
  local m = dr.nn.sequential { dr.nn.flatten(), dr.nn.dropout { rate = 0 / 0 }, last(),
                               input = { 1, 28, 28 } }
  m:compile {}; local _ = m:fingerprint() end, true)
expect({ "conv2d_1:", "too many weights" }, function()
  local m = dr.nn.sequential { dr.nn.conv2d { filters = 2, kernel = 2^30, padding = "same" },
                               dr.nn.flatten(), last(), input = { 1, 28, 28 } }
  m:compile {}; local _ = m:fingerprint() end, true)
expect({ "input must be {channels, height, width}" }, function()
  local _ = dr.nn.sequential { dr.nn.flatten(), last(), input = 5 } end, true)
expect({ "lr must be a number" }, function() local _ = dr.optim.adam { lr = "x" } end, true)
expect({ "learning rate -1 must be positive" }, function()
  local m = dr.nn.sequential { dr.nn.flatten(), last(), input = { 1, 28, 28 } }
  m:compile { optimizer = dr.optim.adam { lr = -1 } }; local _ = m:fingerprint() end, true)
expect({ "beta1 1 is not in [0, 1)" }, function()
  local m = dr.nn.sequential { dr.nn.flatten(), last(), input = { 1, 28, 28 } }
  m:compile { optimizer = dr.optim.adam { beta1 = 1 } }; local _ = m:fingerprint() end, true)
expect({ "seed must be an integer" }, function()
  local _ = dr.nn.sequential { dr.nn.flatten(), last() }:compile { seed = 1.5 } end, true)
expect({ "batch 0 must be positive" }, function()
  local _ = compiled():fit(nil, train, { rows = rows, batch = 0 }) end, true)
expect({ "validation_split 1 is not in [0, 1)" }, function()
  local _ = compiled():fit(nil, train, { rows = rows, validation_split = 1.0 }) end, true)
expect({ "validation_split -0.1" }, function()
  local _ = compiled():fit(nil, train, { rows = rows, validation_split = -0.1 }) end, true)
expect({ "validation_split must be a number" }, function()
  local _ = compiled():fit(nil, train, { rows = rows, validation_split = "a" }) end, true)
expect({ "epochs must be an integer" }, function()
  local _ = compiled():fit(nil, train, { rows = rows, epochs = 1.5 }) end, true)
expect({ "epochs must be an integer" }, function()
  local _ = compiled():fit(nil, train, { rows = rows, epochs = 2^40 }) end, true)
expect({ "data must be a dataset" }, function()
  local _ = compiled():fit(nil, nil, { rows = rows }) end, true)
expect({ "no rows to evaluate" }, function()
  local _ = compiled():evaluate(nil, train, { rows = dr.data.rows {} }) end, true)
expect({ "bad argument #2 to 'kfold'" }, function() local _ = dr.data.kfold(3, 5, 0) end, true)
-- The epoch callback: closing or refitting the model is an error, not a
-- crash; evaluating on another data set leaves the fit as it was.
expect({ "cannot close a model while it is training" }, function()
  local m = compiled()
  m:fit(nil, train, { rows = rows, epochs = 2, on_epoch = function() m:close() end }) end)
expect({ "already training" }, function()
  local m = compiled()
  m:fit(nil, train, { rows = rows, epochs = 2, on_epoch = function() m:fit(nil, train, { rows = rows }) end }) end)
-- A data set a fit trains on cannot change under it (limit from on_epoch
-- was an out-of-bounds read); evaluating it there is fine.
expect({ "in use by a running fit" }, function()
  local m = compiled()
  m:fit(nil, train, { rows = rows, epochs = 2, on_epoch = function()
    train:limit(10)
    m:evaluate(nil, train, { rows = dr.data.rows(5) }) end }) end)
if #train ~= 60000 then bad = bad + 1; print("FAIL the data set changed under the fit") end
local fps = {}
for pass = 1, 2 do
  local m = compiled()
  local far = dr.data.rows { 59991, 59992, 59993, 59994, 6, 7, 8, 9 }
  m:fit(nil, train, { rows = far, epochs = 3, batch = 4, on_epoch = function()
    if pass == 2 then m:evaluate(nil, test, { rows = dr.data.rows(10) }) end end })
  fps[pass] = m:fingerprint()
end
if fps[1] ~= fps[2] then bad = bad + 1; print("FAIL evaluating another data set changed the fit") end
-- predict checks its sizes against the model.
local m = compiled()
m:fingerprint()   -- builds it
local x = {}
for i = 1, 784 do x[i] = 0.5 end
expect({ "3 values are not n = 1 images of 1x28x28" }, function() return m._m:predict({ 1, 2, 3 }, 1, 10) end)
expect({ "gives 10 logits" }, function() return m._m:predict(x, 1, 3) end)
if #m._m:predict(x, 1, 10) ~= 10 then bad = bad + 1; print("FAIL predict") end
print(bad == 0 and "all good" or (bad .. " bad"))
]==])
local api_out
code, api_out, err = h.run { "-q", "-t", "2", api }
h.check(code == 0 and api_out:find("all good", 1, true), "the module's errors name the line and what was wrong",
        api_out .. err)

-- small.lua now diverges; the checks below start from a good script.
local good_script = h.script("good.lua", experiment("1e-3"))

-- ---- options checked before any work --------------------------------------------
local golden = h.work .. "/same.golden"
code, _, err = h.run { "-q", "-o", out, "--record", golden, "--check", golden, good_script }
h.check(code == 2 and err:find("same file", 1, true) and not io.open(golden),
        "--record G --check G is a usage error and writes nothing", err)
code, _, err = h.run { "-q", "-o", "", good_script }
h.check(code == 2 and err:find("-o", 1, true) and err:find("empty path", 1, true),
        "-o '' is a usage error", err)
code, _, err = h.run { "-q", "-o", out, "--no-checkpoint", "--resume", good_script }
h.check(code == 2 and err:find("--no-checkpoint", 1, true), "--no-checkpoint --resume is refused", err)

-- ---- caps on declared sizes, with the way to raise them -----------------------
local huge = h.script("huge.lua", (experiment("1e-3"):gsub("folds = 2,", "folds = 2, repeats = 2^53,")))
code, _, err = h.run { "-q", "-o", out, huge }
h.check(code == 1 and err:find("huge.lua", 1, true) and err:find("DETRUN_MAX_REPEATS", 1, true),
        "repeats = 2^53 is refused naming the limit", err)
local wide = h.script("wide.lua", experiment("1e-3", "return dr.nn.sequential { dr.nn.flatten(), " ..
  "dr.nn.dense { units = 300000 }, dr.nn.dense { units = 10, activation = 'softmax' } }"))
code, _, err = h.run { "-q", "-o", out, wide }
h.check(code == 1 and err:find("dense_1", 1, true) and err:find("DETRUN_MAX_PARAMS", 1, true),
        "units = 300000 is refused naming the layer and the limit", err)

-- ---- resume refuses a run whose bits would differ -------------------------------
local out2 = h.work .. "/resume"
local cells = out2 .. "/small.cells"
local edited = h.work .. "/edited.lua"
local function write(path, text) local f = assert(io.open(path, "wb")); f:write(text); f:close() end
write(edited, experiment("1e-3"))
code, _, err = h.run { "-q", "-o", out2, edited }
h.check(code == 0, "a run to resume", err)
write(edited, experiment("2e-3"))
code, _, err = h.run { "-q", "-o", out2, "--resume", edited }
h.check(code == 1 and err:find("the script's text", 1, true) and err:find("run.plan", 1, true),
        "--resume after editing the script is refused naming what changed", err)
write(edited, experiment("1e-3"))
-- Another data folder: 300 images of another pattern.
local fake = h.work .. "/fake"
os.execute("mkdir -p '" .. fake .. "'")
local function be32(v) return string.pack(">I4", v) end
local px = {}
for i = 1, 300 * 784 do px[i] = string.char((i * 7) % 256) end
write(fake .. "/train-images-idx3-ubyte", "\0\0\8\3" .. be32(300) .. be32(28) .. be32(28) .. table.concat(px))
local lb = {}
for i = 1, 300 do lb[i] = string.char(i % 10) end
write(fake .. "/train-labels-idx1-ubyte", "\0\0\8\1" .. be32(300) .. table.concat(lb))
code, _, err = h.run { "-q", "-o", out2, "--resume", "--data", fake, edited }
h.check(code == 1 and err:find("the data (was", 1, true), "--resume with other data is refused", err)

-- ---- damaged records are refused naming the file ---------------------------------
local f0 = cells .. "/deterministic-r0-f0.json"
local good = h.slurp(f0)
local damages = {
  { "fingerprint", function(t) return (t:gsub('"fingerprint":%s*"%x+"', '"fingerprint": "zz"')) end },
  { "fold 2, but the file is deterministic repeat 1 fold 1", function(t) return (t:gsub('"fold":%s*0', '"fold": 1')) end },
  { "seconds", function(t) return (t:gsub('"seconds":%s*[^,\n}]+', '"seconds": "soon"')) end },
  { "loss", function(t) return (t:gsub('"loss":%s*[^,\n}]+', '"loss": "low"', 1)) end },
}
for _, d in ipairs(damages) do
  local bad_text = d[2](good)
  write(f0, bad_text)
  code, _, err = h.run { "-q", "-o", out2, "--resume", edited }
  h.check(bad_text ~= good and code == 1 and err:find(f0, 1, true) and err:find(d[1], 1, true),
          "a record with a bad " .. d[1] .. " is refused naming the file", err)
end
write(f0, good)
code, _, err = h.run { "-q", "-o", out2, "--resume", edited }
h.check(code == 0, "the repaired record resumes", err)

-- ---- merge checks the plan and the records ---------------------------------------
local out3 = h.work .. "/sharded"
os.execute("rm -rf '" .. out3 .. "'")
code, _, err = h.run { "-q", "-o", out3, "--shard", "0/1", good_script }
h.check(code == 0, "a one-shard run", err)
local plan = out3 .. "/shards/plan.json"
local good_plan = h.slurp(plan)
for _, d in ipairs { { '"folds":%s*2', '"folds": -3', "settings.folds is -3" },
                     { '"repeats":%s*1', '"repeats": 1000000000', "DETRUN_MAX_REPEATS" } } do
  write(plan, (good_plan:gsub(d[1], d[2])))
  code, _, err = h.run { "merge", "-q", out3 }
  h.check(code == 1 and err:find("plan.json", 1, true) and err:find(d[3], 1, true),
          "merge refuses a plan with " .. d[2], err)
end
write(plan, good_plan)
local s0 = out3 .. "/shards/deterministic-r0-f0.json"
local good_rec = h.slurp(s0)
write(s0, (good_rec:gsub('"fingerprint":%s*"%x+",?', "")))
code, _, err = h.run { "merge", "-q", out3 }
h.check(code == 1 and err:find(s0, 1, true) and err:find("fingerprint", 1, true),
        "merge refuses a record without a fingerprint, naming it", err)
write(s0, good_rec)
code, _, err = h.run { "merge", "-q", out3 }
h.check(code == 0 and #h.slurp(out3 .. "/small.json") > 0, "the repaired shards merge", err)
local other = h.script("other.lua", experiment("2e-3"))
code, _, err = h.run { "-q", "-o", out3, "--shard", "0/1", other }
h.check(code == 1 and err:find("describes another grid", 1, true),
        "a shard of an edited script does not mix with the others", err)
h.done()
