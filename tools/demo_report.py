#!/usr/bin/env python
"""Write the README's demo report from finished demo runs: one summary per run (seed) into nbs/demo/seedN.json, the
rendered block into nbs/index.ipynb (between <!-- demo:begin --> and <!-- demo:end -->), then README.md.

    for s in 0 1 2; do .venv/bin/audiocap demo --seed $s --out runs/demo$s; done
    .venv/bin/python tools/demo_report.py runs/demo0 runs/demo1 runs/demo2   # the first run's table is the one shown

Without runs, it re-renders the block from the stored summaries. A summary carries the paired bootstrap intervals of
its run's table1.json (`intervals`, 12_pipeline); the claims paragraph states them. Runs whose scores stage
predates the intervals give summaries without them, rendered without that part.
"""
import json, shutil, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- demo:begin -->", "<!-- demo:end -->"


def main(argv):
    from audiocap.pipeline import demo_markdown, demo_summary
    store = root/"nbs"/"demo"
    if argv:
        summaries = [demo_summary(r) for r in argv]
        store.mkdir(exist_ok=True)
        for old in store.glob("seed*.json"): old.unlink()
        for i, s in enumerate(summaries): (store/f"seed{s['seed']}.json").write_text(json.dumps(dict(s, order=i), indent=1) + "\n")
        shutil.copy(Path(argv[0])/"plots"/"table1.png", root/"nbs"/"images"/"demo_table1.png")   # the figure of the run shown
    summaries = sorted((json.loads(p.read_text()) for p in store.glob("seed*.json")), key=lambda s: s["order"])
    if not summaries: sys.exit(f"no summaries in {store}: give demo run folders")
    nb_path = root/"nbs"/"index.ipynb"
    nb = json.loads(nb_path.read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "markdown" and BEGIN in "".join(c["source"])]
    if len(cells) != 1: sys.exit(f"{nb_path} needs exactly one markdown cell with {BEGIN} ... {END}")
    src = "".join(cells[0]["source"])
    head, rest = src.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    cells[0]["source"] = (head + BEGIN + "\n" + demo_markdown(summaries) + "\n" + END + tail).splitlines(keepends=True)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    subprocess.run([sys.executable, str(root/"tools"/"make_readme.py")], check=True)
    print(f"wrote {nb_path} and README.md from {len(summaries)} summaries")


if __name__ == "__main__":
    main(sys.argv[1:])
