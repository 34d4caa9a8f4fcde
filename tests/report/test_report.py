"""The files a run writes beside its results: the epochs CSV (read with the
csv module, as pandas would), the divergence in the JSON, the HTML page
(self-contained, the expected figures), `detrun report` and --no-report."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

from common import (CELLS, EPOCHS, FOLDS, MODES, REPEATS, check, check_figures, fail,
                    run_experiment)

HEADER = ["mode", "repeat", "fold", "epoch", "loss", "accuracy", "val_loss", "val_accuracy",
          "divergence", "divergence_max", "seconds", "fingerprint", "set"]


def check_csv(path, res):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    check(rows[0] == HEADER, "%s: header %s, want %s" % (path, rows[0], HEADER))
    check(len(rows) - 1 == CELLS * EPOCHS,
          "%s: %d rows, want %d" % (path, len(rows) - 1, CELLS * EPOCHS))
    by = {}
    for m in res["modes"]:
        for r in m["repeats"]:
            for c in r["folds"]:
                for e in c["epochs"]:
                    by[(m["mode"], r["repeat"], c["fold"], e["epoch"])] = e
    for row in rows[1:]:
        d = dict(zip(HEADER, row))
        key = (d["mode"], int(d["repeat"]), int(d["fold"]), int(d["epoch"]))
        e = by.get(key)
        check(e is not None, "%s: a row for %s, which the JSON lacks" % (path, key))
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            check(float(d[k]) == e[k], "%s %s: %s %s, the JSON says %r" % (path, key, k, d[k], e[k]))
        check(d["fingerprint"] == e["fingerprint"], "%s %s: fingerprint" % (path, key))
        check(d["set"] == res["set"], "%s %s: set %s, the JSON's is %s" % (path, key, d["set"],
                                                                        res["set"]))
        float(d["seconds"])
        if key[1] == 0:
            check(d["divergence"] == "" and d["divergence_max"] == "",
                  "%s %s: repeat 1 has a divergence" % (path, key))
        else:
            check(float(d["divergence"]) == e["divergence"]["rms"], "%s %s: divergence" % (path, key))
            check(float(d["divergence_max"]) == e["divergence"]["max_abs"],
                  "%s %s: divergence_max" % (path, key))


def check_divergence(res):
    for m in res["modes"]:
        for r in m["repeats"]:
            for c in r["folds"]:
                for e in c["epochs"]:
                    d = e.get("divergence")
                    if r["repeat"] == 0:
                        check(d is None, "repeat 1 has a divergence")
                        continue
                    check(d is not None, "%s repeat %d fold %d epoch %d: no divergence"
                          % (m["mode"], r["repeat"], c["fold"], e["epoch"]))
                    check(d["rms"] >= 0 and d["max_abs"] >= 0, "negative divergence")
                    if m["mode"] == "deterministic":
                        check(d["rms"] == 0 and d["max_abs"] == 0,
                              "deterministic divergence %r is not exactly 0" % d)
        s = m["divergence"]
        check(s["cells"] == (REPEATS - 1) * FOLDS and s["missing"] == 0,
              "%s: divergence summary over %d cells, %d missing" % (m["mode"], s["cells"], s["missing"]))
        check(len(s["epochs"]) == EPOCHS, "%s: divergence summary epochs" % m["mode"])


def check_page(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    check(text.startswith("<!DOCTYPE html>"), path + ": not an HTML page")
    low = text.lower()
    for bad in ("<script", "src=", "<link", "@import", "url(", "https:"):
        check(bad not in low, "%s: not self-contained: it holds %r" % (path, bad))
    check(low.count("http:") == low.count('xmlns="http://www.w3.org/2000/svg"'),
          path + ": an http: reference that is not the SVG namespace")
    check("exactly 0 at every epoch" in text, path + ": the deterministic divergence not said in words")
    check_figures(text, path)
    return text


def check_merge(detrun, src):
    """Two shards run one after the other, then merged: the page is written,
    the weights files removed, and cells whose repeat 1 ran later in the
    other shard are counted as missing and the curve said to be partial."""
    out = tempfile.mkdtemp(prefix="detrun-report-shards-")
    script = os.path.join(src, "experiments", "synthetic.lua")
    for k in (0, 1):
        p = subprocess.run([detrun, "-q", "-o", out, "--repeats", "2", "--epochs", "2", "--shard",
                            "%d/2" % k, script], capture_output=True, text=True)
        check(p.returncode == 0, "shard %d: %s" % (k, p.stderr))
    p = subprocess.run([detrun, "merge", out], capture_output=True, text=True)
    check(p.returncode == 0 and "report: %s/synthetic.html" % out in p.stdout,
          "merge: %d %s%s" % (p.returncode, p.stdout, p.stderr))
    with open(os.path.join(out, "synthetic.json")) as f:
        res = json.load(f)
    missing = sum(m["divergence"]["missing"] for m in res["modes"])
    measured = sum(m["divergence"]["cells"] for m in res["modes"])
    check(missing > 0 and measured > 0 and missing + measured == MODES * FOLDS,
          "merged divergence: %d measured, %d missing" % (measured, missing))
    with open(os.path.join(out, "synthetic.html"), encoding="utf-8") as f:
        check("partial:" in f.read(), "the merged page does not say the curve is partial")
    left = [n for n in os.listdir(os.path.join(out, "shards")) if "weights" in n]
    check(not left, "merge left weights files: %s" % left[:3])
    shutil.rmtree(out, ignore_errors=True)


def main():
    detrun, src = sys.argv[1], sys.argv[2]
    out, stdout = run_experiment(detrun, src)
    base = os.path.join(out, "synthetic")
    check(stdout.rstrip().endswith("report: %s.html" % base),
          "the run does not end by naming its page:\n" + stdout)
    with open(base + ".json") as f:
        res = json.load(f)
    check(len(res["modes"]) == MODES, "modes")
    check("machine" in res and res["wall_seconds"] > 0, "the JSON lacks machine or wall_seconds")
    check_divergence(res)
    check_csv(base + ".epochs.csv", res)
    page = check_page(base + ".html")
    for name in os.listdir(os.path.join(out, "synthetic.cells")):
        check("weights" not in name, "a weights file left behind: " + name)

    again = os.path.join(out, "again.html")
    p = subprocess.run([detrun, "report", base + ".json", "-o", again], capture_output=True, text=True)
    check(p.returncode == 0 and again in p.stdout, "detrun report: %d %s" % (p.returncode, p.stderr))
    with open(again, encoding="utf-8") as f:
        check(f.read() == page, "detrun report's page differs from the run's")

    p = subprocess.run([detrun, "report", os.path.join(out, "none.json")], capture_output=True, text=True)
    check(p.returncode == 1 and "none.json: cannot open" in p.stderr,
          "a missing results file: %d %s" % (p.returncode, p.stderr))
    p = subprocess.run([detrun, "report"], capture_output=True, text=True)
    check(p.returncode == 2 and "no RESULTS.json" in p.stderr, "no arguments: %d" % p.returncode)
    p = subprocess.run([detrun, "report", base + ".csv"], capture_output=True, text=True)
    check(p.returncode == 1 and "synthetic.csv: not a JSON results object" in p.stderr,
          "a CSV given as results: %d %s" % (p.returncode, p.stderr))

    check_merge(detrun, src)
    out2, _ = run_experiment(detrun, src, ["--no-report"])
    # .detrun.lock: the results folder's lock; current and sets: the results
    # set and its links (docs/regression.md); no report.
    left = sorted(n for n in os.listdir(out2) if n != ".detrun.lock")
    check(left == ["current", "sets", "synthetic.cells", "synthetic.csv", "synthetic.json"],
          "--no-report left %s" % left)
    left = sorted(os.listdir(os.path.join(out2, "current")))
    check(left == ["synthetic.csv", "synthetic.json"], "--no-report's set holds %s" % left)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out2, ignore_errors=True)
    print("ok: %d cells, %d epoch rows, page %d bytes" % (CELLS, CELLS * EPOCHS, len(page)))


if __name__ == "__main__":
    main()
