#!/usr/bin/env python
"""All-pairs BERTScore speed (`audiocap.bertscore`, `audiocap.similarity`) against `bert_score` and the machine's limit.

    .venv/bin/python tools/bench_similarity.py             # a few thousand real AudioCaps captions, about 1-2 minutes
    .venv/bin/python tools/bench_similarity.py --full --out /tmp/audiocaps-sim   # then the whole training set (minutes)

One table puts side by side, in unordered caption pairs per second on the same captions and model:
`bert_score.score` (its default batch of 64, which pads and so is not exact, and batch_size=1, which is), our block
kernel alone, our `compute_similarity` end to end (embedding, pilot, units, labels), and the machine's limit: the
measured float32 matrix-product rate divided by the FLOPs of the pairwise cosine products (2 D L_i L_j per pair).
It then estimates the time of the full AudioCaps training set from the real token lengths of its captions and the
measured rate of one full-size unit, and with --full runs it and reports the total time and the peak memory (RSS).
"""
from __future__ import annotations
import argparse, json, os, resource, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import torch


def gemm_rate(fn, flops: float, seconds: float = 1.5) -> float:
    "GFLOP/s of fn() (best of repeated calls over `seconds`)."
    fn(); best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def machine_limit() -> dict:
    "Float32 GEMM rates: MKL (torch.mm) and oneDNN with a packed operand, at our tile shape and a large square one."
    from audiocap.bertscore import TILE_COLS_TOKENS, TILE_ROWS_TOKENS, onednn_available, pack_columns, packed_matmul
    out = {}
    for name, (m, n) in {"tile": (TILE_ROWS_TOKENS, TILE_COLS_TOKENS), "square": (4096, 4096)}.items():
        a, b = torch.randn(m, 384), torch.randn(n, 384)
        out[f"torch.mm {name} {m}x384x{n}"] = gemm_rate(lambda: torch.mm(a, b.T), 2 * m * n * 384)
        if onednn_available("cpu"):
            bp = pack_columns(b, True)
            out[f"oneDNN {name} {m}x384x{n}"] = gemm_rate(lambda: packed_matmul(a, bp, True), 2 * m * n * 384)
    return out


def pair_flops(lengths: np.ndarray, d: int) -> float:
    "FLOPs of the cosine products of all unordered pairs of distinct entries: 2 d sum_{u<v} L_u L_v."
    s, s2 = float(lengths.sum()), float((lengths.astype(np.float64) ** 2).sum())
    return 2 * d * (s * s - s2) / 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=None, help="AudioCaps train.csv (default: the reference data's)")
    ap.add_argument("--n", type=int, default=3000, help="captions for our measurement (default 3000)")
    ap.add_argument("--bs-captions", type=int, default=100, help="captions whose pairs bert_score scores (default 100: 4,950 pairs)")
    ap.add_argument("--bs1-pairs", type=int, default=600, help="pairs for bert_score with batch_size=1 (default 600)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--full", action="store_true", help="also run the whole training set (minutes)")
    ap.add_argument("--out", type=Path, default=None, help="labels folder of the --full run (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.threads: torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    from audiocap.testing import reference_data_dir
    from audiocap.data import read_audiocaps_csv
    from audiocap.bertscore import CaptionEncoder, EmbeddingBank, build_bank, encode_unique, pair_block
    from audiocap.similarity import compute_similarity, compute_unit, unit_ranges
    csv = args.csv or (reference_data_dir() or Path("shared/data")) / "audiocaps/v1/train.csv"
    if not csv.is_file(): sys.exit(f"{csv} not found; pass --csv PATH_TO_AUDIOCAPS_TRAIN_CSV")
    clips = read_audiocaps_csv(csv, split="train").clips
    captions = [t for c in clips for t in c.captions]
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f}")
    print(f"captions: {csv} ({len(captions):,})")

    # 1. the machine's float32 matrix-product rate
    lim = machine_limit()
    peak = max(lim.values())
    print("float32 GEMM GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in lim.items()))

    # 2. ours on n real captions
    rng = np.random.default_rng(0)
    uniq_caps = list(dict.fromkeys(captions))
    sample = [uniq_caps[i] for i in np.sort(rng.choice(len(uniq_caps), min(args.n, len(uniq_caps)), replace=False))]
    enc = CaptionEncoder()
    t0 = time.perf_counter(); _, uniq, _ = encode_unique(enc, sample); t_tok = time.perf_counter() - t0
    t0 = time.perf_counter(); bank = build_bank(enc, uniq, enc.weights(uniq)); t_emb = time.perf_counter() - t0
    n = len(bank); lengths = bank.lengths; n_pairs = n * (n - 1) // 2
    flops = pair_flops(lengths, enc.dim)
    t0 = time.perf_counter(); pair_block(bank, 0, n, bank, 0, n, upper=True); t_kernel = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter(); compute_similarity(sample, Path(d) / "l", progress=False); t_e2e = time.perf_counter() - t0
    tokens_per_s = lengths.sum() / (t_tok + t_emb)

    # 3. bert_score on pairs of a subset (its rate does not depend on how many captions there are)
    rows = []
    try:
        import bert_score
    except ImportError:
        bert_score = None; print("bert_score is not installed: pip install -e .[dev]")
    if bert_score is not None:
        sub = sample[:args.bs_captions]
        ii, jj = np.triu_indices(len(sub), 1)
        c, r = [sub[i] for i in ii], [sub[j] for j in jj]
        scorer = bert_score.BERTScorer(model_type=enc.model, num_layers=enc.layer, batch_size=64)
        t0 = time.perf_counter(); scorer.score(c, r); t_bs = time.perf_counter() - t0
        k1 = min(args.bs1_pairs, len(c))
        scorer1 = bert_score.BERTScorer(model_type=enc.model, num_layers=enc.layer, batch_size=1)
        t0 = time.perf_counter(); scorer1.score(c[:k1], r[:k1]); t_bs1 = time.perf_counter() - t0
        sub_len = np.array([len(enc.tokenize(s)) for s in sub])
        fpp_sub = pair_flops(sub_len, enc.dim) / len(c)          # FLOPs per pair of those captions
        rows += [("bert_score.score, batch_size=64 (pads: not exact)", len(c) / t_bs, len(c) / t_bs * fpp_sub / 1e9),
                 ("bert_score.score, batch_size=1 (exact)", k1 / t_bs1, k1 / t_bs1 * fpp_sub / 1e9)]
    # 4. estimate for the full training set: real token lengths, one full-size unit on random embeddings
    t0 = time.perf_counter(); _, uniq_full, uid = encode_unique(enc, captions); t_tok_full = time.perf_counter() - t0
    L = np.array([len(a) for a in uniq_full]); U = len(L)
    ranges = unit_ranges(U, 4096)
    mid = len(ranges) // 2
    a0, a1 = ranges[mid - 1] if mid else ranges[0]
    b0, b1 = ranges[mid]
    lens = np.concatenate([L[a0:a1], L[b0:b1]])
    glen, first = np.unique(lens, return_index=True); starts = np.append(first, len(lens))
    g = torch.Generator().manual_seed(0)
    emb = [torch.nn.functional.normalize(torch.randn(starts[k + 1] - starts[k], int(l), enc.dim, generator=g) + 0.2, dim=-1) for k, l in enumerate(glen)]
    wt = [torch.full((starts[k + 1] - starts[k], int(l)), 1.0 / max(1, int(l) - 2)) for k, l in enumerate(glen)]
    syn = EmbeddingBank([None] * len(lens), starts, glen, emb, wt)
    two = [(0, a1 - a0), (a1 - a0, len(lens))]
    t0 = time.perf_counter(); compute_unit(syn, np.ones(len(lens), np.int64), two, 0, 1, 0.9, 20); t_unit = time.perf_counter() - t0
    unit_gflops = pair_flops(lens, enc.dim) - pair_flops(L[a0:a1], enc.dim) - pair_flops(L[b0:b1], enc.dim)
    unit_rate = unit_gflops / t_unit                                   # FLOP/s of a real-size off-diagonal unit
    full_flops = pair_flops(L, enc.dim) * 1.03                         # + ~3% for the diagonal units' square chunks
    fpp = flops / n_pairs
    rows += [(f"ours: block kernel only ({n:,} captions)", n_pairs / t_kernel, flops / t_kernel / 1e9),
             (f"ours: compute_similarity end to end ({n:,} captions)", n_pairs / t_e2e, flops / t_e2e / 1e9),
             (f"ours: one full-size unit ({a1 - a0:,} x {b1 - b0:,} captions of the full set)", (a1 - a0) * (b1 - b0) / t_unit, unit_rate / 1e9),
             (f"machine limit: best GEMM {peak:.0f} GFLOP/s / FLOPs per pair", peak * 1e9 / fpp, peak)]
    base = rows[0][1] if bert_score is not None else None
    print(f"\nAll-pairs BERTScore F1, all-MiniLM-L6-v2 layer {enc.layer} ({enc.dim}-d), {fpp / 1e3:.0f} kFLOP per pair "
          f"(mean {lengths.mean():.1f} tokens per caption)")
    print(f"{'':68s} {'pairs/s':>12s} {'GFLOP/s':>9s} {'x bert_score(64)':>17s}")
    for name, rate, gf in rows:
        print(f"{name:68s} {rate:12,.0f} {gf:9.0f} {(rate / base if base else float('nan')):17.1f}")
    print(f"(embedding: {tokens_per_s:,.0f} tokens/s; kernel at {flops / t_kernel / 1e9 / peak:.0%} of the GEMM limit on the "
          f"{n:,} captions, {unit_rate / 1e9 / peak:.0%} on a full-size unit)")

    est_pairs = full_flops / unit_rate
    est_embed = float(sum(len(a) for a in uniq_full)) / tokens_per_s
    est_pilot = 256 * U * (full_flops / (U * (U - 1) / 2)) / unit_rate
    est = est_pairs + est_embed + est_pilot + t_tok_full + 30            # + ~30 s to load units and write the labels
    print(f"\nfull training set: {len(captions):,} captions, {U:,} unique ({L.mean():.2f} tokens on average), "
          f"{len(captions) * (len(captions) - 1) // 2:,} caption pairs, {U * (U - 1) // 2:,} unique pairs, "
          f"{len(ranges) * (len(ranges) + 1) // 2} units of 4,096 x 4,096")
    print(f"one full-size unit (real token lengths, random vectors): {t_unit:.1f} s ({unit_rate / 1e9:.0f} GFLOP/s) -> estimated full run {est / 60:.1f} min "
          f"(pairs {est_pairs / 60:.1f}, embedding {est_embed / 60:.1f}, pilot {est_pilot / 60:.1f}, other ~0.6)")
    del syn, emb

    if args.full:
        import subprocess
        from audiocap.similarity import SimilarityLabels
        out = args.out or Path(tempfile.mkdtemp(prefix="audiocap-sim-"))
        if any((out / "work").glob("unit_*.npz")):
            print(f"note: {out} holds units of an earlier run, which are reused; pass a new --out for a full timing")
        print(f"\nfull run into {out} (a child process, so that its peak memory is its own) ...", flush=True)
        code = ("import sys, torch; from audiocap.similarity import compute_similarity; "
                + (f"torch.set_num_threads({args.threads}); " if args.threads else "")
                + "compute_similarity(sys.argv[1], sys.argv[2], progress=True)")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, str(csv), str(out)], check=True)
        total = time.perf_counter() - t0
        rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20      # KiB on Linux
        m = SimilarityLabels(out).meta
        print(f"\nfull AudioCaps training set, all-MiniLM-L6-v2 layer {m['layer']}: {total / 60:.1f} min wall "
              f"({m['n_pairs'] / total:,.0f} caption pairs/s, {m['n_unique_pairs'] / total:,.0f} unique pairs/s); "
              f"peak RSS {rss_gb:.2f} GB; timings {json.dumps({k: round(v, 1) for k, v in m['seconds'].items()})}; labels in {out}")


if __name__ == "__main__":
    main()
