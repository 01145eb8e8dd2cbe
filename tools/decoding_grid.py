#!/usr/bin/env python
"""Decoding settings of the fusion decoder on finished demo runs, chosen on the validation clips: CIDEr of Ours beside
Triplet-Retrieval's for a grid of beam sizes, length penalties and n-gram blocking, on validation and on test.

    .venv/bin/python tools/decoding_grid.py runs/demo0 runs/demo1 runs/demo2     # about 30 s per run on 2 cores

Validation clips are guided by the run's triplet retrieval (as Ours is at test time); test clips by the guidance the
run stored (predictions/guidance.json). No model is retrained. Choose a setting by the validation columns; the test
columns are there to report, not to choose by. Prints one markdown table per run, and the mean ratio over runs.
"""
import argparse, itertools, json, sys, warnings
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished `audiocap demo` / `reproduce` run folders")
    ap.add_argument("--beams", default="4,8", help="beam sizes (default 4,8)")
    ap.add_argument("--penalties", default="0,0.5,1,1.5,2", help="length penalties (default 0,0.5,1,1.5,2)")
    ap.add_argument("--no-repeat", default="3,2", help="n-gram blocking sizes, 0 = off (default 3,2)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from audiocap.data import load_dataset
    from audiocap.decoder import load_decoder
    from audiocap.features import FeatureStore
    from audiocap.generate import generate
    from audiocap.lm import load_lm
    from audiocap.metrics import evaluate
    from audiocap.pipeline import RunFolder
    from audiocap.retriever import Retriever
    from audiocap.similarity import SimilarityLabels
    grid = list(itertools.product([int(b) for b in args.beams.split(",")], [float(p) for p in args.penalties.split(",")],
                                  [int(n) for n in args.no_repeat.split(",")]))
    ratios = {setting: [] for setting in grid}
    for path in args.runs:
        run = RunFolder(path)
        run.check_trained()
        lm = load_lm(run.lm) if run.has_lm() else None
        decoder = load_decoder(run.decoder, lm=lm)
        store = FeatureStore(run.features)
        dataset = load_dataset(run.data)
        stored = json.loads(run.guidance.read_text())["Ours"]
        cider = lambda preds, refs: evaluate(preds, refs, metrics=["CIDEr"])["CIDEr"]
        table = {}
        for split in ("val", "test"):
            refs = {c.clip_id: list(c.captions) for c in dataset.by_split(split).clips if c.clip_id in store}
            ids = list(refs)
            if split == "val":
                found = Retriever.from_run(run.retrieval, features=store, labels=SimilarityLabels(run.similarity)).retrieve(ids, decoder.cfg.k)
                guidance = [found.guidance(i) for i in range(len(ids))]
            else: guidance = [stored[q] for q in ids]
            triplet = cider({q: g[0] for q, g in zip(ids, guidance)}, refs)
            for beam, penalty, block in grid:
                caps = generate(decoder.model, decoder.lm, store.as_array(ids), None, guidance, cfg=decoder.cfg, features=decoder.features,
                                beam_size=beam, length_penalty=penalty, no_repeat_ngram=block, progress=False)
                ours = cider(dict(zip(ids, caps)), refs)
                table[(beam, penalty, block, split)] = (ours, ours / triplet, float(np.mean([len(c.split()) for c in caps])))
        print(f"\n{path}\n\n| beam | length penalty | no-repeat | val Ours CIDEr | val Ours/Triplet | test Ours CIDEr | test Ours/Triplet | words |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for beam, penalty, block in grid:
            v, t = table[(beam, penalty, block, "val")], table[(beam, penalty, block, "test")]
            ratios[(beam, penalty, block)].append((v[1], t[1]))
            print(f"| {beam} | {penalty} | {block} | {v[0]:.1f} | {v[1]:.2f} | {t[0]:.1f} | {t[1]:.2f} | {t[2]:.1f} |")
    best = max(grid, key=lambda s: np.mean([v for v, _ in ratios[s]]))
    print(f"\nbest on validation (mean Ours/Triplet over {len(args.runs)} runs): beam {best[0]}, length penalty {best[1]}, "
          f"no-repeat {best[2]}: val {np.mean([v for v, _ in ratios[best]]):.2f}, test " + " / ".join(f"{t:.2f}" for _, t in ratios[best]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
