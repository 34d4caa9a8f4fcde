-- detrun.report: live progress on stderr and the final table on stdout.
local core = require "detrun.core"
local util = require "detrun.util"

local report = {}

-- "1 fold", "2 folds".
local function plural(n, word)
  return string.format("%d %s%s", n, word, n == 1 and "" or "s")
end
report.plural = plural

-- Seconds as m:ss, or h:mm:ss from an hour on.
local function clock_text(s)
  if s ~= s or s == math.huge or s < 0 then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then
    return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60)
  end
  return string.format("%d:%02d", s // 60, s % 60)
end
report.clock_text = clock_text

local function key(cell) return cell.mode .. "/" .. cell["repeat"] .. "/" .. cell.fold end

local function finite(x) return type(x) == "number" and x == x and x - x == 0 end

---------------------------------------------------------------------------
-- The progress display. On a terminal: one line redrawn in place, cut to the
-- terminal's width so that it never wraps, showing the latest event of any
-- cell with the counts, the elapsed time and an estimate of the time left.
-- Elsewhere (a pipe, a file): one plain line per epoch of each cell and one
-- per finished cell, without control characters.

local Progress = {}
Progress.__index = Progress

-- env (tests): out (an object with :write), tty, width, clock. By default
-- stderr, whether it is a terminal, its width (80 when unknown) and
-- core.clock.
function report.progress(p, env)
  env = env or {}
  local tty = env.tty
  if tty == nil then tty = core.isatty() end
  local self = setmetatable({
    p = p, total = #p.cells, done = 0, resumed = 0, running = 0,
    out = env.out or io.stderr, tty = tty, width = env.width, clock = env.clock or core.clock,
    cells = {},   -- per running cell: epochs done, the batch fraction, the last epoch's stats
  }, Progress)
  self.t0 = self.clock()
  return self
end

local function label(self, cell)
  return string.format("%s repeat %d/%d fold %d/%d", cell.mode, cell["repeat"] + 1,
                       self.p.repeats, cell.fold + 1, self.p.folds)
end

local function short_label(cell)
  return string.format("%s r%d f%d", cell.mode == "deterministic" and "det" or cell.mode,
                       cell["repeat"] + 1, cell.fold + 1)
end

-- Elapsed seconds and the estimate of those left: the cells trained in this
-- run (resumed ones cost nothing), running ones counted by the epochs and
-- batches they have done, give the rate for the cells left.
function Progress:times()
  local elapsed = self.clock() - self.t0
  local partial = 0
  for _, st in pairs(self.cells) do partial = partial + st.fraction end
  local work = self.done - self.resumed + partial
  local left = self.total - self.done - partial
  if left < 0 then left = 0 end
  local eta = work > 0 and elapsed * left / work or 0 / 0
  return elapsed, eta
end

local function state(self, cell)
  local k = key(cell)
  local st = self.cells[k]
  if not st then
    st = { epochs = 0, fraction = 0 }
    self.cells[k] = st
    self.running = self.running + 1
  end
  return st
end

-- Redraws the line for the latest event: long is its detail in full, tokens
-- the same in short words, most important first. The fullest form that fits
-- the width is shown; the most compact one keeps as many tokens as fit.
function Progress:draw(cell, long, tokens)
  local width = self.width or core.term_width()
  local max = math.max(width - 1, 10)  -- the last column would wrap on some terminals
  local elapsed, eta = self:times()
  local counts = string.format("%d/%d done, %d running", self.done, self.total, self.running)
  local times = string.format("%s elapsed, ETA %s", clock_text(elapsed), clock_text(eta))
  local bar_w = 20
  local filled = self.total > 0 and math.floor(bar_w * self.done / self.total) or 0
  local bar = "[" .. string.rep("#", filled) .. string.rep(".", bar_w - filled) .. "] "
  local short = table.concat(tokens, " ")
  local candidates = {
    bar .. counts .. ", " .. times .. " | " .. label(self, cell) .. " | " .. long,
    counts .. ", " .. times .. " | " .. label(self, cell) .. " | " .. long,
    counts .. ", " .. times .. " | " .. short_label(cell) .. " " .. short,
  }
  local line
  for _, c in ipairs(candidates) do
    if #c <= max then line = c; break end
  end
  if not line then
    line = string.format("%d/%d %d run %s ETA %s %s", self.done, self.total, self.running,
                         clock_text(elapsed), clock_text(eta), short_label(cell))
    for _, t in ipairs(tokens) do
      if #line + 1 + #t > max then break end
      line = line .. " " .. t
    end
    line = line:sub(1, max)
  end
  self.out:write("\r", line, "\27[K")
  if self.out.flush then self.out:flush() end
end

-- A cell began: it counts as running.
function Progress:start(cell)
  state(self, cell)
  if self.tty then self:draw(cell, "started", { "started" }) end
end

-- Batch k of n (from 1) of the cell's current epoch, with the epoch's running
-- loss; the caller limits how often (the display draws every call).
function Progress:batch(cell, k, n, loss)
  local st = state(self, cell)
  local epochs = self.p.fit.epochs
  st.fraction = math.min((st.epochs + k / n) / epochs, 1)
  if not self.tty then return end
  local e = st.epochs + 1
  local long = string.format("epoch %d/%d batch %d/%d loss %.4f", e, epochs, k, n, loss)
  local tokens = { string.format("e%d/%d", e, epochs), string.format("%d/%d", k, n),
                   string.format("loss %.4f", loss) }
  if st.last and finite(st.last.val_loss) then
    long = long .. string.format(" (epoch %d val_loss %.4f val_accuracy %.4f)", st.epochs,
                                 st.last.val_loss, st.last.val_accuracy)
  end
  self:draw(cell, long, tokens)
end

local function epoch_text(st, sep)
  local s = string.format("loss %.4f%saccuracy %.4f", st.loss, sep, st.accuracy)
  if finite(st.val_loss) then
    s = s .. string.format("%sval_loss %.4f%sval_accuracy %.4f", sep, st.val_loss, sep,
                           st.val_accuracy)
  end
  return s
end

-- An epoch of the cell ended (st: the fit's epoch stats, epoch from 0).
function Progress:epoch(cell, st)
  local cs = state(self, cell)
  local epochs = self.p.fit.epochs
  cs.epochs = st.epoch + 1
  cs.fraction = math.min(cs.epochs / epochs, 1)
  cs.last = st
  local head = string.format("epoch %d/%d", st.epoch + 1, epochs)
  if self.tty then
    -- The training loss was on the line during the epoch: validation first.
    local tokens = { string.format("e%d/%d", st.epoch + 1, epochs) }
    if finite(st.val_loss) then
      tokens[#tokens + 1] = string.format("val_loss %.4f", st.val_loss)
      tokens[#tokens + 1] = string.format("val_acc %.4f", st.val_accuracy)
    end
    tokens[#tokens + 1] = string.format("loss %.4f", st.loss)
    tokens[#tokens + 1] = string.format("acc %.4f", st.accuracy)
    self:draw(cell, head .. " " .. epoch_text(st, " "), tokens)
  else
    local elapsed, eta = self:times()
    self.out:write(string.format("[%d/%d] %s %s: %s (%.1f s; %s elapsed, ETA %s)\n", self.done,
                                 self.total, label(self, cell), head, epoch_text(st, ", "),
                                 st.seconds or 0, clock_text(elapsed), clock_text(eta)))
  end
end

-- A cell finished (rec: its record; rec.resumed when it was read back from
-- an earlier run instead of trained).
function Progress:cell(cell, rec)
  if self.cells[key(cell)] then
    self.cells[key(cell)] = nil
    self.running = self.running - 1
  end
  self.done = self.done + 1
  if rec.resumed then self.resumed = self.resumed + 1 end
  local how = rec.resumed and "resumed, " or ""
  local result = string.format("%stest loss %.4f accuracy %.4f", how, rec.loss, rec.accuracy)
  if self.tty then
    local tokens = { string.format("test acc %.4f", rec.accuracy),
                     string.format("loss %.4f", rec.loss) }
    if rec.resumed then table.insert(tokens, 1, "resumed") end
    self:draw(cell, result, tokens)
  else
    local elapsed, eta = self:times()
    self.out:write(string.format("[%d/%d] %s: %s %s (%.1f s; %s elapsed, ETA %s)\n", self.done,
                                 self.total, label(self, cell), result, rec.fingerprint,
                                 rec.seconds or 0, clock_text(elapsed), clock_text(eta)))
  end
end

function Progress:finish()
  local elapsed = self.clock() - self.t0
  local line = string.format("%d/%d cells done in %s", self.done, self.total, clock_text(elapsed))
  if self.resumed > 0 then line = line .. string.format(" (%d resumed)", self.resumed) end
  if self.tty then
    local max = math.max((self.width or core.term_width()) - 1, 10)
    self.out:write("\r", line:sub(1, max), "\27[K\n")
  else
    self.out:write(line, "\n")
  end
  if self.out.flush then self.out:flush() end
end

---------------------------------------------------------------------------
-- The printed report.

-- Mean and population standard deviation.
local function mean_std(xs)
  local m, v = util.mean_var(xs)
  return m, math.sqrt(v)
end
report.mean_std = mean_std

-- The folds a mode's repeat took from an earlier run, as "folds 1, 3".
local function resumed_folds(resumed, mode, r)
  local folds = {}
  for _, c in ipairs(resumed or {}) do
    if c.mode == mode and c["repeat"] == r then folds[#folds + 1] = c.fold + 1 end
  end
  table.sort(folds)
  if #folds == 0 then return nil end
  return (#folds == 1 and "fold " or "folds ") .. table.concat(folds, ", ")
end

-- The test results per mode: accuracy and loss, mean +- std over the folds
-- (each fold's value the mean over its repeats).
local function summary_lines(say, res)
  local nf = 0
  for _, m in ipairs(res.modes) do nf = math.max(nf, #m.fold_means) end
  say("test accuracy and loss, mean \u{b1} std over %s:\n", plural(nf, "fold"))
  for _, m in ipairs(res.modes) do
    local acc, loss = {}, {}
    for i, fm in ipairs(m.fold_means) do acc[i], loss[i] = fm.accuracy, fm.loss end
    local am, as = mean_std(acc)
    local lm, ls = mean_std(loss)
    say("  %-14s accuracy %.4f \u{b1} %.4f   loss %.4f \u{b1} %.4f\n", m.mode, am, as, lm, ls)
  end
end

-- The seed's table: per mode the test results over folds, the mean over
-- folds of the variance across repeats, times and distinct final
-- fingerprints; then per-fold means over repeats. extra (optional):
-- resumed = the cells ({mode, repeat, fold}) read back from an earlier run.
function report.table(res, files, extra)
  local out = {}
  local function say(...) out[#out + 1] = string.format(...) end
  local s = res.settings
  local resumed = extra and extra.resumed or {}
  say("%s: %s x %s, %s, %s, batch %d, seed %d, %s, %s\n", res.experiment,
      plural(s.folds, "fold"), plural(s.repeats, "repeat"), plural(s.rows, "row"),
      plural(s.epochs, "epoch"), s.batch, res.seed, plural(res.threads, "thread"), res.device)
  summary_lines(say, res)
  say("%-14s %12s %12s %10s %10s %12s\n", "mode", "var(loss)", "var(acc)", "distinct", "time (s)",
      "per run (s)")
  for _, m in ipairs(res.modes) do
    say("%-14s %12.4g %12.4g %10d %10.1f %12.1f\n", m.mode, m.variance.loss, m.variance.accuracy,
        m.distinct_fingerprints, m.seconds, m.run_seconds)
  end
  if res.overhead then
    say("determinism overhead: deterministic time / fast time = %.3f\n", res.overhead)
  end
  say("per fold, test loss and accuracy as means over %s:\n", plural(s.repeats, "repeat"))
  local head = { string.format("%-6s", "fold") }
  for _, m in ipairs(res.modes) do head[#head + 1] = string.format("%14s %8s", m.mode .. " loss", "acc") end
  say("%s\n", table.concat(head, " "))
  for f = 1, s.folds do
    local row = { string.format("%-6d", f) }
    for _, m in ipairs(res.modes) do
      local fm
      for _, x in ipairs(m.fold_means) do if x.fold == f - 1 then fm = x end end
      row[#row + 1] = fm and string.format("%14.4f %8.4f", fm.loss, fm.accuracy)
                      or string.format("%14s %8s", "-", "-")
    end
    say("%s\n", table.concat(row, " "))
  end
  for _, m in ipairs(res.modes) do
    for _, r in ipairs(m.repeats) do
      local from = resumed_folds(resumed, m.mode, r["repeat"])
      say("%s repeat %d: %s%s\n", m.mode, r["repeat"] + 1, r.fingerprint or "(incomplete)",
          from and string.format(" (%s resumed from an earlier run)", from) or "")
    end
  end
  if #resumed > 0 then
    say("%s of %d resumed from an earlier run, not trained again\n", plural(#resumed, "cell"),
        s.folds * s.repeats * #res.modes)
  end
  if files then say("results: %s, %s\n", files[1], files[2]) end
  return table.concat(out)
end

return report
