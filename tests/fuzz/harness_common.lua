-- What the harnesses share: the check that an error names the file, and a
-- deep comparison of two decoded values (NaN equal to itself).
local common = {}

function common.fail(fmt, ...)
  error("INVARIANT: " .. string.format(fmt, ...), 0)
end

-- A refusal must be a message that names the file it is about.
function common.names(err, path, what)
  if type(err) ~= "string" then common.fail("%s raised a %s, not a message", what, type(err)) end
  if not err:find(path, 1, true) then
    common.fail("%s's error does not name the file: %s", what, err)
  end
end

function common.same(a, b, where)
  if type(a) ~= type(b) then common.fail("%s: %s became %s", where, type(a), type(b)) end
  if type(a) == "table" then
    for k, v in pairs(a) do common.same(v, b[k], where .. "." .. tostring(k)) end
    for k in pairs(b) do
      if a[k] == nil then common.fail("%s.%s appeared", where, tostring(k)) end
    end
  elseif a ~= b and not (a ~= a and b ~= b) then
    common.fail("%s: %s became %s", where, tostring(a), tostring(b))
  end
end

return common
