"""Reads a results folder's set over and over, the documented way
(docs/regression.md, "Results files"): resolve OUT/current once, read every
file of the set from that folder, and check that all carry the set's id.
Stops when the file STOP exists; prints "reads N sets M mixed K".
usage: read_sets.py OUT NAME STOP"""
import csv
import io
import json
import os
import re
import sys

out, name, stop = sys.argv[1], sys.argv[2], sys.argv[3]


def ids_of(folder):
    """The set id each file of the set carries."""
    with open(os.path.join(folder, name + ".json"), encoding="utf-8") as f:
        js = json.load(f)["set"]
    found = {"json": js}
    for kind in ("csv", "epochs.csv"):
        with open(os.path.join(folder, name + "." + kind), encoding="utf-8") as f:
            rows = list(csv.DictReader(io.StringIO(f.read())))
        found[kind] = sorted({r["set"] for r in rows})
    with open(os.path.join(folder, name + ".html"), encoding="utf-8") as f:
        m = re.search(r'<meta name="detrun-set" content="([^"]*)">', f.read())
        found["html"] = m.group(1) if m else None
    return found


reads, sets, mixed = 0, set(), 0
while True:
    last = os.path.exists(stop)   # one more whole pass after the writers ended
    try:
        target = os.readlink(os.path.join(out, "current"))
    except FileNotFoundError:
        target = None
    if target is not None:
        folder = os.path.join(out, target)
        set_id = os.path.basename(target)
        try:
            found = ids_of(folder)
        except FileNotFoundError:
            found = None   # removed two switches later: resolve current again
        if found is not None:
            reads += 1
            sets.add(set_id)
            if not (found["json"] == set_id and found["csv"] == [set_id]
                    and found["epochs.csv"] == [set_id] and found["html"] == set_id):
                mixed += 1
                print("MIXED in %s: %s" % (target, found), file=sys.stderr)
    if last:
        break
print("reads %d sets %d mixed %d" % (reads, len(sets), mixed))
sys.exit(1 if mixed or reads == 0 else 0)
