#!/usr/bin/env python
"""Throughput and memory of `audiocap.features.extract_features` on this machine, against a plain pipeline and the
machine's limit; prints markdown tables (reported in nbs/90_benchmarks.ipynb).

    .venv/bin/python tools/bench_features.py                 # 300 synthetic 10-s clips, 2 torch threads
    .venv/bin/python tools/bench_features.py --clips 100 --data /tmp/synth300 --repeats 1
    .venv/bin/python tools/bench_features.py --sections tune       # batch sizes x decoding threads

(a) ours: `extract_features` (batched windows, channels-last VGGish, decoding in a thread), fixed mode, random
    weights; the rate is audio seconds over the wall time of the whole call with the model already loaded.
(b) reference: the same loader, the official numpy front end `waveform_to_examples` and VGGish as it comes
    (contiguous layout), one clip (10 examples) per forward under `torch.no_grad`.
(c) limit: VGGish's FLOPs per second of audio (counted layer by layer) against a measured float32 rate:
    torch.matmul of 4096x4096 matrices (MKL), and the same product as a 1x1 convolution (oneDNN, what VGGish's
    convolutions run on).
Peak memory (max RSS) of extraction runs of different sizes, each in a fresh process.
The figures of (a) and (b) are the best of --repeats alternating runs: other processes on a shared machine only
ever slow a run down.
"""
from __future__ import annotations
import argparse, inspect, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path


def matmul_gflops(n: int = 4096, repeats: int = 5) -> float:
    "Best float32 GFLOP/s of torch.matmul on n x n matrices."
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def onednn_gflops(n: int = 2048, hw: int = 64, repeats: int = 5) -> float:
    "Best float32 GFLOP/s of an (n x n) by (n x hw*hw) product computed as a channels-last 1x1 convolution (oneDNN)."
    import torch
    conv = torch.nn.Conv2d(n, n, 1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(1, n, hw, hw).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        conv(x)
        best = min(_timed(lambda: conv(x)) for _ in range(repeats))
    return 2 * n * n * hw * hw / best / 1e9


def _timed(f) -> float:
    t = time.perf_counter(); f(); return time.perf_counter() - t


def vggish_flops_per_example(model) -> int:
    "Multiply-adds x 2 of one (96, 64) example through the network (convolutions and linear layers)."
    import torch
    flops = []
    def conv_hook(m, i, o): flops.append(2 * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] * o.shape[2] * o.shape[3])
    def lin_hook(m, i, o): flops.append(2 * m.in_features * m.out_features)
    hooks = [m.register_forward_hook(conv_hook if isinstance(m, torch.nn.Conv2d) else lin_hook)
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode(): model(torch.zeros(1, 96, 64))
    for h in hooks: h.remove()
    return sum(flops)


def ours(clips, model, out: Path, **kw) -> float:
    "Audio seconds per second of one extraction of `clips` into a fresh store."
    from audiocap.features import extract_features
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    st = extract_features(clips, out, weights=model, progress=False, **kw)
    return st.stats["audio_seconds"] / (time.perf_counter() - t)


def network_only(model, n_examples: int, channels_last: bool, repeats: int = 5) -> float:
    "Audio seconds per second of the network alone on batches of `n_examples` examples (best of `repeats`)."
    import torch
    x = torch.randn(n_examples, 96, 64)
    if channels_last: model.to(memory_format=torch.channels_last)
    try:
        with torch.inference_mode():
            model(x)
            best = min(_timed(lambda: model(x)) for _ in range(repeats))
    finally: model.to(memory_format=torch.contiguous_format)
    return n_examples * 0.96 / best


def reference(clips, model) -> float:
    "Audio seconds per second of the plain pipeline: numpy front end, one clip per forward, contiguous layout."
    import torch
    from audiocap.audio import load_audio
    from audiocap.vggish import waveform_to_examples
    t, secs = time.perf_counter(), 0.0
    with torch.no_grad():
        for c in clips:
            x = load_audio(c.audio_path, 16_000, seconds=10)           # (160000,)
            ex = waveform_to_examples(x, 16_000)                        # (10, 96, 64)
            model(torch.from_numpy(ex)).numpy()                         # (10, 128)
            secs += len(x) / 16_000
    return secs / (time.perf_counter() - t)


def _rss_mib() -> float:
    "Resident memory of this process now (Linux /proc)."
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def child(args) -> None:
    "Run one extraction in this process and print its memory as JSON: process peak, and RSS before / highest during the run."
    import threading
    import torch
    torch.set_num_threads(args.threads)
    from audiocap.data import load_dataset
    from audiocap.features import extract_features
    from audiocap.vggish import load_vggish
    clips = load_dataset(args.data).by_split("train").clips[:args.child]
    model = load_vggish("random")
    out = Path(tempfile.mkdtemp(prefix="bench_rss_"))
    peak, done = [0.0], threading.Event()
    def sample():
        while not done.is_set(): peak[0] = max(peak[0], _rss_mib()); time.sleep(0.01)
    try:
        before = _rss_mib()
        th = threading.Thread(target=sample); th.start()
        st = extract_features(clips, out/"store", weights=model, progress=False, batch_size=args.batch_size)
        done.set(); th.join()
        print(json.dumps(dict(clips=len(st), before=before, during=peak[0], seconds=st.stats["seconds"],
                              max_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
    finally: shutil.rmtree(out, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=300, help="synthetic 10-s clips for (a) and the memory runs (default 300)")
    p.add_argument("--ref-clips", type=int, default=60, help="clips for the reference pipeline and the tuning table (default 60)")
    p.add_argument("--data", default=None, help="an existing synthetic dataset with at least --clips train clips (default: make one)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--repeats", type=int, default=2, help="alternating runs of (a) and (b); the best of each is reported")
    p.add_argument("--batch-size", type=int, default=None, help="batch size of (a) (default: the package's)")
    p.add_argument("--sections", default="speed,memory", help="comma-separated: speed, memory, tune (default speed,memory)")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None: return child(args)
    sections = set(args.sections.split(","))

    import torch
    torch.set_num_threads(args.threads)
    from audiocap.data import load_dataset
    from audiocap.synth import synthesize
    from audiocap.vggish import load_vggish
    from audiocap import features as F
    tmp = Path(tempfile.mkdtemp(prefix="bench_features_"))
    try:
        data = Path(args.data) if args.data else tmp/"data"
        if not args.data:
            t = time.perf_counter()
            synthesize(data, n_train=args.clips, n_val=1, n_test=1, progress=False)   # (load_dataset fails on an empty split csv)
            print(f"synthesized {args.clips} clips in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        args.data = str(data)
        clips = load_dataset(data).by_split("train").clips[:args.clips]
        model = load_vggish("random")
        batch = args.batch_size or F.BATCH_SIZE
        print(f"Machine: {os.cpu_count()} CPU cores, torch {torch.__version__} with {args.threads} threads, "
              f"load average {os.getloadavg()[0]:.2f} at the start.")

        if "speed" in sections:
            flops = vggish_flops_per_example(model)
            per_audio_s = flops / 0.96
            mm, dnn = matmul_gflops(), onednn_gflops()
            a, b, na, nb = [], [], [], []
            for r in range(args.repeats):
                a.append(ours(clips, model, tmp/"store", batch_size=batch)); print(f"(a) run {r}: {a[-1]:.1f} x", file=sys.stderr)
                b.append(reference(clips[:args.ref_clips], model)); print(f"(b) run {r}: {b[-1]:.1f} x", file=sys.stderr)
                na.append(network_only(model, batch * 10, True)); nb.append(network_only(model, 10, False))
            a, b, na, nb = max(a), max(b), max(na), max(nb)
            lim_mm, lim_dnn = mm * 1e9 / per_audio_s, dnn * 1e9 / per_audio_s
            print(f"\nVGGish: {flops / 1e9:.3f} GFLOP per 0.96-s example = {per_audio_s / 1e9:.3f} GFLOP per second of audio; "
                  f"load average {os.getloadavg()[0]:.2f} after the runs.\n")
            print("| | (a) audiocap.features | (b) reference pipeline | (c) limit: torch.matmul rate | (c') limit: oneDNN rate |")
            print("|---|---|---|---|---|")
            workers = inspect.signature(F.extract_features).parameters["workers"].default
            print(f"| what | batch {batch} clips ({batch * 10} examples) per forward, channels-last, decoding in {workers} thread(s), {len(clips)} clips "
                  f"| numpy front end, 1 clip per forward, {min(len(clips), args.ref_clips)} clips "
                  f"| {mm:.0f} GFLOP/s (4096² float32 matmul, MKL) | {dnn:.0f} GFLOP/s (same product as 1x1 conv, oneDNN) |")
            print(f"| audio s per s (x real time) | **{a:.1f}** | {b:.1f} | {lim_mm:.1f} | {lim_dnn:.1f} |")
            print(f"| the network alone, same batches | {na:.1f} | {nb:.1f} | | |")
            print(f"| (a) relative | 1 | {a / b:.2f}x faster | {100 * a / lim_mm:.0f}% of it | {100 * a / lim_dnn:.0f}% of it |")
            print(f"| GFLOP/s in the network | {a * per_audio_s / 1e9:.0f} | {b * per_audio_s / 1e9:.0f} | {mm:.0f} | {dnn:.0f} |")

        if "memory" in sections:
            rows = []
            for n in sorted({max(1, args.clips // 3), args.clips}):
                r = subprocess.run([sys.executable, __file__, "--child", str(n), "--data", str(data), "--threads", str(args.threads),
                                    "--batch-size", str(batch)], capture_output=True, text=True)
                if r.returncode: raise SystemExit(r.stderr)
                rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print("\n| clips extracted (fresh process each) | " + " | ".join(str(x["clips"]) for x in rows) + " |")
            print("|---|" + "---|" * len(rows))
            print("| RSS before the run, model loaded (MiB) | " + " | ".join(f"{x['before']:.0f}" for x in rows) + " |")
            print("| highest RSS during the run (MiB, sampled every 10 ms) | " + " | ".join(f"{x['during']:.0f}" for x in rows) + " |")
            print("| peak RSS of the process (MiB, includes loading the model) | " + " | ".join(f"{x['max_rss']:.0f}" for x in rows) + " |")
            print("| wall time of the run (s) | " + " | ".join(f"{x['seconds']:.1f}" for x in rows) + " |")

        if "tune" in sections:
            few = clips[:args.ref_clips]
            print(f"\nTuning (x real time, best of {args.repeats}; {len(few)} synthetic clips unless said otherwise):\n")
            print("| batch size (clips) | " + " | ".join(f"workers={w}" for w in (0, 1, 2)) + " |")
            print("|---|---|---|---|")
            for bs in (1, 2, 4, 8, 16):
                cells = [max(ours(few, model, tmp/"tune", batch_size=bs, workers=w) for _ in range(args.repeats)) for w in (0, 1, 2)]
                print(f"| {bs} | " + " | ".join(f"{c:.1f}" for c in cells) + " |", flush=True)
            from audiocap.testing import reference_data_dir, skip_reason
            if skip_reason("captioned_audio", "manifest.csv") is None:
                real = load_dataset(reference_data_dir()/"captioned_audio").clips
                cells = [max(ours(real, model, tmp/"tune", batch_size=batch, workers=w) for _ in range(args.repeats)) for w in (0, 1, 2)]
                print(f"| {batch}, {len(real)} real clips (22.05/44.1 kHz, resampy) | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
            print(f"\nload average {os.getloadavg()[0]:.2f} at the end.")
    finally: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
