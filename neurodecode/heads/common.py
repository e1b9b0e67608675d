"""What every generative head shares: latent checks, loading real weights with a clear offline error, batching that
backs off on GPU memory errors, and writing outputs with their metadata."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_latents", "check_writable", "load_pretrained", "run_in_batches", "write_trials"]


def check_latents(latents: Any, embed_dim: int, head: str) -> np.ndarray:
    """Latents as float32 (n_trials, embed_dim), or a ValueError naming the head and the dimensions."""
    if hasattr(latents, "detach"):
        latents = latents.detach().cpu().numpy()
    a = np.asarray(latents, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != embed_dim:
        raise ValueError(f"field 'latents': the {head} expects (n_trials, {embed_dim}) embeddings, got shape "
                         f"{a.shape}; align to this head's embedding space (e.g. the open_clip model it was trained "
                         "with) first")
    if not np.isfinite(a).all():
        raise ValueError(f"field 'latents': expected finite values for the {head}, got NaN or Inf")
    return a


def load_pretrained(cls: Any, model_id: str, subfolder: str | None = None, **kw: Any) -> Any:
    """``cls.from_pretrained(model_id, subfolder=...)`` with an error that says which weights are missing and how to
    get them (no hub access here, or not in the cache)."""
    try:
        return cls.from_pretrained(model_id, subfolder=subfolder, **kw) if subfolder else \
            cls.from_pretrained(model_id, **kw)
    except (OSError, ValueError) as err:
        where = f"{model_id}/{subfolder}" if subfolder else model_id
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise RuntimeError(
            f"could not load the weights {where!r} for {cls.__name__}: they are not in the Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}) and "
            f"{'HF_HUB_OFFLINE=1 forbids downloading them' if offline else 'the hub could not be reached'}. "
            f"On a machine with internet run `huggingface-cli download {model_id}` (or load the head once there) "
            f"and copy the cache, or point HF_HOME at a cache that has it. ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]})") from None


def run_in_batches(fn: Callable[[np.ndarray], np.ndarray], n: int, batch_size: int, *, progress: bool = False,
                   desc: str = "") -> np.ndarray:
    """``fn(indices) -> array`` over ``n`` items in batches, concatenated; a CUDA out-of-memory error halves the
    batch and retries (down to 1)."""
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"field 'batch_size': expected >= 1, got {batch_size}")
    out, start = [], 0
    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False)
    while start < n:
        idx = np.arange(start, min(n, start + batch_size))
        try:
            out.append(fn(idx))
        except torch.cuda.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            torch.cuda.empty_cache()
            continue
        start += len(idx)
        bar.update(len(idx))
    bar.close()
    return np.concatenate(out)


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
    (out / "metadata.json").write_text(json.dumps(meta, indent=1, default=str))
    return out
