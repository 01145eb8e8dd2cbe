#!/usr/bin/env python
"""Train a variant of the fusion decoder on a finished demo run and score it on the test clips, beside the run's
retrieval rows: how a decoder setting (guidance encoding, epochs, learning rate, n-gram blocking) moves Table 1.

    .venv/bin/python tools/run_decoder_synth.py audiocap_demo separate --set guidance_encoding=separate
    .venv/bin/python tools/run_decoder_synth.py audiocap_demo joint --set guidance_encoding=joint

RUN is what `audiocap demo --out RUN` (or `audiocap reproduce`) wrote; its data, features, similarity labels, LM,
retrieval guidance (predictions/guidance.json) and config are used as they are, and the variant's decoder is trained
into RUN/variants/NAME with the run's seed. `--set KEY=VALUE` overrides a `DecoderConfig` field (JSON values);
--epochs and --lr-scale default to the run's settings. Prints the training time, the rows Ours, Ours (GT) and the two
diagnostics (another clip's guidance, no audio) with the run's 1NN-VGGish, Triplet-Retrieval and Top1-BERTScore,
the number of looping captions (a word 3-gram three times) and the paper's orderings, and the scores of Ours on the
validation clips (retrieval guidance: the figure to choose a variant by); writes RUN/variants/NAME/rows.json.
"""
from __future__ import annotations
import argparse, dataclasses, json, shutil, sys, time, warnings
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished demo/reproduce run folder")
    ap.add_argument("name", help="name of the variant (folder under RUN/variants)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="DecoderConfig override (repeatable)")
    ap.add_argument("--epochs", type=int, default=None, help="decoder epochs (default: the run's)")
    ap.add_argument("--lr-scale", type=float, default=None, help="learning-rate scale (default: the run's)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch
    if args.threads: torch.set_num_threads(args.threads)
    from audiocap.cross import CrossLabels
    from audiocap.decoder import Guidance, train_decoder
    from audiocap.generate import generate
    from audiocap.metrics import CORE_METRICS as METRICS, Meteor, evaluate
    from audiocap.pipeline import DIAGNOSTICS, demo_checks, loops, orderings, other_clips_guidance
    from run_inputs import load_run

    inputs = load_run(args.run)
    folder = inputs.folder
    cfg, settings, store, labels, lm, refs = inputs.cfg, inputs.settings, inputs.store, inputs.labels, inputs.lm, inputs.refs
    def value(v: str):
        try: return json.loads(v)                                      # numbers, true/false, lists
        except json.JSONDecodeError: return v                          # plain words: strings
    over = {k: value(v) for k, v in (s.split("=", 1) for s in args.set)}
    dcfg = dataclasses.replace(cfg.decoder, **over)
    epochs = args.epochs or settings.get("decoder_epochs") or dcfg.epochs
    lr_scale = args.lr_scale or settings.get("decoder_lr_scale", 1.0)
    out = folder.root/"variants"/args.name
    if out.exists(): shutil.rmtree(out)
    val_ids = list(refs["val"])                                        # validation guided as the pipeline does (validation_guidance)
    val_guidance = (Guidance(inputs.val_guidance, "retrieval") if dcfg.validation_guidance == "retrieval" else CrossLabels(folder.cross("val")))
    t0 = time.perf_counter()
    dec = train_decoder(store, labels, out, lm=lm, cfg=dcfg, val_guidance=val_guidance, val_captions=refs["val"],
                        max_epochs=epochs, seed=cfg.seed, lr_scale=lr_scale, progress=False)
    t_train = time.perf_counter() - t0
    guidance = inputs.test_guidance
    ids = list(guidance["Ours"])
    audio = store.as_array(ids)
    other = other_clips_guidance(guidance["Ours"], ids, cfg.seed)
    t0 = time.perf_counter()
    preds = {}
    for name, g, a in (("Ours", guidance["Ours"], audio), ("Ours (GT)", guidance["Ours (GT)"], audio),
                       (DIAGNOSTICS[0], other, audio), (DIAGNOSTICS[1], guidance["Ours"], np.zeros_like(audio))):
        caps = generate(dec.model, lm, a, None, [g[q] for q in ids], cfg=dcfg, features=dec.features, progress=False)
        preds[name] = dict(zip(ids, caps))
    t_caption = time.perf_counter() - t0
    table = json.loads(folder.table("json").read_text())["rows"]
    val_caps = generate(dec.model, lm, store.as_array(val_ids), None, [inputs.val_guidance[q] for q in val_ids], cfg=dcfg,
                        features=dec.features, progress=False)
    with Meteor() as meteor:
        rows = {k: evaluate(p, refs["test"], meteor=meteor) for k, p in preds.items()}
        val_row = evaluate(dict(zip(val_ids, val_caps)), refs["val"], meteor=meteor)
    print("validation, Ours: " + ", ".join(f"{m} {val_row[m]:.1f}" for m in METRICS))
    rows |= {k: table[k] for k in ("1NN-VGGish", "Triplet-Retrieval", "Top1-BERTScore")}
    h = dec.history
    print(f"{args.name}: {json.dumps(over)}, {epochs} epochs, lr scale {lr_scale}: training {t_train:.0f} s "
          f"({dec.info['training']['seconds_per_epoch']} s/epoch), best epoch {dec.info['training']['best_epoch']}, "
          f"valid loss {h.valid_loss.min():.4f}; captions of {len(preds)} x {len(ids)} clips {t_caption:.0f} s")
    print("| method | " + " | ".join(METRICS) + " | looping |\n|---|" + "---:|" * (len(METRICS) + 1))
    for k, r in rows.items():
        print(f"| {k} | " + " | ".join(f"{r[m]:.1f}" for m in METRICS) + f" | {sum(map(loops, preds[k].values())) if k in preds else '-'} |")
    looping = sum(loops(c) for k in ("Ours", "Ours (GT)") for c in preds[k].values())
    print(", ".join(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}" for k, v in demo_checks(rows, looping).items()))
    print(orderings(rows).to_string(index=False))
    (out/"rows.json").write_text(json.dumps(dict(rows=rows, validation_ours=val_row, predictions=preds, train_seconds=t_train,
                                                 caption_seconds=t_caption), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
