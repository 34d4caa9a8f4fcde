-- One fit of the seed network with a checkpoint; with a step given, the
-- process sends itself a real SIGINT from the step callback after that step
-- (epoch and step from 1), so the command's handler stops the fit at the
-- next step boundary: a place the test knows. Prints the final fingerprint.
-- usage: detrun signal_fit.lua CKPT resume|fresh [EPOCH STEP]
local dr = require "detrun"
local ckpt, how, at_epoch, at_step = ...
local data = dr.data.mnist().train
data:limit(600)
local m = dr.nn.sequential {
  dr.nn.conv2d { filters = 4, kernel = 3, activation = "relu" },
  dr.nn.maxpool { size = 2 },
  dr.nn.flatten (),
  dr.nn.dense { units = 32, activation = "relu" },
  dr.nn.dropout { rate = 0.2 },
  dr.nn.dense { units = 10, activation = "softmax" },
}:compile { optimizer = dr.optim.adam { lr = 1e-3 },
            loss = "sparse_categorical_crossentropy", seed = 5, stream = 1 }
local pid = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
local history = m:fit(dr.run {}, data, {
  epochs = 3, batch = 50, validation_split = 0.2, checkpoint = ckpt, resume = how == "resume",
  on_batch = function(k, _, _, epoch)
    if epoch == tonumber(at_epoch) and k == tonumber(at_step) then
      -- popen, not os.execute: system() ignores SIGINT while it waits
      local p = io.popen("kill -INT " .. pid)
      p:close()   -- the signal has come when kill has ended
    end
  end })
for _, st in ipairs(history) do print("epoch", st.epoch, string.format("%a %a", st.loss, st.val_loss)) end
print("fingerprint", m:fingerprint())
