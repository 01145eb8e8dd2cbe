#!/usr/bin/env python
"""How closely each notebook keeps the lesson rhythm (issue 12, item 5): every exported definition should be followed,
within about 40 exported lines, by a small example with output and a test.

    .venv/bin/python tools/lesson_rhythm.py            # one row per notebook, the worst stretch first
    .venv/bin/python tools/lesson_rhythm.py --limit 40 # also list each stretch over the limit (its first definition)

A stretch is the run of exported code lines (blank and comment-only lines not counted) between two example cells; an
example cell is a code cell that is neither exported nor hidden.
"""
import argparse, json, re
from pathlib import Path

root = Path(__file__).resolve().parent.parent


def stretches(path: Path):
    "(exported code lines, first definition) of each stretch of `path`."
    out, lines, first = [], 0, None
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code": continue
        src = "".join(cell["source"])
        head = src.lstrip().splitlines()[0] if src.strip() else ""
        if head.startswith("#| export"):
            code = [l for l in src.splitlines() if l.strip() and not l.strip().startswith("#")]
            lines += len(code)
            if first is None:
                m = re.search(r"^(?:def|class)\s+(\w+)|^([A-Z_]+)\s*=", src, re.M)
                first = next((g for g in (m.groups() if m else ()) if g), None)
        elif src.strip() and not head.startswith(("#| hide", "#| default_exp")):
            if lines: out.append((lines, first))
            lines, first = 0, None
    if lines: out.append((lines, first))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="list the stretches longer than this many lines")
    args = ap.parse_args(argv)
    rows = sorted(((max((n for n, _ in s), default=0), p.name, s) for p in sorted((root/"nbs").glob("[0-9]*.ipynb"))
                   for s in [stretches(p)]), reverse=True)
    print("| notebook | longest stretch | stretches over 40 |\n|---|---:|---:|")
    for worst, name, s in rows: print(f"| {name} | {worst} | {sum(n > 40 for n, _ in s)} |")
    if args.limit:
        for _, name, s in rows:
            for n, first in s:
                if n > args.limit: print(f"{name}: {n} lines from {first}")


if __name__ == "__main__":
    main()
