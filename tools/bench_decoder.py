#!/usr/bin/env python
"""Speed of caption decoding (`audiocap.generate`) and of decoder training steps (`audiocap.decoder`) on the
full-size GPT-2 architecture, side by side, in one run.

    .venv/bin/python tools/bench_decoder.py            # 32 clips, beam 4, 20-token captions; several minutes on 2 cores
    .venv/bin/python tools/bench_decoder.py --quick    # 8 clips, fewer training steps
    .venv/bin/python tools/bench_decoder.py --threads 1 --clock cpu   # on a busy machine: targets on CPU time

GPT-2 is `GPT2Config()` (12 layers, 768 dimensions, 50,257 tokens, 124M parameters) with random weights (seeded;
no pre-trained weights exist offline), the fusion decoder of Sec. 3.3 on top (random too). Each clip has random
audio features (10, 128) and 5 real AudioCaps training captions as guidance, tokenised with GPT-2's own BPE (the
reference data's `gpt2_tokenizer`; random token ids of the same lengths when it is absent).

(a) ours, cached: `generate(..., beam_size=4, min_len=max_len=20)` (GPT-2's key/value cache), captions per second;
(b) ours, uncached: the same with `cache=False` (GPT-2 re-reads the whole prefix at every step); the two must
    give the same captions;
(a'), (b') the same with two changes to `FusionDecoder` that we propose (see `proposed`): the guidance run through GPT-2
    in length-sorted chunks cut to their longest guidance (less padding), and its attention keys/values (eq. 11)
    projected once per clip instead of at every step; the captions must not change;
(c) floor: Hugging Face `GPT2LMHeadModel.generate(num_beams=4, max_new_tokens=20, min_new_tokens=20)` of the plain
    GPT-2 with the same guidance as its prompt (left-padded, batched): what our decoder adds the fusion to;
(d) training steps per second of the fusion decoder (smoothed cross-entropy, Adam, batch of --train-batch real
    captions with 5-caption guidance), GPT-2 frozen as `FusionDecoder` runs it (under no_grad, no activations
    kept) against naively (GPT-2's parameters require grad and autograd goes through it; only the trainable
    layers are stepped).
Every figure is the best of --repeats runs (other processes on a shared machine only ever slow a run down), except
the uncached ones (run once: they are slow). On a busy machine, --threads 1 gives steadier figures: with 2 threads
and other processes on the cores, small matrix products wait for each other (we measured 10x slower decoding).
Targets (issue 6): (a) >= 5x (b); (a) within 1.5x of (c); (d) right >= 1.5x naive.
"""
from __future__ import annotations
import argparse, os, sys, time, warnings
from pathlib import Path

import numpy as np
import torch


def load_captions(n: int, seed: int) -> list[str]:
    "n real AudioCaps training captions (random, seeded), or a fixed sentence when the reference data is absent."
    from audiocap.config import reference_data_dir
    root = reference_data_dir()
    csv = root/"audiocaps"/"v1"/"train.csv" if root else None
    if csv is None or not csv.is_file():
        print("AudioCaps captions not found: using a fixed 12-word caption")
        return ["A man speaks while a dog barks and cars pass by on a busy road"] * n
    import pandas as pd
    caps = pd.read_csv(csv)["caption"].astype(str).tolist()
    rng = np.random.default_rng(seed)
    return [caps[i] for i in rng.choice(len(caps), n, replace=False)]


def make_lm(seed: int):
    "A random full-size GPT-2 (frozen) with GPT-2's tokenizer (or None when its files are absent)."
    from transformers import GPT2Config, GPT2LMHeadModel
    from audiocap.config import reference_data_dir
    from audiocap.lm import LanguageModel, _freeze, _lm_info, load_tokenizer
    root = reference_data_dir()
    tok_dir = root/"gpt2_tokenizer" if root else None
    tok = load_tokenizer(tok_dir) if tok_dir is not None and tok_dir.is_dir() else None
    torch.manual_seed(seed)
    model = _freeze(GPT2LMHeadModel(GPT2Config()))
    return model, tok


class RandomTokenizer:
    "Stand-in for GPT-2's tokenizer when its files are absent: ~1.3 random ids per word."
    eos_token_id = 50256
    def __call__(self, texts, add_special_tokens=False):
        class R: pass
        r = R(); rng = np.random.default_rng(0)
        r.input_ids = [rng.integers(0, 50256, max(1, round(1.3 * len(t.split())))).tolist() for t in texts]
        return r
    def decode(self, ids, skip_special_tokens=True): return " ".join(map(str, ids))


def proposed(dec, gpt2, chunk: int = 8):
    """A copy of FusionDecoder `dec` (same weights) with two changes to its decoding, proposed for audiocap.decoder and
    measured here as (a') and (b'): `start` runs GPT-2 over the guidance in length-sorted chunks of `chunk` clips, each
    cut to its own longest guidance (less padding); and it projects each clip's guidance keys and values (eq. 11) once,
    instead of at every step."""
    import dataclasses
    import torch.nn.functional as F
    from audiocap.decoder import FusionDecoder

    class Proposed(FusionDecoder):
        def start(self, audio, audio_mask, guide_ids, guide_mask):
            st = super().start(audio[:1], None if audio_mask is None else audio_mask[:1], guide_ids[:1, :1], guide_mask[:1, :1])
            lens = guide_mask.sum(1)
            order = torch.argsort(lens, descending=True, stable=True)
            ref = torch.zeros(*guide_ids.shape, self.d_lm, device=guide_ids.device)
            for s in range(0, len(order), chunk):
                rows = order[s:s + chunk]; m = int(lens[rows].max())
                ref[rows, :m] = self._lm_hidden(guide_ids[rows, :m], guide_mask[rows, :m])[0]
            W, b, D = self.attn_text.in_proj_weight, self.attn_text.in_proj_bias, self.d_lm
            with torch.no_grad():
                kv = torch.cat([F.linear(ref, W[D:2 * D], b[D:2 * D]), F.linear(ref, W[2 * D:], b[2 * D:])], -1)
            pad = None if bool(guide_mask.all()) else ~guide_mask.bool()
            apad = None if audio_mask is None or bool(audio_mask.all()) else ~audio_mask.bool()
            tokens = torch.zeros(len(guide_ids), 0, dtype=torch.long, device=guide_ids.device)
            return dataclasses.replace(st, ref=kv, ref_pad=pad, audio=self._audio(audio), audio_pad=apad, tokens=tokens)

        def _fuse(self, hyp, ref, ref_pad, audio_p, audio_pad):
            if ref.shape[-1] == self.d_lm: return super()._fuse(hyp, ref, ref_pad, audio_p, audio_pad)   # training
            a, D = self.attn_text, self.d_lm                         # ref = keys | values (B, M, 2 D)
            H = a.num_heads
            B, N, M = hyp.shape[0], hyp.shape[1], ref.shape[1]
            heads = lambda x, n: x.reshape(B, n, H, D // H).transpose(1, 2)
            q = heads(F.linear(hyp, a.in_proj_weight[:D], a.in_proj_bias[:D]), N)
            k, v = heads(ref[..., :D], M), heads(ref[..., D:], M)
            mask = None if ref_pad is None else ~ref_pad[:, None, None, :]
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, N, D)
            psi = self.drop(a.out_proj(o))
            ups = self.up(self.drop(self.attn_audio(self.proj_text(psi), audio_p, audio_p, key_padding_mask=audio_pad, need_weights=False)[0]))
            return self.head(psi + ups)

    new = Proposed(lm=gpt2, cfg=dec.cfg, d_audio=dec.d_audio)
    new.load_state_dict(dec.state_dict())
    return new.eval()


def best_time(f, repeats: int):
    "({'wall': best wall seconds, 'cpu': best CPU seconds of this process}, last result) of `repeats` calls of f."
    best, out = {"wall": float("inf"), "cpu": float("inf")}, None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = f()
        best = {"wall": min(best["wall"], time.perf_counter() - t), "cpu": min(best["cpu"], time.process_time() - c)}
    return best, out


def rate(n: float, t: dict) -> dict:
    "Items per second on both clocks."
    return {k: n / v for k, v in t.items()}


def hf_generate(model, ids, mask, eos: int, n_tokens: int, beams: int):
    "Plain GPT-2 beam search from left-padded prompts; returns the generated tokens (N, n_tokens)."
    n, m = ids.shape
    left = torch.full_like(ids, eos); lmask = torch.zeros_like(mask)
    for i in range(n):                                             # right- to left-padded
        k = int(mask[i].sum()); left[i, m - k:], lmask[i, m - k:] = ids[i, :k], True
    with torch.inference_mode():
        out = model.generate(input_ids=left, attention_mask=lmask.long(), num_beams=beams, max_new_tokens=n_tokens,
                             min_new_tokens=n_tokens, do_sample=False, pad_token_id=eos, eos_token_id=eos)
    return out[:, m:]


def train_rate(model, batch, steps: int, repeats: int, naive: bool) -> dict:
    "Training steps per second (wall and CPU clocks) of `model` on one fixed batch (best of `repeats` runs of `steps` steps after a warm-up)."
    from audiocap.decoder import smoothed_ce
    params = [p for p in model.parameters() if p.requires_grad]   # the trainable layers only
    if naive:
        model.gpt2.requires_grad_(True)
        def with_grad(self, ids, mask=None, cache=None):          # FusionDecoder._lm_hidden without its torch.no_grad
            past = 0 if cache is None else cache.get_seq_length()
            am = torch.ones(ids.shape[0], past + ids.shape[1], dtype=torch.long, device=ids.device)
            if mask is not None: am[:, past:] = mask
            out = self.gpt2(input_ids=ids, attention_mask=am, cache=cache, use_cache=cache is not None)
            return out.last_hidden_state, out.cache
        model._lm_hidden = with_grad.__get__(model)
    opt = torch.optim.Adam(params, lr=1e-4)
    x, am, g, gm, c, cm, y = batch
    def step():
        loss = smoothed_ce(model(x, am, g, gm, c, cm), y, 0.1)
        loss.backward(); opt.step(); model.zero_grad(set_to_none=True)
    model.train()
    try:
        step()
        t = best_time(lambda: [step() for _ in range(steps)], repeats)[0]
    finally:
        if naive: model.gpt2.requires_grad_(False); del model._lm_hidden
        model.eval()
    return rate(steps, t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 clips, 3 training steps per run")
    ap.add_argument("--clips", type=int, default=None, help="clips to caption (default 32; --quick 8)")
    ap.add_argument("--tokens", type=int, default=20, help="caption length in tokens, forced (default 20)")
    ap.add_argument("--beam", type=int, default=4, help="beam size (default 4)")
    ap.add_argument("--train-batch", type=int, default=8, help="training batch size (default 8)")
    ap.add_argument("--train-steps", type=int, default=None, help="training steps per timed run (default 5; --quick 3)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per figure, best reported (default 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="clock of the targets: wall (default), or cpu = this process's CPU time, steadier on a busy machine with --threads 1")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: kv, uncached, hf, train")
    args = ap.parse_args(argv)
    n_clips = args.clips or (8 if args.quick else 32)
    n_steps = args.train_steps or (3 if args.quick else 5)
    skip = set(filter(None, args.skip.split(",")))
    if args.threads: torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    from audiocap.config import DecoderConfig
    from audiocap.decoder import FusionDecoder, collate
    from audiocap.generate import encode_guidance, generate, beam_search
    from audiocap.lm import LanguageModel, guidance_text, caption_text

    load0 = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; load average {load0:.2f}")
    gpt2, tok = make_lm(0)
    tok_name = "GPT-2 BPE (reference data)" if tok is not None else "random ids (GPT-2 tokenizer files absent)"
    tok = tok or RandomTokenizer()
    cfg = DecoderConfig()
    torch.manual_seed(1)
    dec = FusionDecoder(lm=gpt2, cfg=cfg, d_audio=128).eval()
    caps = load_captions(5 * n_clips + 2 * args.train_batch, seed=0)
    guidance = [caps[5 * i:5 * i + 5] for i in range(n_clips)]
    audio = torch.randn(n_clips, 10, 128, generator=torch.Generator().manual_seed(2))
    ids, gm = encode_guidance(tok, guidance, join=cfg.guidance_join)
    c = dec.param_counts()
    print(f"GPT-2: GPT2Config() random weights, {c['frozen'] / 1e6:.1f}M frozen + {c['trainable'] / 1e6:.1f}M trainable parameters; tokenizer: {tok_name}")
    print(f"{n_clips} clips, audio (10, 128), guidance 5 captions = {gm.sum(1).float().mean():.1f} tokens on average "
          f"(max {int(gm.sum(1).max())}); beam {args.beam}, captions forced to {args.tokens} tokens; best of {args.repeats}")

    kw = dict(cfg=cfg, beam_size=args.beam, batch_size=n_clips, max_len=args.tokens, min_len=args.tokens, progress=False)
    rows = {}
    t_c, out_c = best_time(lambda: generate(dec, tok, audio, None, guidance, **kw), args.repeats)
    rows["(a) ours, cached"] = rate(n_clips, t_c)
    print(f"(a) cached: {t_c['wall']:.1f} s")
    same = same_kv = None
    if "kv" not in skip:
        dec_kv = proposed(dec, gpt2)
        t_k, out_k = best_time(lambda: generate(dec_kv, tok, audio, None, guidance, **kw), args.repeats)
        rows["(a') ours, cached, proposed start"] = rate(n_clips, t_k)
        same_kv = out_k == out_c
        print(f"(a') cached, proposed start: {t_k['wall']:.1f} s; same captions as (a): {same_kv}")
    if "uncached" not in skip:
        t_u, out_u = best_time(lambda: generate(dec, tok, audio, None, guidance, cache=False, **kw), 1)   # slow: once
        rows["(b) ours, uncached"] = rate(n_clips, t_u)
        same = out_u == out_c
        print(f"(b) uncached: {t_u['wall']:.1f} s; same captions as cached: {same}")
        if "kv" not in skip:
            t_uk, out_uk = best_time(lambda: generate(dec_kv, tok, audio, None, guidance, cache=False, **kw), 1)
            rows["(b') ours, uncached, proposed start"] = rate(n_clips, t_uk)
            same_kv = same_kv and out_uk == out_c
            print(f"(b') uncached, proposed start: {t_uk['wall']:.1f} s")
    if "hf" not in skip:
        t_h, out_h = best_time(lambda: hf_generate(gpt2, ids, gm, tok.eos_token_id, args.tokens, args.beam), args.repeats)
        rows["(c) plain GPT-2, HF generate"] = rate(n_clips, t_h)
        print(f"(c) HF generate: {t_h['wall']:.1f} s; output {tuple(out_h.shape)}")
    if "train" not in skip:
        from audiocap.lm import LanguageModel
        lmw = LanguageModel(gpt2, tok, {}) if not isinstance(tok, RandomTokenizer) else None
        tcaps = caps[5 * n_clips:5 * n_clips + args.train_batch]
        tguid = [guidance_text(guidance[i % n_clips], cfg.guidance_join) for i in range(args.train_batch)]
        if lmw is None:   # the tokenizer is a stand-in: build the batch by hand
            g_ids, g_m = encode_guidance(tok, [guidance[i % n_clips] for i in range(args.train_batch)])
            c_ids = torch.randint(0, 50256, (args.train_batch, 14)); c_m = torch.ones_like(c_ids, dtype=torch.bool)
            batch = (torch.randn(args.train_batch, 10, 128), torch.ones(args.train_batch, 10, dtype=torch.bool), g_ids, g_m,
                     c_ids[:, :-1], c_m[:, :-1], c_ids[:, 1:])
        else:
            items = [(np.random.default_rng(i).normal(size=(10, 128)).astype(np.float32), tguid[i], caption_text(tcaps[i])) for i in range(args.train_batch)]
            batch = collate(items, lmw)
        print(f"training batch: {args.train_batch} examples, guidance {batch[2].shape[1]} tokens, caption {batch[4].shape[1]} tokens; {n_steps} steps per run")
        rows["(d) training, GPT-2 frozen right"] = train_rate(dec, batch, n_steps, args.repeats, naive=False)
        rows["(d) training, naive (autograd through GPT-2)"] = train_rate(dec, batch, n_steps, args.repeats, naive=True)

    clock = args.clock
    def ratio(a, b): return rows[a][clock] / rows[b][clock] if a in rows and b in rows else None
    checks = [("(a) / (b): cache speed-up", ratio("(a) ours, cached", "(b) ours, uncached"), 5.0),
              ("(a') / (b'): cache speed-up, proposed start", ratio("(a') ours, cached, proposed start", "(b') ours, uncached, proposed start"), 5.0),
              ("(a) / (c): ours vs plain GPT-2 (>= 1/1.5)", ratio("(a) ours, cached", "(c) plain GPT-2, HF generate"), 1 / 1.5),
              ("(a') / (c): ours vs plain GPT-2, proposed start", ratio("(a') ours, cached, proposed start", "(c) plain GPT-2, HF generate"), 1 / 1.5),
              ("(d) right / naive", ratio("(d) training, GPT-2 frozen right", "(d) training, naive (autograd through GPT-2)"), 1.5)]
    print(f"\nload average now {os.getloadavg()[0]:.2f} (at start {load0:.2f})\n")
    print("| what | rate (wall clock) | rate (CPU time) |\n| --- | ---: | ---: |")
    for k, v in rows.items():
        u = 'steps/s' if k.startswith('(d)') else 'captions/s'
        print(f"| {k} | {v['wall']:.2f} {u} | {v['cpu']:.2f} {u} |")
    print(f"\n| target ({clock} clock) | measured | needed | |\n| --- | ---: | ---: | --- |")
    for name, r, need in checks:
        if r is not None: print(f"| {name} | {r:.2f}x | >= {need:.2f}x | {'PASS' if r >= need else 'FAIL'} |")
    if same_kv is not None: print(f"| (a') and (b') give the same captions as (a) | {same_kv} | True | {'PASS' if same_kv else 'FAIL'} |")
    if same is not None: print(f"| cached and uncached give the same captions | {same} | True | {'PASS' if same else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
