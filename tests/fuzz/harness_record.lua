-- Cell records (OUT/NAME.cells/*.json, OUT/shards/*.json) as --resume,
-- --shard and detrun merge read them: core._record_read, then
-- experiment.check_record; and the worker's line decoder (core._decode).
local core = require "detrun.core"
local experiment = require "detrun.experiment"
local common = dofile(FUZZ_DIR .. "/harness_common.lua")
local fail = common.fail

local cell = { mode = "deterministic", ["repeat"] = 0, fold = 1 }

local function is_hex32(v) return type(v) == "string" and #v == 32 and v:match("^%x+$") end

-- What check_record promises of a record it lets through.
local function check_fields(rec)
  if rec.mode ~= cell.mode or rec["repeat"] ~= 0 or rec.fold ~= 1 then
    fail("a record of another cell was accepted")
  end
  if rec.error ~= nil then
    if type(rec.error) ~= "string" then fail("a failed cell's error is a %s", type(rec.error)) end
    return
  end
  if not is_hex32(rec.fingerprint) then fail("a record without a fingerprint was accepted") end
  if math.type(rec.loss) == nil or math.type(rec.accuracy) == nil
     or not (rec.accuracy >= 0 and rec.accuracy <= 1) then
    fail("a record without a loss or an accuracy in [0, 1] was accepted")
  end
  if math.type(rec.seconds) == nil or not (rec.seconds >= 0 and rec.seconds < math.huge) then
    fail("a record with bad seconds was accepted")
  end
end

return function(path, text)
  local ok, rec = pcall(core._record_read, path)
  if not ok then return common.names(rec, path, "_record_read") end
  if rec == nil then fail("_record_read found no record in %s", path) end
  if type(rec) ~= "table" then fail("_record_read gave a %s", type(rec)) end
  local good, err = pcall(experiment.check_record, rec, cell, path)
  if not good then
    common.names(err, path, "check_record")
  else
    check_fields(rec)
  end
  -- Written back (as a worker sends a record) and read again, a record
  -- keeps every value and every bit.
  local sent, serr = pcall(core._send, fuzz_line_reset(), rec)
  if sent then
    common.same(rec, core._decode(fuzz_line_read()), "record")
  elseif type(serr) ~= "string" then
    fail("_send raised a %s", type(serr))
  end
  -- The same bytes as a worker's line: a value, or a message.
  local dok, derr = pcall(core._decode, text)
  if not dok and type(derr) ~= "string" then fail("_decode raised a %s", type(derr)) end
end
