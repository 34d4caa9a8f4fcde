-- detrun.report: live progress on stderr and the final table on stdout.
local core = require "detrun.core"

local report = {}

local Progress = {}
Progress.__index = Progress

-- A bar redrawn in place on a terminal; otherwise one line per fold.
function report.progress(p)
  return setmetatable({ p = p, total = #p.cells, done = 0, tty = core.isatty(),
                        t0 = core.clock() }, Progress)
end

local function label(self, cell)
  return string.format("%s repeat %d/%d fold %d/%d", cell.mode, cell["repeat"] + 1,
                       self.p.repeats, cell.fold + 1, self.p.folds)
end

function Progress:draw(cell, extra)
  local width = 24
  local filled = math.floor(width * self.done / self.total)
  local line = string.format("\r[%s%s] %d/%d %s %s", string.rep("#", filled),
                             string.rep(".", width - filled), self.done, self.total,
                             label(self, cell), extra)
  io.stderr:write(line, "\27[K")
  io.stderr:flush()
end

function Progress:epoch(cell, st)
  if self.tty then
    self:draw(cell, string.format("epoch %d/%d loss %.4f", st.epoch + 1, self.p.fit.epochs, st.loss))
  end
end

function Progress:cell(cell, rec)
  self.done = self.done + 1
  if self.tty then
    self:draw(cell, string.format("loss %.4f accuracy %.4f", rec.loss, rec.accuracy))
  else
    io.stderr:write(string.format("[%d/%d] %s: loss %.4f accuracy %.4f %s (%.1f s)\n", self.done,
                                  self.total, label(self, cell), rec.loss, rec.accuracy,
                                  rec.fingerprint, rec.seconds))
  end
end

function Progress:finish()
  if self.tty then io.stderr:write("\n") end
end

-- The seed's table: per mode the mean over folds of the variance across
-- repeats, times and distinct final fingerprints; then per-fold means.
function report.table(res, files)
  local out = {}
  local function say(...) out[#out + 1] = string.format(...) end
  local s = res.settings
  say("%s: %d folds x %d repeats, %d rows, %d epochs, batch %d, seed %d, %d threads, %s\n",
      res.experiment, s.folds, s.repeats, s.rows, s.epochs, s.batch, res.seed, res.threads,
      res.device)
  say("%-14s %12s %12s %10s %10s %12s\n", "mode", "var(loss)", "var(acc)", "distinct", "time (s)",
      "per run (s)")
  for _, m in ipairs(res.modes) do
    say("%-14s %12.4g %12.4g %10d %10.1f %12.1f\n", m.mode, m.variance.loss, m.variance.accuracy,
        m.distinct_fingerprints, m.seconds, m.run_seconds)
  end
  if res.overhead then
    say("determinism overhead: deterministic time / fast time = %.3f\n", res.overhead)
  end
  local head = { string.format("%-6s", "fold") }
  for _, m in ipairs(res.modes) do head[#head + 1] = string.format("%14s %8s", m.mode .. " loss", "acc") end
  say("%s\n", table.concat(head, " "))
  for f = 1, s.folds do
    local row = { string.format("%-6d", f) }
    for _, m in ipairs(res.modes) do
      local fm = m.fold_means[f]
      row[#row + 1] = fm and string.format("%14.4f %8.4f", fm.loss, fm.accuracy)
                      or string.format("%14s %8s", "-", "-")
    end
    say("%s\n", table.concat(row, " "))
  end
  for _, m in ipairs(res.modes) do
    for _, r in ipairs(m.repeats) do
      say("%s repeat %d: %s\n", m.mode, r["repeat"] + 1, r.fingerprint or "(incomplete)")
    end
  end
  if files then say("results: %s, %s\n", files[1], files[2]) end
  return table.concat(out)
end

return report
