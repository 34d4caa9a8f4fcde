-- What a new user meets first: errors that say the script's file:line
-- without detrun's frames (a traceback with --traceback or for detrun's own
-- faults), experiment fields checked by name, dr.set_options merging and
-- refusing unknown keys, 1-based numbers in Lua, m:summary(), and the
-- warning for detrun options written after the script.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local h = require "harness"
local dr = require "detrun"

-- An experiment script whose `fit` (or any other field) is the given text.
local function exp(name, fields)
  return h.script(name, [[
local dr = require "detrun"
local data = dr.data.mnist()
return dr.experiment {
  name = "f", data = data.train, limit = 200, folds = 2,
  model = function()
    return dr.nn.sequential { dr.nn.flatten(), dr.nn.dense { units = 10, activation = "softmax" } }
  end,
  ]] .. fields .. [[,
}
]])
end

local function no_frames(err) return not err:find("traceback", 1, true) and not err:find("[detrun", 1, true) end

local code, _, err = h.run { "-q", exp("fit_typo.lua", "fit = { epoch = 1 }") }
h.check(code == 1, "a misspelt fit option exits 1", code)
h.check(err:find("fit_typo.lua:3: dr.experiment: fit: unknown option 'epoch'", 1, true),
        "a misspelt fit option is named with the script's line", err)
h.check(no_frames(err), "... and no traceback of detrun's frames", err)

code, _, err = h.run { "-q", "--traceback", exp("fit_typo2.lua", "fit = { epoch = 1 }") }
h.check(code == 1 and err:find("stack traceback", 1, true), "--traceback keeps the traceback", err)

code, _, err = h.run { "-q", exp("split.lua", "fit = { validation_split = 'x' }") }
h.check(code == 1 and err:find("split.lua:3: dr.experiment: fit.validation_split must be a number", 1, true)
        and no_frames(err), "validation_split = 'x' is named as such", err)
code, _, err = h.run { "-q", exp("split2.lua", "fit = { validation_split = 1 }") }
h.check(code == 1 and err:find("validation_split", 1, true), "validation_split = 1 is refused", err)
code, _, err = h.run { "-q", exp("compile.lua", "compile = 5") }
h.check(code == 1 and err:find("compile.lua:3: dr.experiment: compile: expected a table", 1, true)
        and no_frames(err), "compile = 5 is named as such", err)
code, _, err = h.run { "-q", exp("shuffle.lua", "fit = { shuffle = 'yes' }") }
h.check(code == 1 and err:find("fit.shuffle must be true or false", 1, true), "shuffle = 'yes'", err)

-- A layer typo inside model(): the line of the layer, no frames.
code, _, err = h.run { "-q", h.script("layer.lua", [[
local dr = require "detrun"
return dr.experiment { name = "f", data = dr.data.mnist().train, limit = 200, folds = 2,
  model = function()
    return dr.nn.sequential { dr.nn.flatten(), dr.nn.dence { units = 10 } }
  end }
]]) }
h.check(code == 1 and err:find("layer.lua:4: attempt to call a nil value (field 'dence')", 1, true)
        and no_frames(err), "a misspelt layer kind names its line only", err)

-- An error inside detrun's own Lua code keeps its traceback (here made by
-- breaking a module: a stand-in for a fault of detrun's).
code, _, err = h.run { "-q", h.script("internal.lua", [[
local dr = require "detrun"
require("detrun.util").check_options = 5
return dr.experiment { name = "f", data = dr.data.mnist().train, limit = 200, folds = 2,
  model = function() return dr.nn.sequential { dr.nn.flatten(), dr.nn.dense { units = 10 } } end }
]]) }
h.check(code == 1 and err:find("[detrun.", 1, true) and err:find("stack traceback", 1, true),
        "a fault inside detrun's modules keeps the traceback", err)

-- Options after the script belong to it, with a warning naming them.
code, _, err = h.run { "-q", "--limit", "200", "--folds", "2", "-o", h.work .. "/w",
                       exp("late.lua", "fit = { epochs = 1 }"), "-o", "x", "--epochs=3", "plain" }
h.check(code == 0, "a run with script arguments succeeds", err)
h.check(err:find("warning: -o comes after", 1, true) and err:find("warning: --epochs=3 comes after", 1, true),
        "detrun options after SCRIPT are warned about by name", err)
h.check(not err:find("plain", 1, true), "a plain script argument is not warned about", err)

-- dr.set_options merges, and refuses unknown keys.
local ok, msg = pcall(dr.set_options, { limt = 10 })
h.check(not ok and tostring(msg):find("unknown option 'limt'", 1, true), "set_options refuses limt", msg)
dr.set_options { verbosity = 0 }
dr.set_options { limit = 200, folds = 2 }
local o = dr.options()
h.check(o.verbosity == 0 and o.limit == 200 and o.folds == 2, "set_options merges into the options",
        string.format("%s %s %s", o.verbosity, o.limit, o.folds))

-- 1-based in Lua: model() gets repeat and fold from 1; r:fingerprint(mode, 1)
-- is the first repeat (the JSON keeps 0).
local seen = {}
local r = dr.experiment {
  name = "onebased", seed = 1, data = dr.data.mnist().train, repeats = 1,
  model = function(cell)
    seen[#seen + 1] = cell["repeat"] .. "/" .. cell.fold
    return dr.nn.sequential { dr.nn.flatten(), dr.nn.dense { units = 10, activation = "softmax" } }
  end,
  fit = { epochs = 1, batch = 50 },
}
h.check(table.concat(seen, " ") == "1/1 1/2", "model() sees repeat and fold from 1", table.concat(seen, " "))
local first = r.modes[1].repeats[1]
h.check(first["repeat"] == 0 and h.is_fingerprint(first.fingerprint), "the results table keeps repeat 0")
h.check(r:fingerprint("deterministic", 1) == first.fingerprint, "r:fingerprint(mode, 1) is the first repeat",
        tostring(r:fingerprint("deterministic", 1)))
h.check(r:fingerprint("deterministic", 2) == nil, "r:fingerprint(mode, 2) of a one-repeat run is nil")
h.check(not pcall(r.fingerprint, r, "deterministic", 0), "r:fingerprint(mode, 0) is an error")

-- m:summary(): output shapes and parameter counts, the total checked
-- against the built model's parameters.
local m <close> = dr.nn.sequential {
  input = { 1, 28, 28 },
  dr.nn.conv2d { filters = 8, kernel = 3, activation = "relu" }, dr.nn.maxpool { size = 2 },
  dr.nn.conv2d { filters = 4, kernel = 3, padding = "same", strides = 2 }, dr.nn.flatten(),
  dr.nn.dense { units = 16, activation = "relu" }, dr.nn.dropout { rate = 0.5 },
  dr.nn.dense { units = 10, activation = "softmax" },
}
local s = m:summary()
h.check(s:find("conv2d_1 %(conv2d%)%s+%(8, 26, 26%)%s+80\n"), "summary: conv2d_1's shape and count", s)
h.check(s:find("maxpool_1 %(maxpool%)%s+%(8, 13, 13%)%s+0\n"), "summary: maxpool_1", s)
h.check(s:find("conv2d_2 %(conv2d%)%s+%(4, 7, 7%)%s+292\n"), "summary: same padding, stride 2", s)
h.check(s:find("flatten_1 %(flatten%)%s+%(196%)"), "summary: flatten_1", s)
h.check(s:find("dense_1 %(dense%)%s+%(16%)%s+3152\n"), "summary: dense_1", s)
m:compile { seed = 3 }
local total = 0
for _, p in ipairs(m:params()) do
  local n = 1
  for _, d in ipairs(p.shape) do n = n * d end
  total = total + n
end
h.check(s:find("Total params: " .. total, 1, true), "summary's total is the model's parameter count",
        total .. "\n" .. s)
local nos = dr.nn.sequential { dr.nn.flatten(), dr.nn.dense { units = 3 } }:summary()
h.check(nos:find("Total params: ?", 1, true), "without an input shape the summary says it cannot size", nos)
h.done()
