"""A trained decoding pipeline in one checkpoint folder: input contract + data recipe → encoder → aligner → heads.

``neurodecode train`` fits a :class:`DecodingPipeline` from a composed Hydra config and saves it; ``neurodecode
reconstruct`` loads it, reads a subject's recordings with the **same recipe** (the data and preprocessing configs
travel in the checkpoint), checks them against the **input contract** (channel names and types, sampling rate,
window), and runs the encoder, the aligner and the heads.

Checkpoint folder::

    pipeline.json          format version, resolved training config, input contract, target space, head configs
    encoder.joblib         the fitted scikit-learn transformer (voxel z-scoring, Riemannian recipe, MAE features)
    aligner/ | aligner.joblib   torch aligners as safetensors + JSON, ridge as a scikit-learn pickle
    target.npz             the target space's arrays (PCA components, gallery embeddings)
    low_level.joblib       MindEye's low-level branch (ridge brain → pixels / VAE latents), when used
    heads/<kind>.safetensors   weights of heads trained at training time (tiny generators, caption mappers)
    stimuli.h5             the stimulus table known at training time (the retrieval gallery)

Pickled parts (``*.joblib``) execute code when loaded, like any scikit-learn model file: load checkpoints you trust.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from .epochs import EpochSet

__all__ = ["DecodingPipeline", "TargetSpace", "VoxelFeatures", "check_contract", "input_contract",
           "stimulus_images"]

FORMAT = 1
HEAD_KINDS = ("images", "captions", "meshes")


# -- inputs ------------------------------------------------------------------------------------------------------
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


def stimulus_images(stimuli: pd.DataFrame, ids: Sequence[Any], scale: float | None = None) -> np.ndarray:
    """Images (n, H, W, 1) in [0, 1] from a stimulus table's ``pixels`` (+ ``height``/``width``) columns.

    ``scale`` divides the pixels (default 255 when any pixel exceeds 1, else 1).
    """
    for col in ("pixels", "height", "width"):
        if col not in stimuli.columns:
            raise ValueError(f"field 'stimuli': expected a {col!r} column for image stimuli, got "
                             f"{list(stimuli.columns)}")
    table = stimuli.set_index("stimulus", drop=False)
    unknown = [i for i in dict.fromkeys(ids) if i not in table.index]
    if unknown:
        raise KeyError(f"field 'stimulus': expected ids of the stimulus table, got {len(unknown)} unknown, "
                       f"e.g. {unknown[:3]}")
    rows = table.loc[list(ids)]
    imgs = np.stack([np.asarray(p, dtype=np.float32).reshape(int(h), int(w))
                     for p, h, w in zip(rows["pixels"], rows["height"], rows["width"])])
    if scale is None:
        scale = 255.0 if imgs.max() > 1 else 1.0
    return np.clip(imgs / scale, 0, 1)[..., None]


def resize_images(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """(n, H, W, C) in [0, 1] → (n, size, size, channels) (bilinear with antialiasing; grey ↔ RGB)."""
    import torch

    t = torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    if t.shape[-1] != size or t.shape[-2] != size:
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False)
    if t.shape[1] != channels:
        if channels not in (1, 3):
            raise ValueError(f"field 'channels': expected 1 (grey) or 3 (RGB) to convert {t.shape[1]}-channel "
                             f"images, got {channels}")
        t = t.mean(1, keepdim=True).expand(-1, channels, -1, -1)
    return t.clamp(0, 1).permute(0, 2, 3, 1).contiguous().numpy()


def image_head_format(head: Any) -> tuple[int, int]:
    """(image_size, channels) an image head generates and trains on."""
    vae = getattr(head, "vae", None)
    return int(head.image_size), int(head.unet.config.in_channels if vae is None else vae.config.in_channels)


class VoxelFeatures(TransformerMixin, BaseEstimator):
    """Epochs (n_epochs, n_channels, n_times) → vectors (n_epochs, n_channels · n_times), z-scored per feature
    with the training statistics (fMRI single-trial responses: one feature per voxel)."""

    def __init__(self, standardize: bool = True) -> None:
        self.standardize = standardize

    def _flat(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"field 'X': expected (n_epochs, n_channels, n_times), got shape {X.shape}")
        return X.reshape(len(X), -1)

    def fit(self, X: Any, y: Any = None) -> VoxelFeatures:
        F = self._flat(X)
        self.n_features_in_ = F.shape[1]
        self.mean_ = F.mean(0) if self.standardize else np.zeros(F.shape[1])
        sd = F.std(0) if self.standardize else np.ones(F.shape[1])
        self.scale_ = np.where(sd > 0, sd, 1.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        F = self._flat(X)
        if F.shape[1] != self.n_features_in_:
            raise ValueError(f"field 'X': expected {self.n_features_in_} features per epoch, got {F.shape[1]}")
        return ((F - self.mean_) / self.scale_).astype(np.float32)


# -- target space ------------------------------------------------------------------------------------------------
class TargetSpace:
    """The latent space the aligner predicts and the heads read.

    Parameters
    ----------
    kind : {"pca", "pixels", "clip"}
        ``pca``: principal components of the training stimuli's images (``n_components``); ``pixels``: the images
        themselves; ``clip``: an open_clip embedding (``model``, ``pretrained``) of images or captions (``column``).
    """

    def __init__(self, kind: str = "pca", n_components: int = 32, model: str | None = None,
                 pretrained: str | None = None, column: str | None = None, root: str | None = None,
                 image_size: int | None = None) -> None:
        if kind not in ("pca", "pixels", "clip"):
            raise ValueError(f"field 'objective.target': expected 'pca', 'pixels' or 'clip', got {kind!r}")
        self.kind, self.n_components, self.model, self.pretrained = kind, n_components, model, pretrained
        self.column, self.root, self.image_size = column, root, image_size
        self.scale: float | None = None
        self.components_: np.ndarray | None = None
        self.mean_: np.ndarray | None = None
        self.shape_: tuple[int, int] | None = None

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_components": self.n_components, "model": self.model,
                "pretrained": self.pretrained, "column": self.column, "root": self.root,
                "image_size": self.image_size}

    @property
    def is_image_space(self) -> bool:
        return self.kind in ("pca", "pixels")

    def images(self, stimuli: pd.DataFrame, ids: Sequence[Any]) -> np.ndarray:
        """The stimuli's images (n, H, W, 1) in [0, 1] as this space sees them (scaled, resized to image_size)."""
        img = stimulus_images(stimuli, ids, self.scale)
        if self.image_size:
            img = resize_images(img, self.image_size, 1)
        return img

    def fit(self, stimuli: pd.DataFrame, ids: Sequence[Any]) -> TargetSpace:
        """Fit on the training stimuli (``ids``: each once)."""
        if self.is_image_space:
            if self.scale is None:
                self.scale = 255.0 if stimulus_images(stimuli, ids).max() > 1 else 1.0
            img = self.images(stimuli, ids)
            self.shape_ = img.shape[1:3]
            if self.kind == "pca":
                from sklearn.decomposition import PCA

                flat = img.reshape(len(img), -1).astype(np.float64)
                if self.n_components > min(flat.shape):
                    raise ValueError(f"field 'objective.n_components': expected at most {min(flat.shape)} "
                                     f"(training stimuli × pixels), got {self.n_components}")
                pca = PCA(self.n_components, random_state=0).fit(flat)
                self.components_, self.mean_ = pca.components_, pca.mean_
        return self

    @property
    def dim(self) -> int:
        if self.kind == "pca":
            return int(self.n_components)
        if self.kind == "pixels":
            return int(np.prod(self.shape_))
        return int(self._embedder().embed_dim)

    def _embedder(self) -> Any:
        from .embeddings import OpenCLIPEmbedder

        if getattr(self, "_clip", None) is None:
            self._clip = OpenCLIPEmbedder(self.model, self.pretrained)
        return self._clip

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """Images (n, H, W, C) in [0, 1] → latents (n, dim)."""
        if self.kind == "clip":
            return self._embedder().embed_images(list(np.asarray(images)))
        img = resize_images(images, self.shape_[0], 1).reshape(len(images), -1).astype(np.float64)
        return img if self.kind == "pixels" else (img - self.mean_) @ self.components_.T

    def transform(self, stimuli: pd.DataFrame, ids: Sequence[Any]) -> np.ndarray:
        """Latents (n, dim) of the stimuli ``ids``."""
        if self.kind == "clip":
            from .embeddings import embed_stimuli

            return embed_stimuli(stimuli, self._embedder(), ids=ids, column=self.column, root=self.root)
        return self.embed_images(self.images(stimuli, ids))

    def decode(self, latents: np.ndarray) -> np.ndarray | None:
        """Images (n, H, W, 1) from latents in an image space (PCA inverse / pixels); None for CLIP spaces."""
        if not self.is_image_space:
            return None
        z = np.asarray(latents, dtype=np.float64)
        flat = z if self.kind == "pixels" else z @ self.components_ + self.mean_
        return np.clip(flat, 0, 1).reshape(len(z), *self.shape_, 1).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        if self.components_ is not None:
            out.update(components=self.components_, mean=self.mean_)
        return out

    def state(self) -> dict[str, Any]:
        return {**self.params(), "scale": self.scale, "shape": None if self.shape_ is None else list(self.shape_)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> TargetSpace:
        keys = ("kind", "n_components", "model", "pretrained", "column", "root", "image_size")
        obj = cls(**{k: state.get(k) for k in keys})
        obj.scale = state.get("scale")
        obj.shape_ = None if state.get("shape") is None else tuple(state["shape"])
        if "components" in arrays:
            obj.components_, obj.mean_ = np.asarray(arrays["components"]), np.asarray(arrays["mean"])
        return obj


# -- the pipeline ------------------------------------------------------------------------------------------------
class DecodingPipeline:
    """A fitted encoder → aligner → heads chain with its input contract and data recipe.

    Build one with :func:`neurodecode.train.fit_pipeline` (or ``neurodecode train``); load one with
    :meth:`load`. ``latents(epochs)`` gives the predicted latents (n_epochs, embed_dim).
    """

    def __init__(self, config: Mapping[str, Any], contract: Mapping[str, Any], encoder: Any, target: TargetSpace,
                 aligner: Any, heads: Mapping[str, Any] | None = None, head_configs: Mapping[str, Any] | None = None,
                 trained_heads: Sequence[str] = (), low_level: Any = None, stimuli: pd.DataFrame | None = None,
                 gallery: np.ndarray | None = None) -> None:
        self.config, self.contract, self.encoder, self.target = dict(config), dict(contract), encoder, target
        self.aligner, self.heads = aligner, dict(heads or {})
        self.head_configs, self.trained_heads = dict(head_configs or {}), list(trained_heads)
        self.low_level, self.stimuli, self.gallery = low_level, stimuli, gallery

    # -- inference ------------------------------------------------------------------------------------------
    def features(self, epochs: EpochSet) -> np.ndarray:
        return np.asarray(self.encoder.transform(epochs.data))

    def latents(self, epochs: EpochSet) -> np.ndarray:
        """Predicted latents (n_epochs, embed_dim) of epochs that satisfy the input contract."""
        return np.asarray(self.aligner.predict(self.features(epochs)), dtype=np.float32)

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the checkpoint folder (see the module docstring); an existing folder needs ``overwrite``."""
        import shutil

        import joblib
        from safetensors.torch import save_model

        from .storage import save

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: a checkpoint is already there; pass overwrite=True to replace it")
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "heads").mkdir(parents=True)
        joblib.dump(self.encoder, tmp / "encoder.joblib")
        if hasattr(self.aligner, "save"):
            self.aligner.save(tmp / "aligner")
            aligner_kind = f"{type(self.aligner).__module__}.{type(self.aligner).__name__}"
        else:
            joblib.dump(self.aligner, tmp / "aligner.joblib")
            aligner_kind = "joblib"
        if self.low_level is not None:
            joblib.dump(self.low_level, tmp / "low_level.joblib")
        for kind in self.trained_heads:
            save_model(self.heads[kind], str(tmp / "heads" / f"{kind}.safetensors"))
        arrays = {f"target_{k}": v for k, v in self.target.arrays().items()}
        if self.gallery is not None:
            arrays["gallery"] = self.gallery
        np.savez(tmp / "target.npz", **arrays)
        if self.stimuli is not None:
            from .epochs import Channels

            ids = self.stimuli["stimulus"].tolist()
            holder = EpochSet(np.zeros((len(ids), 1, 1), np.float32), 1.0, Channels(["stimuli"], "eeg"),
                              pd.DataFrame({"stimulus": ids}), stimuli=self.stimuli)
            save(holder, tmp / "stimuli.h5")
        from ._version import __version__

        meta = {"format": FORMAT, "neurodecode": __version__, "config": self.config, "contract": self.contract,
                "target": self.target.state(), "aligner": aligner_kind, "head_configs": self.head_configs,
                "trained_heads": self.trained_heads, "low_level": self.low_level is not None}
        (tmp / "pipeline.json").write_text(json.dumps(meta, indent=1, default=str))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None, heads: Sequence[str] | None = None
             ) -> DecodingPipeline:
        """Read a checkpoint folder; ``heads`` limits which heads are built (default all), ``device`` moves them."""
        import joblib
        from safetensors.torch import load_model

        from .configs import instantiate
        from .storage import load

        path = Path(path)
        meta_path = path / "pipeline.json"
        if not meta_path.is_file():
            hint = (" (this is a training-state checkpoint of one model, not a decoding pipeline)"
                    if (path / "checkpoint.json").is_file() else "")
            raise FileNotFoundError(f"{meta_path}: no decoding-pipeline checkpoint here{hint}; `neurodecode train` "
                                    "writes one to <run folder>/checkpoint")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: field 'format': expected {FORMAT}, got {meta.get('format')!r}")
        encoder = joblib.load(path / "encoder.joblib")
        if meta["aligner"] == "joblib":
            aligner = joblib.load(path / "aligner.joblib")
        else:
            from hydra.utils import get_class

            aligner = get_class(meta["aligner"]).load(path / "aligner", device=device or "cpu")
        arrays = dict(np.load(path / "target.npz"))
        target = TargetSpace.from_state(meta["target"], {k[7:]: v for k, v in arrays.items()
                                                         if k.startswith("target_")})
        built = {}
        for kind, cfg in meta["head_configs"].items():
            if heads is not None and kind not in heads:
                continue
            if device is not None and "device" in cfg:
                cfg = {**cfg, "device": device}
            head = instantiate(cfg)
            if kind in meta["trained_heads"]:
                load_model(head, str(path / "heads" / f"{kind}.safetensors"), device=device or "cpu")
            built[kind] = head
        low = joblib.load(path / "low_level.joblib") if meta.get("low_level") else None
        stimuli = load(path / "stimuli.h5").stimuli if (path / "stimuli.h5").is_file() else None
        return cls(meta["config"], meta["contract"], encoder, target, aligner, built, meta["head_configs"],
                   meta["trained_heads"], low, stimuli, arrays.get("gallery"))
