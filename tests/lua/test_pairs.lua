-- Lua must not leak non-determinism into a run: a script that walks its
-- options with pairs() (whose order changes between processes with Lua's
-- string-hash seed) and draws from math.random gets the same fingerprint
-- and the same random numbers in separate processes.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local h = require "harness"

local script = h.script("pairs.lua", [[
local dr = require "detrun"
local options = { epochs = 1, batch = 50, validation_split = 0.25, shuffle = true }
local fit = {}
local order = {}
for k, v in pairs(options) do fit[k] = v; order[#order + 1] = k end
local layers = { relu = { units = 16 }, softmax = { units = 10 } }
local function net()
  local l = { dr.nn.flatten() }
  for act, o in pairs(layers) do
    if act == "relu" then table.insert(l, 2, dr.nn.dense { units = o.units + math.random(0, 7), activation = act }) end
  end
  l[#l + 1] = dr.nn.dense { units = layers.softmax.units, activation = "softmax" }
  return dr.nn.sequential(l)
end
local r = dr.experiment { name = "pairs", data = dr.data.mnist().train, limit = 600, folds = 2,
  repeats = 1, modes = { "deterministic" }, model = net, fit = fit,
  compile = { optimizer = dr.optim.adam {} } }
print("random " .. math.random(1, 1000000000))
print("order " .. table.concat(order, ","))
print("fingerprint " .. r:fingerprint("deterministic", 1))
]])

local fps, randoms, orders = {}, {}, {}
for i = 1, 4 do
  local code, out, err = h.run { "-q", "-o", h.work .. "/pairs" .. i, script }
  h.check(code == 0, "pairs script run " .. i .. " exits 0", err)
  fps[i] = out:match("fingerprint (%x+)")
  randoms[i] = out:match("random (%d+)")
  orders[i] = out:match("order ([%w_,]+)")
end
h.check(h.is_fingerprint(fps[1]), "a fingerprint is printed", fps[1])
for i = 2, 4 do
  h.check(fps[i] == fps[1], "process " .. i .. " gives the same fingerprint", fps[i])
  h.check(randoms[i] == randoms[1], "process " .. i .. " draws the same math.random", randoms[i])
end
local differs = false
for i = 2, 4 do differs = differs or orders[i] ~= orders[1] end
print("note pairs() orders seen: " .. table.concat(orders, " | ") .. (differs and "" or " (all the same this time)"))

-- A different seed changes the fingerprint (so the check above can fail).
local code, out = h.run { "-q", "-s", "7", "-o", h.work .. "/pairs_s7", script }
h.check(code == 0 and out:match("fingerprint (%x+)") ~= fps[1], "another seed gives another fingerprint")
h.done()
