-- `detrun --sandbox` given hostile scripts: each exits 1 with a clear message
-- and does nothing it was refused; the experiments run as they do without
-- the sandbox, with the same fingerprints.
--   lua5.4 test_sandbox.lua DETRUN_BINARY SOURCE_DIR WORK_DIR
package.path = arg[2] .. "/tests/lua/?.lua;" .. package.path
local h = require "harness"

local out = h.work .. "/out"
os.execute("rm -rf " .. h.quote(out) .. " " .. h.quote(h.work .. "/escaped"))
os.execute("mkdir -p " .. h.quote(out))
local marker = h.work .. "/executed"
os.remove(marker)
local limits = "--sandbox=memory=67108864,instructions=10000000"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- name, script text, what stderr must hold
local hostile = {
  { "io.open", "print(io.open('/etc/passwd'):read('a'))", "io: not available in the sandbox" },
  { "os.execute", "os.execute('touch " .. marker .. "')", "os.execute: not available" },
  { "os.exit", "os.exit(0)", "os.exit: not available" },
  { "require of a C module", "require 'lpeg'", "require \"lpeg\": refused by the sandbox" },
  { "package.loadlib", "package.loadlib('libc.so.6', 'system')", "package: not available" },
  { "load of a binary chunk", "assert(load(string.dump(function() end)))",
    "attempt to load a binary chunk" },
  { "dofile", "dofile('/etc/passwd')", "dofile: not available" },
  { "/etc/passwd through dr.data.idx",
    "local dr = require 'detrun'; print(dr.data.idx('/etc/passwd', '/etc/passwd'))",
    "dr.data.idx: /etc/passwd: refused by the sandbox" },
  { "a path escape by ..",
    "local dr = require 'detrun'; dr.tensor.zeros { 2 }:save(dr.options().out .. '/../escaped')",
    "refused by the sandbox" },
  { "metatable tampering",
    "local dr = require 'detrun'; getmetatable(dr.run()).__index = {}",
    "attempt to index a string value" },
  { "registry replacement", "debug.getregistry()['detrun.runtime'] = io.stdout",
    "debug: not available" },
  { "an infinite loop", "while true do end",
    "ran past its instruction budget of 10000000 Lua instructions" },
  { "an unbounded table", "local t = {} while true do t[#t + 1] = {} end",
    "Lua heap reached its limit of 67108864 bytes" },
}
for _, c in ipairs(hostile) do
  local script = h.script(c[1]:gsub("%W", "_") .. ".lua", c[2] .. "\n")
  local code, stdout, err = h.run { "-q", "-o", out, limits, script }
  h.check(code == 1 and err:find(c[3], 1, true) ~= nil,
          c[1] .. ": exits 1 saying " .. c[3], code .. " " .. stdout .. err)
end
h.check(not exists(marker), "os.execute ran no command")
h.check(not exists(h.work .. "/escaped"), "the escape by .. wrote nothing")

-- The default limits hold an infinite loop too (1e9 instructions, a few seconds).
local code, _, err = h.run { "-q", "-o", out, "--sandbox", h.script("loop.lua", "while true do end") }
h.check(code == 1 and err:find("instruction budget of 1000000000", 1, true),
        "--sandbox alone: an infinite loop ends at the default budget", err)

-- Bad --sandbox values are usage errors.
for _, bad in ipairs { "--sandbox=memory", "--sandbox=memory=0", "--sandbox=cpu=3",
                       "--sandbox=instructions=x" } do
  code, _, err = h.run { "-q", bad, h.script("empty.lua", "") }
  h.check(code == 2 and err:find("--sandbox", 1, true), bad .. " exits 2", code .. " " .. err)
end

-- The quick experiment, smaller: the same fingerprint in the sandbox.
local function fingerprint(extra)
  local args = { "-q", "-t", "2", "--mode", "deterministic", "--repeats", "1", "--folds", "2",
                 "--epochs", "1", "--limit", "600", "-o", out .. "/quick" }
  if extra then args[#args + 1] = extra end
  args[#args + 1] = h.src .. "/experiments/quick.lua"
  local c, stdout, e = h.run(args)
  local fp = stdout:match("deterministic repeat 1: (%x+)")
  h.check(c == 0 and h.is_fingerprint(fp), "quick.lua " .. (extra or "") .. " runs", c .. " " .. e)
  return fp
end
local plain, sandboxed = fingerprint(nil), fingerprint("--sandbox")
h.check(plain ~= nil and plain == sandboxed, "quick.lua: the same fingerprint in the sandbox",
        tostring(plain) .. " " .. tostring(sandboxed))

-- Shards, their merge and --resume work inside the sandbox (cell records,
-- checkpoints and removals all in the results folder).
local small = { "-q", "-t", "1", "--mode", "deterministic", "--repeats", "1", "--folds", "2",
                "--epochs", "1", "--limit", "600", "--sandbox" }
local function with(extra)
  local args = {}
  for _, a in ipairs(small) do args[#args + 1] = a end
  for _, a in ipairs(extra) do args[#args + 1] = a end
  args[#args + 1] = h.src .. "/experiments/quick.lua"
  return args
end
os.execute("rm -rf " .. h.quote(out .. "/shards") .. " " .. h.quote(out .. "/resume"))
for k = 0, 1 do
  code, _, err = h.run(with { "-o", out .. "/shards", "--shard", k .. "/2" })
  h.check(code == 0, "--shard " .. k .. "/2 in the sandbox", err)
end
code, _, err = h.run { "merge", "-q", out .. "/shards" }
local merged = h.slurp(out .. "/shards/quick.json")
h.check(code == 0 and plain ~= nil and merged:find(plain, 1, true) ~= nil,
        "the merged shards give the same fingerprint", err)
h.run(with { "-o", out .. "/resume" })
local stdout
code, stdout, err = h.run(with { "-o", out .. "/resume", "--resume" })
h.check(code == 0 and plain ~= nil and stdout:find(plain, 1, true) ~= nil,
        "--resume in the sandbox gives the same fingerprint", err)

h.done()
