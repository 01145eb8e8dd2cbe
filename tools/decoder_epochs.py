#!/usr/bin/env python
"""How much the demo's result depends on which epoch of the fusion decoder is kept: the decoder of a finished demo run
trained again with a copy of every epoch's weights, and Ours (beam search, the run's retrieval guidance) scored in
CIDEr on the validation and the test clips every few epochs, beside Triplet-Retrieval.

    .venv/bin/python tools/decoder_epochs.py audiocap_demo            # about 5 minutes on 2 cores (100 epochs)

The test captions are used here only to measure, never to choose. Also scores the weights averaged over the last
half, quarter and tenth of the epochs. Writes RUN/variants/epochs/epochs.json and prints one line per scored epoch.
"""
from __future__ import annotations
import argparse, json, shutil, sys, warnings
from pathlib import Path

import torch
from fastai.callback.core import Callback

from audiocap.decoder import Guidance, train_decoder
from audiocap.generate import generate
from audiocap.metrics import evaluate
from run_inputs import load_run


class EpochWeights(Callback):
    "A CPU copy of the decoder's trainable weights after every epoch."
    def before_fit(self): self.states = []
    def after_epoch(self):
        model = getattr(self.learn.model, "module", self.learn.model)
        self.states.append({k: v.detach().to("cpu", copy=True) for k, v in model.trainable_state().items()})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished demo/reproduce run folder")
    ap.add_argument("--every", type=int, default=5, help="score every this many epochs (default 5)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    inputs = load_run(args.run)
    cfg, settings, store, lm, refs = inputs.cfg, inputs.settings, inputs.store, inputs.lm, inputs.refs
    guidance = {"val": inputs.val_guidance, "test": inputs.test_guidance["Ours"]}
    out = inputs.folder.root/"variants"/"epochs"
    if out.exists(): shutil.rmtree(out)
    record = EpochWeights()
    dec = train_decoder(store, inputs.labels, out, lm=lm, cfg=cfg.decoder, val_guidance=Guidance(guidance["val"], "retrieval"),
                        val_captions=refs["val"], max_epochs=settings["decoder_epochs"], seed=cfg.seed,
                        lr_scale=settings["decoder_lr_scale"], progress=False, cbs=[record])
    triplet = json.loads(inputs.folder.table("json").read_text())["rows"]["Triplet-Retrieval"]["CIDEr"]
    kept = dec.info["training"]["best_epoch"]

    def score(state) -> dict:
        dec.model.load_state_dict(state, strict=False)
        res = {}
        for split, g in guidance.items():
            ids = list(g)
            caps = generate(dec.model, lm, store.as_array(ids), None, [g[q] for q in ids], cfg=dec.cfg, features=dec.features, progress=False)
            res[split] = evaluate(dict(zip(ids, caps)), refs[split], metrics=["CIDEr"])["CIDEr"]
        return res

    def mean_state(epochs) -> dict:
        first = record.states[epochs[0]]
        return {k: torch.stack([record.states[e][k].float() for e in epochs]).mean(0).to(first[k].dtype) for k in first}

    n, rows = len(record.states), {}
    print(f"Triplet-Retrieval test CIDEr {triplet:.1f}; kept epoch (lowest validation loss) {kept}")
    for e in range(n):
        if e % args.every == args.every - 1 or e == kept:
            rows[str(e)] = score(record.states[e])
            print(f"epoch {e:3d}{' (kept)' if e == kept else ''}: validation {rows[str(e)]['val']:.1f}, test {rows[str(e)]['test']:.1f} "
                  f"({rows[str(e)]['test'] / triplet:.2f}x Triplet)", flush=True)
    for lo in sorted({n // 2, 3 * n // 4, n - max(1, n // 10)}):            # the last half, quarter, tenth (at least one epoch)
        name = f"mean of epochs {lo}-{n - 1}"
        rows[name] = score(mean_state(list(range(lo, n))))
        print(f"{name}: validation {rows[name]['val']:.1f}, test {rows[name]['test']:.1f} ({rows[name]['test'] / triplet:.2f}x Triplet)")
    (out/"epochs.json").write_text(json.dumps(dict(triplet_test=triplet, kept_epoch=kept, cider=rows), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
