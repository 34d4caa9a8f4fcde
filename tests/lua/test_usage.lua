-- The command line: usage errors exit 2, --help/--version/--devices exit 0.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local h = require "harness"

local ok_script = h.script("noop.lua", "return nil\n")
local cases = {
  { {}, "no script" },
  { { "--mode", "sometimes", ok_script }, "bad mode" },
  { { "-t", "two", ok_script }, "bad thread count" },
  { { "--folds", "1", ok_script }, "one fold" },
  { { "--limit", "-5", ok_script }, "negative limit" },
  { { "--bogus", ok_script }, "unknown long option" },
  { { "-x", ok_script }, "unknown short option" },
  { { "--seed" }, "missing argument" },
  { { "--gpu-kernels", "fastest", ok_script }, "bad gpu kernels" },
}
for _, c in ipairs(cases) do
  local code, _, err = h.run(c[1])
  h.check(code == 2, c[2] .. " exits 2", code)
  h.check(err:find("detrun", 1, true) ~= nil and err:find("--help", 1, true) ~= nil,
          c[2] .. " says what was wrong and where to look", err)
end

local code, out = h.run { "--help" }
h.check(code == 0 and out:find("usage: detrun", 1, true) and out:find("--repeats", 1, true), "--help exits 0")
code, out = h.run { "--version" }
h.check(code == 0 and out:find("detrun 0.", 1, true), "--version exits 0", out)
code, out = h.run { "--devices" }
h.check(code == 0 and #out > 0, "--devices exits 0 and says something", out)
code = h.run { "-q", ok_script }
h.check(code == 0, "a script that returns nothing exits 0", code)

-- script arguments reach the script as arg and ...
local args = h.script("args.lua", "print(arg[0] ~= nil, arg[1], arg[2], select('#', ...), (...))\n")
code, out = h.run { "-q", args, "one", "-t" }
h.check(code == 0 and out == "true\tone\t-t\t2\tone\n", "script arguments reach the script", out)
h.done()
