"""Stimulus tables: images from their ``pixels`` columns or image files, resized for a model, identified by content.

A stimulus table (``EpochSet.stimuli``) has one row per stimulus: a unique ``stimulus`` id and what describes it —
``file``, ``caption``, or ``pixels`` (flattened row by row) with ``height``/``width``. Imports nothing above core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["resize_images", "stimulus_images"]


def _read_image_file(path: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L"), dtype=np.float32)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: field 'stimuli.file': expected a readable image, got {type(err).__name__}: "
                         f"{err}") from None


def stimulus_images(stimuli: pd.DataFrame, ids: Sequence[Any], scale: float | None = None) -> np.ndarray:
    """Images (n, H, W, 1) in [0, 1] from a stimulus table's ``pixels`` (+ ``height``/``width``) columns, or else
    from its ``file`` column (image files read as grey; all of one size).

    ``scale`` divides the pixels (default 255 when any pixel exceeds 1, else 1).
    """
    from_files = "pixels" not in stimuli.columns and "file" in stimuli.columns
    for col in () if from_files else ("pixels", "height", "width"):
        if col not in stimuli.columns:
            raise ValueError(f"field 'stimuli': expected a {col!r} column (or a 'file' column of image files) for "
                             f"image stimuli, got {list(stimuli.columns)}")
    table = stimuli.set_index("stimulus", drop=False)
    unknown = [i for i in dict.fromkeys(ids) if i not in table.index]
    if unknown:
        raise KeyError(f"field 'stimulus': expected ids of the stimulus table, got {len(unknown)} unknown, "
                       f"e.g. {unknown[:3]}")
    rows = table.loc[list(ids)]
    if from_files:
        cache = {f: _read_image_file(str(f)) for f in dict.fromkeys(rows["file"])}
        (f1, s1), *rest = ((f, a.shape) for f, a in cache.items())
        other = next(((f, s2) for f, s2 in rest if s2 != s1), None)
        if other is not None:
            raise ValueError(f"field 'stimuli.file': expected images of one size, got {s1[0]}×{s1[1]} ({f1}) and "
                             f"{other[1][0]}×{other[1][1]} ({other[0]}); resize them, or give 'pixels' with "
                             "'height'/'width'")
        imgs = np.stack([cache[f] for f in rows["file"]])
    else:
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


