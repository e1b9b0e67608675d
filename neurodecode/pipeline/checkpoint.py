"""A trained decoding pipeline in one checkpoint folder: input contract + data recipe → encoder → aligner → heads.

``neurodecode train`` fits a :class:`DecodingPipeline` (:mod:`neurodecode.pipeline.fitting`) and saves it;
``neurodecode reconstruct`` (:mod:`neurodecode.pipeline.decoding`) loads it, reads a subject's recordings with the
**same recipe** (the data and preprocessing configs travel in the checkpoint), checks them against the **input
contract** (channel names and types, sampling rate, window), and runs the encoder, the aligner and the heads.

Checkpoint folder (format 2) — no pickle anywhere, so loading one never runs code::

    pipeline.json          format version, resolved training config, input contract, target space, head configs,
                           the parts it holds
    encoder.json/.npz      the fitted encoder (voxel z-scoring, Riemannian recipe, MAE features): parameters as JSON,
                           fitted arrays as .npz (read with allow_pickle=False), models as safetensors
    aligner/ | aligner.json/.npz   torch aligners as safetensors + JSON, ridge as JSON + arrays
    target.npz             the target space's arrays (PCA components, gallery embeddings)
    low_level.json/.npz    MindEye's low-level branch (ridge brain → pixels), when used
    baseline_encoder.json/.npz, baseline_aligner.json/.npz   the plain baseline fitted beside the pipeline (voxel
                           features → ridge), absent when the pipeline is that baseline
    guidance_encoder.json/.npz   encoder-guided generation's ridge encoder (images.brain_guidance), when used
    heads/<kind>.safetensors   weights of heads trained at training time (tiny generators, caption mappers)
    stimuli.h5             the stimulus table known at training time (the retrieval gallery)

Every class named in the checkpoint (estimators, aligners, head configs) is checked against the ``_target_``
allowlist before it is imported. A part that ``pipeline.json`` lists but the folder lacks is an error naming it.
Format-1 checkpoints (``*.joblib`` pickles) load only with ``trust_pickle=True``, with a warning.

May import: every stage below (``neurodecode.core`` … ``neurodecode.evaluation``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.alignment.targets import TargetSpace
from neurodecode.core.configs import instantiate
from neurodecode.encoders.features import encoder_input
from neurodecode.core.persistence import dumps
from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.heads.base import check_head

__all__ = ["FORMAT", "DecodingPipeline", "Inference", "check_contract", "input_contract"]

FORMAT = 2
#: the last format whose parts were pickles (loaded only with trust_pickle=True)
PICKLE_FORMAT = 1


def input_contract(epochs: EpochSet) -> dict[str, Any]:
    """What a pipeline trained on ``epochs`` needs of new recordings."""
    return {"ch_names": list(epochs.channels.names), "ch_types": list(epochs.channels.types),
            "sfreq": float(epochs.sfreq), "n_times": int(epochs.n_times), "tmin": float(epochs.tmin)}


def check_contract(contract: Mapping[str, Any], epochs: EpochSet, where: str, checkpoint: str = "the checkpoint"
                   ) -> EpochSet:
    """Return ``epochs`` with the checkpoint's channels in its order, or raise one error listing every mismatch."""
    problems = []
    names, types = list(contract["ch_names"]), dict(zip(contract["ch_names"], contract["ch_types"]))
    have = dict(zip(epochs.channels.names, epochs.channels.types))
    missing = [c for c in names if c not in have]
    extra = [c for c in have if c not in types]
    if missing:
        problems.append(f"channels: {len(missing)} of the {len(names)} the model was trained on are missing, "
                        f"e.g. {missing[:5]}")
    if extra:
        problems.append(f"channels: {len(extra)} not known to the model, e.g. {extra[:5]} (pick them away)")
    wrong = [f"{c} ({have[c]} ≠ {types[c]})" for c in names if c in have and have[c] != types[c]]
    if wrong:
        problems.append(f"channel types: {wrong[:5]}")
    if not np.isclose(epochs.sfreq, contract["sfreq"]):
        problems.append(f"sfreq: expected {contract['sfreq']:g} Hz, got {epochs.sfreq:g} Hz (resample with the "
                        "same recipe)")
    if epochs.n_times != contract["n_times"]:
        problems.append(f"n_times: expected {contract['n_times']} samples per epoch, got {epochs.n_times}")
    if not np.isclose(epochs.tmin, contract["tmin"], atol=0.5 / contract["sfreq"]):
        problems.append(f"tmin: expected {contract['tmin']:g} s, got {epochs.tmin:g} s")
    if problems:
        raise ValueError(f"{where}: the recordings do not match the input contract of {checkpoint}:\n  - "
                         + "\n  - ".join(problems))
    return epochs if list(epochs.channels.names) == names else epochs.pick_channels(names)


@dataclasses.dataclass
class Inference:
    """What a pipeline computes from epochs: ``features`` (n_epochs, n_features) of the encoder, ``latents``
    (n_epochs, embed_dim) of the aligner."""

    features: np.ndarray
    latents: np.ndarray


class DecodingPipeline:
    """A fitted encoder → aligner → heads chain with its input contract and data recipe.

    Build one with :func:`neurodecode.pipeline.fit_pipeline` (or ``neurodecode train``); load one with
    :meth:`load`. ``latents(epochs)`` gives the predicted latents (n_epochs, embed_dim); ``heads`` maps each output
    kind to a head of the protocol in :mod:`neurodecode.heads.base`.
    """

    def __init__(self, config: Mapping[str, Any], contract: Mapping[str, Any], encoder: Any, target: TargetSpace,
                 aligner: Any, heads: Mapping[str, Any] | None = None, head_configs: Mapping[str, Any] | None = None,
                 trained_heads: Sequence[str] = (), low_level: Any = None, stimuli: pd.DataFrame | None = None,
                 gallery: np.ndarray | None = None, baseline: Mapping[str, Any] | None = None,
                 selection: Mapping[str, Any] | None = None) -> None:
        self.config, self.contract, self.encoder, self.target = dict(config), dict(contract), encoder, target
        self.aligner, self.heads = aligner, dict(heads or {})
        self.head_configs, self.trained_heads = dict(head_configs or {}), list(trained_heads)
        self.low_level, self.stimuli, self.gallery = low_level, stimuli, gallery
        self.baseline = None if baseline is None else dict(baseline)
        #: how ``aligner=auto`` chose the aligner (:meth:`~neurodecode.alignment.selection.AutoAlignment.selection`)
        self.selection = None if selection is None else dict(selection)
        #: encoder-guided generation's encoding model (:func:`~neurodecode.pipeline.fitting.fit_guidance`), if any
        self.guidance: dict[str, Any] | None = None

    # -- inference ------------------------------------------------------------------------------------------
    def infer(self, epochs: EpochSet) -> Inference:
        """Features and predicted latents of epochs that satisfy the input contract."""
        features = np.asarray(self.encoder.transform(encoder_input(self.encoder, epochs)))
        return Inference(features, np.asarray(self.aligner.predict(features), dtype=np.float32))

    def features(self, epochs: EpochSet) -> np.ndarray:
        """Encoder features (n_epochs, n_features)."""
        return self.infer(epochs).features

    def latents(self, epochs: EpochSet) -> np.ndarray:
        """Predicted latents (n_epochs, embed_dim)."""
        return self.infer(epochs).latents

    def baseline_latents(self, epochs: EpochSet) -> np.ndarray | None:
        """Latents (n_epochs, embed_dim) predicted by the plain baseline fitted beside the pipeline
        (:func:`~neurodecode.pipeline.fitting.fit_baseline`), or None when the pipeline is its own baseline."""
        if self.baseline is None:
            return None
        features = self.baseline["encoder"].transform(epochs.data)
        return np.asarray(self.baseline["aligner"].predict(features), dtype=np.float32)

    def brain_guidance(self) -> Any:
        """The differentiable activation (images (B, C, H, W) → (B,), in s.d. of the training images') of the
        voxel group the checkpoint's guidance drives, or None."""
        if self.guidance is None:
            return None
        from neurodecode.alignment.encoding_models import pixel_features

        g = self.guidance
        raw = g["encoder"].activation(np.arange(len(g["voxels"])), pixel_features(g["size"]))
        return lambda images: (raw(images) - g["mean"]) / g["sd"]

    def low_level_images(self, features: np.ndarray) -> np.ndarray | None:
        """MindEye's low-level reconstructions (n, H, W, C) in [0, 1] from encoder features, when the pipeline has
        the branch (ridge brain → pixels), else None."""
        if self.low_level is None:
            return None
        flat = self.low_level["ridge"].predict(features)
        return np.clip(flat, 0, 1).reshape(len(features), *self.low_level["shape"]).astype(np.float32)

    # -- persistence ----------------------------------------------------------------------------------------
    def _write_parts(self, tmp: Path) -> dict[str, Any]:
        """Encoder, aligner, low-level branch, trained heads, target arrays and gallery into ``tmp`` (no pickle);
        returns what ``pipeline.json`` records about them."""
        from safetensors.torch import save_model

        from neurodecode.core.persistence import save_estimator
        from neurodecode.core.storage import save

        (tmp / "heads").mkdir()
        save_estimator(self.encoder, tmp, "encoder")
        if hasattr(self.aligner, "save"):
            self.aligner.save(tmp / "aligner")
            aligner_kind = f"{type(self.aligner).__module__}.{type(self.aligner).__name__}"
        else:
            save_estimator(self.aligner, tmp, "aligner")
            aligner_kind = "estimator"
        if self.low_level is not None:
            save_estimator(self.low_level["ridge"], tmp, "low_level")
        if self.guidance is not None:
            save_estimator(self.guidance["encoder"], tmp, "guidance_encoder")
        if self.baseline is not None:
            save_estimator(self.baseline["encoder"], tmp, "baseline_encoder")
            save_estimator(self.baseline["aligner"], tmp, "baseline_aligner")
        for kind in self.trained_heads:
            save_model(self.heads[kind], str(tmp / "heads" / f"{kind}.safetensors"))
        arrays = {f"target_{k}": v for k, v in self.target.arrays().items()}
        if self.gallery is not None:
            arrays["gallery"] = self.gallery
        np.savez(tmp / "target.npz", **arrays)
        if self.stimuli is not None:
            ids = self.stimuli["stimulus"].tolist()
            holder = EpochSet(np.zeros((len(ids), 1, 1), np.float32), 1.0, Channels(["stimuli"], "eeg"),
                              pd.DataFrame({"stimulus": ids}), stimuli=self.stimuli)
            save(holder, tmp / "stimuli.h5")
        return {"aligner": aligner_kind, "low_level": None if self.low_level is None else list(self.low_level["shape"]),
                "stimuli": self.stimuli is not None, "gallery": self.gallery is not None,
                "baseline": None if self.baseline is None else self.baseline["name"],
                "guidance": None if self.guidance is None else {k: v for k, v in self.guidance.items()
                                                                 if k != "encoder"}}

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the checkpoint folder (see the module docstring); an existing folder needs ``overwrite``.

        The new checkpoint is written beside the old one and takes its name only once complete (the old one is
        removed last); one writer per path at a time.
        """
        import shutil

        from neurodecode._version import __version__
        from neurodecode.core.files import WriteLock, publish_dir, temporary_dir

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with WriteLock(path):
            if path.exists() and not overwrite:
                raise FileExistsError(f"{path}: a checkpoint is already there; pass overwrite=True to replace it")
            tmp = temporary_dir(path)
            try:
                parts = self._write_parts(tmp)
                meta = {"format": FORMAT, "neurodecode": __version__, "config": self.config,
                        "contract": self.contract, "target": self.target.state(), **parts,
                        "head_configs": self.head_configs, "trained_heads": self.trained_heads,
                        "aligner_selection": self.selection}
                (tmp / "pipeline.json").write_text(dumps(meta, indent=1))
                publish_dir(tmp, path, overwrite=overwrite)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return path

    @staticmethod
    def _read_meta(path: Path) -> dict[str, Any]:
        from neurodecode.core.files import interrupted_replacement

        meta_path = path / "pipeline.json"
        if not meta_path.is_file():
            left = interrupted_replacement(path)
            hint = (" (this is a training-state checkpoint of one model, not a decoding pipeline)"
                    if (path / "checkpoint.json").is_file() else
                    f"; a replacement of it was interrupted and the previous checkpoint is complete at {left[-1]}: "
                    f"rename it to {path.name} to use it" if left else "")
            raise FileNotFoundError(f"{meta_path}: no decoding-pipeline checkpoint here{hint}; `neurodecode train` "
                                    "writes one to <run folder>/checkpoint")
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as err:
            raise ValueError(f"{meta_path}: expected JSON, got {err}") from None
        if meta.get("format") not in (FORMAT, PICKLE_FORMAT):
            raise ValueError(f"{meta_path}: field 'format': expected {FORMAT}, got {meta.get('format')!r}")
        for part, file in (("stimuli", "stimuli.h5"), ("low_level", "low_level.json"),
                           ("baseline", "baseline_aligner.json")):
            if meta.get(part) and not (path / file).is_file() and meta["format"] == FORMAT:
                raise FileNotFoundError(f"{path / file}: missing, though {meta_path} field '{part}' says the checkpoint "
                                        "has it (an incomplete copy?)")
        if not (path / "target.npz").is_file():
            raise FileNotFoundError(f"{path / 'target.npz'}: missing (an incomplete checkpoint)")
        return meta

    @staticmethod
    def _build_heads(path: Path, meta: Mapping[str, Any], kinds: Sequence[str] | None, device: str | None
                     ) -> dict[str, Any]:
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

    @staticmethod
    def _read_parts(path: Path, meta: Mapping[str, Any], device: str | None,
                    trust_pickle: bool) -> tuple[Any, Any, Any]:
        """(encoder, aligner, low-level) of a format-2 checkpoint, or of a format-1 one with ``trust_pickle``."""
        from neurodecode.core.configs import check_targets
        from neurodecode.core.registry import current_path
        from neurodecode.core.persistence import load_estimator

        if meta["format"] == PICKLE_FORMAT:
            if not trust_pickle:
                raise ValueError(f"{path / 'pipeline.json'}: field 'format': this is a format-1 checkpoint whose "
                                 "encoder/aligner are pickles (*.joblib), which run code when loaded; re-create it "
                                 "with `neurodecode train`, or pass trust_pickle=True if you trust where it came from")
            import warnings

            import joblib

            warnings.warn(f"{path}: loading pickled parts (trust_pickle=True): they can run arbitrary code",
                          UserWarning, stacklevel=3)
            encoder = joblib.load(path / "encoder.joblib")
            low = joblib.load(path / "low_level.joblib") if meta.get("low_level") else None
            aligner = joblib.load(path / "aligner.joblib") if meta["aligner"] == "joblib" else None
        else:
            encoder = load_estimator(path, "encoder")
            low = ({"ridge": load_estimator(path, "low_level"), "shape": list(meta["low_level"])}
                   if meta.get("low_level") else None)
            aligner = load_estimator(path, "aligner") if meta["aligner"] == "estimator" else None
        if aligner is None:
            from hydra.utils import get_class

            check_targets({"_target_": meta["aligner"]}, f"{path / 'pipeline.json'}: aligner")
            aligner = get_class(current_path(meta["aligner"])).load(path / "aligner",
                                                                                          device=device or "cpu")
        return encoder, aligner, low

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None, heads: Sequence[str] | None = None,
             trust_pickle: bool = False) -> DecodingPipeline:
        """Read a checkpoint folder; ``heads`` limits which heads are built (default all), ``device`` moves them.

        Nothing in a format-2 checkpoint runs code when loaded; ``trust_pickle=True`` is needed (and warned about)
        for the pickled parts of a format-1 checkpoint.
        """
        from neurodecode.core.storage import load

        path = Path(path)
        meta = cls._read_meta(path)
        encoder, aligner, low = cls._read_parts(path, meta, device, trust_pickle)
        with np.load(path / "target.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        target = TargetSpace.from_state(meta["target"], {k[7:]: v for k, v in arrays.items()
                                                         if k.startswith("target_")})
        built = cls._build_heads(path, meta, heads, device)
        stimuli = load(path / "stimuli.h5").stimuli if meta.get("stimuli", (path / "stimuli.h5").is_file()) else None
        if meta.get("gallery") and "gallery" not in arrays:
            raise ValueError(f"{path / 'target.npz'}: field 'gallery': missing, though {path / 'pipeline.json'} says "
                             "the checkpoint has a retrieval gallery")
        baseline = None
        if meta.get("baseline") and meta["format"] == FORMAT:
            from neurodecode.core.persistence import load_estimator

            baseline = {"name": meta["baseline"], "encoder": load_estimator(path, "baseline_encoder"),
                        "aligner": load_estimator(path, "baseline_aligner")}
        pipe = cls(meta["config"], meta["contract"], encoder, target, aligner, built, meta["head_configs"],
                   meta["trained_heads"], low, stimuli, arrays.get("gallery"), baseline, meta.get("aligner_selection"))
        if meta.get("guidance") and meta["format"] == FORMAT:
            from neurodecode.core.persistence import load_estimator

            pipe.guidance = {**meta["guidance"], "encoder": load_estimator(path, "guidance_encoder")}
        return pipe

