-- detrun.util: helpers that keep the Lua side free of pairs() order.
local dr = ...
local util = {}

-- Keys of t in a fixed order (numbers before strings, each ascending).
function util.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    return a < b
  end)
  return keys
end

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

-- A positive integer (integral floats allowed) or nil.
function util.integer(v)
  local i = math.tointeger(v)
  return i
end

dr._util = util
