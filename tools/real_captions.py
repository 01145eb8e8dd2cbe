#!/usr/bin/env python
"""The text half of the paper on real captions: AudioCaps v1 or Clotho v2 at full size, the paper's decoder (joint
guidance encoding, eq. 9; plain beam search, beam 4) beside our separate encoding, "captions only".

    .venv/bin/python tools/real_captions.py OUT --dataset audiocaps    # about an hour on 2 CPU cores
    .venv/bin/python tools/real_captions.py OUT --dataset clotho       # smaller
    .venv/bin/python tools/real_captions.py OUT --stages scores        # one stage again (its inputs must be in OUT)

The captions are the real ones (reference data, `shared/data/audiocaps/v1`, `shared/data/clotho/v2`). The audio
cannot be had offline, so every clip's audio features are ALL-ZERO: the decoder learns and is scored from its
guidance alone. Every row says so ("captions only"); none of them is the paper's row with audio. What it measures is
Sec. 3.3's decoder, and the oracle scope (iii) of Table 1: "Ours (GT)" is the decoder given the K = 5 training captions
of highest BERTScore with the test clip's references. Stages, each in its own process (time and peak resident memory
read from the operating system), each skipped when its figures are there (a killed run resumes):

  data         the caption CSVs, and the all-zero feature store (one 0.96-s example of 128 zeros per clip);
  similarity   all-pairs BERTScore labels of the training captions (Sec. 3.2);
  cross        the validation and test clips' captions against them (Ours (GT)'s guidance, validation guidance);
  lm           the LM STAND-IN for GPT-2's weights (which cannot be had offline): a small GPT-2 (the demo's size,
               LMConfig(n_layer=2, n_head=4, n_embd=128)) with a 4,096-token byte-level BPE, both trained here on the
               training captions only, then frozen;
  decoder_joint, decoder_separate
               the fusion decoder trained with the paper's training guidance (K = 5 random "similar" captions in random
               order, Sec. 3.3) for DECODER_EPOCHS epochs, once with eq. 9's joint encoding, once with our separate one;
               validation guidance: BERTScore top-5 (as Ours (GT) is guided at test time);
  captions     beam search (beam 4, no n-gram blocking) for every test clip: Ours (GT, captions only) joint and separate,
               Ours (GT, captions only) given another clip's guidance (joint), and Top1-BERTScore;
  scores       BLEU-1..4, METEOR, CIDEr-D, ROUGE-L (SPICE when its jars are found) of every row and of Human, on all test
               clips and again without the clips whose reference copies a training caption word for word; paired
               bootstrap 95% intervals of each compared pair (audiocap.metrics).

Writes OUT/real.json (figures and time per stage) and prints the tables. `--store DIR` also copies real.json there
as real_captions_DATASET.json (90_benchmarks renders it).
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

STAGES = ("data", "similarity", "cross", "lm", "decoder_joint", "decoder_separate", "captions", "scores")
SOURCES = {"audiocaps": ("audiocaps", "v1", ("train.csv", "val.csv", "test.csv")),
           "clotho": ("clotho", "v2", tuple(f"clotho_captions_{s}.csv" for s in ("development", "validation", "evaluation")))}
CAPTIONS_ONLY = "captions only: all-zero audio features"
LM_EPOCHS = 5                     # passes of the LM stand-in over the training captions
DECODER_EPOCHS = 8                # fixed, the same for both encodings (Sec. 4.1 trains 200; this run must fit 90 min on 2 cores)
DECODER_LR_SCALE = 10.0           # as the demo: 1e-3 -> 1e-5 instead of 1e-4 -> 1e-6 (Sec. 4.1), for few epochs
DECODER_BATCH = 64                # as the demo (Sec. 4.1: 512); more steps per epoch in few epochs
ROWS = {"joint": "Ours (GT, captions only), joint", "separate": "Ours (GT, captions only), separate",
        "other": "Ours (GT, captions only), another clip's guidance", "top1": "Top1-BERTScore", "human": "Human"}
PAIRS = ((ROWS["joint"], ROWS["top1"]), (ROWS["joint"], ROWS["other"]), (ROWS["joint"], ROWS["separate"]))


def _cfg(encoding: str):
    "The decoder's config: the paper's (AudiocapConfig()) with the named departures above, and `encoding`."
    from audiocap.config import AudiocapConfig, LMConfig
    cfg = AudiocapConfig()
    cfg.lm = LMConfig(n_layer=2, n_head=4, n_embd=128, epochs=LM_EPOCHS)
    cfg.decoder.guidance_encoding, cfg.decoder.batch_size = encoding, DECODER_BATCH
    cfg.decoder.validation_guidance = "bertscore"
    return cfg


def _dataset(out: Path):
    from audiocap.data import load_dataset
    return load_dataset(out/"data")


def stage_data(out: Path, args) -> dict:
    from audiocap.config import AudiocapError
    from audiocap.features import write_features
    from audiocap.testing import reference_data_dir, skip_reason
    name, version, files = SOURCES[args.dataset]
    why = skip_reason(name, version, files[0])
    if why: raise AudiocapError(why)
    (out/"data").mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        if args.limit is None: shutil.copy(reference_data_dir()/name/version/f, out/"data"/f)
        else:                                                        # a smoke run: whole clips (AudioCaps val/test: 5 rows each)
            df = pd.read_csv(reference_data_dir()/name/version/f)
            key = "file_name" if "file_name" in df else "youtube_id"
            keep = df[key].drop_duplicates().iloc[:args.limit if i == 0 else max(2, args.limit // 5)]
            df[df[key].isin(set(keep))].to_csv(out/"data"/f, index=False)
    ds = _dataset(out)
    store = write_features(out/"features", {c.clip_id: np.zeros((1, 128), np.float32) for c in ds.clips}, encoder=CAPTIONS_ONLY,
                           clip_seconds=0.96, overwrite=True)
    split = {s: ds.by_split(s) for s in ("train", "val", "test")}
    return dict(clips={s: len(d.clips) for s, d in split.items()}, captions={s: sum(len(c.captions) for c in d.clips) for s, d in split.items()},
                features=str(store))


def stage_similarity(out: Path, args) -> dict:
    from audiocap.similarity import compute_similarity
    labels = compute_similarity(_dataset(out).by_split("train"), out/"similarity", progress=True)
    return dict(labels=str(labels))


def stage_cross(out: Path, args) -> dict:
    from audiocap.cross import cross_similarity
    from audiocap.similarity import SimilarityLabels
    labels, ds, res = SimilarityLabels(out/"similarity"), _dataset(out), {}
    for s in ("val", "test"):
        t0 = time.perf_counter()
        c = cross_similarity(ds.by_split(s), labels, out/f"cross_{s}", split=s, progress=True)
        res[s] = dict(seconds=round(time.perf_counter() - t0, 1), labels=str(c))
    return res


def stage_lm(out: Path, args) -> dict:
    from audiocap.lm import pretrain_lm
    ds, cfg = _dataset(out), _cfg("joint")
    caps = lambda s: [c for clip in ds.by_split(s).clips for c in clip.captions]
    if (out/"lm").exists(): shutil.rmtree(out/"lm")                 # an interrupted pre-training starts again
    lm = pretrain_lm(caps("train"), out/"lm", cfg=cfg.lm, val_texts=caps("val"), seed=0, progress=True)
    return dict(stand_in="a small GPT-2 pre-trained here on the training captions: a stand-in for GPT-2's weights",
                describe=lm.describe(), vocab_size=len(lm.tokenizer), **lm.info["pretrain"])


def _decoder(out: Path, encoding: str) -> dict:
    from audiocap.cross import CrossLabels
    from audiocap.decoder import train_decoder
    from audiocap.features import FeatureStore
    from audiocap.lm import load_lm
    from audiocap.similarity import SimilarityLabels
    cfg, path = _cfg(encoding), out/f"decoder_{encoding}"
    if path.exists(): shutil.rmtree(path)                            # an interrupted training starts again
    ds = _dataset(out)
    run = train_decoder(FeatureStore(out/"features"), SimilarityLabels(out/"similarity"), path, lm=load_lm(out/"lm"), cfg=cfg.decoder,
                        val_guidance=CrossLabels(out/"cross_val"), val_captions=ds.by_split("val").clips, max_epochs=DECODER_EPOCHS,
                        lr_scale=DECODER_LR_SCALE, seed=0, progress=True)
    t = run.info["training"]
    return dict(encoding=encoding, epochs=t["epochs_run"], best_epoch=t["best_epoch"], best_valid_loss=t["best_loss"],
                seconds_per_epoch=t["seconds_per_epoch"], seconds=t["seconds"], batch_size=t["batch_size"], lr_scale=t["lr_scale"],
                caption_features=run.info["data"]["caption_features"], param_counts=run.info["param_counts"],
                history=run.history.round(4).to_dict("list"))


def stage_decoder_joint(out: Path, args) -> dict: return _decoder(out, "joint")
def stage_decoder_separate(out: Path, args) -> dict: return _decoder(out, "separate")


def stage_captions(out: Path, args) -> dict:
    from audiocap.cross import CrossLabels
    from audiocap.decoder import load_decoder, topk_guidance
    from audiocap.features import FeatureStore
    from audiocap.generate import generate
    from audiocap.lm import load_lm
    from audiocap.metrics import write_captions
    from audiocap.pipeline import other_clips_guidance
    ds, store, lm = _dataset(out), FeatureStore(out/"features"), load_lm(out/"lm")
    cross = CrossLabels(out/"cross_test")
    ids = [c.clip_id for c in ds.by_split("test").clips]
    k = _cfg("joint").decoder.k
    gt = topk_guidance(cross, k)
    other = other_clips_guidance(gt, ids, seed=0)
    audio = store.as_array(ids)                                      # all zero: captions only
    preds, seconds = {ROWS["top1"]: {q: cross.ref.captions[cross.top1(q)[0]] for q in ids}}, {}
    for enc, g, row in (("joint", gt, ROWS["joint"]), ("separate", gt, ROWS["separate"]), ("joint", other, ROWS["other"])):
        dec = load_decoder(out/f"decoder_{enc}", lm=lm)
        t0 = time.perf_counter()
        preds[row] = dict(zip(ids, generate(dec.model, lm, audio, None, [g[q] for q in ids], cfg=dec.cfg, features=dec.features,
                                            progress=True)))
        seconds[row] = round(time.perf_counter() - t0, 1)
    (out/"predictions").mkdir(exist_ok=True)
    files = {}
    for row, p in preds.items():
        files[row] = str(write_captions(p, out/"predictions"/f"{_slug(row)}.csv"))
    (out/"predictions"/"guidance.json").write_text(json.dumps({"Ours (GT)": dict(gt), "another clip's guidance": other}, indent=0))
    return dict(clips=len(ids), beam_size=_cfg("joint").decoder.beam_size, seconds=seconds, files=files,
                examples=[dict(clip=q, reference=ds.by_split("test").clips[i].captions[0], **{r: preds[r][q] for r in preds})
                          for i, q in enumerate(ids[:5])])


def _slug(name: str) -> str:
    import re
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def stage_scores(out: Path, args) -> dict:
    from audiocap.metrics import Meteor, bootstrap_method, evaluate, human_scores, paired_differences, read_captions
    from audiocap.pipeline import exact_copies
    ds = _dataset(out)
    refs = {c.clip_id: list(c.captions) for c in ds.by_split("test").clips}
    preds = {r: {q: v[0] for q, v in read_captions(out/"predictions"/f"{_slug(r)}.csv").items()} for r in ROWS.values() if r != "Human"}
    copies = set(exact_copies(refs, [c for clip in ds.by_split("train").clips for c in clip.captions]))
    kept = {q: r for q, r in refs.items() if q not in copies}
    res = dict(n_test=len(refs), n_copies=len(copies), interval_method=bootstrap_method())
    with Meteor() as meteor:
        for subset, key in ((refs, ""), (kept, "_no_copies")):
            rows, per = {}, {}
            for r, p in preds.items(): rows[r], per[r] = evaluate({q: p[q] for q in subset}, subset, meteor=meteor, per_clip=True)
            rows["Human"] = human_scores(subset, meteor=meteor)
            res["rows" + key] = rows
            res["intervals" + key] = {f"{a} - {b}": {m: dict(diff=float(v.difference), low=float(v.low), high=float(v.high), clip_mean=bool(v.clip_mean))
                                                     for m, v in paired_differences(per[a], per[b]).iterrows()} for a, b in PAIRS}
    return res


METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "CIDEr", "ROUGE-L", "SPICE")


def _fmt_rows(rows: dict) -> list[str]:
    cols = [m for m in METRICS if any(m in r for r in rows.values())]
    out = ["| row | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, r in rows.items(): out.append(f"| {name} | " + " | ".join(f"{r[m]:.1f}" if m in r else "-" for m in cols) + " |")
    return out


def render(table: dict) -> str:
    "The markdown of a run's real.json: time and memory per stage, the scores, the intervals and the targets."
    st = table["settings"]
    md = [f"{st['dataset']}, {st['features']}; LM stand-in {st['lm_epochs']} epochs, decoder {st['decoder_epochs']} epochs "
          f"(batch {st['decoder_batch']}, lr x{st['decoder_lr_scale']:g}); {table.get('machine', '')}"
          + (f"; SMOKE RUN on {st['limit']} training clips" if st.get("limit") else ""), "",
          "| stage | wall s | peak memory MiB | load average after |", "|---|---:|---:|---:|"]
    md += [f"| {s} | {table[s]['seconds']:,.0f} | {table[s]['peak_mib']:,} | {table[s]['load_average']} |" for s in STAGES if s in table]
    md += [f"| all | {sum(table[s]['seconds'] for s in STAGES if s in table):,.0f} | | |", ""]
    if "scores" not in table: return "\n".join(md)
    sc = table["scores"]["figures"]
    md += [f"All {sc['n_test']} test clips (scores x100):", "", *_fmt_rows(sc["rows"]), "",
           f"Without the {sc['n_copies']} test clips whose reference is word for word a training caption:", "", *_fmt_rows(sc["rows_no_copies"]), ""]
    for key, what in (("intervals", "all test clips"), ("intervals_no_copies", "without exact copies")):
        md += [f"Paired bootstrap 95% intervals of the differences ({what}; {sc['interval_method']}):", "",
               "| difference | " + " | ".join(m for m in METRICS if m in next(iter(sc[key].values()))) + " |",
               "|---|" + "---:|" * len([m for m in METRICS if m in next(iter(sc[key].values()))])]
        for pair, iv in sc[key].items():
            md.append(f"| {pair} | " + " | ".join(f"{v['diff']:+.1f} [{v['low']:.1f}, {v['high']:.1f}]" for m, v in
                                                  ((m, iv[m]) for m in METRICS if m in iv)) + " |")
        md += ["", "(CIDEr-D and ROUGE-L: the difference of the table's scores. BLEU and METEOR: of the mean per-clip scores, "
               "since their corpus score is not a mean over clips.)", ""]
    r = sc["rows_no_copies"]
    ratio = r[ROWS["joint"]]["CIDEr"] / r[ROWS["top1"]]["CIDEr"]
    other = sc["intervals"][f"{ROWS['joint']} - {ROWS['other']}"]["CIDEr"]
    js = sc["intervals"][f"{ROWS['joint']} - {ROWS['separate']}"]["CIDEr"]
    md += [f"- Ours (GT, captions only, joint) / Top1-BERTScore, CIDEr without copies: {ratio:.2f} (target >= 0.9; the paper, with "
           f"audio: 86.1 / 95.2 = 0.90): {'met' if ratio >= 0.9 else 'missed'}.",
           f"- Guidance matters: Ours (GT) - another clip's guidance, CIDEr {other['diff']:+.1f} [{other['low']:.1f}, {other['high']:.1f}]: "
           f"{'interval above 0' if other['low'] > 0 else 'interval not above 0'}.",
           f"- Joint - separate, CIDEr {js['diff']:+.1f} [{js['low']:.1f}, {js['high']:.1f}]: "
           + ("joint ahead" if js["low"] > 0 else "separate ahead" if js["high"] < 0 else "the interval holds 0: no difference shown") + "."]
    return "\n".join(md)


def plot(table: dict, path=None):
    "CIDEr of every row (all test clips, and without exact copies) and the CIDEr differences with their 95% intervals."
    import matplotlib.pyplot as plt
    sc = table["scores"]["figures"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 2.8), width_ratios=[1.1, 1], layout="constrained"); plt.close(fig)
    names = list(sc["rows"])
    y = np.arange(len(names))
    a.barh(y + 0.2, [sc["rows"][n]["CIDEr"] for n in names], 0.4, label=f"all {sc['n_test']} test clips")
    a.barh(y - 0.2, [sc["rows_no_copies"][n]["CIDEr"] for n in names], 0.4, label=f"without {sc['n_copies']} exact copies")
    a.set_yticks(y, [n.replace("Ours (GT, captions only), ", "Ours (GT), ") for n in names], fontsize=7); a.invert_yaxis()
    a.set_xlabel("CIDEr-D (x100)"); a.legend(fontsize=7); a.set_title(table["settings"]["dataset"] + ", captions only", fontsize=8)
    for k, (key, c) in enumerate((("intervals", "C0"), ("intervals_no_copies", "C1"))):
        pairs = list(sc[key])
        d = np.array([[sc[key][p]["CIDEr"][f] for f in ("diff", "low", "high")] for p in pairs])
        yy = np.arange(len(pairs)) + (0.15 if k == 0 else -0.15)
        b.errorbar(d[:, 0], yy, xerr=[d[:, 0] - d[:, 1], d[:, 2] - d[:, 0]], fmt="o", color=c, capsize=3,
                   label="all test clips" if k == 0 else "without exact copies")
    b.axvline(0, color="k", lw=0.8)
    short = lambda p: p.replace("Ours (GT, captions only), joint", "Ours (GT) joint").replace("Ours (GT, captions only), ", "")
    b.set_yticks(np.arange(len(pairs)), [short(p) for p in pairs], fontsize=7); b.invert_yaxis()
    b.set_xlabel("CIDEr-D difference, 95% interval"); b.legend(fontsize=7)
    if path is not None: fig.savefig(path, dpi=100); return Path(path)
    return fig


def run_stage(name: str, out: Path, args) -> None:
    "In the child process: run one stage and write its figures."
    import torch
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    res = globals()[f"stage_{name}"](out, args)
    (out/"figures").mkdir(exist_ok=True)
    (out/"figures"/f"{name}.json").write_text(json.dumps(res, indent=1, default=str))


def mib(kib: int) -> float: return kib / 1024          # ru_maxrss is in KiB on Linux


def settings(args) -> dict:
    "What a run folder was made with: a resumed run must use the same."
    return dict(dataset=args.dataset, lm_epochs=LM_EPOCHS, decoder_epochs=DECODER_EPOCHS, decoder_lr_scale=DECODER_LR_SCALE,
                decoder_batch=DECODER_BATCH, features=CAPTIONS_ONLY, limit=args.limit)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder for the run (reused: a stage reads the outputs of the stages before it)")
    ap.add_argument("--dataset", choices=sorted(SOURCES), default="audiocaps")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {', '.join(STAGES)} (default: all); "
                    "a stage that finished before is skipped")
    ap.add_argument("--redo", default="", help="comma-separated stages to run again although they finished")
    ap.add_argument("--limit", type=int, help="smoke run: only the first LIMIT training clips and LIMIT // 5 validation and "
                    "test clips (named in every output)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--store", type=Path, help="also copy real.json to STORE/real_captions_DATASET.json")
    ap.add_argument("--stage", help=argparse.SUPPRESS)               # the child's side
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage: return run_stage(args.stage, args.out, args)
    stages = [s for s in args.stages.split(",") if s]
    bad = [s for s in stages if s not in STAGES]
    if bad: ap.error(f"unknown stage {bad[0]!r}; stages: {', '.join(STAGES)}")
    path = args.out/"real.json"
    table = json.loads(path.read_text()) if path.is_file() else {}
    if table.get("settings", settings(args)) != settings(args):
        sys.exit(f"{args.out} was made with other settings ({table['settings']}); use a new folder")
    table["settings"] = settings(args)
    for s in stages:
        if s in table and s not in args.redo.split(","):
            print(f"== {s}: done before ({table[s]['seconds']:.0f} s), skipped", flush=True)
            continue
        print(f"== {s}", flush=True)
        t0 = time.perf_counter()
        child = subprocess.Popen([sys.executable, __file__, str(args.out), "--stage", s, "--dataset", args.dataset,
                                  "--threads", str(args.threads), *(["--limit", str(args.limit)] if args.limit else [])], env={**os.environ, "TQDM_MININTERVAL": "30"})
        _, status, usage = os.wait4(child.pid, 0)
        if status: sys.exit(f"stage {s} failed (exit status {status}); fix it and run the same command again: finished stages are kept")
        table[s] = dict(seconds=round(time.perf_counter() - t0, 1), peak_mib=round(mib(usage.ru_maxrss)),
                        load_average=round(os.getloadavg()[0], 2), figures=json.loads((args.out/"figures"/f"{s}.json").read_text()))
        table["machine"] = f"{os.cpu_count()} cores, {args.threads} threads"
        path.write_text(json.dumps(table, indent=1))
    if args.store:
        args.store.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, args.store/f"real_captions_{args.dataset}.json")
    print(render(table))
    if "scores" in table: print(f"wrote {plot(table, args.out/'real_captions.png')}")


if __name__ == "__main__":
    sys.exit(main())
