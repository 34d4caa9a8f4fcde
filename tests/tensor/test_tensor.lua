-- dr.tensor from the stock lua5.4: constructors, access, arithmetic, draws,
-- .npy files, data sets and models speaking tensors, and every example of
-- docs/lua.md's "Tensors" section.
--   lua5.4 test_tensor.lua DETRUN_BINARY SOURCE_DIR WORK_DIR
local h = dofile(arg[2] .. "/tests/lua/harness.lua")
local dr = require "detrun"
local T = dr.tensor

-- An error whose message contains `want`.
local function raises(want, f, ...)
  local ok, err = pcall(f, ...)
  h.check(not ok and tostring(err):find(want, 1, true) ~= nil, "raises: " .. want, err)
end

-- The docs' examples, each a chunk of its own.
do
  local doc = h.slurp(h.src .. "/docs/lua.md")
  local section = doc:match("\n## Tensors\n(.-)\n## ")
  h.check(section ~= nil, "docs/lua.md has a Tensors section")
  local n = 0
  os.execute("mkdir -p " .. h.quote(h.work))
  for code in (section or ""):gmatch("```lua\n(.-)```") do
    n = n + 1
    local f, err = load(code, "=docs/lua.md example " .. n)
    local ok, msg = false, err
    if f then ok, msg = pcall(f) end
    h.check(ok, "docs example " .. n, msg)
  end
  h.check(n >= 3, "the docs have examples (" .. n .. ")")
end

-- Constructors and access.
do
  local t = T.zeros { 2, 3, 4 }
  h.check(#t == 24 and t:shape()[3] == 4 and #t:shape() == 3, "zeros shape")
  t[{ 2, 3, 4 }] = 1.5
  h.check(t[24] == 1.5 and t:sum() == 1.5, "t[{i, j, k}] is storage element 24")
  h.check(T.ones { 5 }:sum() == 5 and T.full({ 2, 2 }, -2):mean() == -2, "ones, full")
  h.check(T.arange(3):totable()[3] == 2, "arange from 0")
  local f = T.from { { { 1 }, { 2 } }, { { 3 }, { 4 } } }
  h.check(f:shape()[1] == 2 and f:shape()[2] == 2 and f:shape()[3] == 1 and f[4] == 4, "from 3-d")
  h.check(tostring(T.arange(8)) == "detrun.tensor(8: 0 1 2 3 4 5 ...)", "tostring", tostring(T.arange(8)))
  local c = f:clone(); c[1] = 9
  h.check(f[1] == 1 and c[1] == 9, "clone copies")
  local r = f:reshape { 4 }; r[1] = 7
  h.check(f[1] == 1 and r[1] == 7 and #r:shape() == 1, "reshape copies")
  h.check(T.from { 0.1 }[1] == 0.10000000149011612, "float32 storage")
  raises("out of range 1..24", function() return t[25] end)
  raises("position 3 in dimension 1 is out of range 1..2", function() return t[{ 3, 1, 1 }] end)
  raises("the tensor has 3 dimensions, the index 2", function() t[{ 1, 1 }] = 0 end)
  raises("a tensor element must be a number", function() t[1] = "x" end)
  raises("dimension 2 must be a positive integer, not 0", T.zeros, { 2, 0 })
  raises("a shape has 1 to 4 dimensions, not 5", T.ones, { 1, 1, 1, 1, 1 })
  raises("more than 2^32 - 1 elements", T.zeros, { 65536, 65536 })
  raises("ragged tables", T.from, { { 1, 2 }, { 3 } })
  raises("element 2 is a string", T.from, { 1, "x" })
  raises("24 elements) cannot become 5", function() return t:reshape { 5 } end)
end

-- Arithmetic and the written orders.
do
  local a, b = T.from { 1, 2, 3 }, T.from { 0.5, 0.25, 2 }
  h.check((a + b)[3] == 5 and (a - b)[1] == 0.5 and (a * b)[2] == 0.5, "elementwise")
  h.check((2 - a)[1] == 1 and (a - 2)[1] == -1 and (3 * a)[3] == 9 and (-a)[2] == -2, "scalars")
  raises("shapes 3 and 2 differ", function() return a + T.zeros { 2 } end)
  -- The sum is sequential in float32: 1e8 + 1 + 1 ... stays 1e8 in float.
  local s = T.from { 1e8, 1, 1, 1, 1 }
  h.check(s:sum() == 1e8, "sum in float32, sequential", s:sum())
  local m = T.normal { { 3, 5 }, seed = 1 }:matmul(T.normal { { 5, 2 }, seed = 2 })
  h.check(m:shape()[1] == 3 and m:shape()[2] == 2, "matmul shape")
  raises("matmul: needs (n, k) x (k, m) matrices, not 3x5 x 3x5", function()
    local x = T.zeros { 3, 5 }; return x:matmul(x) end)
  h.check(T.from { -1, 0.5, 2 }:clamp(0, 1):sum() == 1.5, "clamp")
end

-- Seeded draws.
do
  local small, big = T.uniform { { 4 }, seed = 1 }, T.uniform { { 10, 100 }, seed = 1 }
  local same = true
  for i = 1, 4 do same = same and small[i] == big[i] end
  h.check(same, "uniform{{4}} is the prefix of uniform{{10, 100}}")
  h.check(string.format("%a", small[1]) == "0x1.26d3bep-1",
          "uniform known answer", string.format("%a", small[1]))
  local n1, n2 = T.normal { { 6 }, seed = 1 }, T.normal { { 600 }, seed = 1 }
  h.check(n1[6] == n2[6] and n1:fingerprint() == T.normal { { 6 }, seed = 1 }:fingerprint(),
          "normal prefix and repeatability")
  h.check(T.normal { { 4 }, seed = 1, stream = 1 }:fingerprint() ~= T.normal { { 4 }, seed = 1 }:fingerprint(),
          "streams differ")
  local u = T.uniform { { 1000 }, seed = 3, low = -2, high = 2 }
  local lo, hi = math.huge, -math.huge
  for i = 1, #u do lo = math.min(lo, u[i]); hi = math.max(hi, u[i]) end
  h.check(lo >= -2 and hi < 2, "uniform range")
  local g = T.glorot { { 16, 3 }, seed = 1 }
  local limit = math.sqrt(6 / 19)
  local inside = true
  for i = 1, #g do inside = inside and math.abs(g[i]) <= limit end
  h.check(inside, "glorot within the limit")
  raises("stream must be from 0 to 16777215, not 16777216", T.uniform, { { 2 }, stream = 1 << 24 })
  raises("unknown option 'sedd'", T.normal, { { 2 }, sedd = 1 })
  raises("needs finite low < high", T.uniform, { { 2 }, low = 1, high = 1 })
  raises("std >= 0", T.normal, { { 2 }, std = -1 })
  raises("the shape must be a table", T.uniform, { seed = 1 })
end

-- .npy files and data sets from them.
do
  local dir = h.work
  local img = T.zeros { 20, 1, 3, 3 }
  for i = 1, #img do img[i] = (i * 7) % 256 end
  local lab = T.zeros { 20 }
  for i = 1, 20 do lab[i] = i % 4 end
  h.check(img:save(dir .. "/img.npy", "uint8") and lab:save(dir .. "/lab.npy", "uint8"), "save uint8")
  local back, dtype = T.load(dir .. "/img.npy")
  h.check(dtype == "uint8" and back:fingerprint() == img:fingerprint(), "load uint8 values")
  local ds, err = dr.data.npy(dir .. "/img.npy", dir .. "/lab.npy")
  h.check(ds ~= nil and #ds == 20 and ds:classes() == 4 and ds:label(4) == 0 and ds:label(1) == 1, "dr.data.npy", err)
  local c, hh, w = ds:shape()
  h.check(c == 1 and hh == 3 and w == 3, "npy data set shape")
  local bad, msg = T.load(dir .. "/missing.npy")
  h.check(bad == nil and msg:find("missing.npy", 1, true), "missing file named", msg)
  local f = io.open(dir .. "/bad.npy", "wb"); f:write("\x93NUMPY\1\0\16\0{'descr': '<i4'}\n"); f:close()
  bad, msg = T.load(dir .. "/bad.npy")
  h.check(bad == nil and msg:find("bad.npy", 1, true), "bad header named", msg)
  local nope, why = T.from { 1.5 }:save(dir .. "/x.npy", "uint8")
  h.check(nope == nil and why:find("not an integer from 0 to 255", 1, true), "uint8 checked", why)
  nope, why = dr.data.tensors(img, lab)                     -- unit pixels by default
  h.check(nope == nil and why:find("not from 0 to 1", 1, true), "unit pixels checked", why)
  ds = assert(dr.data.tensors(img, lab, { pixels = "bytes" }))
  h.check(#ds == 20, "bytes pixels")
  nope, why = dr.data.tensors(img, T.zeros { 19 })
  h.check(nope == nil and why:find("labels of shape (20)", 1, true), "label count", why)
end

-- Models speak tensors.
do
  local m = dr.nn.sequential { input = { 1, 6, 6 },
    dr.nn.conv2d { filters = 2, kernel = 3, activation = "relu" }, dr.nn.flatten(),
    dr.nn.dense { units = 3, activation = "softmax" } }
  m:compile { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy", seed = 4 }
  local params = m:params()
  local w = m:param(1)
  h.check(getmetatable(w) == getmetatable(T.zeros { 1 }), "param is a tensor")
  h.check(w:fingerprint(params[1].name) == params[1].fingerprint, "param fingerprint as the model's")
  h.check(w:shape()[1] == 2 and w:shape()[4] == 3, "param shape")
  m:set_param(1, T.glorot { w:shape(), seed = 2 })
  h.check(m:param(1):fingerprint() == T.glorot { w:shape(), seed = 2 }:fingerprint(), "set_param")
  raises("conv2d_1.weight has shape 2x1x3x3, the tensor has shape 18", function() m:set_param(1, T.zeros { 18 }) end)
  local x = T.uniform { { 4, 1, 6, 6 }, seed = 9 }
  local p = m:predict(x)
  h.check(p:shape()[1] == 4 and p:shape()[2] == 3, "predict shape")
  local rows_ok = true
  for i = 1, 4 do
    local s = p[{ i, 1 }] + p[{ i, 2 }] + p[{ i, 3 }]
    rows_ok = rows_ok and math.abs(s - 1) < 1e-6
  end
  h.check(rows_ok, "probabilities sum to 1")
  raises("takes images of N x 1 x 6 x 6, not 4x36", function() m:predict(x:reshape { 4, 36 }) end)
  -- A fit on a data set from tensors, twice: the same fingerprint.
  local labels = T.zeros { 4 }; labels[2] = 1; labels[3] = 2
  local data = assert(dr.data.tensors(x, labels))
  local fps = {}
  for k = 1, 2 do
    local mk = dr.nn.sequential { dr.nn.flatten(), dr.nn.dense { units = 3, activation = "softmax" } }
    mk:compile { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy" }
    mk:fit(dr.run { threads = k }, data, { epochs = 2, batch = 2 })
    fps[k] = mk:fingerprint()
  end
  h.check(fps[1] == fps[2], "fit on tensors: the same at 1 and 2 threads")
end

-- The synthetic experiment through the command.
do
  local code, out, err = h.run { "-t", "2", "-q", "--mode", "deterministic", "--repeats", "1",
                                 "-o", h.work .. "/syn", h.src .. "/experiments/synthetic.lua" }
  h.check(code == 0, "synthetic experiment runs", err)
  local golden = h.slurp(h.src .. "/tests/golden/synthetic.golden")
  local want = golden:match("deterministic repeat 0 final (%x+)")
  h.check(want ~= nil and out:find(want, 1, true) ~= nil, "synthetic fingerprint as the golden", out)
end

h.done()
