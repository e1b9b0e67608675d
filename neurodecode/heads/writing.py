"""Writing heads' outputs: one file per trial (PNG images, TXT captions, OBJ/PLY/GLB meshes) and ``metadata.json``.

May import: ``neurodecode.core``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.core.persistence import dumps

__all__ = ["check_writable", "write_trials"]


def check_writable(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` if needed and check that files can be written there (a clear error otherwise)."""
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise PermissionError(f"{path}: field 'out_dir': expected a writable folder, got {err.strerror or err}") \
            from None
    return path


def _save_image(a: np.ndarray, path: Path) -> None:
    from PIL import Image

    a = np.clip(np.asarray(a, dtype=np.float32), 0, 1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    Image.fromarray((a * 255).round().astype(np.uint8)).save(path)


def write_trials(out_dir: str | os.PathLike, head: str, *, images: np.ndarray | None = None,
                 captions: Sequence[str] | None = None, meshes: Sequence[Any] | None = None,
                 trials: Sequence[Any] | None = None, subjects: Sequence[Any] | None = None, seed: int = 0,
                 model_ids: Mapping[str, Any] | None = None, timings: Mapping[str, float] | None = None,
                 extra: Mapping[str, Any] | None = None, mesh_format: str = "obj") -> Path:
    """Write one head's outputs per trial and ``metadata.json``.

    Parameters
    ----------
    images : array (n_trials, n_samples, H, W, C), optional
        Written as ``trial-<id>_sample-<k>.png``.
    captions : list of str, optional
        Written as ``trial-<id>.txt``.
    meshes : list of trimesh.Trimesh, optional
        Written as ``trial-<id>.<mesh_format>`` (obj, ply or glb).
    trials, subjects : per-trial ids (default 0..n-1) and subjects.
    """
    out = check_writable(out_dir)
    n = len(images) if images is not None else len(captions) if captions is not None else len(meshes or [])
    trials = list(trials) if trials is not None else list(range(n))
    if len(trials) != n:
        raise ValueError(f"field 'trials': expected {n} trial ids, got {len(trials)}")
    if mesh_format not in ("obj", "ply", "glb"):
        raise ValueError(f"field 'mesh_format': expected 'obj', 'ply' or 'glb', got {mesh_format!r}")
    records = []
    for i, trial in enumerate(trials):
        rec: dict[str, Any] = {"trial": str(trial), "subject": None if subjects is None else str(subjects[i]),
                               "seed": seed, "head": head, "files": []}
        if images is not None:
            for k in range(images.shape[1]):
                name = f"trial-{trial}_sample-{k}.png"
                _save_image(images[i, k], out / name)
                rec["files"].append(name)
        if captions is not None:
            name = f"trial-{trial}.txt"
            (out / name).write_text(captions[i] + "\n")
            rec["files"].append(name)
            rec["caption"] = captions[i]
        if meshes is not None:
            name = f"trial-{trial}.{mesh_format}"
            meshes[i].export(out / name)
            rec["files"].append(name)
        records.append(rec)
    meta = {"head": head, "model_ids": dict(model_ids or {}), "timings": dict(timings or {}),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "trials": records, **dict(extra or {})}
    (out / "metadata.json").write_text(dumps({k: str(v) if isinstance(v, Path) else v for k, v in meta.items()},
                                              indent=1))
    return out
