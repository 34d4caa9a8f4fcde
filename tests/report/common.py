"""What the report tests share: running a small two-mode experiment and
counting the figures' elements of a page."""
import os
import re
import subprocess
import sys
import tempfile

MODES, REPEATS, FOLDS, EPOCHS = 2, 3, 3, 3
CELLS = MODES * REPEATS * FOLDS


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run_experiment(detrun, src, extra=()):
    """Runs experiments/synthetic.lua (two modes) in a fresh folder; returns it."""
    out = tempfile.mkdtemp(prefix="detrun-report-")
    cmd = [detrun, "-q", "-t", "2", "-o", out, "--repeats", str(REPEATS), "--epochs",
           str(EPOCHS), *extra, os.path.join(src, "experiments", "synthetic.lua")]
    p = subprocess.run(cmd, capture_output=True, text=True)
    check(p.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return out, p.stdout


def count(text, tag, cls, extra=""):
    """The number of <tag ... class="cls" ...> elements (with extra in them)."""
    pat = r'<%s\b[^>]*\bclass="%s"[^>]*>' % (tag, cls)
    return sum(1 for m in re.finditer(pat, text) if extra in m.group(0))


def check_figures(text, where):
    """One point and one grid cell per (mode, repeat, fold), one curve per
    mode in each learning-curve panel, two divergence curves per mode."""
    check(count(text, "circle", "point") == CELLS,
          "%s: %d accuracy points, want %d" % (where, count(text, "circle", "point"), CELLS))
    check(count(text, "rect", "cell") == CELLS,
          "%s: %d grid cells, want %d" % (where, count(text, "rect", "cell"), CELLS))
    for metric in ("loss", "val_loss", "accuracy", "val_accuracy"):
        n = count(text, "path", "curve", 'data-metric="%s"' % metric)
        check(n == MODES, "%s: %d %s curves, want one per mode (%d)" % (where, n, metric, MODES))
    n = count(text, "path", "div-curve")
    check(n == 2 * MODES, "%s: %d divergence curves, want %d" % (where, n, 2 * MODES))
    for mode in ("deterministic", "fast"):
        n = count(text, "circle", "point", 'data-mode="%s"' % mode)
        check(n == REPEATS * FOLDS, "%s: %d %s points, want %d" % (where, n, mode, REPEATS * FOLDS))
