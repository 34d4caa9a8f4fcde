-- The progress display (a line fitted to the terminal, elapsed time and ETA,
-- batch updates; plain lines in a pipe), fit's on_batch callback, and the
-- printed report (mean +- std over folds, plural forms, resumed cells).
local h = dofile(arg[2] .. "/tests/lua/harness.lua")
local dr = require "detrun"
local core = require "detrun.core"
local report = dr.report

-- A sink for the display's writes, and a clock the test moves.
local function sink()
  local s = { parts = {} }
  function s:write(...) for _, x in ipairs({ ... }) do self.parts[#self.parts + 1] = x end end
  function s:text() return table.concat(self.parts) end
  function s:clear() self.parts = {} end
  return s
end

local function plan(epochs)
  local p = { repeats = 2, folds = 3, fit = { epochs = epochs }, cells = {} }
  for _, mode in ipairs({ "deterministic", "fast" }) do
    for r = 0, 1 do
      for f = 0, 2 do p.cells[#p.cells + 1] = { mode = mode, ["repeat"] = r, fold = f } end
    end
  end
  return p
end

local function stats(e) return { epoch = e, loss = 0.5, accuracy = 0.75, val_loss = 0.625,
                                  val_accuracy = 0.875, seconds = 1 } end
local function record(resumed)
  return { loss = 0.25, accuracy = 0.9, fingerprint = string.rep("a", 32), seconds = 3,
           resumed = resumed }
end

-- The redrawn lines of a terminal display: each write is \r LINE \27[K.
local function lines(out)
  local t = {}
  for l in out:text():gmatch("\r([^\r]*)\27%[K") do t[#t + 1] = l end
  return t
end

---------------------------------------------------------------------------
-- A terminal 80 columns wide.
do
  local now = 0
  local out = sink()
  local p = plan(2)
  local pr = report.progress(p, { out = out, tty = true, width = 80, clock = function() return now end })
  h.check(pr.total == 12, "progress: total is the plan's cell count", pr.total)
  local a, b = p.cells[1], p.cells[2]
  pr:start(a)
  pr:start(b)
  now = 1
  pr:batch(a, 3, 10, 1.25)
  pr:epoch(a, stats(0))
  pr:batch(a, 5, 10, 0.75)
  now = 10
  pr:cell(a, record())
  local ls = lines(out)
  h.check(#ls == 6, "tty: one redraw per event", #ls)
  local longest = 0
  for _, l in ipairs(ls) do longest = math.max(longest, #l) end
  h.check(longest <= 79, "tty: lines fit 80 columns without touching the last", longest)
  h.check(not out:text():find("\n"), "tty: no newline before finish")
  h.check(ls[3]:find("2 run", 1, true) and ls[3]:find("3/10", 1, true)
          and ls[3]:find("loss 1.2500", 1, true), "tty: a batch update shows k/n, the loss and "
          .. "the running count", ls[3])
  h.check(ls[4]:find("val_loss 0.6250", 1, true), "tty: an epoch's end shows val_loss", ls[4])
  -- One running cell half through its 2 epochs (epoch 1 done, batch 5/10 of
  -- epoch 2: 0.75) after 1 s: 11.25 cells left at 0.75 per second: 15 s.
  h.check(ls[5]:find("ETA 0:15", 1, true), "tty: ETA from the running cell's batches", ls[5])
  -- One cell done in 10 s, the other one not started: 11 cells left, 110 s.
  h.check(ls[6]:find("1/12", 1, true) and ls[6]:find("1 run", 1, true)
          and ls[6]:find("ETA 1:50", 1, true) and ls[6]:find("0:10", 1, true),
          "tty: a finished cell: counts, elapsed and ETA", ls[6])
  out:clear()
  pr:finish()
  h.check(out:text():match("\n$") and out:text():find("1/12 cells done in 0:10", 1, true),
          "tty: finish ends the line", out:text())
end

-- Narrow and wide terminals: always within the width; the wide one says it all.
for _, width in ipairs({ 30, 60, 100, 240 }) do
  local out = sink()
  local p = plan(3)
  local pr = report.progress(p, { out = out, tty = true, width = width, clock = function() return 0 end })
  local c = p.cells[7]
  pr:start(c)
  pr:batch(c, 17, 540, 0.3456)
  pr:epoch(c, stats(0))
  pr:cell(c, record(true))
  local ok, longest = true, 0
  for _, l in ipairs(lines(out)) do longest = math.max(longest, #l) end
  h.check(longest <= width - 1, "tty: lines fit " .. width .. " columns", longest)
  local ls = lines(out)
  if width >= 240 then
    ok = ls[2]:find("fast repeat 1/2 fold 1/3", 1, true) and ls[2]:find("epoch 1/3 batch 17/540", 1, true)
    h.check(ok, "tty: a wide line names the cell in full", ls[2])
    h.check(ls[3]:find("val_accuracy 0.8750", 1, true), "tty: a wide line has val_accuracy", ls[3])
  end
  if width >= 60 then
    h.check(ls[4]:find("resumed", 1, true), "tty: a resumed cell says so (" .. width .. ")", ls[4])
  end
end

-- ETA leaves out resumed cells: they took no time.
do
  local now = 0
  local out = sink()
  local p = plan(1)
  local pr = report.progress(p, { out = out, tty = true, width = 200, clock = function() return now end })
  pr.total = 6
  pr:cell(p.cells[1], record(true))
  pr:cell(p.cells[2], record(true))
  pr:start(p.cells[3])
  now = 20
  pr:cell(p.cells[3], record())
  local ls = lines(out)
  h.check(ls[#ls]:find("3/6 done", 1, true) and ls[#ls]:find("ETA 1:00", 1, true),
          "tty: settable total; ETA from trained cells only (3 left at 20 s each)", ls[#ls])
end

-- A pipe: one plain line per epoch and per cell, nothing for starts and batches.
do
  local out = sink()
  local p = plan(2)
  local pr = report.progress(p, { out = out, tty = false, width = 80, clock = function() return 0 end })
  local c = p.cells[1]
  pr:start(c)
  pr:batch(c, 1, 10, 2.0)
  h.check(out:text() == "", "pipe: nothing for a start or a batch", out:text())
  pr:epoch(c, stats(0))
  pr:epoch(c, stats(1))
  pr:cell(c, record())
  pr:cell(p.cells[2], record(true))
  pr:finish()
  local text = out:text()
  local n = select(2, text:gsub("\n", ""))
  h.check(n == 5, "pipe: one line per epoch, per cell and at the end", text)
  h.check(not text:gsub("\n", ""):find("%c"), "pipe: no control characters", text)
  h.check(text:find("deterministic repeat 1/2 fold 1/3 epoch 2/2: loss 0.5000, accuracy 0.7500, "
                    .. "val_loss 0.6250, val_accuracy 0.8750", 1, true), "pipe: the epoch line", text)
  h.check(text:find("[2/12] deterministic repeat 1/2 fold 2/3: resumed, test loss", 1, true),
          "pipe: a resumed cell says so", text)
end

-- The terminal's width: 80 when stderr is not a terminal; the terminal's own
-- otherwise (through script(1), when present).
h.check(core.term_width() == 80, "term_width: 80 when stderr is not a terminal", core.term_width())
if os.execute("command -v script >/dev/null 2>&1") then
  local f = h.work .. "/width.txt"
  local lua = arg[-1] or "lua5.4"
  local inner = "stty cols 123 rows 20; " .. h.quote(lua) ..
                " -e 'require(\"detrun\"); print(require(\"detrun.core\").term_width())' >" ..
                h.quote(f)
  os.execute("script -qec " .. h.quote(inner) .. " /dev/null >/dev/null 2>&1 </dev/null")
  local got = h.slurp(f):match("%d+")
  h.check(got == "123", "term_width: the terminal's columns (stty cols 123)", got)
else
  print("skip term_width on a terminal: script(1) is not installed")
end

---------------------------------------------------------------------------
-- fit's on_batch: k of n from 1, every step; the last running loss is the
-- epoch's; true stops; the same bits with or without it.
do
  local T = dr.tensor
  local images = T.uniform { { 50, 1, 4, 4 }, seed = 3 }
  local labels = T.zeros { 50 }
  for i = 1, 50 do labels[i] = i % 2 end
  local data = assert(dr.data.tensors(images, labels))
  local function model()
    local m = dr.nn.sequential { input = { 1, 4, 4 }, dr.nn.flatten(),
                                 dr.nn.dense { units = 8, activation = "relu" },
                                 dr.nn.dense { units = 2, activation = "softmax" } }
    m:compile { optimizer = dr.optim.adam {}, loss = "sparse_categorical_crossentropy", seed = 1 }
    return m
  end
  local run = dr.run { seed = 1, threads = 1 }
  local plain = model()
  plain:fit(run, data, { epochs = 2, batch = 8, validation_split = 0.2 })
  -- 40 training rows in batches of 8: 5 steps per epoch.
  local calls, order_ok, last = {}, true, {}
  local m = model()
  local history = m:fit(run, data, { epochs = 2, batch = 8, validation_split = 0.2,
    on_batch = function(k, n, loss, epoch)
      calls[#calls + 1] = true
      local i = #calls - 1
      if k ~= i % 5 + 1 or n ~= 5 or epoch ~= i // 5 + 1 or not (loss > 0) then order_ok = false end
      last[epoch] = loss
    end })
  h.check(#calls == 10, "on_batch: once per step (2 epochs x 5)", #calls)
  h.check(order_ok, "on_batch: k from 1 to n, epoch from 1")
  h.check(last[1] == history[1].loss and last[2] == history[2].loss,
          "on_batch: the last running loss is the epoch's loss",
          tostring(last[1]) .. " " .. tostring(history[1].loss))
  h.check(m:fingerprint() == plain:fingerprint(), "on_batch: the same bits as without it")
  local stopped, n = model(), 0
  local hist = stopped:fit(run, data, { epochs = 2, batch = 8, validation_split = 0.2,
    on_batch = function() n = n + 1; return n == 7 end })
  h.check(n == 7 and #hist == 1, "on_batch: returning true stops after that step", n .. " " .. #hist)
  local ok, err = pcall(function()
    model():fit(run, data, { epochs = 1, on_batch = function() error("boom") end })
  end)
  h.check(not ok and tostring(err):find("boom", 1, true), "on_batch: its error is raised", err)
  ok, err = pcall(function() model():fit(run, data, { epochs = 1, on_batch = 5 }) end)
  h.check(not ok and tostring(err):find("on_batch", 1, true), "on_batch: must be a function", err)
end

---------------------------------------------------------------------------
-- The report: mean +- std over folds, one repeat, one epoch, resumed cells.
do
  local p = { name = "t", seed = 0, threads = 1, device = "cpu", rows = 100, folds = 2,
              repeats = 1, modes = { "deterministic" },
              fit = { epochs = 1, batch = 10, validation_split = 0, shuffle = true } }
  local recs = {
    { mode = "deterministic", ["repeat"] = 0, fold = 0, loss = 0.5, accuracy = 0.75,
      fingerprint = string.rep("1", 32), seconds = 1, epochs = {} },
    { mode = "deterministic", ["repeat"] = 0, fold = 1, loss = 0.25, accuracy = 0.875,
      fingerprint = string.rep("2", 32), seconds = 1, epochs = {} },
  }
  local tbl = dr.aggregate(p, recs)
  local text = report.table(tbl, nil, { resumed = { { mode = "deterministic", ["repeat"] = 0,
                                                       fold = 1 } } })
  -- Accuracy 0.75 and 0.875: mean 0.8125, population std 0.0625; loss 0.375 +- 0.125.
  h.check(text:find("t: 2 folds x 1 repeat, 100 rows, 1 epoch, batch 10, seed 0, 1 thread, cpu",
                    1, true), "report: singular forms", text)
  h.check(text:find("mean \u{b1} std over 2 folds", 1, true)
          and text:find("deterministic  accuracy 0.8125 \u{b1} 0.0625   loss 0.3750 \u{b1} 0.1250",
                        1, true), "report: a line per mode with mean \u{b1} std over folds", text)
  h.check(text:find("means over 1 repeat:", 1, true), "report: fold columns are means over repeats",
          text)
  h.check(text:find("deterministic repeat 1: %x+ %(fold 2 resumed from an earlier run%)")
          and text:find("1 cell of 2 resumed", 1, true), "report: resumed cells marked", text)
  h.check(not report.table(tbl):find("resumed", 1, true), "report: nothing resumed, no mark")
  h.check(report.plural(1, "epoch") == "1 epoch" and report.plural(3, "epoch") == "3 epochs",
          "report: plural")
end

---------------------------------------------------------------------------
-- The command in a pipe: one line per epoch per cell, no control
-- characters; resuming marks the cells it did not train again.
do
  local out = h.work .. "/run"
  local script = h.src .. "/experiments/synthetic.lua"
  local args = { "-o", out, "-t", "1", "--epochs", "2", "--repeats", "1", "-m", "deterministic",
                 script }
  local code, stdout, stderr = h.run(args)
  h.check(code == 0, "command: runs", stderr)
  local epochs, cells = 0, 0
  for l in stderr:gmatch("[^\n]+") do
    if l:find(" epoch %d+/2: loss") then epochs = epochs + 1 end
    if l:find("fold %d/3: test loss") then cells = cells + 1 end
  end
  h.check(epochs == 6 and cells == 3, "command: 3 folds x 2 epochs lines and 3 cell lines",
          stderr)
  h.check(not stderr:gsub("\n", ""):find("%c"), "command: no control characters in a pipe", stderr)
  h.check(stdout:find("1 repeat, 600 rows, 2 epochs", 1, true)
          and stdout:find("mean \u{b1} std over 3 folds", 1, true), "command: the report", stdout)
  table.insert(args, 1, "--resume")
  code, stdout, stderr = h.run(args)
  h.check(code == 0 and select(2, stderr:gsub(": resumed, test loss", "")) == 3,
          "command: resumed cells say so on the progress lines", stderr)
  h.check(stdout:find("(folds 1, 2, 3 resumed from an earlier run)", 1, true)
          and stdout:find("3 cells of 3 resumed", 1, true), "command: and in the report", stdout)
end

-- The command on a 70-column terminal (through script(1), when present):
-- every redraw fits, and the line is ended once, at the end.
if os.execute("command -v script >/dev/null 2>&1") then
  local typescript = h.work .. "/tty.txt"
  local inner = "stty cols 70 rows 20; " .. h.quote(h.detrun) .. " -o " ..
                h.quote(h.work .. "/tty") .. " -t 1 --epochs 2 " ..
                h.quote(h.src .. "/experiments/synthetic.lua") .. " >/dev/null"
  os.execute("script -qec " .. h.quote(inner) .. " " .. h.quote(typescript) ..
             " >/dev/null 2>&1 </dev/null")
  local text = h.slurp(typescript)
  local n, longest = 0, 0
  for l in text:gmatch("\r([^\r\n]*)\27%[K") do n, longest = n + 1, math.max(longest, #l) end
  h.check(n >= 12 and longest <= 69, "command on a terminal: redraws fit 70 columns",
          n .. " redraws, longest " .. longest)
  h.check(text:find("12/12 cells done in", 1, true), "command on a terminal: the last line", text)
else
  print("skip the command on a terminal: script(1) is not installed")
end

h.done()
