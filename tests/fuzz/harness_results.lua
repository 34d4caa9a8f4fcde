-- Results files (OUT/NAME.json) as dr.load_results and detrun report read
-- them: the results object and its lookups, then the report page and the
-- epochs CSV drawn from it. Drawing may refuse a results file that lacks
-- what it draws (an error), but never crash or loop.
local core = require "detrun.core"
local html = require "detrun.html"
local common = dofile(FUZZ_DIR .. "/harness_common.lua")
local fail = common.fail

return function(path)
  local res, err = core.load_results(path)
  if not res then return common.names(err, path, "load_results") end
  if type(res:json()) ~= "string" then fail("results without JSON") end
  -- What detrun report refuses before drawing, naming the file.
  local valid, verr = pcall(html.check, res, path)
  if not valid then return common.names(verr, path, "html.check") end
  for _, m in ipairs(res.modes) do
    if type(m) == "table" and type(m.mode) == "string" then
      for r = 1, 3 do
        local fp = res:fingerprint(m.mode, r)
        if fp ~= nil and type(fp) ~= "string" then fail("a fingerprint that is a %s", type(fp)) end
      end
    end
  end
  local ok, page = pcall(html.page, res)
  if ok and type(page) ~= "string" then fail("a page that is a %s", type(page)) end
  local cok, csv = pcall(html.epochs_csv, res)
  if cok and type(csv) ~= "string" then fail("a CSV that is a %s", type(csv)) end
end
