-- detrun.figures: the tables and figures of the HTML report (lua/html.lua),
-- each drawn from the results table alone.
local report = require "detrun.report"
local svg = require "detrun.svg"

local figures = {}
local esc, num = svg.esc, svg.num

local MODE_COLOUR = { deterministic = "#1f5fa8", fast = "#c8321e" }
local OTHER_COLOUR = { "#2a9d3a", "#8e44ad", "#d98c00", "#17a2b8" }
local FP_COLOURS = { "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                     "#ff9da7", "#9c755f", "#bab0ac" }

local function colour(i, mode)
  return MODE_COLOUR[mode] or OTHER_COLOUR[(i - 1) % #OTHER_COLOUR + 1]
end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

-- Every cell record of a mode: {repeat, fold, rec}.
local function cells_of(m)
  local out = {}
  for _, r in ipairs(m.repeats or {}) do
    for _, f in ipairs(r.folds or {}) do out[#out + 1] = f end
  end
  return out
end

local mean_std = report.mean_std   -- the printed report's: one figure, one value

local function fmt(v, f)
  if not finite(v) then return "–" end
  return string.format(f or "%.4f", v)
end

-- ---- header and summary --------------------------------------------------

local function header(res)
  local s = res.settings or {}
  local machine = res.machine or "-"
  -- A GPU device names its kernels ("cuda:0 (portable)"); the CPU's are its ISA.
  local kernels = tostring(res.device or ""):match("%(([^)]+)%)") or machine:match("isa ([^;]+)") or "-"
  local rows = {
    { "experiment", res.experiment }, { "detrun", res.detrun_version },
    { "machine", machine }, { "device", res.device }, { "kernels", kernels },
    { "seed", res.seed }, { "threads", res.threads }, { "jobs", res.jobs or 1 },
    { "settings", string.format("%s rows, %s folds x %s repeats, modes %s, %s epochs, batch %s, "
                                .. "validation split %s, shuffle %s", tostring(s.rows),
                                tostring(s.folds), tostring(s.repeats),
                                table.concat(s.modes or {}, ", "), tostring(s.epochs),
                                tostring(s.batch), tostring(s.validation_split),
                                tostring(s.shuffle)) },
    { "wall time", res.wall_seconds and string.format("%.1f s", res.wall_seconds) or "-" },
    { "determinism overhead", res.overhead and string.format(
        "%.3f (deterministic time / fast time)", res.overhead) or "-" },
  }
  local out = { '<table class="header">' }
  for _, r in ipairs(rows) do
    out[#out + 1] = string.format("<tr><th>%s</th><td>%s</td></tr>", esc(r[1]), esc(tostring(r[2])))
  end
  out[#out + 1] = "</table>"
  if res.incomplete then
    out[#out + 1] = string.format('<p class="warn">Incomplete: %d cells missing or failed.</p>',
                                  #res.incomplete)
  end
  return table.concat(out, "\n")
end

local function summary(res)
  local out = { '<table class="summary"><tr><th>mode</th><th>test accuracy<br>mean ± std over folds</th>'
                .. '<th>test loss<br>mean ± std over folds</th><th>var(accuracy)<br>across repeats</th>'
                .. '<th>var(loss)<br>across repeats</th><th>distinct fingerprints</th>'
                .. '<th>time (s)</th><th>per repeat (s)</th></tr>' }
  for _, m in ipairs(res.modes or {}) do
    local acc, loss = {}, {}
    for _, fm in ipairs(m.fold_means or {}) do acc[#acc + 1] = fm.accuracy; loss[#loss + 1] = fm.loss end
    local am, as = mean_std(acc)
    local lm, ls = mean_std(loss)
    local v = m.variance or {}
    local function var(x) return x == 0 and "0 (exactly)" or fmt(x, "%.3g") end
    out[#out + 1] = string.format('<tr class="mode-row" data-mode="%s"><td>%s</td><td>%s ± %s</td>'
                                  .. '<td>%s ± %s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
                                  .. '<td>%s</td></tr>', esc(m.mode), esc(m.mode), fmt(am), fmt(as),
                                  fmt(lm), fmt(ls), var(v.accuracy), var(v.loss),
                                  tostring(m.distinct_fingerprints or "-"), fmt(m.seconds, "%.1f"),
                                  fmt(m.run_seconds, "%.1f"))
  end
  out[#out + 1] = "</table>"
  out[#out + 1] = "<p>Fold accuracy and loss are means over repeats; mean ± std is over folds "
                  .. "(population std, as numpy's); the variance across repeats is the mean over "
                  .. "folds of the population variance of a fold's repeats.</p>"
  return table.concat(out, "\n")
end

-- ---- figures ------------------------------------------------------------

-- Test accuracy per fold: one point per (mode, repeat, fold).
local function fold_points(res)
  local s = res.settings or {}
  local folds, modes = s.folds or 1, res.modes or {}
  local lo, hi = math.huge, -math.huge
  for _, m in ipairs(modes) do
    for _, c in ipairs(cells_of(m)) do
      if finite(c.accuracy) then lo, hi = math.min(lo, c.accuracy), math.max(hi, c.accuracy) end
    end
  end
  if lo > hi then lo, hi = 0, 1 end
  local pad = math.max((hi - lo) * 0.1, 0.002)
  local p = svg.plot { w = math.max(360, 60 * folds + 80), h = 260, xmin = 0.5, xmax = folds + 0.5,
                       ymin = lo - pad, ymax = hi + pad, xlabel = "fold",
                       ylabel = "test accuracy", xticks = (function()
                         local t = {}
                         for f = 1, folds do t[f] = f end
                         return t
                       end)() }
  local nm = #modes
  for i, m in ipairs(modes) do
    local dx = nm > 1 and ((i - 1) / (nm - 1) - 0.5) * 0.4 or 0
    for _, c in ipairs(cells_of(m)) do
      if finite(c.accuracy) then
        p.add(string.format('<circle class="point" data-mode="%s" data-repeat="%d" data-fold="%d" '
                            .. 'cx="%s" cy="%s" r="4" fill="%s" fill-opacity="0.55" stroke="%s">'
                            .. '<title>%s repeat %d fold %d: accuracy %.6f loss %.6f</title></circle>',
                            esc(m.mode), c["repeat"], c.fold, num(p.x(c.fold + 1 + dx)),
                            num(p.y(c.accuracy)), colour(i, m.mode), colour(i, m.mode), esc(m.mode),
                            c["repeat"] + 1, c.fold + 1, c.accuracy, c.loss or 0 / 0))
      end
    end
  end
  return p.svg('id="fig-accuracy" role="img"')
end

-- Per mode and epoch: mean, min and max over all its cells of a metric.
local function epoch_stats(m, metric)
  local by = {}
  local last = 0
  for _, c in ipairs(cells_of(m)) do
    for _, e in ipairs(c.epochs or {}) do
      local v = e[metric]
      if finite(v) then
        local s = by[e.epoch + 1] or { sum = 0, n = 0, min = v, max = v }
        s.sum, s.n = s.sum + v, s.n + 1
        s.min, s.max = math.min(s.min, v), math.max(s.max, v)
        by[e.epoch + 1] = s
        last = math.max(last, e.epoch + 1)
      end
    end
  end
  -- The epochs present, in order: a results file may say epoch 10^12, and
  -- counting up to it would never end.
  local present = {}
  for i in pairs(by) do
    if math.type(i) == "integer" and i >= 1 and i <= last then present[#present + 1] = i end
  end
  table.sort(present)
  local out = {}
  for _, i in ipairs(present) do
    local s = by[i]
    out[#out + 1] = { epoch = i, mean = s.sum / s.n, min = s.min, max = s.max }
  end
  return out
end

local function curve_panel(res, metric, title)
  local modes = res.modes or {}
  local stats, lo, hi, emax = {}, math.huge, -math.huge, 1
  for i, m in ipairs(modes) do
    stats[i] = epoch_stats(m, metric)
    for _, s in ipairs(stats[i]) do
      lo, hi, emax = math.min(lo, s.min), math.max(hi, s.max), math.max(emax, s.epoch)
    end
  end
  if lo > hi then lo, hi = 0, 1 end
  local pad = math.max((hi - lo) * 0.05, 1e-4)
  local xt = {}
  for e = 1, math.min(emax, 13) do xt[#xt + 1] = e end   -- ticks only up to 12 epochs
  local p = svg.plot { w = 260, h = 210, xmin = emax > 1 and 1 or 0.5, xmax = emax > 1 and emax or 1.5,
                       ymin = lo - pad, ymax = hi + pad, xlabel = "epoch", ylabel = title,
                       xticks = #xt <= 12 and xt or nil }
  for i, m in ipairs(modes) do
    local c, band, top, line = colour(i, m.mode), {}, {}, {}
    for _, s in ipairs(stats[i]) do
      top[#top + 1] = { p.x(s.epoch), p.y(s.max) }
      band[#band + 1] = { p.x(s.epoch), p.y(s.min) }
      line[#line + 1] = { p.x(s.epoch), p.y(s.mean) }
    end
    if #line > 0 then
      for k = #band, 1, -1 do top[#top + 1] = band[k] end
      p.add(string.format('<path class="band" data-mode="%s" data-metric="%s" d="%s Z" fill="%s" '
                          .. 'fill-opacity="0.15" stroke="none"/>', esc(m.mode), metric,
                          svg.path_d(top), c))
      p.add(string.format('<path class="curve" data-mode="%s" data-metric="%s" d="%s" fill="none" '
                          .. 'stroke="%s" stroke-width="%s"><title>%s: %s, mean over folds and '
                          .. 'repeats</title></path>', esc(m.mode), metric, svg.path_d(line), c,
                          -- the first mode wide and solid, the others dashed over it: equal
                          -- curves stay visible
                          i == 1 and '4' or '2" stroke-dasharray="6 4', esc(m.mode), metric))
      for _, q in ipairs(line) do
        p.add(string.format('<circle cx="%s" cy="%s" r="2.5" fill="%s"/>', num(q[1]), num(q[2]), c))
      end
    end
  end
  return p.svg(string.format('class="fig-curve" data-metric="%s" role="img"', metric))
end

local function learning_curves(res)
  return table.concat({ curve_panel(res, "loss", "training loss"),
                        curve_panel(res, "val_loss", "validation loss"),
                        curve_panel(res, "accuracy", "training accuracy"),
                        curve_panel(res, "val_accuracy", "validation accuracy") }, "\n")
end

-- Repeats x folds per mode; a cell's colour says which of its fold's
-- distinct final fingerprints it reached (the first seen is colour 1), so a
-- reproducible mode is one colour.
local function grids(res)
  local s = res.settings or {}
  local folds, repeats = s.folds or 1, s.repeats or 1
  local out, size = {}, 22
  for _, m in ipairs(res.modes or {}) do
    local by = {}
    for _, c in ipairs(cells_of(m)) do by[c["repeat"] .. "/" .. c.fold] = c end
    local seen, distinct = {}, 0
    local parts = {}
    local w, h = 60 + folds * size, 30 + repeats * size
    for f = 0, folds - 1 do
      local order, k = {}, 0
      for r = 0, repeats - 1 do
        local c = by[r .. "/" .. f]
        local fp = c and c.fingerprint
        local fill, title = "#ffffff", string.format("%s repeat %d fold %d: missing", m.mode, r + 1, f + 1)
        if fp then
          if not order[fp] then k = k + 1; order[fp] = k end
          if not seen[fp] then seen[fp] = true; distinct = distinct + 1 end
          fill = FP_COLOURS[(order[fp] - 1) % #FP_COLOURS + 1]
          title = string.format("%s repeat %d fold %d: %s", m.mode, r + 1, f + 1, fp)
        end
        parts[#parts + 1] = string.format(
          '<rect class="cell" data-mode="%s" data-repeat="%d" data-fold="%d" data-fingerprint="%s" '
          .. 'x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="#fff"><title>%s</title></rect>',
          esc(m.mode), r, f, esc(fp or ""), 50 + f * size, 20 + r * size, size, size, fill, esc(title))
      end
    end
    for f = 0, folds - 1 do
      parts[#parts + 1] = string.format('<text x="%d" y="14" font-size="10" text-anchor="middle">%d'
                                        .. '</text>', 50 + f * size + size // 2, f + 1)
    end
    for r = 0, repeats - 1 do
      parts[#parts + 1] = string.format('<text x="44" y="%d" font-size="10" text-anchor="end">r%d'
                                        .. '</text>', 20 + r * size + size // 2 + 3, r + 1)
    end
    out[#out + 1] = string.format('<figure class="grid"><svg xmlns="http://www.w3.org/2000/svg" '
                                  .. 'class="fig-grid" data-mode="%s" width="%d" height="%d" '
                                  .. 'viewBox="0 0 %d %d" role="img">%s</svg><figcaption>%s: %d '
                                  .. 'distinct cell fingerprints over %d folds</figcaption></figure>',
                                  esc(m.mode), w, h, w, h, table.concat(parts), esc(m.mode),
                                  distinct, folds)
  end
  return table.concat(out, "\n")
end

local function fingerprint_table(res)
  local s = res.settings or {}
  local out = { '<table class="fingerprints"><tr><th>mode</th><th>repeat</th>'
                .. '<th>repeat fingerprint</th>' }
  for f = 1, s.folds or 0 do out[#out + 1] = string.format("<th>fold %d</th>", f) end
  out[#out + 1] = "</tr>"
  for _, m in ipairs(res.modes or {}) do
    for _, r in ipairs(m.repeats or {}) do
      local row = { string.format("<tr><td>%s</td><td>%d</td><td><code>%s</code></td>", esc(m.mode),
                                  r["repeat"] + 1, esc(r.fingerprint or "(incomplete)")) }
      local by = {}
      for _, c in ipairs(r.folds or {}) do by[c.fold] = c end
      for f = 0, (s.folds or 0) - 1 do
        local fp = by[f] and by[f].fingerprint or ""
        row[#row + 1] = string.format('<td><code title="%s">%s</code></td>', esc(fp),
                                      esc(fp:sub(1, 8)))
      end
      out[#out + 1] = table.concat(row) .. "</tr>"
    end
  end
  out[#out + 1] = "</table>"
  return table.concat(out, "\n")
end

figures.fold_points, figures.learning_curves, figures.grids = fold_points, learning_curves, grids
figures.fingerprint_table, figures.header, figures.summary = fingerprint_table, header, summary
figures.mean_std, figures.cells_of, figures.colour = mean_std, cells_of, colour
figures.finite, figures.fmt = finite, fmt

return figures
