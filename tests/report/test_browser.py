"""Opens the report of a small two-mode experiment in headless Chromium:
no console message, the DOM the browser built holds the expected figures,
and a screenshot is not blank. Exit 77 (skipped) without chromium."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from common import check, check_figures, run_experiment

WIDTH, HEIGHT = 1000, 2400


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browse(browser, page, *what):
    """Runs headless Chromium on a file; returns (stdout, the console lines)."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
           "--v=0", "--window-size=%d,%d" % (WIDTH, HEIGHT), *what, "file://" + page]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=tempfile.mkdtemp(prefix="detrun-chromium-")))
    check(p.returncode == 0, "%s: exit %d\n%s" % (" ".join(cmd), p.returncode, p.stderr[-3000:]))
    console = [l for l in p.stderr.splitlines() if ":CONSOLE" in l]
    return p.stdout, console


def png_pixels(path):
    """(width, height, channels, unfiltered rows) of an 8-bit RGB(A) PNG."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", path + ": not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    check(depth == 8 and ctype in (2, 6) and interlace == 0,
          "%s: not 8-bit RGB(A) without interlace" % path)
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride, rows, prev = w * ch, [], bytearray(w * ch)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            b = prev[x]
            if ft == 1:
                line[x] = (line[x] + a) & 255
            elif ft == 2:
                line[x] = (line[x] + b) & 255
            elif ft == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif ft == 4:
                c = prev[x - ch] if x >= ch else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows


def check_not_blank(path):
    w, h, ch, rows = png_pixels(path)
    colours, dark = set(), 0
    for y in range(0, h, 4):
        row = rows[y]
        for x in range(0, w, 2):
            px = row[x * ch:x * ch + 3]
            colours.add(px)
            if sum(px) < 3 * 128:
                dark += 1
    check(len(colours) >= 8, "%s: %d colours: blank" % (path, len(colours)))
    check(dark >= 200, "%s: %d dark samples: no text or lines" % (path, dark))
    return len(colours), dark


def main():
    browser = chromium()
    if browser is None:
        print("skipped: no chromium (scripts/setup installs it)")
        sys.exit(77)
    detrun, src = sys.argv[1], sys.argv[2]
    out, _ = run_experiment(detrun, src)
    page = os.path.join(out, "synthetic.html")

    # The console check can fail: a page that logs is caught.
    bad = os.path.join(out, "bad.html")
    with open(bad, "w") as f:
        f.write('<!DOCTYPE html><p>x</p><script>console.error("marker")</script>')
    _, console = browse(browser, bad, "--dump-dom")
    check(any("marker" in l for l in console), "a console message went unseen: %s" % console)

    dom, console = browse(browser, page, "--dump-dom")
    check(not console, "console messages:\n" + "\n".join(console))
    check("<svg" in dom and "Fingerprint agreement" in dom, "the DOM is not the report's")
    check_figures(dom, "the DOM")

    shot = os.path.join(out, "shot.png")
    _, console = browse(browser, page, "--screenshot=" + shot)
    check(not console, "console messages:\n" + "\n".join(console))
    colours, dark = check_not_blank(shot)
    print("ok: DOM figures as expected; screenshot %d colours, %d dark samples" % (colours, dark))
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
