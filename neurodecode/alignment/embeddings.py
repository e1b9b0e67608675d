"""Stimulus embeddings: the target spaces that brain latents are aligned with.

:class:`OpenCLIPEmbedder` embeds images and captions with open_clip (model name and pretrained tag exactly as
open_clip names them, e.g. ``("ViT-B-32", "laion2b_s34b_b79k")``), pooled (``(n, embed_dim)``) or token-level
(``(n, n_tokens, width)``), and caches every embedding on disk keyed by the model, the kind and the stimulus
content (sha256 of the file bytes, pixels or caption), so a stimulus is embedded once per model.

:func:`embed_stimuli` embeds the rows of a stimulus table with any target: ``"pixels"`` (the table's flattened
pixels), ``"pca"`` (pixels projected on principal components fitted on given rows), an embedder, or a function.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["OpenCLIPEmbedder", "embed_stimuli"]


def _image_bytes(item: Any) -> bytes:
    """Bytes that identify an image: the file's content, or the pixels with their shape and dtype."""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such stimulus image")
        return path.read_bytes()
    arr = np.asarray(item)
    return str((arr.shape, arr.dtype.str)).encode() + np.ascontiguousarray(arr).tobytes()


def _to_pil(item: Any) -> Any:
    from PIL import Image

    if isinstance(item, (str, os.PathLike)):
        return Image.open(item).convert("RGB")
    arr = np.asarray(item)
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3):
        arr = np.moveaxis(arr, 0, -1)                       # (C, H, W) → (H, W, C)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]                                   # grey (H, W, 1), as the heads return them
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"field 'images': expected an image (H, W), (H, W, 1|3|4) or (1|3, H, W), got shape "
                         f"{arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return Image.fromarray(arr).convert("RGB")


class OpenCLIPEmbedder:
    """Embed images and captions with an open_clip model, with an on-disk cache.

    Parameters
    ----------
    model : str
        open_clip model name (a registered config, e.g. ``"ViT-B-32"``; tests register tiny local configs with
        ``open_clip.add_model_config``).
    pretrained : str or None
        open_clip pretrained tag (downloads weights from the hub; None = random init, for tests).
    cache_dir : path, optional
        Default ``$NEURODECODE_CACHE/embeddings`` (``~/.cache/neurodecode/embeddings``). Entries of a randomly
        initialised model (``pretrained=None``) are keyed by a hash of its weights.
    device : str, optional
    batch_size : int
    cache : bool
        Read and write the cache (default True).

    Attributes
    ----------
    hits, misses : int
        Cache statistics since creation.
    """

    def __init__(self, model: str = "ViT-B-32", pretrained: str | None = "laion2b_s34b_b79k", *,
                 cache_dir: str | os.PathLike | None = None, device: str | None = None, batch_size: int = 64,
                 cache: bool = True) -> None:
        import open_clip
        import torch

        self.model_name, self.pretrained = model, pretrained
        try:
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained,
                                                                                   device=device or "cpu")
        except RuntimeError as err:
            if pretrained is not None and (model, pretrained) in set(open_clip.list_pretrained()):
                raise RuntimeError(
                    f"could not load the open_clip weights {model!r}/{pretrained!r}: they are not in the cache "
                    f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}) and could not be downloaded. On a "
                    f"machine with internet, create the model once (open_clip.create_model_and_transforms({model!r}, "
                    f"pretrained={pretrained!r})) and copy the cache. ({str(err).splitlines()[0][:200]})") from None
            raise ValueError(f"field 'model'/'pretrained': expected an open_clip model and tag "
                             f"(open_clip.list_pretrained()), got {model!r}/{pretrained!r}: {err}") from None
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(model)
        self.device, self.batch_size, self.cache = device or "cpu", int(batch_size), cache
        base = Path(cache_dir) if cache_dir is not None else Path(
            os.environ.get("NEURODECODE_CACHE", Path.home() / ".cache" / "neurodecode")) / "embeddings"
        weights = pretrained
        if weights is None:  # random weights differ between instances: key the cache by their content
            digest = hashlib.sha256()
            for tensor in self.model.state_dict().values():
                digest.update(tensor.detach().cpu().numpy().tobytes())
            weights = "random-" + digest.hexdigest()[:16]
        self.cache_dir = base / f"{model}__{weights}".replace("/", "_")
        self.hits = self.misses = 0
        self._torch = torch

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if getattr(self.model, "text_projection", None) is not None \
            else int(self.model.visual.output_dim)

    # ---- cache -------------------------------------------------------------------------------------------
    def _key(self, kind: str, content: bytes) -> Path:
        digest = hashlib.sha256(kind.encode() + b"\0" + content).hexdigest()
        return self.cache_dir / kind / digest[:2] / f"{digest}.npy"

    def _cached(self, kind: str, contents: list[bytes], compute: Callable[[list[int]], np.ndarray]) -> np.ndarray:
        keys = [self._key(kind, c) for c in contents]
        out: list[np.ndarray | None] = [None] * len(keys)
        todo = []
        for i, k in enumerate(keys):
            if self.cache and k.is_file():
                out[i] = np.load(k)
                self.hits += 1
            else:
                todo.append(i)
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start:start + self.batch_size]
            values = compute(idx)
            for i, v in zip(idx, values):
                out[i] = v
                self.misses += 1
                if self.cache:
                    keys[i].parent.mkdir(parents=True, exist_ok=True)
                    tmp = keys[i].with_suffix(f".{os.getpid()}.tmp")
                    with open(tmp, "wb") as fh:  # atomic: a crash never leaves a truncated cache entry
                        np.save(fh, v)
                    os.replace(tmp, keys[i])
        return np.stack(out)  # type: ignore[arg-type]

    # ---- embedding ---------------------------------------------------------------------------------------
    def embed_images(self, images: Sequence[Any], tokens: bool = False, normalize: bool = True) -> np.ndarray:
        """Embed images (paths or arrays (H, W[, 3]) in [0, 1] or uint8).

        Returns
        -------
        ndarray, (n, embed_dim) pooled and L2-normalised (``normalize=False``: as the image tower gives them, the
        scale that published unCLIP / IP-Adapter weights were trained on), or (n, n_tokens, width) with
        ``tokens=True``
        """
        images = list(images)
        torch = self._torch

        def compute(idx: list[int]) -> np.ndarray:
            batch = torch.stack([self.preprocess(_to_pil(images[i])) for i in idx]).to(self.device)
            with torch.no_grad():
                if tokens:
                    self.model.visual.output_tokens = True
                    try:
                        _, toks = self.model.visual(batch)
                    finally:
                        self.model.visual.output_tokens = False
                    return toks.float().cpu().numpy()
                emb = self.model.encode_image(batch)
                return (torch.nn.functional.normalize(emb, dim=-1) if normalize else emb).float().cpu().numpy()

        kind = "image_tokens" if tokens else "image" if normalize else "image_raw"
        return self._cached(kind, [_image_bytes(im) for im in images], compute)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed captions: (n, embed_dim), L2-normalised."""
        texts = [str(t) for t in texts]
        torch = self._torch

        def compute(idx: list[int]) -> np.ndarray:
            with torch.no_grad():
                emb = self.model.encode_text(self.tokenizer([texts[i] for i in idx]).to(self.device))
                return torch.nn.functional.normalize(emb, dim=-1).float().cpu().numpy()

        return self._cached("text", [t.encode() for t in texts], compute)


def embed_stimuli(stimuli: pd.DataFrame, target: str | OpenCLIPEmbedder | Callable[[pd.DataFrame], np.ndarray], *,
                  ids: Sequence[Any] | None = None, column: str | None = None, root: str | os.PathLike | None = None,
                  pca_components: int = 32, pca_fit_ids: Sequence[Any] | None = None,
                  tokens: bool = False, normalize: bool = True) -> np.ndarray:
    """Embed stimuli of a stimulus table, in the order of ``ids`` (default: the table's order).

    Parameters
    ----------
    stimuli : DataFrame
        The stimulus table (``stimulus`` id column; ``file``, ``caption`` or ``pixels`` columns).
    target : "pixels", "pca", an :class:`OpenCLIPEmbedder`, or a function(table rows) → (n, dim)
    ids : stimulus ids to embed (e.g. ``epochs.table["stimulus"]``); unknown ids are an error.
    column : for an embedder: ``"file"`` or ``"pixels"`` (images) or ``"caption"`` (texts); default the first present.
    root : folder that ``file`` paths are relative to.
    pca_components, pca_fit_ids : the PCA target's size and the rows it is fitted on (default all — pass the training
        ids to keep test stimuli out of the fit).
    normalize : for an embedder's image embeddings: L2-normalised (default) or as the image tower gives them.
    """
    if "stimulus" not in stimuli.columns:
        raise ValueError(f"field 'stimuli': expected a 'stimulus' id column, got {list(stimuli.columns)}")
    table = stimuli.set_index("stimulus", drop=False)
    ids = list(table.index) if ids is None else list(ids)
    unknown = [i for i in dict.fromkeys(ids) if i not in table.index]
    if unknown:
        raise KeyError(f"field 'ids': expected stimulus ids of the stimulus table, got {len(unknown)} without a row "
                       f"(so without an embedding), e.g. {unknown[:3]}")
    rows = table.loc[ids]

    def pixels(frame: pd.DataFrame) -> np.ndarray:
        if "pixels" not in frame.columns:
            raise ValueError("field 'target': 'pixels'/'pca' need a 'pixels' column in the stimulus table")
        return np.stack([np.asarray(p, dtype=np.float64).ravel() for p in frame["pixels"]])

    if isinstance(target, str):
        if target == "pixels":
            return pixels(rows)
        if target == "pca":
            from sklearn.decomposition import PCA

            fit_rows = table.loc[list(pca_fit_ids)] if pca_fit_ids is not None else table
            pca = PCA(n_components=min(pca_components, len(fit_rows)), random_state=0).fit(pixels(fit_rows))
            return pca.transform(pixels(rows))
        raise ValueError(f"field 'target': expected 'pixels', 'pca', an OpenCLIPEmbedder or a function, got {target!r}")
    if isinstance(target, OpenCLIPEmbedder):
        column = column or next((c for c in ("file", "pixels", "caption") if c in rows.columns), None)
        if column is None:
            raise ValueError(f"field 'column': expected a 'file', 'pixels' or 'caption' column, got {list(rows.columns)}")
        if column == "caption":
            return target.embed_texts(rows["caption"].tolist())
        items = rows[column].tolist()
        if column == "file":
            base = Path(root) if root is not None else Path(".")
            items = [base / f for f in items]
        elif "height" in rows.columns:
            items = [np.asarray(p).reshape(int(h), int(w)) for p, h, w in zip(items, rows["height"], rows["width"])]
        return target.embed_images(items, tokens=tokens, normalize=normalize)
    if callable(target):
        out = np.asarray(target(rows))
        if out.shape[0] != len(rows):
            raise ValueError(f"field 'target': expected the function to return one row per stimulus ({len(rows)}), "
                             f"got {out.shape}")
        return out
    raise TypeError(f"field 'target': expected 'pixels', 'pca', an OpenCLIPEmbedder or a function, got "
                    f"{type(target).__name__}")
