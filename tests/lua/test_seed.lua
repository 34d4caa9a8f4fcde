-- The seed experiment at a tiny size, in both modes: deterministic mode has
-- variance 0 and one fingerprint; the fingerprint from the command (its own
-- process, 2 threads) equals the one computed in this process (all cores).
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local h = require "harness"
local dr = require "detrun"

local seed_script = h.src .. "/experiments/seed_mnist.lua"
local out = h.work .. "/seed_results"
local code, stdout, stderr = h.run { "-q", "-t", "2", "--limit", "3000", "--folds", "2",
                                     "--epochs", "1", "--repeats", "2", "-o", out, seed_script }
h.check(code == 0, "tiny seed run exits 0", stderr)
h.check(stderr == "", "-q prints no progress", stderr)
h.check(stdout:find("determinism overhead", 1, true) ~= nil, "report gives the overhead", stdout)

local r, err = dr.load_results(out .. "/seed_mnist.json")
h.check(r ~= nil, "results JSON is readable", err)
if not r then h.done() end
h.check(r.experiment == "seed_mnist" and r.detrun_version == dr.version and r.seed == 0
        and r.threads == 2, "results name the experiment, version, seed and threads")
h.check(#r.modes == 2 and r.modes[1].mode == "deterministic" and r.modes[2].mode == "fast",
        "both modes ran, in the script's order")
local det, fast = r.modes[1], r.modes[2]
h.check(det.variance.loss == 0 and det.variance.accuracy == 0, "deterministic variance is 0",
        det.variance.loss .. " " .. det.variance.accuracy)
h.check(det.distinct_fingerprints == 1, "deterministic repeats give one fingerprint")
h.check(#det.repeats == 2 and #fast.repeats == 2, "two repeats per mode")
local fp = det.repeats[1].fingerprint
h.check(h.is_fingerprint(fp) and fp == det.repeats[2].fingerprint, "repeat fingerprints agree", fp)
h.check(fast.distinct_fingerprints >= 1 and fast.distinct_fingerprints <= 2,
        "fast mode counts its distinct fingerprints")
local f1 = det.repeats[1].folds[1]
h.check(#det.repeats[1].folds == 2 and f1.fold == 0 and h.is_fingerprint(f1.fingerprint)
        and f1.loss > 0 and f1.accuracy >= 0 and f1.accuracy <= 1, "fold records are complete")
h.check(#f1.epochs == 1 and h.is_fingerprint(f1.epochs[1].fingerprint)
        and f1.epochs[1].fingerprint == f1.fingerprint and f1.epochs[1].val_loss > 0,
        "each fold keeps its epoch history")
-- the repeat fingerprint is the hash of its folds' fingerprints
h.check(dr.fingerprint_strings { det.repeats[1].folds[1].fingerprint,
                                 det.repeats[1].folds[2].fingerprint } == fp,
        "repeat fingerprint hashes its folds'")

local csv = h.slurp(out .. "/seed_mnist.csv")
local rows = 0
for line in csv:gmatch("[^\n]+") do rows = rows + 1 end
h.check(rows == 1 + 2 * 2 * 2, "CSV has a header and one row per (mode, repeat, fold)", csv)
h.check(csv:find("\ndeterministic,0,0,", 1, true) and csv:find(f1.fingerprint, 1, true),
        "CSV rows carry the fold fingerprints")
local leftovers = io.popen("ls -a '" .. out .. "'"):read("a")
h.check(not leftovers:find("tmp", 1, true), "no temporary files are left", leftovers)

-- The same experiment in this process, one thread, deterministic only.
dr.set_options { limit = 3000, folds = 2, epochs = 1, repeats = 1, mode = "deterministic",
                 verbosity = 0 }
local here = dofile(seed_script)
h.check(here:fingerprint("deterministic", 1) == fp,
        "in-process fingerprint equals the command's", here:fingerprint("deterministic", 1))
h.check(here.threads == dr.threads(), "in-process run records its thread count")
h.done()
