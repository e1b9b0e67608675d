"""Reading the checkpoints of earlier releases into today's :class:`~neurodecode.pipeline.DecodingPipeline`.

* **Format 2** (neurodecode 0.2): ``pipeline.json`` and flat parts — ``encoder.json/.npz``, ``aligner/`` (a torch
  aligner's training checkpoint) or ``aligner.json/.npz``, ``target.npz`` (with the gallery), ``low_level.json/.npz``
  (a ridge with the image shape in ``pipeline.json``), ``baseline_*.json/.npz``, ``guidance_encoder.json/.npz``,
  ``heads/<kind>.safetensors`` (trained heads' weights) and ``stimuli.h5`` (the stimulus table inside an epoch
  store). Nothing in it runs code when loaded.
* **Format 1**: ``*.joblib`` pickles — loaded only with ``trust_pickle=True``, with a warning.

Tested on a format-2 checkpoint written by neurodecode 0.2 (``tests/data/checkpoint_format2``).

May import: every stage below (``neurodecode.core`` … ``neurodecode.evaluation``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.alignment.targets import TargetSpace
from neurodecode.core.configs import instantiate
from neurodecode.core.epochs import InputContract
from neurodecode.heads.base import check_head

__all__ = ["read_flat"]


def _heads(path: Path, meta: Mapping[str, Any], kinds: Sequence[str] | None, device: str | None) -> dict[str, Any]:
    from safetensors.torch import load_model

    built = {}
    for kind, cfg in meta["head_configs"].items():
        if kinds is not None and kind not in kinds:
            continue
        if device is not None and "device" in cfg:
            cfg = {**cfg, "device": device}
        head = check_head(instantiate(cfg, f"{path / 'pipeline.json'} head_configs.{kind}"), kind,
                          f"{path / 'pipeline.json'}: head_configs.{kind}")
        if kind in meta["trained_heads"]:
            weights = path / "heads" / f"{kind}.safetensors"
            if not weights.is_file():
                raise FileNotFoundError(f"{weights}: missing, though {path / 'pipeline.json'} field "
                                        f"'trained_heads' lists {kind!r}")
            load_model(head, str(weights), device=device or "cpu")
        built[kind] = head
    return built


def _low_level(ridge: Any, shape: Sequence[int]) -> Any:
    """A 0.2 low-level ridge (brain → flattened pixels of ``shape``) as the one low-level branch."""
    from neurodecode.heads.images import LowLevelImages

    low = LowLevelImages(tuple(int(v) for v in shape))
    low.ridge_, low.n_features_in_ = ridge, ridge.n_features_in_
    return low


def _guidance(spec: Mapping[str, Any], encoder: Any) -> Any:
    from neurodecode.alignment.encoding_models import BrainGuidance

    g = BrainGuidance(top_voxels=len(spec["voxels"]), size=int(spec["size"]))
    g.encoder_, g.voxels_, g.mean_, g.sd_ = encoder, list(spec["voxels"]), float(spec["mean"]), float(spec["sd"])
    g.n_features_in_ = None
    return g


def _pickled(path: Path, meta: Mapping[str, Any], trust_pickle: bool) -> tuple[Any, Any, Any]:
    if not trust_pickle:
        raise ValueError(f"{path / 'pipeline.json'}: field 'format': this is a format-1 checkpoint whose "
                         "encoder/aligner are pickles (*.joblib), which run code when loaded; re-create it "
                         "with `neurodecode train`, or pass trust_pickle=True if you trust where it came from")
    import warnings

    import joblib

    warnings.warn(f"{path}: loading pickled parts (trust_pickle=True): they can run arbitrary code",
                  UserWarning, stacklevel=4)
    encoder = joblib.load(path / "encoder.joblib")
    low = joblib.load(path / "low_level.joblib") if meta.get("low_level") else None
    aligner = joblib.load(path / "aligner.joblib") if meta["aligner"] == "joblib" else None
    return encoder, aligner, None if low is None else _low_level(low, meta["low_level"])


def _parts(path: Path, meta: Mapping[str, Any], device: str | None, trust_pickle: bool) -> tuple[Any, Any, Any]:
    """(encoder, aligner, low-level) of a format-2 checkpoint, or of a format-1 one with ``trust_pickle``."""
    from hydra.utils import get_class

    from neurodecode.core.configs import check_targets
    from neurodecode.core.persistence import load_estimator
    from neurodecode.core.registry import current_path

    if meta["format"] == 1:
        encoder, aligner, low = _pickled(path, meta, trust_pickle)
    else:
        for part, file in (("stimuli", "stimuli.h5"), ("low_level", "low_level.json"),
                           ("baseline", "baseline_aligner.json")):
            if meta.get(part) and not (path / file).is_file():
                raise FileNotFoundError(f"{path / file}: missing, though {path / 'pipeline.json'} field '{part}' "
                                        "says the checkpoint has it (an incomplete copy?)")
        encoder = load_estimator(path, "encoder")
        low = _low_level(load_estimator(path, "low_level"), meta["low_level"]) if meta.get("low_level") else None
        aligner = load_estimator(path, "aligner") if meta["aligner"] == "estimator" else None
    if aligner is None:
        check_targets({"_target_": meta["aligner"]}, f"{path / 'pipeline.json'}: aligner")
        aligner = get_class(current_path(meta["aligner"])).load(path / "aligner", device=device or "cpu")
    return encoder, aligner, low


def read_flat(path: Path, meta: Mapping[str, Any], device: str | None, kinds: Sequence[str] | None,
              trust_pickle: bool) -> dict[str, Any]:
    """The parts of a format-2 (or, with ``trust_pickle``, format-1) checkpoint folder, as the keyword arguments of
    :class:`~neurodecode.pipeline.DecodingPipeline` (``baseline`` as ``(name, encoder, aligner)``)."""
    from neurodecode.core.persistence import load_estimator
    from neurodecode.core.storage import load

    if not (path / "target.npz").is_file():
        raise FileNotFoundError(f"{path / 'target.npz'}: missing (an incomplete checkpoint)")
    encoder, aligner, low = _parts(path, meta, device, trust_pickle)
    with np.load(path / "target.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    target = TargetSpace.from_state(meta["target"], {k[7:]: v for k, v in arrays.items() if k.startswith("target_")})
    stimuli = load(path / "stimuli.h5").stimuli if meta.get("stimuli", (path / "stimuli.h5").is_file()) else None
    if meta.get("gallery"):
        if "gallery" not in arrays:
            raise ValueError(f"{path / 'target.npz'}: field 'gallery': missing, though {path / 'pipeline.json'} says "
                             "the checkpoint has a retrieval gallery")
        if stimuli is None or len(stimuli) != len(arrays["gallery"]):
            raise ValueError(f"{path / 'stimuli.h5'}: expected one stimulus per gallery row "
                             f"({len(arrays['gallery'])}), got {None if stimuli is None else len(stimuli)}")
        target.gallery_, target.gallery_ids_ = arrays["gallery"], stimuli["stimulus"].astype(str).tolist()
    baseline = guidance = None
    if meta.get("baseline") and meta["format"] == 2:
        baseline = (meta["baseline"], load_estimator(path, "baseline_encoder"), load_estimator(path, "baseline_aligner"))
    if meta.get("guidance") and meta["format"] == 2:
        guidance = _guidance(meta["guidance"], load_estimator(path, "guidance_encoder"))
    return {"config": meta["config"], "contract": InputContract.from_dict(meta["contract"], str(path / "pipeline.json")),
            "encoder": encoder, "target": target, "aligner": aligner, "heads": _heads(path, meta, kinds, device),
            "head_configs": meta["head_configs"], "trained_heads": meta["trained_heads"], "low_level": low,
            "stimuli": stimuli, "baseline": baseline, "selection": meta.get("aligner_selection"), "guidance": guidance}
