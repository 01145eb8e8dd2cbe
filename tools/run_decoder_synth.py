#!/usr/bin/env python
"""Train the caption decoder (audiocap.decoder) on a synthetic demo set and check that its captions follow the audio.

    .venv/bin/python tools/run_decoder_synth.py --demo /tmp/demo_full --lm /tmp/lm_demo_run --out /tmp/dec_synth

--demo is what `audiocap demo --out DIR` writes (data/, features/, similarity/); --lm a folder from `pretrain_lm` or
`tiny` for a random 2-layer GPT-2. Validation guidance: each val clip's top-5 training captions in BERTScore. After
training it prints greedy captions of a few val clips (own audio, and another clip's audio with the same guidance)
and the validation loss with matched audio/guidance versus audio or guidance taken from another clip.
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path

import numpy as np
import torch


@torch.no_grad()
def greedy(model, lm, audio: torch.Tensor, guides: list[list[str]], join: str, max_len: int = 40) -> list[str]:
    "Greedy captions with the cached step protocol: audio (B, T, 128), K guidance captions per clip."
    from audiocap.lm import guidance_text
    g, gm = lm.encode([guidance_text(x, join) for x in guides])
    state = model.start(audio.to(g.device), None, g, gm.bool())
    tok = torch.full((len(guides), 1), lm.eos_id, device=g.device)
    out, done = [], torch.zeros(len(guides), dtype=torch.bool, device=g.device)
    for _ in range(max_len):
        logp, state = model.step(state, tok)
        tok = logp.argmax(-1, keepdim=True)
        out.append(tok); done |= tok[:, 0] == lm.eos_id
        if done.all(): break
    return lm.decode(torch.cat(out, 1))


@torch.no_grad()
def val_loss(model, lm, audio: dict, pairs, guidance: dict, join: str, bs: int = 256) -> float:
    "Token-mean smoothed CE over (clip, caption) pairs with the given audio and guidance mappings."
    from audiocap.decoder import CaptionExamples, collate, smoothed_ce
    ds = CaptionExamples(audio, pairs, join=join, guidance=guidance)
    tot, n = 0.0, 0
    for s in range(0, len(ds), bs):
        b = collate([ds[i] for i in range(s, min(len(ds), s + bs))], lm)
        k = int((b[-1] != -100).sum())
        tot += smoothed_ce(model(*[t.to(lm.device) for t in b[:-1]]), b[-1].to(lm.device), model.cfg.label_smoothing).item() * k; n += k
    return tot / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default="/tmp/demo_full"); ap.add_argument("--lm", default="tiny"); ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=None); ap.add_argument("--time-budget", type=float, default=None)
    ap.add_argument("--lr-scale", type=float, default=1.0); ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--n-show", type=int, default=6); ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cross", default=None, help="folder for the val-vs-train BERTScores (default: OUT_cross_val; reused when there)")
    a = ap.parse_args()
    from audiocap.config import DecoderConfig
    from audiocap.decoder import topk_guidance, train_decoder, _load_audio, _captions_of
    from audiocap.features import FeatureStore
    from audiocap.lm import load_lm, tiny_lm
    from audiocap.similarity import SimilarityLabels, cross_similarity
    demo = Path(a.demo)
    labels, feats = SimilarityLabels(demo/"similarity"), FeatureStore(demo/"features")
    t0 = time.perf_counter()
    cross_dir = Path(a.cross) if a.cross else Path(a.out).with_name(Path(a.out).name + "_cross_val")   # kept: a second run reads it back
    cross = cross_similarity(demo/"data"/"val.csv", labels, cross_dir, progress=False)
    print(f"val guidance (BERTScore top-5) in {time.perf_counter() - t0:.0f} s: {cross}")
    lm = tiny_lm(labels.captions, vocab_size=1000) if a.lm == "tiny" else load_lm(a.lm)
    print(lm.describe())
    cfg = DecoderConfig(batch_size=a.batch_size)
    run = train_decoder(feats, labels, a.out, lm=lm, cfg=cfg, val_guidance=cross, max_epochs=a.epochs,
                        time_budget=a.time_budget, lr_scale=a.lr_scale, seed=a.seed, progress=False)
    print(run); print(run.history.round(4).to_string(index=False))
    model = run.model.eval()
    guid = topk_guidance(cross, cfg.k)
    caps = _captions_of(cross)
    clips = list(caps)
    audio = _load_audio(feats, clips)
    pairs = [(c, x) for c in clips for x in caps[c]]
    roll = lambda d: {c: d[clips[(i + 1) % len(clips)]] for i, c in enumerate(clips)}   # each clip gets the next clip's
    losses = {"matched": val_loss(model, lm, audio, pairs, guid, cfg.guidance_join),
              "audio of another clip": val_loss(model, lm, roll(audio), pairs, guid, cfg.guidance_join),
              "guidance of another clip": val_loss(model, lm, audio, pairs, roll(guid), cfg.guidance_join)}
    print("validation loss:", {k: round(v, 4) for k, v in losses.items()})
    show = clips[:a.n_show]
    x = torch.from_numpy(np.stack([audio[c] for c in show]))
    other = torch.from_numpy(np.stack([roll(audio)[c] for c in show]))
    own_caps = greedy(model, lm, x, [guid[c] for c in show], cfg.guidance_join)
    swap_caps = greedy(model, lm, other, [guid[c] for c in show], cfg.guidance_join)
    examples = []
    for c, o, s in zip(show, own_caps, swap_caps):
        examples.append(dict(clip=c, reference=caps[c][0], guidance_1=guid[c][0], greedy=o, greedy_other_audio=s,
                             other_audio_reference=caps[clips[(clips.index(c) + 1) % len(clips)]][0]))
        print(f"\n{c}\n  reference:      {caps[c][0]}\n  guidance #1:    {guid[c][0]}\n  greedy:         {o}\n"
              f"  other audio:    {s}\n  (that audio's reference: {examples[-1]['other_audio_reference']})")
    res = dict(run=str(run.path), lm=lm.info.get("name"), seconds_per_epoch=run.info["training"]["seconds_per_epoch"],
               epochs_run=run.info["training"]["epochs_run"], val_loss=losses, examples=examples)
    (Path(a.out)/"synth_eval.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
