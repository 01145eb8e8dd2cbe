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
"""
from __future__ import annotations
import argparse, os, sys, time, warnings

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--steps", type=int, default=5, help="training steps per timed run (default 5)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per figure, best reported (default 3)")
    ap.add_argument("--clips", type=int, default=8, help="clips to caption (default 8)")
    ap.add_argument("--tokens", type=int, default=20, help="caption length in tokens, forced (default 20)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: train, beam")
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
    print(f"\nload average now {os.getloadavg()[0]:.2f}\n\n| target | measured | needed | |\n|---|---:|---:|---|")
    for name, v, need in checks: print(f"| {name} | {v:.2f} | >= {need:.2f} | {'PASS' if v >= need else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
