"""Target spaces: the latent space an aligner predicts and the heads read — image PCA, pixels, a CLIP embedding, or
the epochs' classes (one-hot vectors: the aligner is then a classifier).

May import: ``neurodecode.core``, ``neurodecode.loaders``, ``neurodecode.encoders``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.registry import register
from neurodecode.core.stimuli import resize_images, stimulus_images

__all__ = ["TargetSpace"]


def _image_column(stimuli: pd.DataFrame) -> str | None:
    """The column an embedder reads by default (as :func:`~neurodecode.alignment.embeddings.embed_stimuli`)."""
    return next((c for c in ("file", "pixels", "caption") if c in stimuli.columns), None)


@register
class TargetSpace:
    """The latent space the aligner predicts and the heads read.

    Parameters
    ----------
    kind : {"pca", "pixels", "clip", "labels"}
        ``pca``: principal components of the training stimuli's images (``n_components``); ``pixels``: the images
        themselves; ``clip``: an open_clip embedding (``model``, ``pretrained``) of images or captions (``column``);
        ``labels``: the classes of the epochs' table column ``column`` (default ``"label"``) as one-hot vectors
        (``dim`` = the training classes; the gallery is the classes, so retrieval's top-1 is the predicted class).
        Epochs are seen through :meth:`class_view`: each epoch's "stimulus" is its class.
    """

    def __init__(self, kind: str = "pca", n_components: int = 32, model: str | None = None,
                 pretrained: str | None = None, column: str | None = None, root: str | None = None,
                 image_size: int | None = None, tokens: bool = False) -> None:
        if kind not in ("pca", "pixels", "clip", "labels"):
            raise ValueError(f"field 'objective.kind': expected 'pca', 'pixels', 'clip' or 'labels', got {kind!r}")
        if tokens and kind != "clip":
            raise ValueError(f"field 'objective.tokens': token-level targets are CLIP image tokens (kind 'clip'), "
                             f"got kind {kind!r}")
        self.kind, self.n_components, self.model, self.pretrained = kind, n_components, model, pretrained
        self.column, self.root, self.image_size, self.tokens = column, root, image_size, bool(tokens)
        #: token-level clip targets: (n_tokens, width) of each stimulus's image tokens; the latents are them
        #: flattened (n, n_tokens · width), and heads that read tokens get them reshaped (prepare_latents)
        self.token_shape_: tuple[int, int] | None = None
        self.scale: float | None = None
        self.components_: np.ndarray | None = None
        self.mean_: np.ndarray | None = None
        self.shape_: tuple[int, int] | None = None
        #: clip image targets: mean L2 norm of the training stimuli's unnormalised embeddings (the latents are unit
        #: vectors; heads built from published weights read the tower's own scale, see LatentSpec.norm)
        self.raw_norm_: float | None = None
        #: kind "labels": the training classes, sorted (the one-hot order)
        self.classes_: list[str] | None = None
        #: the retrieval gallery: the latents (n_stimuli, dim) of the stimuli known at training time and their ids
        self.gallery_: np.ndarray | None = None
        self.gallery_ids_: list[str] | None = None

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_components": self.n_components, "model": self.model,
                "pretrained": self.pretrained, "column": self.column, "root": self.root,
                "image_size": self.image_size, "tokens": self.tokens}

    @property
    def is_image_space(self) -> bool:
        return self.kind in ("pca", "pixels")

    def images(self, stimuli: pd.DataFrame, ids: Sequence[Any]) -> np.ndarray:
        """The stimuli's images (n, H, W, 1) in [0, 1] as this space sees them (scaled, resized to image_size)."""
        img = stimulus_images(stimuli, ids, self.scale)
        if self.image_size:
            img = resize_images(img, self.image_size, 1)
        return img

    def class_view(self, epochs: Any) -> Any:
        """Kind ``labels``: the epochs with each epoch's class (table column ``column``) as its ``stimulus`` and a
        stimulus table of the classes — what the training run, ``reconstruct`` and the stream decode. An epoch
        without a class is an error naming the column."""
        column = self.column or "label"
        table = epochs.table
        if column not in table.columns:
            raise ValueError(f"field 'objective.column': expected a table column with the classes, got {column!r} "
                             f"(columns: {list(table.columns)})")
        if table[column].isna().any():
            raise ValueError(f"table['{column}']: expected a class for every epoch (objective labels), got "
                             f"{int(table[column].isna().sum())} missing")
        classes = sorted(set(table[column].astype(str)) | set(self.classes_ or []))
        return epochs.replace(table=table.assign(stimulus=table[column].astype(str).to_numpy()),
                              stimuli=pd.DataFrame({"stimulus": classes}))

    def fit(self, stimuli: pd.DataFrame, ids: Sequence[Any]) -> TargetSpace:
        """Fit on the training stimuli (``ids``: each once; kind ``labels``: the classes)."""
        if self.kind == "labels":
            self.classes_ = sorted({str(i) for i in ids})
            if len(self.classes_) < 2:
                raise ValueError(f"field 'objective': the labels objective needs at least 2 training classes, got "
                                 f"{self.classes_}")
        elif self.is_image_space:
            if self.scale is None:
                self.scale = 255.0 if stimulus_images(stimuli, ids).max() > 1 else 1.0
            img = self.images(stimuli, ids)
            self.shape_ = img.shape[1:3]
            if self.kind == "pca":
                from sklearn.decomposition import PCA

                flat = img.reshape(len(img), -1).astype(np.float64)
                if isinstance(self.n_components, bool) or not isinstance(self.n_components, (int, np.integer)) \
                        or self.n_components < 1:
                    raise ValueError(f"field 'objective.n_components': expected an integer >= 1, got "
                                     f"{self.n_components!r}")
                if self.n_components > min(flat.shape):
                    raise ValueError(f"field 'objective.n_components': expected at most {min(flat.shape)} "
                                     f"(training stimuli × pixels), got {self.n_components}; set "
                                     f"objective.n_components={min(flat.shape)} or fewer for this data")
                pca = PCA(self.n_components, random_state=0).fit(flat)
                self.components_, self.mean_ = pca.components_, pca.mean_
        elif self.tokens:
            self.transform(stimuli, list(ids)[:1])                  # measures token_shape_
        elif self.kind == "clip" and (self.column or _image_column(stimuli)) in ("file", "pixels"):
            from neurodecode.alignment.embeddings import embed_stimuli

            raw = embed_stimuli(stimuli, self._embedder(), ids=ids, column=self.column, root=self.root,
                                normalize=False)
            self.raw_norm_ = float(np.linalg.norm(raw, axis=1).mean())
        return self

    @property
    def dim(self) -> int:
        if self.kind == "labels":
            return len(self.classes_ or [])
        if self.kind == "pca":
            return int(self.n_components)
        if self.kind == "pixels":
            return int(np.prod(self.shape_))
        if self.tokens and self.token_shape_ is not None:
            return int(np.prod(self.token_shape_))
        return int(self._embedder().embed_dim)

    def _embedder(self) -> Any:
        from neurodecode.alignment.embeddings import OpenCLIPEmbedder

        if getattr(self, "_clip", None) is None:
            self._clip = OpenCLIPEmbedder(self.model, self.pretrained)
        return self._clip

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """Images (n, H, W, C) in [0, 1] → latents (n, dim)."""
        if self.kind == "clip":
            out = self._embedder().embed_images(list(np.asarray(images)), tokens=self.tokens)
            return out.reshape(len(out), -1)
        img = resize_images(images, self.shape_[0], 1).reshape(len(images), -1).astype(np.float64)
        return img if self.kind == "pixels" else (img - self.mean_) @ self.components_.T

    def transform(self, stimuli: pd.DataFrame, ids: Sequence[Any]) -> np.ndarray:
        """Latents (n, dim) of the stimuli ``ids`` (kind ``labels``: one-hot rows of the classes ``ids``)."""
        if self.kind == "labels":
            where = {c: k for k, c in enumerate(self.classes_ or [])}
            unknown = sorted({str(i) for i in ids} - set(where))
            if unknown:
                raise ValueError(f"field 'label': classes {unknown} were not among the training classes "
                                 f"{self.classes_}")
            return np.eye(len(where))[[where[str(i)] for i in ids]]
        if self.kind == "clip":
            from neurodecode.alignment.embeddings import embed_stimuli

            out = embed_stimuli(stimuli, self._embedder(), ids=ids, column=self.column, root=self.root,
                                tokens=self.tokens)
            if self.tokens:
                if out.ndim != 3:
                    raise ValueError(f"field 'objective.tokens': expected image tokens (n, n_tokens, width) from "
                                     f"{self.model}, got shape {out.shape} (token targets need image stimuli)")
                self.token_shape_ = (int(out.shape[1]), int(out.shape[2]))
                out = out.reshape(len(out), -1)
            return out
        return self.embed_images(self.images(stimuli, ids))

    def decode(self, latents: np.ndarray) -> np.ndarray | None:
        """Images (n, H, W, 1) from latents in an image space (PCA inverse / pixels); None for CLIP spaces."""
        if not self.is_image_space:
            return None
        z = np.asarray(latents, dtype=np.float64)
        flat = z if self.kind == "pixels" else z @ self.components_ + self.mean_
        return np.clip(flat, 0, 1).reshape(len(z), *self.shape_, 1).astype(np.float32)

    # -- retrieval: a gallery of stimuli in this space ---------------------------------------------------------
    def index_gallery(self, stimuli: pd.DataFrame, ids: Sequence[Any] | None = None) -> TargetSpace:
        """Embed the stimuli ``ids`` (default: all of the table) as the retrieval gallery."""
        ids = [str(s) for s in (stimuli["stimulus"].tolist() if ids is None else ids)]
        self.gallery_, self.gallery_ids_ = np.asarray(self.transform(stimuli, ids)), ids
        return self

    def retrieve(self, latents: Any, k: int = 5) -> list[list[str]]:
        """The ``k`` gallery stimuli nearest (cosine) to each latent, best first: one list of ids per latent."""
        from neurodecode.core.scores import gallery_topk

        if self.gallery_ is None:
            raise ValueError("field 'gallery': this target space has no retrieval gallery (index_gallery first)")
        top = gallery_topk(np.asarray(latents), self.gallery_, min(int(k), len(self.gallery_ids_)))
        return [[self.gallery_ids_[j] for j in row] for row in top]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        if self.components_ is not None:
            out.update(components=self.components_, mean=self.mean_)
        if self.gallery_ is not None:
            out["gallery"] = self.gallery_
        return out

    # -- the checkpoint-component protocol (neurodecode.core.persistence.save_component) ------------------------
    def _save_to(self, folder: Any) -> None:
        from pathlib import Path

        from neurodecode.core.persistence import dumps

        folder = Path(folder)
        (folder / "target.json").write_text(dumps({**self.state(), "gallery_ids": self.gallery_ids_}, indent=1))
        np.savez(folder / "target.npz", **self.arrays())

    @classmethod
    def _load_from(cls, folder: Any, device: str = "cpu") -> TargetSpace:
        import json
        from pathlib import Path

        folder = Path(folder)
        try:
            state = json.loads((folder / "target.json").read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{folder / 'target.json'}: expected the target space's JSON state, got {err}") from None
        with np.load(folder / "target.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return cls.from_state(state, arrays)

    def state(self) -> dict[str, Any]:
        return {**self.params(), "scale": self.scale, "shape": None if self.shape_ is None else list(self.shape_),
                "raw_norm": self.raw_norm_, "classes": self.classes_,
                "token_shape": None if self.token_shape_ is None else list(self.token_shape_)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> TargetSpace:
        keys = ("kind", "n_components", "model", "pretrained", "column", "root", "image_size")
        obj = cls(**{k: state.get(k) for k in keys}, tokens=bool(state.get("tokens", False)))
        obj.token_shape_ = None if state.get("token_shape") is None else tuple(state["token_shape"])
        obj.scale = state.get("scale")
        obj.shape_ = None if state.get("shape") is None else tuple(state["shape"])
        obj.raw_norm_ = state.get("raw_norm")
        obj.classes_ = None if state.get("classes") is None else [str(c) for c in state["classes"]]
        if obj.kind == "labels" and not obj.classes_:
            raise ValueError("field 'classes': expected the training classes of a labels target space, got none")
        if "components" in arrays:
            obj.components_, obj.mean_ = np.asarray(arrays["components"]), np.asarray(arrays["mean"])
        if "gallery" in arrays:
            ids = state.get("gallery_ids")
            if ids is None or len(ids) != len(arrays["gallery"]):
                raise ValueError(f"field 'gallery_ids': expected one id per gallery row ({len(arrays['gallery'])}), "
                                 f"got {None if ids is None else len(ids)}")
            obj.gallery_, obj.gallery_ids_ = np.asarray(arrays["gallery"]), [str(i) for i in ids]
        return obj
