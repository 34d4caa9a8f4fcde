-- detrun.data: data sets and row lists. The binding's readers (IDX files,
-- row lists, k-fold splits) with the MNIST layout on top.
local core = require "detrun.core"
local util = require "detrun.util"

local data = {
  idx = core.data.idx,
  default_dir = core.data.default_dir,
  rows = core.data.rows,
  kfold = core.data.kfold,
  tensors = core.data.tensors,
  npy = core.data.npy,
}

-- dr.data.mnist{ dir = "..." } -> { train = dataset, test = dataset }, each
-- read on first use. Without dir: the command's --data, $DETRUN_DATA, or
-- Debian's Fashion-MNIST.
function data.mnist(t)
  t = t or {}
  util.check_options(t, { "dir" }, "dr.data.mnist", 2)
  local dir = t.dir or core.options().data
  local sets = { train = "train", test = "t10k" }
  return setmetatable({}, { __index = function(self, k)
    local set = sets[k]
    if not set then return nil end
    local ds, err = core.data._load_mnist(dir, set)
    if not ds then error(err, 2) end
    rawset(self, k, ds)
    return ds
  end })
end

return data
