#!/usr/bin/env python
"""The paper's pipeline at AudioCaps scale (49,838 / 495 / 975 clips), stage by stage, with the time and peak memory of
each: how long the full recipe takes, measured here, and where it would fail.

    .venv/bin/python tools/scale_run.py OUT                      # every stage, about 45 minutes on 2 CPU cores
    .venv/bin/python tools/scale_run.py OUT --stages decoder     # one stage again (its inputs must be in OUT)
    .venv/bin/python tools/scale_run.py OUT --stages decoder --encoding joint   # the paper's joint encoding (eq. 9)

The captions are the real AudioCaps v1 captions (reference data, `shared/data/audiocaps/v1`). The audio cannot be had
offline, so the VGGish features are STAND-INS: seeded random (10, 128) arrays per clip, written with
`audiocap.features.write_features` and named "stand-in" in every output. They make the timings and memory real and
the scores meaningless (no score is reported). Stages, each in its own process (its peak resident memory is read
from the operating system when it ends):

  data        the caption CSVs and the stand-in feature store;
  similarity  all-pairs BERTScore labels of the 49,838 training captions (Sec. 3.2);
  cross       the 495 validation and 975 test clips' captions against them;
  retrieval   triplet retrieval (Sec. 3.2) at the paper's batch of 128: one whole epoch, timed;
  decoder     the fusion decoder (Sec. 3.3) on the full-size GPT-2 architecture (random weights, GPT-2's BPE from
              `shared/data/gpt2_tokenizer`) at the paper's batch of 512, separate guidance encoding (--encoding
              joint: the paper's, kept as stage decoder_joint): the frozen
              GPT-2 features of every caption computed once, then training for --decoder-seconds (a fixed time,
              because one epoch takes far longer here), from which the time per epoch is projected;
  captions    beam search (beam 4) for the 975 test clips with the retrieval's top-5 guidance, every caption forced to
              --caption-tokens tokens (a decoder with random weights would end its captions at once).

Writes OUT/scale.json and prints the table (time and peak memory per stage) and the projection of the paper's recipe
(200 retrieval + 200 decoder epochs) on this machine.
"""
from __future__ import annotations
import argparse, json, os, resource, shutil, subprocess, sys, time, warnings
from pathlib import Path

import numpy as np

from audiocap.testing import reference_data_dir, skip_reason

STAGES = ("data", "similarity", "cross", "retrieval", "decoder", "captions")


STAND_IN = "stand-in: seeded random arrays, not audio"


def stage_data(out: Path, args) -> dict:
    from audiocap.config import AudiocapError
    from audiocap.data import load_dataset
    from audiocap.features import write_features
    why = skip_reason("audiocaps", "v1", "train.csv")
    if why: raise AudiocapError(why)
    src = reference_data_dir()/"audiocaps"/"v1"
    (out/"data").mkdir(parents=True, exist_ok=True)
    for s in ("train", "val", "test"): shutil.copy(src/f"{s}.csv", out/"data"/f"{s}.csv")
    ds = load_dataset(out/"data")
    rng = np.random.default_rng(0)
    feats = {c.clip_id: rng.normal(size=(10, 128)).astype(np.float32) for c in ds.clips}
    store = write_features(out/"features", feats, encoder=STAND_IN, clip_seconds=10, overwrite=True)
    return dict(clips={s: len(ds.by_split(s).clips) for s in ("train", "val", "test")}, features=str(store),
                feature_mib=round(len(store) * 10 * 128 * 4 / 2**20, 1))


def stage_similarity(out: Path, args) -> dict:
    from audiocap.similarity import compute_similarity
    labels = compute_similarity(out/"data"/"train.csv", out/"similarity", progress=True)
    return dict(labels=str(labels))


def stage_cross(out: Path, args) -> dict:
    from audiocap.cross import cross_similarity
    from audiocap.similarity import SimilarityLabels
    labels, res = SimilarityLabels(out/"similarity"), {}
    for s in ("val", "test"):
        t0 = time.perf_counter()
        c = cross_similarity(out/"data"/f"{s}.csv", labels, out/f"cross_{s}", split=s, progress=True)
        res[s] = dict(seconds=round(time.perf_counter() - t0, 1), labels=str(c))
    return res


def stage_retrieval(out: Path, args) -> dict:
    from audiocap.config import RetrievalConfig
    from audiocap.cross import CrossLabels
    from audiocap.features import FeatureStore
    from audiocap.retrieval_training import train_retrieval
    from audiocap.similarity import SimilarityLabels
    cfg = RetrievalConfig()                                            # the paper's batch of 128 (Sec. 4.1)
    t0 = time.perf_counter()
    model = train_retrieval(FeatureStore(out/"features"), SimilarityLabels(out/"similarity"), out/"retrieval",
                            val_labels=CrossLabels(out/"cross_val"), cfg=cfg, max_epochs=1, progress=True, overwrite=True)
    return dict(batch_size=cfg.batch_size, epochs=1, seconds=round(time.perf_counter() - t0, 1), info=model.info.get("seconds"))


def _full_gpt2(folder: Path):
    "The full-size GPT-2 architecture (random weights) with GPT-2's BPE, saved as a Hugging Face folder and loaded."
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from audiocap.lm import load_lm, load_tokenizer
    if not (folder/"config.json").is_file():
        tok = load_tokenizer(reference_data_dir()/"gpt2_tokenizer")
        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config()).save_pretrained(folder)
        tok.save_pretrained(folder)
    return load_lm(folder)


def stage_decoder(out: Path, args) -> dict:
    from audiocap.config import DecoderConfig
    from audiocap.cross import CrossLabels
    from audiocap.decoder import train_decoder
    from audiocap.features import FeatureStore
    from audiocap.similarity import SimilarityLabels
    lm = _full_gpt2(out/"gpt2_random")
    cfg = DecoderConfig(guidance_encoding=args.encoding)               # batch 512 (Sec. 4.1)
    path = out/("decoder" if args.encoding == "separate" else f"decoder_{args.encoding}")
    if path.exists(): shutil.rmtree(path)
    run = train_decoder(FeatureStore(out/"features"), SimilarityLabels(out/"similarity"), path, lm=lm, cfg=cfg,
                        val_guidance=CrossLabels(out/"cross_val"), max_epochs=1, time_budget=args.decoder_seconds, progress=True)
    t, d = run.info["training"], run.info["data"]
    seen = t["examples_per_epoch"]
    per_example = args.decoder_seconds / max(seen, 1)
    return dict(encoding=args.encoding, batch_size=cfg.batch_size, caption_features=d["caption_features"], train_examples=d["n_train_examples"],
                trained_seconds=args.decoder_seconds, examples_trained=seen, seconds_per_example=round(per_example, 4),
                projected_epoch_seconds=round(per_example * d["n_train_examples"], 0), run_seconds=t["seconds"],
                param_counts=run.info["param_counts"])


def stage_captions(out: Path, args) -> dict:
    from audiocap.data import load_dataset
    from audiocap.decoder import load_decoder
    from audiocap.features import FeatureStore
    from audiocap.generate import generate
    from audiocap.retriever import Retriever
    from audiocap.similarity import SimilarityLabels
    store, labels = FeatureStore(out/"features"), SimilarityLabels(out/"similarity")
    dec = load_decoder(out/"decoder", lm=_full_gpt2(out/"gpt2_random"))
    ids = [c.clip_id for c in load_dataset(out/"data").by_split("test").clips]
    t0 = time.perf_counter()
    found = Retriever.from_run(out/"retrieval", features=store, labels=labels).retrieve(ids, dec.cfg.k)
    t_ret = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = args.caption_tokens                                           # random weights would end captions at once
    caps = generate(dec.model, dec.lm, store.as_array(ids), None, [found.guidance(i) for i in range(len(ids))], cfg=dec.cfg,
                    features=dec.features, min_len=n, max_len=n, progress=True)
    t_gen = time.perf_counter() - t0
    return dict(clips=len(ids), tokens_per_caption=n, retrieval_seconds=round(t_ret, 1), beam_seconds=round(t_gen, 1),
                captions_per_second=round(len(ids) / t_gen, 2), beam_size=dec.cfg.beam_size)


def run_stage(name: str, out: Path, args) -> None:
    "In the child process: run one stage and write its figures."
    import torch
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    res = globals()[f"stage_{name}"](out, args)
    (out/"figures").mkdir(exist_ok=True)
    (out/"figures"/f"{_key(name, args)}.json").write_text(json.dumps(res, indent=1, default=str))


def _key(stage: str, args) -> str:
    "The name a stage's figures are kept under: the joint decoder's apart from the separate one's."
    return "decoder_joint" if stage == "decoder" and args.encoding == "joint" else stage


def mib(kib: int) -> float: return kib / 1024          # ru_maxrss is in KiB on Linux


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder for the run (reused: a stage reads the outputs of the stages before it)")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {', '.join(STAGES)}")
    ap.add_argument("--decoder-seconds", type=float, default=300, help="decoder training time measured (default 300)")
    ap.add_argument("--caption-tokens", type=int, default=12, help="tokens per test caption, forced (default 12, about an AudioCaps caption)")
    ap.add_argument("--encoding", choices=("separate", "joint"), default="separate",
                    help="the decoder's guidance encoding: 'joint' (eq. 9, the paper's) writes its figures as stage decoder_joint")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--stage", help=argparse.SUPPRESS)               # the child's side
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage: return run_stage(args.stage, args.out, args)
    stages = [s for s in args.stages.split(",") if s]
    bad = [s for s in stages if s not in STAGES]
    if bad: ap.error(f"unknown stage {bad[0]!r}; stages: {', '.join(STAGES)}")
    table = json.loads((args.out/"scale.json").read_text()) if (args.out/"scale.json").is_file() else {}
    for s in stages:
        print(f"== {s}", flush=True)
        t0 = time.perf_counter()
        child = subprocess.Popen([sys.executable, __file__, str(args.out), "--stage", s, "--threads", str(args.threads),
                                  "--decoder-seconds", str(args.decoder_seconds),
                                  "--caption-tokens", str(args.caption_tokens), "--encoding", args.encoding], env={**os.environ, "TQDM_MININTERVAL": "30"})
        _, status, usage = os.wait4(child.pid, 0)
        if status: sys.exit(f"stage {s} failed (exit status {status})")
        table[_key(s, args)] = dict(seconds=round(time.perf_counter() - t0, 1), peak_mib=round(mib(usage.ru_maxrss)),
                                    load_average=round(os.getloadavg()[0], 2),
                                    figures=json.loads((args.out/"figures"/f"{_key(s, args)}.json").read_text()))
        (args.out/"scale.json").write_text(json.dumps(dict(table, machine=f"{os.cpu_count()} cores, {args.threads} threads",
                                                           features=STAND_IN), indent=1))
    print(f"\nAudioCaps v1 captions, {STAND_IN} as VGGish features; {os.cpu_count()} cores, {args.threads} torch threads\n")
    print("| stage | wall s | peak memory MiB | load average after |\n|---|---:|---:|---:|")
    for s in (*STAGES, "decoder_joint"):
        if s in table: print(f"| {s} | {table[s]['seconds']:,.0f} | {table[s]['peak_mib']:,} | {table[s]['load_average']} |")
    for dec, what in (("decoder_joint", "the paper's recipe (joint guidance encoding, eq. 9)"), ("decoder", "separate guidance encoding (ours)")):
        if {"retrieval", dec} <= set(table):
            r, d = table["retrieval"]["figures"]["seconds"], table[dec]["figures"]["projected_epoch_seconds"]
            once = sum(table[s]["seconds"] for s in ("similarity", "cross") if s in table) + table[dec]["figures"]["caption_features"]["seconds"]
            print(f"\nProjection of {what} on this machine: 200 retrieval epochs x {r:,.0f} s + 200 decoder epochs x "
                  f"{d:,.0f} s + {once:,.0f} s once (similarity, cross, caption features) = {(200 * (r + d) + once) / 86400:.1f} days")


if __name__ == "__main__":
    sys.exit(main())
