#!/usr/bin/env python
"""Guidance-caption retrieval (nbs/08_retrieval, 08b_retrieval_training, 08c_retriever) on the synthetic demo dataset:
train, then Table 1 scope (ii).

    .venv/bin/audiocap demo --out /tmp/demo_full                     # once: data/, features/, similarity/
    .venv/bin/python tools/run_retrieval_synth.py --demo /tmp/demo_full --out /tmp/retrieval_synth --minutes 7

Steps: the cross labels of the val and test captions against the training labels (`cross_similarity`, cached in
OUT/cross_val and OUT/cross_test); `train_retrieval` with the paper's recipe (RetrievalConfig defaults: AdaBound
1e-4 -> 0.1, batches of 128 anchors, up to 200 epochs, the epoch of best validation precision@5 kept) within
--minutes; then on the test clips the rows 1NN-VGGish and Triplet-Retrieval (and Top1-BERTScore as reference) with
the COCO metrics x100 and precision@1/5 (%), written to OUT/results.json and OUT/results.md, and the PCA plots of the
test clips (raw VGGish and learned embedding) coloured by event type in OUT/embedding_test.png.
The demo's VGGish weights are random (it runs offline), so the features are not the paper's.
"""
from __future__ import annotations
import argparse, json, sys, time, warnings
from pathlib import Path

import numpy as np
import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", default="/tmp/demo_full", help="folder written by `audiocap demo` (default /tmp/demo_full)")
    ap.add_argument("--out", default="/tmp/retrieval_synth", help="output folder (default /tmp/retrieval_synth)")
    ap.add_argument("--minutes", type=float, default=7.0, help="time budget of the training (default 7)")
    ap.add_argument("--epochs", type=int, default=None, help="at most this many epochs (default: the paper's 200)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the shared 2-core machine is faster so)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from audiocap.config import RetrievalConfig
    from audiocap.data import load_dataset
    from audiocap.features import FeatureStore
    from functools import partial
    from audiocap.metrics import Meteor, SpiceUnavailableWarning, evaluate
    warnings.filterwarnings("ignore", category=SpiceUnavailableWarning)        # the notice that SPICE's jars are absent, once per call
    from audiocap.cross import CrossLabels, cross_similarity
    from audiocap.similarity import SimilarityLabels
    from audiocap.retrieval_training import train_retrieval
    from audiocap.retriever import Retriever, plot_embedding, retrieval_rows
    from audiocap.synth import synth_event_types

    demo, out = Path(args.demo), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    labels, store, ds = SimilarityLabels(demo/"similarity"), FeatureStore(demo/"features"), load_dataset(demo/"data")
    print(labels, store, sep="\n")
    cross = {}
    for split in ("val", "test"):
        d = out/f"cross_{split}"
        cross[split] = CrossLabels(d) if (d/"cross.json").is_file() else cross_similarity(demo/"data"/f"{split}.csv", labels, d, split=split, progress=False)
        print(split, cross[split])
    t_cross = time.perf_counter() - t0

    cfg = RetrievalConfig()
    model = train_retrieval(store, labels, out/"run", val_labels=cross["val"], cfg=cfg, max_epochs=args.epochs,
                            time_budget=args.minutes * 60, seed=args.seed, progress=False, overwrite=True)
    info = model.info
    print(model)
    print(f"epochs {info['epochs_run']} of {info['epochs_planned']} ({info['stopped']}), fit {info['seconds']['fit']:.0f} s, "
          f"best validation precision@5 {info['best_value']:.4f} at epoch {info['best_epoch']}")

    emb = Retriever.from_run(out/"run", features=store, labels=labels)
    raw = Retriever.vggish(features=store, labels=labels)
    results, meteor = {}, Meteor()                                              # one METEOR process for all calls
    scorer = partial(evaluate, meteor=meteor)
    for split in ("val", "test"):
        clips = ds.by_split(split).clips
        ids, refs = [c.clip_id for c in clips], {c.clip_id: list(c.captions) for c in clips}
        rows = retrieval_rows({"1NN-VGGish": raw, "Triplet-Retrieval": emb}, ids, refs, features=store, cross=cross[split], labels=labels,
                              scorer=scorer)
        rows["Top1-BERTScore"] = {k: float(v) for k, v in scorer(cross[split].top1_captions(), refs).items()}
        results[split] = rows
    meteor.close()
    names = list(results["test"]["1NN-VGGish"])
    lines = ["| split | method | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for split, rows in results.items():
        for m, r in rows.items(): lines.append(f"| {split} | {m} | " + " | ".join("" if r.get(n) is None else f"{r[n]:.1f}" if n != "n_scored" else str(r[n]) for n in names) + " |")
    table = "\n".join(lines)
    print(table)

    import matplotlib.pyplot as plt
    test_ids = [c.clip_id for c in ds.by_split("test").clips]
    event_types = synth_event_types(demo/"data", "test")
    groups = [event_types[c] for c in test_ids]
    x = store.as_array(test_ids)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    plot_embedding(x.reshape(len(x), -1), groups, ax=axes[0], title="test clips: raw VGGish (1NN-VGGish space)")
    plot_embedding(emb.vectors(x), groups, ax=axes[1], title=f"test clips: learned embedding (epoch {info['best_epoch']})")
    fig.savefig(out/"embedding_test.png", dpi=100)

    summary = dict(demo=str(demo), vggish_weights=store.meta.get("weights_sha256"), note="random VGGish weights (demo default)",
                   epochs_run=info["epochs_run"], epochs_planned=info["epochs_planned"], stopped=info["stopped"],
                   fit_seconds=info["seconds"]["fit"], cross_seconds=round(t_cross, 1), best_epoch=info["best_epoch"],
                   best_val_precision5=info["best_value"], threads=args.threads, results=results,
                   total_seconds=round(time.perf_counter() - t0, 1))
    (out/"results.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out/"results.md").write_text(table + "\n")
    print(f"wrote {out/'results.json'}, {out/'results.md'}, {out/'embedding_test.png'}, {out/'run'}; {summary['total_seconds']} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
