"""A trained decoding pipeline in one checkpoint folder of named components: input contract + data recipe →
encoder → aligner → target space → heads.

``neurodecode train`` fits a :class:`DecodingPipeline` (:mod:`neurodecode.pipeline.fitting`) and saves it;
``neurodecode reconstruct`` (:mod:`neurodecode.pipeline.decoding`) loads it, reads a subject's recordings with the
**same recipe** (the data and preprocessing configs travel in the checkpoint), checks them against the **input
contract** (:class:`~neurodecode.core.epochs.InputContract`: channel names and types, sampling rate, window), and
runs the encoder, the aligner and the heads.

Checkpoint folder (format 3, diffusers' ``save_pretrained`` idea) — no pickle anywhere, so loading one never runs
code::

    model_index.json        format, neurodecode version, resolved training config, input contract, and each
                            component: its class, whether it is optional, its folder
    encoder/ aligner/ target/               the chain; the target space holds the retrieval gallery
    heads/images/ heads/captions/ heads/meshes/   each head's build config, and its weights when trained here
    low_level/              MindEye's low-level branch (LowLevelImages), when used
    guidance/               encoder-guided generation's model (BrainGuidance), when used
    baseline_encoder/ baseline_aligner/     the plain baseline fitted beside the pipeline, absent when the pipeline
                            is that baseline
    stimuli.parquet         the stimulus table known at training time

Every component folder is written by :func:`~neurodecode.core.persistence.save_component` and read by
:func:`~neurodecode.core.persistence.load_component` (one protocol; every class checked against the ``_target_``
allowlist before import). A component the index lists but the folder lacks, or whose class differs from the index,
is an error naming it. Format-2 checkpoints (``pipeline.json`` with flat parts, neurodecode 0.2) still load;
format-1 ones (``*.joblib`` pickles) only with ``trust_pickle=True``, with a warning.

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
from neurodecode.core.epochs import EpochSet, InputContract
from neurodecode.core.logs import logger
from neurodecode.core.persistence import dumps
from neurodecode.encoders.features import encoder_input
from neurodecode.heads.base import check_head

__all__ = ["FORMAT", "Baseline", "DecodingPipeline", "Inference", "check_contract", "input_contract"]

FORMAT = 3
#: the flat format of neurodecode 0.2 (still read)
FLAT_FORMAT = 2
#: the last format whose parts were pickles (loaded only with trust_pickle=True)
PICKLE_FORMAT = 1
#: components every pipeline has
REQUIRED = ("encoder", "aligner", "target")


def input_contract(epochs: EpochSet) -> InputContract:
    """What a pipeline trained on ``epochs`` needs of new recordings (``InputContract.from_epochs``)."""
    return InputContract.from_epochs(epochs)


def check_contract(contract: InputContract | Mapping[str, Any], epochs: EpochSet, where: str,
                   checkpoint: str = "the checkpoint") -> EpochSet:
    """Return ``epochs`` with the contract's channels in its order, or raise one error listing every mismatch."""
    if not isinstance(contract, InputContract):
        contract = InputContract.from_dict(contract, checkpoint)
    return contract.check(epochs, where, checkpoint)


@dataclasses.dataclass
class Inference:
    """What a pipeline computes from epochs: ``features`` (n_epochs, n_features) of the encoder, ``latents``
    (n_epochs, embed_dim) of the aligner."""

    features: np.ndarray
    latents: np.ndarray


@dataclasses.dataclass
class Baseline:
    """The plain reference fitted beside a pipeline on the same training epochs: ``encoder`` (voxel features of
    the z-scored flattened epochs) → ``aligner`` (closed-form ridge)."""

    name: str
    encoder: Any
    aligner: Any

    def latents(self, epochs: EpochSet) -> np.ndarray:
        """Predicted latents (n_epochs, embed_dim)."""
        return np.asarray(self.aligner.predict(self.encoder.transform(epochs.data)), dtype=np.float32)


class DecodingPipeline:
    """A fitted encoder → aligner → heads chain with its input contract and data recipe.

    Build one with :func:`neurodecode.pipeline.fit_pipeline` (or ``neurodecode train``); load one with
    :meth:`load`. ``latents(epochs)`` gives the predicted latents (n_epochs, embed_dim); ``heads`` maps each output
    kind to a head (:mod:`neurodecode.heads.base`).

    Parameters
    ----------
    config : mapping
        The resolved training config (its ``data`` recipe reads new recordings).
    contract : InputContract
    encoder, aligner : fitted estimators
    target : TargetSpace
        The latent space, with its retrieval gallery.
    heads : mapping of kind → head, optional
    head_configs : mapping of kind → build config
        How each head is rebuilt.
    trained_heads : sequence of str
        The kinds whose heads were trained in the run (their weights are saved).
    low_level : LowLevelImages, optional
    stimuli : DataFrame, optional
        The stimulus table known at training time.
    baseline : Baseline, optional
    selection : mapping, optional
        How ``aligner=auto`` chose the aligner.
    guidance : BrainGuidance, optional
    """

    def __init__(self, config: Mapping[str, Any], contract: InputContract, encoder: Any, target: TargetSpace,
                 aligner: Any, heads: Mapping[str, Any] | None = None, *,
                 head_configs: Mapping[str, Any] | None = None, trained_heads: Sequence[str] = (),
                 low_level: Any = None, stimuli: pd.DataFrame | None = None, baseline: Baseline | None = None,
                 selection: Mapping[str, Any] | None = None, guidance: Any = None) -> None:
        if not isinstance(contract, InputContract):
            contract = InputContract.from_dict(contract)
        self.config, self.contract, self.encoder, self.target = dict(config), contract, encoder, target
        self.aligner, self.heads = aligner, dict(heads or {})
        self.head_configs, self.trained_heads = dict(head_configs or {}), list(trained_heads)
        self.low_level, self.stimuli, self.baseline, self.guidance = low_level, stimuli, baseline, guidance
        self.selection = None if selection is None else dict(selection)

    @property
    def gallery(self) -> np.ndarray | None:
        """The retrieval gallery's latents (n_stimuli, dim), held by the target space."""
        return self.target.gallery_

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
        """Latents (n_epochs, embed_dim) of the plain baseline fitted beside the pipeline, or None when the pipeline
        is its own baseline."""
        return None if self.baseline is None else self.baseline.latents(epochs)

    def brain_guidance(self) -> Any:
        """The differentiable activation (images (B, C, H, W) → (B,), in s.d. of the training images') of the
        voxel group the checkpoint's guidance drives, or None."""
        return None if self.guidance is None else self.guidance.activation()

    def low_level_images(self, features: np.ndarray) -> np.ndarray | None:
        """MindEye's low-level reconstructions (n, H, W, C) in [0, 1] from encoder features, when the pipeline has
        the branch, else None."""
        return None if self.low_level is None else self.low_level.predict(features)

    # -- persistence ----------------------------------------------------------------------------------------
    def components(self) -> dict[str, tuple[Any, bool]]:
        """Component name (its folder) → (object, optional) for every part the pipeline holds."""
        parts: dict[str, tuple[Any, bool]] = {"encoder": (self.encoder, False), "aligner": (self.aligner, False),
                                              "target": (self.target, False)}
        for kind, head in self.heads.items():
            parts[f"heads/{kind}"] = (head, True)
        for name, obj in (("low_level", self.low_level), ("guidance", self.guidance)):
            if obj is not None:
                parts[name] = (obj, True)
        if self.baseline is not None:
            parts["baseline_encoder"] = (self.baseline.encoder, True)
            parts["baseline_aligner"] = (self.baseline.aligner, True)
        return parts

    def _write(self, tmp: Path) -> None:
        from neurodecode._version import __version__
        from neurodecode.core.persistence import save_component
        from neurodecode.core.registry import class_path

        index: dict[str, Any] = {}
        for name, (obj, optional) in self.components().items():
            kind = name.split("/", 1)[1] if name.startswith("heads/") else None
            build = self.head_configs.get(kind) if kind else None
            if kind is not None and build is None:
                raise ValueError(f"field 'head_configs': expected the config that built the {kind} head, got none")
            save_component(obj, tmp / name, build=build, weights=kind in self.trained_heads)
            index[name] = {"class": class_path(obj), "optional": optional}
        if self.stimuli is not None:
            self.stimuli.to_parquet(tmp / "stimuli.parquet", index=False)
        meta = {"format": FORMAT, "neurodecode": __version__, "config": self.config,
                "contract": self.contract.to_dict(), "components": index, "head_configs": self.head_configs,
                "trained_heads": self.trained_heads, "baseline": None if self.baseline is None else self.baseline.name,
                "stimuli": "stimuli.parquet" if self.stimuli is not None else None,
                "aligner_selection": self.selection}
        (tmp / "model_index.json").write_text(dumps(meta, indent=1))

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the checkpoint folder (see the module docstring); an existing folder needs ``overwrite``.

        The new checkpoint is written beside the old one and takes its name only once complete (the old one is
        removed last); one writer per path at a time.
        """
        import shutil

        from neurodecode.core.files import WriteLock, publish_dir, temporary_dir

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with WriteLock(path):
            if path.exists() and not overwrite:
                raise FileExistsError(f"{path}: a checkpoint is already there; pass overwrite=True to replace it")
            tmp = temporary_dir(path)
            try:
                self._write(tmp)
                publish_dir(tmp, path, overwrite=overwrite)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None, heads: Sequence[str] | None = None,
             trust_pickle: bool = False) -> DecodingPipeline:
        """Read a checkpoint folder; ``heads`` limits which heads are built (default all), ``device`` moves them.

        Nothing in a format-3 or format-2 checkpoint runs code when loaded; ``trust_pickle=True`` is needed (and
        warned about) for the pickled parts of a format-1 checkpoint.
        """
        from neurodecode.core.files import interrupted_replacement
        from neurodecode.pipeline.legacy import read_flat

        path = Path(path)
        left = interrupted_replacement(path)
        if left and not any((path / name).is_file() for name in ("model_index.json", "pipeline.json",
                                                                  "checkpoint.json")):
            old = left[-1]                        # the most recent; read where it is: loading writes nothing
            logger.warning(f"{path}: a replacement of this checkpoint was interrupted before the new one was in "
                           f"place; loading the previous, complete checkpoint from {old} (the next save puts it "
                           "back)")
            path = old
        meta = _read_index(path)
        if meta["format"] == FORMAT:
            return _load_components(cls, path, meta, device, heads)
        parts = read_flat(path, meta, device, heads, trust_pickle)
        parts["baseline"] = None if parts["baseline"] is None else Baseline(*parts["baseline"])
        return cls(**parts)


def _read_index(path: Path) -> dict[str, Any]:
    """The checkpoint's ``model_index.json`` (format 3) or ``pipeline.json`` (formats 1–2), checked."""
    index = path / "model_index.json"
    meta_path = index if index.is_file() else path / "pipeline.json"
    if not meta_path.is_file():               # (an interrupted replacement is read by DecodingPipeline.load)
        hint = (" (this is a training-state checkpoint of one model, not a decoding pipeline)"
                if (path / "checkpoint.json").is_file() else "")
        raise FileNotFoundError(f"{index}: no decoding-pipeline checkpoint here{hint}; `neurodecode train` "
                                "writes one to <run folder>/checkpoint")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as err:
        raise ValueError(f"{meta_path}: expected JSON, got {err}") from None
    want = (FORMAT,) if meta_path == index else (FLAT_FORMAT, PICKLE_FORMAT)
    if meta.get("format") not in want:
        raise ValueError(f"{meta_path}: field 'format': expected {' or '.join(map(str, want))}, got "
                         f"{meta.get('format')!r}")
    meta["_file"] = str(meta_path)
    return meta


def _load_components(cls: type[DecodingPipeline], path: Path, meta: Mapping[str, Any], device: str | None,
                     kinds: Sequence[str] | None) -> DecodingPipeline:
    from neurodecode.core.persistence import load_component
    from neurodecode.core.registry import current_path

    index, where = dict(meta.get("components") or {}), meta["_file"]
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        raise ValueError(f"{where}: field 'components': expected {list(REQUIRED)}, got no {missing}")
    parts: dict[str, Any] = {}
    for name, entry in index.items():
        if name.startswith("heads/") and kinds is not None and name.split("/", 1)[1] not in kinds:
            continue
        folder = path / name
        if not (folder / "component.json").is_file():
            raise FileNotFoundError(f"{folder}: missing, though {where} field 'components' lists {name!r} (an "
                                    "incomplete copy?)")
        obj = load_component(folder, device=device)
        if current_path(entry.get("class")) != current_path(type(obj).__module__ + "." + type(obj).__qualname__):
            raise ValueError(f"{folder / 'component.json'}: the component is a {type(obj).__name__}, but {where} "
                             f"field 'components.{name}.class' says {entry.get('class')!r}")
        parts[name] = obj
    heads = {name.split("/", 1)[1]: check_head(obj, name.split("/", 1)[1], f"{where}: components.{name}")
             for name, obj in parts.items() if name.startswith("heads/")}
    stimuli = None
    if meta.get("stimuli"):
        table = path / str(meta["stimuli"])
        if not table.is_file():
            raise FileNotFoundError(f"{table}: missing, though {where} field 'stimuli' names it")
        stimuli = pd.read_parquet(table)
    baseline = None
    if meta.get("baseline"):
        if "baseline_encoder" not in parts or "baseline_aligner" not in parts:
            raise ValueError(f"{where}: field 'baseline' names {meta['baseline']!r} but the components lack "
                             "baseline_encoder/baseline_aligner")
        baseline = Baseline(str(meta["baseline"]), parts["baseline_encoder"], parts["baseline_aligner"])
    return cls(meta["config"], InputContract.from_dict(meta["contract"], where), parts["encoder"], parts["target"],
               parts["aligner"], heads, head_configs=meta.get("head_configs") or {},
               trained_heads=meta.get("trained_heads") or [], low_level=parts.get("low_level"), stimuli=stimuli,
               baseline=baseline, selection=meta.get("aligner_selection"), guidance=parts.get("guidance"))
