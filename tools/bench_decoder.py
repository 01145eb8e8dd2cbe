#!/usr/bin/env python
"""Speed of the fusion decoder (Sec. 3.3): training steps and beam search, before and after the frozen-LM work is
done once, side by side in one run.

    .venv/bin/python tools/bench_decoder.py              # both parts, both shapes; a few minutes on 2 cores
    .venv/bin/python tools/bench_decoder.py --skip beam  # training steps only

Training steps per second (smoothed cross-entropy, Adam, one fixed batch, best of --repeats runs):
  before:            GPT-2 reads the guidance (eq. 9, joint) and the prefix (eq. 10) at every step;
  after, joint:      the prefix features come from `CaptionFeatures` (computed once); GPT-2 still reads the
                     guidance, which is drawn afresh for every example;
  after, separate:   prefix and guidance features both come from `CaptionFeatures` (no GPT-2 pass in training).
at two shapes:
  demo: the demo's offline LM architecture (2 layers x 128, a byte-level BPE of 807 tokens trained on the
        captions), batch 64;
  full: GPT-2 117M's architecture (`GPT2Config()`, random weights) with GPT-2's own BPE, batch 32.
Each example has 5 real AudioCaps training captions as guidance and one as its target (from the reference data,
`shared/data/audiocaps/v1/train.csv`), random audio features (10, 128).

Beam search (full shape, beam 4, captions forced to exactly --tokens tokens, --clips clips in one batch), with each
guidance encoding: joint (GPT-2 reads each clip's guidance once, in `start`, in both searches) and separate (the
guidance features come from the run's `CaptionFeatures`, as captioning does in that mode):
  cached:   GPT-2's key/value cache, and the guidance keys/values of eq. 11 projected once per clip;
  uncached: GPT-2 re-reads the whole prefix, and the guidance keys/values are projected again, at every step.
The two must give identical captions. Targets (issue 11): training after >= 3x before at the demo shape; beam search
cached >= 5x uncached and >= 2 captions/s.

Padding (issue 19), seconds per training epoch on the same examples, side by side:
  before: batches drawn at random (fastai's shuffle), the LM head over every padded prefix position, the loss
          dropping the padding;
  after:  `LengthGroupedDL` batches (sorted by caption length within shuffled windows of 50 batches), the LM head
          and the loss at the real positions only (`collate(..., real_only=True)`).
at two shapes:
  demo:      the demo's decoder training set and settings: 600 synthetic clips x 5 captions (drawn as
             `audiocap.synth` draws them), its LM architecture and BPE as above, batch 64, separate guidance;
             every batch of one epoch is timed;
  audiocaps: the 49,838 AudioCaps v1 training captions, GPT-2 117M's architecture and BPE, batch 32, joint
             (the paper's) and separate guidance; --sample batches of each epoch, drawn at random, are timed and
             the epoch's time extrapolated; cached caption features are random here (values do not change the work).

    .venv/bin/python tools/bench_decoder.py --skip train,beam   # the padding part only (a couple of minutes)
"""
from __future__ import annotations
import argparse, os, random, sys, time, warnings

import numpy as np
import pandas as pd
import torch


def captions(n: int, seed: int = 0) -> list[str]:
    "n real AudioCaps training captions (random, seeded)."
    from audiocap.testing import reference_data_dir
    root = reference_data_dir()
    if root is None or not (root/"audiocaps/v1/train.csv").is_file():
        sys.exit("reference data not found: set AUDIOCAP_REFERENCE_DATA to the shared/data folder")
    caps = pd.read_csv(root/"audiocaps/v1/train.csv")["caption"].astype(str).tolist()
    return [caps[i] for i in np.random.default_rng(seed).choice(len(caps), n, replace=False)]


def language_model(shape: str, texts: list[str]):
    "A frozen random-init GPT-2 of the given shape with its tokenizer, as a LanguageModel."
    from transformers import GPT2Config, GPT2LMHeadModel
    from audiocap.testing import reference_data_dir
    from audiocap.lm import LanguageModel, load_tokenizer
    tok = (load_tokenizer(reference_data_dir()/"gpt2_tokenizer") if shape == "full"
           else load_tokenizer(train_texts=texts, vocab_size=807))
    torch.manual_seed(0)
    cfg = GPT2Config() if shape == "full" else GPT2Config(n_layer=2, n_embd=128, n_head=4, n_positions=256, vocab_size=len(tok))
    model = GPT2LMHeadModel(cfg).eval().requires_grad_(False)
    return LanguageModel(model, tok, {})


def best_time(f, repeats: int) -> tuple[float, object]:
    "(best wall seconds, last result) of `repeats` calls of f."
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter(); out = f(); best = min(best, time.perf_counter() - t)
    return best, out


def train_rates(shape: str, batch: int, steps: int, repeats: int) -> dict:
    "Training steps/s before and after, at one shape."
    from audiocap.config import DecoderConfig
    from audiocap.decoder import CaptionFeatures, FusionDecoder, collate, smoothed_ce
    texts = captions(6 * batch + 2000)
    lm = language_model(shape, texts)
    rng = np.random.default_rng(1)
    items = [(rng.normal(size=(10, 128)).astype(np.float32), texts[6 * i + 1:6 * i + 6], texts[6 * i]) for i in range(batch)]
    t0 = time.perf_counter()
    cache = CaptionFeatures.compute(lm, texts[:6 * batch])
    t_cache = time.perf_counter() - t0
    torch.manual_seed(1)
    model = FusionDecoder(lm=lm.model, cfg=DecoderConfig())
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    out = {}
    for name, kw in (("before", dict()), ("after, joint", dict(features=cache)),
                     ("after, separate", dict(features=cache, encoding="separate"))):
        def step():
            b = collate(items, lm, **kw)                               # batching is part of a step
            loss = smoothed_ce(model(*b[:-1]), b[-1], 0.1)
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        model.train(); step()                                          # warm-up
        t, _ = best_time(lambda: [step() for _ in range(steps)], repeats)
        out[name] = steps / t
    b = collate(items, lm)
    print(f"{shape}: batch {batch}, guidance {b[2].shape[1]} tokens (joint), prefix {b[4].shape[1]} tokens; "
          f"caption features of {len(cache)} captions: {cache.nbytes / 2**20:.1f} MiB, {t_cache:.1f} s")
    return out


def beam(clips: int, tokens: int, repeats: int, encoding: str = "joint") -> dict:
    """Beam search, cached and uncached, on the full shape. `encoding` "joint": GPT-2 reads each clip's guidance (eq. 9)
    in `start`; "separate": the guidance features come from the run's `CaptionFeatures`, as captioning does then."""
    from audiocap.config import DecoderConfig
    from audiocap.decoder import CaptionFeatures, FusionDecoder
    from audiocap.generate import generate
    texts = captions(5 * clips, seed=2)
    lm = language_model("full", texts)
    torch.manual_seed(1)
    cfg = DecoderConfig(guidance_encoding=encoding)
    dec = FusionDecoder(lm=lm.model, cfg=cfg).eval()
    features = CaptionFeatures.compute(lm, texts) if encoding == "separate" else None   # computed once, at training
    guidance = [texts[5 * i:5 * i + 5] for i in range(clips)]
    audio = torch.randn(clips, 10, 128, generator=torch.Generator().manual_seed(2))
    kw = dict(cfg=cfg, features=features, beam_size=4, batch_size=clips, max_len=tokens, min_len=tokens, progress=False)
    t_c, out_c = best_time(lambda: generate(dec, lm, audio, None, guidance, **kw), repeats)
    t_u, out_u = best_time(lambda: generate(dec, lm, audio, None, guidance, cache=False, **kw), 1)
    return dict(cached=clips / t_c, uncached=clips / t_u, same=out_c == out_u)


def synth_captions(n_clips: int, seed: int = 0) -> list[str]:
    "The 5 captions of each of n_clips synthetic clips, drawn as `audiocap.synth` draws the demo's."
    from audiocap.synth import captions as clip_captions, sample_plan
    rng = np.random.default_rng(seed)
    return [c for _ in range(n_clips) for c in clip_captions(rng, sample_plan(rng))]


def padding_epoch(shape: str, batch: int, encodings: tuple[str, ...], sample: int | None, repeats: int) -> dict:
    """Seconds per training epoch before and after (see the module's doc) at one shape, for each guidance encoding;
    `sample`: time that many batches of each epoch (None: all) and extrapolate."""
    from audiocap.config import DecoderConfig
    from audiocap.decoder import CaptionFeatures, FusionDecoder, LengthGroupedDL, collate, smoothed_ce
    from audiocap.lm import caption_text
    from fastai.data.load import DataLoader
    if shape == "demo": texts = synth_captions(600)
    else:
        from audiocap.testing import reference_data_dir
        texts = pd.read_csv(reference_data_dir()/"audiocaps/v1/train.csv")["caption"].astype(str).tolist()
    texts = [caption_text(t) for t in texts]
    lm = language_model("demo" if shape == "demo" else "full", texts)
    eos, n_pos = lm.eos_id, lm.model.config.n_positions
    rows = [([eos] + r + [eos])[:n_pos] for r in lm.tokenizer(texts, add_special_tokens=False).input_ids]
    n_tok = np.array([len(r) for r in rows])
    n, rng = len(texts), np.random.default_rng(0)
    guides = rng.integers(0, n, (n, 5))                                   # 5 guidance captions of each example
    random.seed(0); shuffled = DataLoader(list(range(n)), bs=batch, shuffle=True)
    random.seed(0); grouped = LengthGroupedDL(list(range(n)), n_tok, bs=batch, shuffle=True)
    orders = {"before": shuffled.get_idxs(), "after": grouped.get_idxs()}
    batches = {k: [o[s:s + batch] for s in range(0, n, batch)] for k, o in orders.items()}
    n_batches = len(batches["before"])
    timed = {k: [b[i] for i in sorted(rng.choice(len(b), sample, replace=False))] if sample else b for k, b in batches.items()}
    used = sorted({j for bs_ in timed.values() for b in bs_ for i in b for j in (i, *guides[i])})
    if shape == "demo": cache = CaptionFeatures.compute(lm, [texts[i] for i in used])
    else:                                                                 # random features: GPT-2 117M over them would take minutes
        lens = torch.tensor([len(rows[i]) for i in used])
        cache = CaptionFeatures([texts[i] for i in used], torch.tensor([t for i in used for t in rows[i]]),
                                torch.randn(int(lens.sum()), lm.dim, generator=torch.Generator().manual_seed(0)),
                                torch.cat([torch.zeros(1, dtype=torch.long), lens.cumsum(0)]))
    audio = np.random.default_rng(1).normal(size=(10, 128)).astype(np.float32)
    items = lambda b: [(audio, [texts[j] for j in guides[i]], texts[i]) for i in b]
    kept = lambda bs_: sum(int(n_tok[b].sum()) - len(b) for b in bs_) / sum((int(n_tok[b].max()) - 1) * len(b) for b in bs_)
    out = dict(batches=n_batches, timed=len(timed["before"]), real_before=kept(batches["before"]), real_after=kept(batches["after"]))
    for enc in encodings:
        torch.manual_seed(1)
        model = FusionDecoder(lm=lm.model, cfg=DecoderConfig(guidance_encoding=enc)).train()
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        def step(b, real_only):
            xb = collate(items(b), lm, features=cache, encoding=enc, real_only=real_only)   # batching is part of a step
            smoothed_ce(model(*xb[:-1]), xb[-1], 0.1).backward(); opt.step(); opt.zero_grad(set_to_none=True)
        step(timed["after"][0][:4], True); step(timed["before"][0][:4], False)            # warm-up, on 4 examples
        best = {}
        for _ in range(repeats):                                                          # before and after in turns: the same load
            for k in ("before", "after"):
                t = time.perf_counter()
                for b in timed[k]: step(b, k == "after")
                best[k] = min(best.get(k, float("inf")), (time.perf_counter() - t) / len(timed[k]) * n_batches)
        out[enc] = best
    if shape != "demo":                                                   # the paper's batch of 512, lengths only
        random.seed(0); o = LengthGroupedDL(list(range(n)), n_tok, bs=512, shuffle=True).get_idxs()
        random.seed(0); r = DataLoader(list(range(n)), bs=512, shuffle=True).get_idxs()
        out["real_512"] = (kept([r[s:s + 512] for s in range(0, n, 512)]), kept([o[s:s + 512] for s in range(0, n, 512)]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--steps", type=int, default=5, help="training steps per timed run (default 5)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per figure, best reported (default 3)")
    ap.add_argument("--clips", type=int, default=8, help="clips to caption (default 8)")
    ap.add_argument("--tokens", type=int, default=20, help="caption length in tokens, forced (default 20)")
    ap.add_argument("--sample", type=int, default=3, help="batches timed per epoch at the AudioCaps shape (default 3)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: train, beam, padding")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}")
    checks = []
    if "train" not in skip:
        rows = {"demo (2 x 128, batch 64)": train_rates("demo", 64, args.steps, args.repeats),
                "full (GPT-2 117M, batch 32)": train_rates("full", 32, max(2, args.steps // 2), args.repeats)}
        print("\n| training steps/s | before | after, joint | after, separate | separate / before |\n|---|---:|---:|---:|---:|")
        for k, r in rows.items():
            print(f"| {k} | {r['before']:.2f} | {r['after, joint']:.2f} | {r['after, separate']:.2f} | {r['after, separate'] / r['before']:.1f}x |")
        d = rows["demo (2 x 128, batch 64)"]
        checks += [("training at the demo shape, after (separate) / before", d["after, separate"] / d["before"], 3.0)]
    if "beam" not in skip:
        print(f"\n| beam search, full shape, {args.clips} clips, beam 4, {args.tokens} tokens | cached captions/s | uncached | "
              "cached / uncached | same captions |\n|---|---:|---:|---:|---|")
        for encoding in ("joint", "separate"):
            b = beam(args.clips, args.tokens, args.repeats, encoding)
            print(f"| guidance encoding {encoding} | {b['cached']:.2f} | {b['uncached']:.2f} | {b['cached'] / b['uncached']:.1f}x | "
                  f"{'yes' if b['same'] else 'NO'} |")
            checks += [(f"beam search ({encoding}), cached / uncached", b["cached"] / b["uncached"], 5.0),
                       (f"beam search ({encoding}), cached captions/s", b["cached"], 2.0),
                       (f"beam search ({encoding}), identical captions (1 = yes)", float(b["same"]), 1.0)]
    if "padding" not in skip:
        rows = {"demo (2 x 128, V=807, batch 64)": padding_epoch("demo", 64, ("separate",), None, 1),
                "AudioCaps (GPT-2 117M, V=50257, batch 32)": padding_epoch("audiocaps", 32, ("joint", "separate"), args.sample, 1)}
        print("\n| padding: s/epoch | guidance | batches (timed) | real / padded prefix positions, before -> after | before | after "
              "| before / after |\n|---|---|---:|---:|---:|---:|---:|")
        for k, r in rows.items():
            for enc in ("joint", "separate"):
                if enc not in r: continue
                b, a = r[enc]["before"], r[enc]["after"]
                print(f"| {k} | {enc} | {r['batches']} ({r['timed']}) | {r['real_before']:.2f} -> {r['real_after']:.2f} | {b:.1f} | {a:.1f} | "
                      f"{b / a:.2f}x |")
        r512 = rows["AudioCaps (GPT-2 117M, V=50257, batch 32)"]["real_512"]
        print(f"\nAudioCaps at the paper's batch of 512: real / padded prefix positions {r512[0]:.2f} -> {r512[1]:.2f}: the LM head "
              f"on {1 / r512[0]:.1f}x fewer rows, the rest of the fusion on {r512[1] / r512[0]:.1f}x fewer positions")
    print(f"\nload average now {os.getloadavg()[0]:.2f}")
    if checks: print("\n| target | measured | needed | |\n|---|---:|---:|---|")
    for name, v, need in checks: print(f"| {name} | {v:.2f} | >= {need:.2f} | {'PASS' if v >= need else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
