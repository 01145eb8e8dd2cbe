"""What the decoder tools (decoder_epochs.py, run_decoder_synth.py) read from a finished demo/reproduce run folder,
loaded in one place: config, settings, features, similarity labels, LM, references, and the retrieval guidance of the
validation clips (the run's retriever) and of the test clips (predictions/guidance.json)."""
from __future__ import annotations
import json
from dataclasses import dataclass
from pathlib import Path

from audiocap.config import AudiocapConfig, load_config
from audiocap.data import load_dataset
from audiocap.features import FeatureStore
from audiocap.lm import LanguageModel, load_lm
from audiocap.retriever import Retriever
from audiocap.similarity import SimilarityLabels


@dataclass
class RunInputs:
    "The inputs of a finished run that retraining and scoring its decoder need."
    run: Path
    cfg: AudiocapConfig
    settings: dict                       # settings.json: decoder_epochs, decoder_lr_scale, lm, ...
    store: FeatureStore
    labels: SimilarityLabels
    lm: LanguageModel
    refs: dict[str, dict[str, list[str]]]  # split ("val", "test") -> clip id -> reference captions
    val_guidance: dict[str, list[str]]   # validation clip id -> its K retrieved captions (the run's retriever)
    test_guidance: dict[str, dict[str, list[str]]]  # row ("Ours", "Ours (GT)") -> test clip id -> guidance captions


def load_run(run: Path) -> RunInputs:
    "Load `run` (a folder written by `audiocap demo --out RUN` or `audiocap reproduce`)."
    run = Path(run)
    if not (run/"decoder"/"run.json").is_file():
        raise SystemExit(f"{run} is not a finished run (decoder/run.json missing); make one with `audiocap demo --out {run}`")
    cfg = load_config(run/"config.json")
    settings = json.loads((run/"settings.json").read_text())
    store, labels = FeatureStore(run/"features"), SimilarityLabels(run/"similarity")
    lm = load_lm(run/"lm") if (run/"lm").is_dir() else load_lm(settings["lm"])
    ds = load_dataset(run/"data")
    refs = {s: {c.clip_id: list(c.captions) for c in ds.by_split(s).clips} for s in ("val", "test")}
    val_ids = list(refs["val"])
    found = Retriever.from_run(run/"retrieval", features=store, labels=labels).retrieve(val_ids, cfg.decoder.k)
    return RunInputs(run, cfg, settings, store, labels, lm, refs, {q: found.guidance(i) for i, q in enumerate(val_ids)},
                     json.loads((run/"predictions"/"guidance.json").read_text()))
