-- detrun.html: the results as one self-contained HTML page (inline SVG, no
-- script, no external resource: it opens from disk and prints) and the
-- per-epoch history as a long CSV. Both are drawn from the results table
-- alone, so `detrun report RESULTS.json` gives the page the run gave.
local core = require "detrun.core"
local svg = require "detrun.svg"
local fig = require "detrun.figures"

local html = {}
local esc, num, finite, fmt = svg.esc, svg.num, fig.finite, fig.fmt

-- The divergence curve: per mode and epoch the largest RMS and max |dw|
-- over the later repeats' cells, on a log scale; exact zeros on the bottom.
local function divergence_figure(res)
  local lo, hi, emax = math.huge, 0, 1
  for _, m in ipairs(res.modes or {}) do
    for _, e in ipairs(m.divergence and m.divergence.epochs or {}) do
      for _, v in ipairs({ e.rms, e.max_abs }) do
        if finite(v) and v > 0 then lo, hi = math.min(lo, v), math.max(hi, v) end
      end
      emax = math.max(emax, e.epoch + 1)
    end
  end
  if lo > hi then lo, hi = 1e-8, 1 end
  local ymin = 10.0 ^ math.min(math.floor(math.log(lo, 10)) - 1, -8)
  local ymax = 10.0 ^ math.max(math.ceil(math.log(hi, 10)), 0)
  local xt = {}
  for e = 1, math.min(emax, 13) do xt[#xt + 1] = e end   -- ticks only up to 12 epochs
  local p = svg.plot { w = 560, h = 300, xmin = emax > 1 and 1 or 0.5, xmax = emax > 1 and emax or 1.5,
                       ymin = ymin, ymax = ymax, log = true, xlabel = "epoch",
                       ylabel = "distance to repeat 1's weights", xticks = #xt <= 12 and xt or nil }
  local words = {}
  for i, m in ipairs(res.modes or {}) do
    local d = m.divergence or {}
    local c, rms, mx, zero = fig.colour(i, m.mode), {}, {}, true
    for _, e in ipairs(d.epochs or {}) do
      rms[#rms + 1] = { p.x(e.epoch + 1), p.y(e.rms) }
      mx[#mx + 1] = { p.x(e.epoch + 1), p.y(e.max_abs) }
      if e.rms ~= 0 or e.max_abs ~= 0 then zero = false end
    end
    for _, k in ipairs({ { "rms", rms, "" }, { "max_abs", mx, ' stroke-dasharray="5 3"' } }) do
      if #k[2] > 0 then
        p.add(string.format('<path class="div-curve" data-mode="%s" data-kind="%s" d="%s" '
                            .. 'fill="none" stroke="%s" stroke-width="2"%s><title>%s: %s</title>'
                            .. '</path>', esc(m.mode), k[1], svg.path_d(k[2]), c, k[3], esc(m.mode),
                            k[1] == "rms" and "RMS(w - w1) / RMS(w1)" or "max |w - w1|"))
      end
    end
    local n, last = d.cells or 0, (d.epochs or {})[#(d.epochs or {})]
    local say
    if n == 0 then
      say = string.format("%s: no curve (%s)", m.mode, (res.settings or {}).repeats == 1
                          and "one repeat" or "no later repeat measured its divergence")
    elseif zero then
      say = string.format("%s: exactly 0 at every epoch, in all %d cells after repeat 1: the "
                          .. "weights are bit for bit those of repeat 1", m.mode, n)
    else
      local first = d.epochs[1]
      say = string.format("%s: RMS relative distance %.3g after epoch %d, %.3g after epoch %d "
                          .. "(max |Δw| %.3g), largest over %d cells", m.mode, first.rms,
                          first.epoch + 1, last.rms, last.epoch + 1, last.max_abs, n)
    end
    if (d.missing or 0) > 0 then
      say = say .. string.format("; partial: %d cells have no measure (their repeat 1 ran in "
                                 .. "another shard, unfinished when they ran)", d.missing)
    end
    words[#words + 1] = string.format('<li class="div-words" data-mode="%s">%s</li>', esc(m.mode),
                                      esc(say))
  end
  p.add(string.format('<text x="%s" y="%s" font-size="10" fill="#555">0</text>',
                      num(p.l + 4), num(p.y(0) - 4)))
  return p.svg('id="fig-divergence" role="img"') .. "\n<ul>" .. table.concat(words) .. "</ul>"
end

-- Seconds per cell, in run order within each mode, and the totals.
local function time_figure(res)
  local modes, n, hi = res.modes or {}, 1, 0
  for _, m in ipairs(modes) do
    local cs = fig.cells_of(m)
    n = math.max(n, #cs)
    for _, c in ipairs(cs) do if finite(c.seconds) then hi = math.max(hi, c.seconds) end end
  end
  local p = svg.plot { w = 560, h = 240, xmin = 0.5, xmax = n + 0.5, ymin = 0,
                       ymax = hi > 0 and hi * 1.1 or 1, xlabel = "cell (repeat-major, fold-minor)",
                       ylabel = "seconds" }
  local rows = { '<table class="times"><tr><th>mode</th><th>cells</th><th>total (s)</th>'
                 .. '<th>mean per cell (s)</th><th>min</th><th>max</th></tr>' }
  for i, m in ipairs(modes) do
    local secs = {}
    for k, c in ipairs(fig.cells_of(m)) do
      if finite(c.seconds) then
        secs[#secs + 1] = c.seconds
        p.add(string.format('<circle class="time-point" data-mode="%s" cx="%s" cy="%s" r="3" '
                            .. 'fill="%s"><title>%s repeat %d fold %d: %.2f s</title></circle>',
                            esc(m.mode), num(p.x(k)), num(p.y(c.seconds)), fig.colour(i, m.mode),
                            esc(m.mode), c["repeat"] + 1, c.fold + 1, c.seconds))
      end
    end
    local mean = fig.mean_std(secs)
    rows[#rows + 1] = string.format("<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td>"
                                    .. "<td>%s</td></tr>", esc(m.mode), #secs,
                                    fmt(m.seconds, "%.2f"), fmt(mean, "%.2f"),
                                    fmt(#secs > 0 and math.min(table.unpack(secs)) or nil, "%.2f"),
                                    fmt(#secs > 0 and math.max(table.unpack(secs)) or nil, "%.2f"))
  end
  rows[#rows + 1] = "</table>"
  return p.svg('id="fig-time" role="img"') .. "\n" .. table.concat(rows)
end

local function legend(res)
  local out = {}
  for i, m in ipairs(res.modes or {}) do
    out[#out + 1] = string.format('<span class="key"><span class="swatch" style="background:%s">'
                                  .. '</span>%s</span>', fig.colour(i, m.mode), esc(m.mode))
  end
  return '<p class="legend">' .. table.concat(out, " ") .. "</p>"
end

local STYLE = [[
body { font-family: sans-serif; color: #111; background: #fff; margin: 1.5em auto; max-width: 1100px;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
table.header th { background: #f3f3f3; }
svg { max-width: 100%; height: auto; margin: 0.3em 0.6em 0.3em 0; vertical-align: top; }
figure.grid { display: inline-block; margin: 0 1.5em 0.5em 0; }
.swatch { display: inline-block; width: 1em; height: 0.8em; margin-right: 0.3em; }
.key { margin-right: 1.2em; } .warn { color: #a00; font-weight: bold; }
code { font-size: 0.85em; }
@media print { body { margin: 0; max-width: none; } h2, svg, figure, table { break-inside: avoid; } }
]]

-- The whole page as a string.
function html.page(res)
  local title = string.format("detrun: %s", tostring(res.experiment))
  return table.concat({
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
    -- The results set the page belongs to (docs/regression.md, "Results files").
    type(res.set) == "string" and string.format('<meta name="detrun-set" content="%s">\n',
                                                esc(res.set)) or "",
    "<title>", esc(title), "</title>\n<style>", STYLE, "</style>\n</head>\n<body>\n",
    "<h1>", esc(title), "</h1>\n", fig.header(res), "\n",
    "<h2>Cross-validation</h2>\n", fig.summary(res), "\n", legend(res), "\n",
    '<h2>Test accuracy per fold</h2>\n<p>One point per (mode, repeat, fold); repeats of a ',
    "reproducible mode fall on one point.</p>\n", fig.fold_points(res), "\n",
    "<h2>Learning curves</h2>\n<p>Mean over folds and repeats, band from min to max.</p>\n",
    fig.learning_curves(res), "\n",
    "<h2>Fingerprint agreement</h2>\n<p>Repeats (rows) x folds (columns). A cell's colour says ",
    "which of its fold's distinct final fingerprints it reached (the first seen is blue): one ",
    "colour means every repeat gave the same bits. Hover for the fingerprint.</p>\n",
    fig.grids(res), "\n", fig.fingerprint_table(res), "\n",
    "<h2>Divergence from repeat 1</h2>\n<p>Per epoch, the largest over cells after repeat 1 of ",
    "RMS(w - w1) / RMS(w1) (solid) and max |w - w1| (dashed), where w1 are repeat 1's weights ",
    "of the same mode and fold at that epoch; log scale, exact zeros on the bottom line.</p>\n",
    divergence_figure(res), "\n",
    "<h2>Time</h2>\n", time_figure(res), "\n",
    "</body>\n</html>\n" })
end

local function csv_num(v)
  if not finite(v) then return "" end
  if math.type(v) == "integer" then return tostring(v) end
  return string.format("%.17g", v)
end

html.CSV_HEADER = "mode,repeat,fold,epoch,loss,accuracy,val_loss,val_accuracy,divergence,"
                  .. "divergence_max,seconds,fingerprint,set"

-- One row per (mode, repeat, fold, epoch); epoch 0-based as in the JSON.
function html.epochs_csv(res)
  local out = { html.CSV_HEADER }
  for _, m in ipairs(res.modes or {}) do
    for _, c in ipairs(fig.cells_of(m)) do
      for _, e in ipairs(c.epochs or {}) do
        local d = e.divergence or {}
        out[#out + 1] = table.concat({ m.mode, csv_num(c["repeat"]), csv_num(c.fold),
                                       csv_num(e.epoch), csv_num(e.loss), csv_num(e.accuracy),
                                       csv_num(e.val_loss), csv_num(e.val_accuracy),
                                       csv_num(d.rms), csv_num(d.max_abs), csv_num(e.seconds),
                                       e.fingerprint or "", type(res.set) == "string" and res.set
                                       or "" }, ",")
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- NAME.html and NAME.epochs.csv as files of the results set that r:write
-- writes with the JSON and the CSV (whole, or the previous set stays).
function html.files(res, name)
  return { { name .. ".html", html.page(res) }, { name .. ".epochs.csv", html.epochs_csv(res) } }
end

-- What a results file read from json must be before it is drawn: the
-- figures draw every (repeat, fold) of its grid, so a damaged file asking
-- for 10^12 folds is refused (the grid cap of docs/c-api.md, "Limits on
-- declared sizes").
function html.check(res, json)
  if type(res.modes) ~= "table" then error(json .. ": not detrun results (no modes)", 0) end
  local s = type(res.settings) == "table" and res.settings or {}
  for _, k in ipairs { "folds", "repeats" } do
    if s[k] ~= nil and (math.type(s[k]) ~= "integer" or s[k] < 1) then
      error(string.format("%s: not detrun results (settings.%s is not a positive integer)", json,
                          k), 0)
    end
  end
  local cells = core._limit("DETRUN_MAX_CELLS", 1000000)
  local folds, repeats = s.folds or 1, s.repeats or 1
  if folds > cells or repeats > cells // folds then
    error(string.format("%s: not detrun results (a grid of %d repeats x %d folds is above the "
                        .. "limit of %d cells)", json, repeats, folds, cells), 0)
  end
end

-- `detrun report RESULTS.json [-o FILE.html]`.
function html.main(json, page)
  local res, err = core.load_results(json)
  if not res then error(err, 0) end
  html.check(res, json)
  page = (page and page ~= "") and page or (json:gsub("%.json$", "") .. ".html")
  local ok, werr = core._write_set { { page, html.page(res) } }   -- whole or not at all
  if not ok then error(werr, 0) end
  io.stdout:write("report: ", page, "\n")
end

return html
