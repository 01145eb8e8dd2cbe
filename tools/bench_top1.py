#!/usr/bin/env python
"""Top1-BERTScore on the AudioCaps test set (Sec. 4, scope ii), with `audiocap.cross.cross_similarity`.

    .venv/bin/python tools/bench_top1.py                     # labels from /tmp/audiocaps-sim (computed there if missing, ~12 min)
    .venv/bin/python tools/bench_top1.py --labels DIR --out DIR --preds top1.csv

Every test caption (975 clips x 5) is scored against every training caption (49,838) with the encoder, layer and idf
setting of the full-set training labels, normalised with the labels' min and max. The script prints the time and the
rate in caption pairs per second, writes each test clip's Top1-BERTScore caption (the training caption with the
highest F1 against any one of the clip's five references) to a CSV (clip_id,caption), and, when
`audiocap.metrics.evaluate` can be imported, scores those predictions against the five references: on all clips, and
without the clips that have a reference caption appearing word for word in train.csv (239 of 975).
"""
from __future__ import annotations
import argparse, json, os, resource, sys, time, warnings
from pathlib import Path

import pandas as pd
import torch

PAPER = {"B-1": 74.0, "B-2": 59.9, "B-3": 48.2, "B-4": 38.1, "METEOR": 29.1, "CIDEr": 95.2, "ROUGE-L": 59.2, "SPICE": 18.6}


def metric_row(scores: dict) -> dict:
    "The paper's eight columns from an `evaluate` result, matching key names loosely (BLEU_1 / bleu1 / B-1 ...)."
    norm = lambda s: "".join(ch for ch in str(s).lower() if ch.isalnum())
    alias = {"B-1": ("bleu1", "b1"), "B-2": ("bleu2", "b2"), "B-3": ("bleu3", "b3"), "B-4": ("bleu4", "b4"),
             "METEOR": ("meteor",), "CIDEr": ("cider", "ciderd"), "ROUGE-L": ("rougel",), "SPICE": ("spice",)}
    got = {norm(k): v for k, v in scores.items()}
    return {col: next((float(got[a]) for a in names if a in got), float("nan")) for col, names in alias.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="AudioCaps folder with train.csv and test.csv (default: the reference data's audiocaps/v1)")
    ap.add_argument("--labels", type=Path, default=Path("/tmp/audiocaps-sim"), help="full-set training labels; computed there if missing (default /tmp/audiocaps-sim)")
    ap.add_argument("--out", type=Path, default=None, help="folder for the cross similarity (default: kept in memory)")
    ap.add_argument("--preds", type=Path, default=Path("/tmp/top1_bertscore_test.csv"), help="CSV of the predictions (default /tmp/top1_bertscore_test.csv)")
    ap.add_argument("--split", default="test", help="the split scored: test (default) or val")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = ap.parse_args(argv)
    if args.threads: torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    from audiocap.config import AudiocapError
    from audiocap.testing import reference_data_dir
    from audiocap.cross import cross_similarity
    from audiocap.similarity import SimilarityLabels, compute_similarity

    data = args.data or (reference_data_dir() or Path("shared/data")) / "audiocaps/v1"
    train_csv, query_csv = data/"train.csv", data/f"{args.split}.csv"
    for p in (train_csv, query_csv):
        if not p.is_file(): sys.exit(f"{p} not found; pass --data FOLDER_WITH_AUDIOCAPS_CSVS")
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f} (shared machine: timings are noisy)")

    # 1. the training labels (Sec. 3.2): reused when present, else computed
    try:
        labels = SimilarityLabels(args.labels)
        print(f"labels: {args.labels}: {labels}")
    except AudiocapError:
        print(f"labels: none in {args.labels}; computing them for {train_csv} (about 12 minutes on 2 cores)")
        labels = compute_similarity(train_csv, args.labels)
    train = pd.read_csv(train_csv, dtype=str, keep_default_na=False)
    if len(labels) != len(train) or set(labels.captions) != set(train["caption"].str.strip()):
        sys.exit(f"{args.labels} holds labels of other captions than {train_csv}; pass --labels of that file's labels")

    # 2. every query caption against every training caption
    t0 = time.perf_counter()
    cross = cross_similarity(query_csv, labels, args.out, split=args.split, progress=True)
    wall = time.perf_counter() - t0
    m, sec = cross.meta, cross.meta["seconds"]
    print(f"\n{m['n_captions']:,} {args.split} captions of {m['n_clips']:,} clips x {m['n_train']:,} training captions = "
          f"{m['n_pairs']:,} caption pairs ({m['n_unique_pairs']:,} of unique token sequences)")
    print(f"time: {wall:.1f} s in all ({', '.join(f'{k} {v:.1f} s' for k, v in sec.items())}); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")
    if "pairs_s" in sec:
        print(f"rate: {m['n_pairs'] / wall:,.0f} caption pairs/s end to end; {m['n_unique_pairs'] / sec['pairs_s']:,.0f} unique pairs/s in the pair units")
    else: print("rate: nothing was computed (a finished --out folder was reused)")

    # 3. Top1-BERTScore predictions
    preds = cross.top1_captions()
    refs = {c: [cross.captions[i] for i in cross.index(c)] for c in cross.clips}
    args.preds.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"clip_id": list(preds), "caption": list(preds.values())}).to_csv(args.preds, index=False)
    in_train = set(train["caption"].str.strip())
    copies = {c for c, r in refs.items() if any(t.strip() in in_train for t in r)}
    same = sum(preds[c] in refs[c] for c in preds)
    top1 = pd.Series({c: cross.top1(c)[1] for c in cross.clips})
    print(f"predictions: {args.preds} ({len(preds):,} clips); {same} of them equal one of the clip's references word for word; "
          f"normalised top-1 score median {top1.median():.3f}")
    print(f"clips with a reference caption appearing word for word in {train_csv.name}: {len(copies)} of {len(refs)}")
    for c in list(preds)[:3]: print(f"  {c}: {preds[c]!r}  <- refs {refs[c][:2]}")

    # 4. metrics, when audiocap.metrics is there
    try:
        from audiocap.metrics import evaluate
    except ImportError as e:
        print(f"\nmetrics: audiocap.metrics.evaluate is not importable ({e}); score {args.preds} later")
        return
    rows = {"paper: Top1-BERTScore (Table 1)": PAPER}
    for name, keep in ((f"ours: all {len(refs)} clips", list(refs)), (f"ours: without the {len(copies)} exact-copy clips", [c for c in refs if c not in copies])):
        t0 = time.perf_counter()
        scores = evaluate({c: preds[c] for c in keep}, {c: refs[c] for c in keep})
        rows[name] = metric_row(scores)
        print(f"evaluated {name} in {time.perf_counter() - t0:.0f} s: {json.dumps({k: round(float(v), 2) for k, v in scores.items()})}")
    table = pd.DataFrame(rows).T
    print("\n" + table.round(1).to_string())
    out_json = args.preds.with_suffix(".metrics.json")
    out_json.write_text(json.dumps({k: {c: round(v, 3) for c, v in r.items()} for k, r in rows.items()}, indent=1))
    print(f"written: {out_json}")


if __name__ == "__main__":
    main()
