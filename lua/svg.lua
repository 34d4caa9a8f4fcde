-- detrun.svg: the few plotting primitives the HTML report needs, as inline
-- SVG text: a frame with linear or log10 axes, paths, points, bands, rects.
-- Nothing here depends on pairs() order, so a page is the same bytes for
-- the same results.
local svg = {}

function svg.esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                         ['"'] = "&quot;", ["'"] = "&#39;" }))
end
local esc = svg.esc

local function num(v) return string.format("%.2f", v) end
svg.num = num

-- Tick values for [lo, hi]: about n round steps.
local function ticks(lo, hi, n)
  if hi <= lo then return { lo } end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, k in ipairs({ 1, 2, 2.5, 5, 10 }) do
    if raw <= k * mag then step = k * mag; break end
  end
  local out = {}
  local v = math.ceil(lo / step - 1e-9) * step
  while v <= hi + step * 1e-9 do out[#out + 1] = v; v = v + step end
  return out
end

local function label(v)
  if v == 0 then return "0" end
  local a = math.abs(v)
  if a >= 1e4 or a < 1e-3 then return string.format("%.0e", v) end
  return (string.format("%.4g", v))
end

-- A plot frame. o: {w, h, xmin, xmax, ymin, ymax, log = bool, xlabel, ylabel,
-- xticks = {values} or nil, xtick_label = f or nil}. For log axes ymin and
-- ymax are powers of ten, and values <= 0 are drawn on the bottom line.
-- Returns a plot with :x(v), :y(v), :add(text) and :svg(attrs).
function svg.plot(o)
  local p = { o = o, parts = {}, l = 58, r = 12, t = 12, b = 40 }
  p.pw, p.ph = o.w - p.l - p.r, o.h - p.t - p.b
  function p.x(v)
    local span = o.xmax - o.xmin
    return p.l + (span > 0 and (v - o.xmin) / span or 0.5) * p.pw
  end
  function p.y(v)
    local lo, hi, t = o.ymin, o.ymax, v
    if o.log then
      if v <= 0 then return p.t + p.ph end
      lo, hi, t = math.log(o.ymin, 10), math.log(o.ymax, 10), math.log(v, 10)
    end
    if t < lo then t = lo end
    local span = hi - lo
    return p.t + p.ph - (span > 0 and (t - lo) / span or 0.5) * p.ph
  end
  function p.add(s) p.parts[#p.parts + 1] = s end
  local axis = {}
  local function put(s) axis[#axis + 1] = s end
  put(string.format('<rect class="frame" x="%s" y="%s" width="%s" height="%s" fill="none" '
                    .. 'stroke="#888"/>', num(p.l), num(p.t), num(p.pw), num(p.ph)))
  local yt = {}
  if o.log then
    for e = math.floor(math.log(o.ymin, 10) + 0.5), math.floor(math.log(o.ymax, 10) + 0.5) do
      yt[#yt + 1] = 10.0 ^ e
    end
  else
    yt = ticks(o.ymin, o.ymax, 4)
  end
  for _, v in ipairs(yt) do
    local y = p.y(v)
    put(string.format('<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#ddd"/>', num(p.l),
                      num(p.l + p.pw), num(y), num(y)))
    put(string.format('<text x="%s" y="%s" text-anchor="end" font-size="10">%s</text>',
                      num(p.l - 4), num(y + 3), esc(o.log and string.format("1e%d",
                      math.floor(math.log(v, 10) + 0.5)) or label(v))))
  end
  for _, v in ipairs(o.xticks or ticks(o.xmin, o.xmax, 6)) do
    local x = p.x(v)
    put(string.format('<text x="%s" y="%s" text-anchor="middle" font-size="10">%s</text>',
                      num(x), num(p.t + p.ph + 13), esc(o.xtick_label and o.xtick_label(v)
                      or label(v))))
  end
  put(string.format('<text x="%s" y="%s" text-anchor="middle" font-size="11">%s</text>',
                    num(p.l + p.pw / 2), num(o.h - 6), esc(o.xlabel or "")))
  put(string.format('<text transform="translate(12 %s) rotate(-90)" text-anchor="middle" '
                    .. 'font-size="11">%s</text>', num(p.t + p.ph / 2), esc(o.ylabel or "")))
  p.axis = axis
  function p.svg(attrs)
    return string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                         .. 'viewBox="0 0 %d %d" %s>%s%s</svg>', o.w, o.h, o.w, o.h, attrs or "",
                         table.concat(axis), table.concat(p.parts))
  end
  return p
end

-- "M x y L x y ..." through the points {{x, y}, ...} (already in pixels).
function svg.path_d(pts)
  local d = {}
  for i, q in ipairs(pts) do d[#d + 1] = (i == 1 and "M" or "L") .. num(q[1]) .. " " .. num(q[2]) end
  return table.concat(d, " ")
end

return svg
