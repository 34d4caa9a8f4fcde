-- detrun.util: option checks for the modules, free of pairs() order.
local util = {}

-- Raises (at `level`, as error() counts) when t has a key outside `allowed`;
-- the first unknown key in sorted order is named, so the message is the same
-- in every process.
function util.check_options(t, allowed, what, level)
  level = (level or 1) + 1
  if type(t) ~= "table" then
    error(string.format("%s: expected a table of options, got %s", what, type(t)), level)
  end
  local ok = {}
  for _, k in ipairs(allowed) do ok[k] = true end
  local bad = {}
  for k in pairs(t) do
    if not ok[k] then bad[#bad + 1] = tostring(k) end
  end
  if #bad > 0 then
    table.sort(bad)
    error(string.format("%s: unknown option '%s' (known: %s)", what, bad[1],
                        table.concat(allowed, ", ")), level)
  end
end

-- "file:line" of the function `level` calls up from the caller.
function util.where(level)
  local info = debug.getinfo((level or 1) + 1, "Sl")
  if info and info.currentline and info.currentline > 0 then
    return info.short_src .. ":" .. info.currentline
  end
  return nil
end

-- Checks the option t[k] (when given) of `what`: kind is "int" (fits a C
-- int), "int64", or a Lua type name. Raises from the caller of the caller
-- (the script's line) with the option named.
function util.check_type(t, k, what, kind)
  local v = t[k]
  if v == nil then return end
  local bad
  if kind == "int" then
    local i = math.tointeger(v)
    bad = i == nil or i < -0x7fffffff or i > 0x7fffffff
  elseif kind == "int64" then
    bad = math.tointeger(v) == nil
  else
    bad = type(v) ~= kind
  end
  if bad then
    local want = ({ int = "an integer", int64 = "an integer", number = "a number",
                    string = "a string", ["function"] = "a function" })[kind]
    error(string.format("%s: %s must be %s, not %s", what, k, want, tostring(v)), 3)
  end
end

-- Mean and population variance of xs, computed on values shifted by the
-- first one so that equal values give exactly 0 (docs/determinism.md,
-- "Reported figures"). NaN for no values.
function util.mean_var(xs)
  local n = #xs
  if n == 0 then return 0 / 0, 0 / 0 end
  local s = 0
  for i = 1, n do s = s + (xs[i] - xs[1]) end
  local m = s / n
  local v = 0
  for i = 1, n do
    local d = (xs[i] - xs[1]) - m
    v = v + d * d
  end
  return xs[1] + m, v / n
end

return util
