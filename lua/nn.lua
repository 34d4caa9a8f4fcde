-- detrun.nn: the model builder with Keras' vocabulary (optimisers: detrun.optim).
-- Layers are plain descriptions; the C model is built from them when the
-- input shape is known (Keras builds on first fit too). A layer remembers
-- where the script wrote it, so an error about "dense_1" points at that line.
local core = require "detrun.core"
local optim = require "detrun.optim"
local util = require "detrun.util"

local nn = {}

local Layer = {}
Layer.__index = Layer
function Layer:__tostring()
  return "detrun.nn." .. self.kind .. (self.name and ("(" .. self.name .. ")") or "")
end

local function new_layer(kind, t, allowed)
  t = t or {}
  util.check_options(t, allowed, "dr.nn." .. kind, 3)
  local l = { kind = kind, where = util.where(3) }
  for _, k in ipairs(allowed) do l[k] = t[k] end
  return setmetatable(l, Layer)
end

local function need_int(l, field, dflt)
  local v = l[field]
  if v == nil then v = dflt end
  local i = math.tointeger(v)
  if i == nil then
    error(string.format("%s: %s must be an integer, not %s", l.kind, field, tostring(v)), 3)
  end
  if i < -0x7fffffff or i > 0x7fffffff then
    error(string.format("%s: %s %d is too large", l.kind, field, i), 3)
  end
  return i
end

local function check_act(l)
  local a = l.activation
  if a ~= nil and a ~= "relu" and a ~= "softmax" and a ~= "linear" and a ~= "none" then
    error(string.format("%s: activation must be \"relu\", \"softmax\" or \"linear\", not %s",
                        l.kind, tostring(a)), 3)
  end
end

function nn.conv2d(t)
  local l = new_layer("conv2d", t, { "filters", "kernel", "strides", "padding", "activation" })
  l.filters = need_int(l, "filters")
  local k = l.kernel
  if type(k) == "table" then
    l.kh, l.kw = math.tointeger(k[1]), math.tointeger(k[2])
  else
    l.kh = math.tointeger(k); l.kw = l.kh
  end
  if l.kh == nil or l.kw == nil or math.abs(l.kh) > 0x7fffffff or math.abs(l.kw) > 0x7fffffff then
    error("conv2d: kernel must be an integer or {height, width}, not " .. tostring(k), 2)
  end
  l.strides = need_int(l, "strides", 1)
  l.padding = l.padding or "valid"
  if l.padding ~= "valid" and l.padding ~= "same" then
    error("conv2d: padding must be \"valid\" or \"same\", not " .. tostring(l.padding), 2)
  end
  check_act(l)
  return l
end

function nn.maxpool(t)
  local l = new_layer("maxpool", t, { "size", "strides" })
  l.size = need_int(l, "size", 2)
  l.strides = need_int(l, "strides", l.size)
  return l
end

-- dr.nn.avgpool{ size = 2, strides = size }: the mean of each window; the
-- core checks the options (later kinds pass theirs as l.args).
function nn.avgpool(t)
  local l = new_layer("avgpool", t, { "size", "strides" })
  l.args = { size = l.size, stride = l.strides }
  return l
end

-- Not tail calls: new_layer finds the script's line two calls up.
function nn.flatten(t)
  local l = new_layer("flatten", t, {})
  return l
end

function nn.relu(t)
  local l = new_layer("relu", t, {})
  return l
end

function nn.dense(t)
  local l = new_layer("dense", t, { "units", "activation" })
  l.units = need_int(l, "units")
  check_act(l)
  return l
end

function nn.dropout(t)
  local l = new_layer("dropout", t, { "rate" })
  if type(l.rate) ~= "number" then
    error("dropout: rate must be a number, not " .. tostring(l.rate), 2)
  end
  return l
end

-- ---- sequential models ---------------------------------------------------------

local Model = {}
Model.__index = Model
nn.Model = Model

function nn.sequential(t)
  if type(t) ~= "table" then error("dr.nn.sequential: expected a table of layers", 2) end
  local named = {}
  for k in pairs(t) do
    if math.type(k) ~= "integer" then named[#named + 1] = k end
  end
  local opts = {}
  for _, k in ipairs(named) do opts[k] = t[k] end
  util.check_options(opts, { "input" }, "dr.nn.sequential", 2)
  local counts, layers = {}, {}
  for i = 1, #t do
    local l = t[i]
    if getmetatable(l) ~= Layer then
      error(string.format("dr.nn.sequential: item %d is not a layer (write dr.nn.dense{...})", i), 2)
    end
    counts[l.kind] = (counts[l.kind] or 0) + 1
    local copy = setmetatable({}, Layer)
    for k, v in pairs(l) do copy[k] = v end   -- a plain copy: order does not matter
    copy.name = l.kind .. "_" .. counts[l.kind]
    layers[i] = copy
  end
  if #layers == 0 then error("dr.nn.sequential: no layers", 2) end
  local input = t.input
  if input ~= nil then
    -- Integers that fit a C int; the core says which sizes it takes.
    local ok = type(input) == "table" and #input == 3
    for i = 1, 3 do
      local d = ok and math.tointeger(input[i])
      ok = ok and d ~= nil and d >= -0x7fffffff and d <= 0x7fffffff
    end
    if not ok then
      error("dr.nn.sequential: input must be {channels, height, width}, positive integers", 2)
    end
  end
  return setmetatable({ layers = layers, input = t.input, where = util.where(2) }, Model)
end

-- Raises msg; when the core says which layer it is about (the binding's
-- third result, from detrun_error_layer), from the line that wrote that layer.
local function fail(self, msg, level, name)
  for _, l in ipairs(self.layers) do
    if l.name == name and l.where then error(l.where .. ": " .. msg, 0) end
  end
  error(msg, level + 1)
end

local ACT = { relu = "relu", softmax = "softmax", linear = "none", none = "none" }

function Model:compile(t)
  t = t or {}
  util.check_options(t, { "optimizer", "loss", "metrics", "seed", "stream" }, "compile", 2)
  local o = t.optimizer or "adam"
  if o == "adam" then o = optim.adam() elseif o == "sgd" then o = optim.sgd() end
  if type(o) ~= "table" or (o.kind ~= "adam" and o.kind ~= "sgd") then
    error("compile: optimizer must be dr.optim.adam{...}, dr.optim.sgd{...}, \"adam\" or \"sgd\"", 2)
  end
  if t.loss ~= nil and t.loss ~= "sparse_categorical_crossentropy" then
    error("compile: loss must be \"sparse_categorical_crossentropy\", not " .. tostring(t.loss), 2)
  end
  for i, m in ipairs(t.metrics or {}) do
    if m ~= "accuracy" then
      error(string.format("compile: metric %d must be \"accuracy\", not %s", i, tostring(m)), 2)
    end
  end
  if self._m then error("compile: the model is already built", 2) end
  util.check_type(t, "seed", "compile", "int64")
  util.check_type(t, "stream", "compile", "int")
  -- The C model is built at the first fit: checked here too, so that the
  -- error names the compile call's line rather than the fit's.
  if t.stream ~= nil and (t.stream < 0 or t.stream > 0xffffff) then
    error("compile: stream must be from 0 to 16777215, not " .. tostring(t.stream), 2)
  end
  self.compiled = { optimizer = o, seed = t.seed, stream = t.stream or 0 }
  return self
end

-- Builds the C model for inputs of shape (c, h, w) with seed (unless built).
local function build(self, c, h, w, seed, level)
  if self._m then return self._m end
  if not self.compiled then error("the model is not compiled: call m:compile{...} first", level + 1) end
  local m, err = core._model_new(c, h, w)
  if not m then error(err, level + 1) end
  for _, l in ipairs(self.layers) do
    local ok, msg, name
    if l.kind == "conv2d" then
      ok, msg, name = m:add_conv2d(l.filters, l.kh, l.kw, l.strides, l.padding,
                                   ACT[l.activation or "none"])
    elseif l.kind == "maxpool" then ok, msg, name = m:add_maxpool(l.size, l.strides)
    elseif l.kind == "flatten" then ok, msg, name = m:add_flatten()
    elseif l.kind == "dense" then ok, msg, name = m:add_dense(l.units, ACT[l.activation or "none"])
    elseif l.kind == "relu" then ok, msg, name = m:add_relu()
    elseif l.kind == "dropout" then ok, msg, name = m:add_dropout(l.rate)
    else ok, msg, name = m:add_layer(l.kind, l.args)   -- later kinds: options checked by the core
    end
    if not ok then m:close(); fail(self, msg, level + 1, name) end
  end
  local ok, msg, name = m:compile(self.compiled.optimizer, self.compiled.seed or seed,
                                  self.compiled.stream)
  if not ok then m:close(); fail(self, msg, level + 1, name) end
  self._m = m
  self.built_shape = { c, h, w }
  return m
end

local function default_seed()
  return core.run().seed
end

-- The C model, built from the input shape given to dr.nn.sequential.
local function ready(self, level)
  if self._m then return self._m end
  if not self.input then
    error("the model has no input shape yet: fit it first, or give dr.nn.sequential{input = {c, h, w}, ...}",
          level + 1)
  end
  -- Not a tail call: the levels count this frame.
  local m = build(self, self.input[1], self.input[2], self.input[3], default_seed(), level + 1)
  return m
end

local FIT_OPTS = { "epochs", "batch", "validation_split", "shuffle", "stream", "seed", "rows", "on_epoch",
                   "on_batch", "checkpoint", "resume" }

-- m:fit(run, data, { epochs, batch, validation_split, shuffle, stream, rows, on_epoch,
--                    on_batch, checkpoint, resume })
-- -> history: one record per epoch (loss, accuracy, val_loss, val_accuracy,
-- fingerprint, seconds), as Keras' History. checkpoint: a file the whole
-- training state is saved to after every epoch; resume: continue from it.
-- on_batch(k, n, loss, epoch): after every optimiser step (k of n, epoch from
-- 1, the epoch's running mean loss); true stops.
-- Raises from the script's line unless run and data are what fit and
-- evaluate take.
local RUN_MT
local function check_run_data(run, data, what)
  RUN_MT = RUN_MT or getmetatable(core.run())
  if run ~= nil and getmetatable(run) ~= RUN_MT then
    error(string.format("%s: the first argument must be dr.run{...} or nil, not %s", what,
                        tostring(run)), 3)
  end
  if type(data) ~= "userdata" or not pcall(function() return data:shape() end) then
    error(string.format("%s: data must be a dataset (e.g. dr.data.mnist().train), not %s", what,
                        tostring(data)), 3)
  end
end

local ROWS_MT
local function check_rows(t, what)
  ROWS_MT = ROWS_MT or getmetatable(core.data.rows(0))
  if t.rows ~= nil and getmetatable(t.rows) ~= ROWS_MT then
    error(string.format("%s: rows must be dr.data.rows{...} or a split's rows, not %s", what,
                        tostring(t.rows)), 3)
  end
end

function Model:fit(run, data, t)
  t = t or {}
  util.check_options(t, FIT_OPTS, "fit", 2)
  check_run_data(run, data, "fit")
  for _, k in ipairs({ "epochs", "batch", "stream" }) do util.check_type(t, k, "fit", "int") end
  util.check_type(t, "seed", "fit", "int64")
  util.check_type(t, "validation_split", "fit", "number")
  util.check_type(t, "on_epoch", "fit", "function")
  util.check_type(t, "on_batch", "fit", "function")
  util.check_type(t, "checkpoint", "fit", "string")
  check_rows(t, "fit")
  run = run or core.run()
  local c, h, w = data:shape()
  local m = build(self, c, h, w, run.seed, 2)
  local history, err, layer = m:fit(run, data, t.rows, {
    epochs = t.epochs or 1, batch = t.batch or 32, validation_split = t.validation_split or 0,
    shuffle = t.shuffle ~= false, stream = t.stream or 0, seed = t.seed,
    checkpoint = t.checkpoint, resume = t.resume, on_batch = t.on_batch }, t.on_epoch)
  if not history then fail(self, err, 2, layer) end
  return history
end

-- m:evaluate(run, data, { rows, batch }) -> loss, accuracy
function Model:evaluate(run, data, t)
  t = t or {}
  util.check_options(t, { "rows", "batch" }, "evaluate", 2)
  check_run_data(run, data, "evaluate")
  util.check_type(t, "batch", "evaluate", "int")
  if t.batch ~= nil and t.batch < 1 then
    error("evaluate: batch must be positive, not " .. tostring(t.batch), 2)
  end
  check_rows(t, "evaluate")
  run = run or core.run()
  local c, h, w = data:shape()
  local m = build(self, c, h, w, run.seed, 2)
  local loss, acc, layer = m:evaluate(run, data, t.rows, t.batch or 100)
  if not loss then fail(self, acc, 2, layer) end
  return loss, acc
end

function Model:fingerprint()
  local fp, err = ready(self, 2):fingerprint()
  if not fp then error(err, 2) end
  return fp
end

-- Builds the C model for data's shape (no training): what planning checks.
function Model:_build_for(data)
  local c, h, w = data:shape()
  local m = build(self, c, h, w, default_seed(), 2)
  return m ~= nil
end

function Model:params() return ready(self, 2):params() end
function Model:param(i) return ready(self, 2):param(i) end
function Model:step() return ready(self, 2):step() end
function Model:set_param(i, t)
  local ok, err = ready(self, 2):set_param(i, t)
  if not ok then error(err, 2) end
end
function Model:predict(x)
  local p, err = ready(self, 2):predict(x)
  if not p then error(err, 2) end
  return p
end

-- A layer's output shape ({c, h, w} or {n}) for input shape `in`, and its
-- parameter count; nil, nil when unknown (no input shape, or a kind the
-- front end does not size). The core's rules (runtime/layers/*.c).
local function out_shape(l, shape)
  if shape == nil then return nil, nil end
  local c, h, w = shape[1], shape[2], shape[3]
  local function pool(size, stride)
    return { c, (h - size) // stride + 1, (w - size) // stride + 1 }, 0
  end
  if l.kind == "conv2d" then
    local s = l.strides
    local oh, ow
    if l.padding == "same" then oh, ow = (h - 1) // s + 1, (w - 1) // s + 1
    else oh, ow = (h - l.kh) // s + 1, (w - l.kw) // s + 1 end
    return { l.filters, oh, ow }, l.filters * c * l.kh * l.kw + l.filters
  elseif l.kind == "maxpool" then return pool(l.size, l.strides)
  elseif l.kind == "avgpool" then
    local size = math.tointeger(l.size) or 2
    return pool(size, math.tointeger(l.strides) or size)
  elseif l.kind == "flatten" then
    local n = 1
    for _, d in ipairs(shape) do n = n * d end
    return { n }, 0
  elseif l.kind == "dense" then
    local n = 1
    for _, d in ipairs(shape) do n = n * d end
    return { l.units }, n * l.units + l.units
  elseif l.kind == "relu" or l.kind == "dropout" then return shape, 0
  end
  return nil, nil
end

local function shape_text(shape)
  if shape == nil then return "?" end
  return "(" .. table.concat(shape, ", ") .. ")"
end

-- m:summary() -> text, as Keras' model.summary(): per layer its name and
-- kind, output shape and parameter count, then the total. Shapes need the
-- input shape (dr.nn.sequential{input = ...}, or the data of a fit).
function Model:summary()
  local shape = self.input or self.built_shape
  local rows = { { "Layer (type)", "Output shape", "Param #" } }
  local total = 0
  for _, l in ipairs(self.layers) do
    local n
    shape, n = out_shape(l, shape)
    if n and total then total = total + n else total = nil end
    rows[#rows + 1] = { l.name .. " (" .. l.kind .. ")", shape_text(shape), n and tostring(n) or "?" }
  end
  local w1, w2 = 0, 0
  for _, r in ipairs(rows) do w1, w2 = math.max(w1, #r[1]), math.max(w2, #r[2]) end
  local lines = {}
  for i, r in ipairs(rows) do
    lines[#lines + 1] = string.format("%-" .. w1 .. "s  %-" .. w2 .. "s  %s", r[1], r[2], r[3])
    if i == 1 then lines[#lines + 1] = string.rep("-", w1 + w2 + 11) end
  end
  lines[#lines + 1] = string.rep("-", w1 + w2 + 11)
  lines[#lines + 1] = "Total params: " .. (total and tostring(total) or "? (no input shape yet)")
  return table.concat(lines, "\n")
end

function Model:close()
  if self._m then self._m:close(); self._m = nil end
end
Model.__close = Model.close

function Model:__tostring()
  local names = {}
  for i, l in ipairs(self.layers) do names[i] = l.name end
  return "detrun.nn.sequential(" .. table.concat(names, ", ") .. ")"
end

return nn
