-- Helpers for the Lua front end's tests, run by the stock lua5.4:
--   lua5.4 test_x.lua DETRUN_BINARY SOURCE_DIR WORK_DIR
-- with LUA_CPATH pointing at the build's lua/ folder (detrun.so).
local h = {}
h.detrun, h.src, h.work = assert(arg[1]), assert(arg[2]), assert(arg[3])
os.execute("mkdir -p '" .. h.work .. "'")

local failures = 0

function h.check(cond, what, detail)
  if cond then
    print("ok   " .. what)
  else
    failures = failures + 1
    print("FAIL " .. what .. (detail and ("\n     " .. tostring(detail):gsub("\n", "\n     ")) or ""))
  end
  return cond
end

function h.done()
  if failures > 0 then
    print(failures .. " check(s) failed")
    os.exit(1)
  end
  os.exit(0)
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
h.slurp = slurp

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
h.quote = quote

-- Runs the detrun command with the given arguments; returns exit code,
-- stdout and stderr.
local n = 0
function h.run(args)
  n = n + 1
  local out, err = h.work .. "/out" .. n, h.work .. "/err" .. n
  local words = { quote(h.detrun) }
  for i, a in ipairs(args) do words[i + 1] = quote(a) end
  local cmd = table.concat(words, " ") .. " >" .. quote(out) .. " 2>" .. quote(err) .. " </dev/null"
  local _, _, code = os.execute(cmd)
  return code, slurp(out), slurp(err)
end

-- Writes a script into the work folder; returns its path.
function h.script(name, text)
  local path = h.work .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

function h.is_fingerprint(s)
  return type(s) == "string" and s:match("^[0-9a-f]+$") ~= nil and #s == 32
end

return h
