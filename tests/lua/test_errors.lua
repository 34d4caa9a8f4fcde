-- Errors in scripts: syntax and runtime errors carry file:line (and a
-- traceback) and exit 1; a bad layer is named, with the line that wrote it.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local h = require "harness"

local syntax = h.script("bad_syntax.lua", "local dr = require 'detrun'\n\nlocal x = = 1\n")
local code, _, err = h.run { "-q", syntax }
h.check(code == 1, "syntax error exits 1", code)
h.check(err:find("bad_syntax.lua:3:", 1, true) ~= nil, "syntax error names file:line", err)

local runtime = h.script("bad_runtime.lua", [[
local dr = require "detrun"
local function helper(t)
  return t.missing.field
end
helper({})
]])
code, _, err = h.run { "-q", runtime }
h.check(code == 1, "runtime error exits 1", code)
h.check(err:find("bad_runtime.lua:3:", 1, true) ~= nil, "runtime error names file:line", err)
h.check(err:find("stack traceback", 1, true) ~= nil and err:find("bad_runtime.lua:5:", 1, true),
        "runtime error has a traceback", err)

-- An experiment whose model has the given layer in 4th place.
local function bad_model(name, layer)
  return h.script(name, [[
local dr = require "detrun"
local function net()
  return dr.nn.sequential {
    ]] .. layer .. [[,
    dr.nn.flatten(),
    dr.nn.dense { units = 10, activation = "softmax" },
  }
end
return dr.experiment { name = "bad", data = dr.data.mnist().train, limit = 200, folds = 2,
  model = net, compile = { optimizer = dr.optim.adam {} }, fit = { epochs = 1, batch = 50 } }
]])
end

code, _, err = h.run { "-q", "-o", h.work, bad_model("bad_dense.lua", "dr.nn.dense { units = 0 }") }
h.check(code == 1, "dense with 0 units exits 1", code)
h.check(err:find("bad_dense.lua:4: dense_1:", 1, true) ~= nil and err:find("units", 1, true),
        "dense with 0 units is named with its line", err)

code, _, err = h.run { "-q", "-o", h.work,
                       bad_model("bad_kernel.lua", "dr.nn.conv2d { filters = 4, kernel = 30 }") }
h.check(code == 1, "kernel larger than its input exits 1", code)
h.check(err:find("bad_kernel.lua:4: conv2d_1:", 1, true) ~= nil, "the oversized kernel's layer is named", err)

code, _, err = h.run { "-q", "-o", h.work, bad_model("bad_option.lua", "dr.nn.dense { unit = 5 }") }
h.check(code == 1 and err:find("bad_option.lua:4:", 1, true) and err:find("'unit'", 1, true),
        "a misspelt layer option is named with its line", err)

-- A NaN in training: the core names the layer as data (detrun_error_layer),
-- so the error points at the line that wrote that layer, and names the cell.
local nan = h.script("nan.lua", [[
local dr = require "detrun"
return dr.experiment { name = "nan", data = dr.data.mnist().train, limit = 200, folds = 2,
  modes = { "deterministic" },
  model = function()
    return dr.nn.sequential {
      dr.nn.flatten(),
      dr.nn.dense { units = 32, activation = "relu" },
      dr.nn.dense { units = 10, activation = "softmax" },
    }
  end,
  compile = { optimizer = dr.optim.adam { lr = 1e30 } }, fit = { epochs = 1, batch = 50 } }
]])
code, _, err = h.run { "-q", "-o", h.work, nan }
h.check(code == 1 and err:find("nan.lua:8: deterministic repeat 1 fold 1: fit: the loss became",
                               1, true) ~= nil and err:find("dense_2", 1, true) ~= nil,
        "a NaN names the cell and the line of the layer it is about", err)

code, _, err = h.run { "-q", "--data", h.work .. "/no_such_dir", bad_model("data.lua", "dr.nn.relu()") }
h.check(code == 1 and err:find("no_such_dir", 1, true) ~= nil, "missing data names the file", err)

code, _, err = h.run { "-q", h.work .. "/no_such_script.lua" }
h.check(code == 1 and err:find("no_such_script.lua", 1, true) ~= nil, "a missing script exits 1", err)
h.done()
