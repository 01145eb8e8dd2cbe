"""What the decoder tools (decoder_epochs.py, run_decoder_synth.py) read from a finished demo/reproduce run folder,
loaded in one place through `audiocap.pipeline.RunFolder`: config, settings, features, similarity labels, LM,
references, and the retrieval guidance of the validation clips (the run's retriever) and of the test clips."""
from __future__ import annotations
import json
from dataclasses import dataclass
from pathlib import Path

from audiocap.config import AudiocapConfig, load_config
from audiocap.data import load_dataset
from audiocap.features import FeatureStore
from audiocap.lm import LanguageModel, load_lm
from audiocap.pipeline import RunFolder
from audiocap.retriever import Retriever
from audiocap.similarity import SimilarityLabels


@dataclass
class RunInputs:
    "The inputs of a finished run that retraining and scoring its decoder need."
    folder: RunFolder
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
    folder = RunFolder(run)
    folder.check_trained()
    cfg, settings = load_config(folder.config), folder.read_settings()
    store, labels = FeatureStore(folder.features), SimilarityLabels(folder.similarity)
    lm = load_lm(folder.lm if folder.has_lm() else settings["lm"])
    ds = load_dataset(folder.data)
    refs = {s: {c.clip_id: list(c.captions) for c in ds.by_split(s).clips} for s in ("val", "test")}
    val_ids = list(refs["val"])
    found = Retriever.from_run(folder.retrieval, features=store, labels=labels).retrieve(val_ids, cfg.decoder.k)
    return RunInputs(folder, cfg, settings, store, labels, lm, refs, {q: found.guidance(i) for i, q in enumerate(val_ids)},
                     json.loads(folder.guidance.read_text()))
