-- detrun.divergence: how far a repeat's weights drift from repeat 0's.
--
-- Repeat 0 of each (mode, fold) saves its parameters after every epoch to
-- files beside the cell records (NAME.cells/ or shards/), and marks them
-- complete when its fit ends. A later repeat of the same (mode, fold) reads
-- them in its own on_epoch and records, per epoch, max |w - w0| and the RMS
-- of w - w0 relative to the RMS of w0. Only files are kept, so memory stays
-- one model's parameters whatever the grid. Deterministic mode must give
-- exactly 0; fast mode shows how a last-bit difference grows.
local core = require "detrun.core"

local divergence = {}

local function stem(dir, mode, fold)
  return string.format("%s/%s-r0-f%d", dir, mode, fold)
end

local function param_file(dir, mode, fold, epoch, i)
  return string.format("%s.e%d.p%d.weights.npy", stem(dir, mode, fold), epoch, i)
end

local function done_file(dir, mode, fold)
  return stem(dir, mode, fold) .. ".weights.done"
end

-- A later repeat's measure of one epoch, kept for a resumed fit, which
-- shows its callback the finished epochs again without their weights.
local function measure_file(dir, mode, r, fold, epoch)
  return string.format("%s/%s-r%d-f%d.e%d.divergence.json", dir, mode, r, fold, epoch)
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- max |a - b|, and sum (a - b)^2 and sum b^2 in double precision, in
-- storage order.
local function distance(a, b)
  local n = #a
  if #b ~= n then return nil end
  local mx, dd, bb = 0, 0, 0
  for i = 1, n do
    local x, y = a[i], b[i]
    local d = x - y
    if d < 0 then d = -d end
    if d > mx then mx = d end
    dd = dd + d * d
    bb = bb + y * y
  end
  return mx, dd, bb, n
end
divergence.distance = distance

-- The distance of model m's parameters from those saved by repeat 0 at this
-- epoch: {max_abs, rms} or nil if any file is missing.
local function measure(m, dir, mode, fold, epoch)
  local mx, dd, bb, n = 0, 0, 0, 0
  for i = 1, #m:params() do
    local ref = core.tensor.load(param_file(dir, mode, fold, epoch, i))
    if not ref then return nil end
    local a, b, c, k = distance(m:param(i), ref)
    if not a then return nil end
    if a > mx then mx = a end
    dd, bb, n = dd + b, bb + c, n + k
  end
  if n == 0 then return nil end
  local rms_ref = math.sqrt(bb / n)
  return { max_abs = mx, rms = rms_ref > 0 and math.sqrt(dd / n) / rms_ref or math.sqrt(dd / n) }
end

-- The on_epoch hook of a cell, and the function to call when its fit has
-- ended; both nil when there is nowhere to keep the files.
function divergence.tracker(dir, cell, m)
  if not dir then return nil end
  local mode, fold = cell.mode, cell.fold
  -- A resumed fit replays the epochs it had finished; the model then holds
  -- later weights than the epoch's (its fingerprint says so).
  local function replayed(st)
    return st.fingerprint ~= nil and m:fingerprint() ~= st.fingerprint
  end
  if cell["repeat"] == 0 then
    os.remove(done_file(dir, mode, fold))
    local function save(st)
      if replayed(st) then return end   -- saved when the epoch ended
      for i = 1, #m:params() do
        local path = param_file(dir, mode, fold, st.epoch, i)
        local ok, err = m:param(i):save(path .. ".tmp")
        if not ok or not os.rename(path .. ".tmp", path) then
          error("divergence: cannot save " .. path .. ": " .. tostring(err), 0)
        end
      end
    end
    local function finish()
      local f = io.open(done_file(dir, mode, fold), "wb")
      if f then f:close() end
    end
    return save, finish
  end
  -- Repeat 0 ran elsewhere and is not finished (a sharded run): no curve.
  if not exists(done_file(dir, mode, fold)) then return nil end
  local r = cell["repeat"]
  return function(st)
    local path = measure_file(dir, mode, r, fold, st.epoch)
    if replayed(st) then
      local ok, kept = pcall(core._record_read, path)
      st.divergence = ok and type(kept) == "table" and type(kept.rms) == "number"
                      and type(kept.max_abs) == "number" and kept or nil
      return
    end
    st.divergence = measure(m, dir, mode, fold, st.epoch)
    if st.divergence then core._record_write(path, st.divergence) end
  end, nil
end

-- Removes the files of every (mode, fold) of the plan.
function divergence.cleanup(dir, p)
  if not dir then return end
  for _, mode in ipairs(p.modes) do
    for f = 0, p.folds - 1 do
      os.remove(done_file(dir, mode, f))
      for e = 0, p.fit.epochs - 1 do
        local i = 1
        while os.remove(param_file(dir, mode, f, e, i)) do i = i + 1 end
        for r = 1, (p.repeats or 1) - 1 do os.remove(measure_file(dir, mode, r, f, e)) end
      end
    end
  end
end

-- Per mode: per epoch the largest divergence over the cells of repeats
-- after 0, and whether any such cell lacks it (the curve is then partial).
function divergence.summary(records, mode)
  local epochs, last, cells, missing = {}, 0, 0, 0
  for _, r in ipairs(records) do
    if r.mode == mode and r["repeat"] > 0 then
      local have = false
      for _, e in ipairs(r.epochs or {}) do
        local d = e.divergence
        if d then
          have = true
          local s = epochs[e.epoch + 1]
          if not s then
            s = { epoch = e.epoch, max_abs = d.max_abs, rms = d.rms, cells = 0 }
            epochs[e.epoch + 1] = s
            last = math.max(last, e.epoch + 1)
          end
          s.max_abs = math.max(s.max_abs, d.max_abs)
          s.rms = math.max(s.rms, d.rms)
          s.cells = s.cells + 1
        end
      end
      if have then cells = cells + 1 else missing = missing + 1 end
    end
  end
  local list = {}
  for i = 1, last do if epochs[i] then list[#list + 1] = epochs[i] end end
  return { epochs = list, cells = cells, missing = missing }
end

return divergence
