"""Precomputed responses → the common epoch format: NSD-style betas, MATLAB sets, cortical-surface frames.

* :func:`load_betas` — single-trial betas in ``.npy``, HDF5 or a 4D NIfTI (with a mask) with their trial table.
* :func:`load_mat` — responses and stimuli from a MATLAB file, one part per key (:data:`DIGITS69` reads digits69).
* :func:`load_surface` — GIfTI or flattened-surface frames (MinD-3D / fMRI-Shape), one file per trial.

May import: ``neurodecode.core`` and the other loaders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.core.validation import check_option, fail
from neurodecode.loaders.fmri import (check_stimulus_files, drop_nonfinite, load_image, make_masker, masked_data,
                                   voxel_channels)

__all__ = ["DIGITS69", "load_betas", "load_mat", "load_surface"]


def load_betas(source: str | os.PathLike, table: pd.DataFrame, *, dataset: str | None = None, mask: Any = None,
               sfreq: float = 1.0, space: str = "scanner", stimuli: pd.DataFrame | None = None,
               stim_root: str | os.PathLike | None = None, on_nonfinite: str = "raise") -> EpochSet:
    """Precomputed single-trial responses (NSD-style betas) with their trial table.

    Parameters
    ----------
    source : path
        ``.npy`` (n_trials, n_voxels), ``.h5``/``.hdf5`` (``dataset`` of shape (n_trials, n_voxels), read lazily
        trial by trial is left to the store: this loads it), or a 4D NIfTI (trials along the 4th axis) with ``mask``.
    table : DataFrame
        One row per trial, e.g. ``stimulus`` (ids), ``session``, ``run``, ``label``.
    on_nonfinite : {"raise", "mask"}
        A NaN/Inf beta is an error naming the file, trial and voxel (``"raise"``), or leaves that voxel out, logged
        and recorded in the provenance (``"mask"``).
    """
    check_option("on_nonfinite", on_nonfinite, ("raise", "mask"), str(source))
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such betas file")
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    provenance: list[dict] = [{"step": "load_betas", "file": path.name}]
    if suffix == ".npy":
        betas = np.load(path, mmap_mode="r")
        channels = Channels([f"voxel{i}" for i in range(betas.shape[-1])], "fmri-voxel", coord_frame=space)
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            if dataset is None or dataset not in f:
                raise ValueError(f"{path}: field 'dataset': expected one of {list(f)}, got {dataset!r}")
            betas = f[dataset][()]
        channels = Channels([f"voxel{i}" for i in range(betas.shape[-1])], "fmri-voxel", coord_frame=space)
    elif suffix in (".nii", ".nii.gz"):
        img = load_image(path, "betas image")
        if img.ndim != 4:
            raise ValueError(f"{path}: field 'source': expected a 4D image (trials along the 4th axis), got "
                             f"{img.ndim}D")
        masker = make_masker(mask, img)
        channels, mask_step = voxel_channels(masker, space)
        betas, finite = masked_data(masker, img, on_nonfinite)
        betas[:, ~finite] = np.nan  # nilearn may have zero-filled them
        provenance.append(mask_step)
    else:
        raise ValueError(f"{path}: expected .npy, .h5/.hdf5 or .nii/.nii.gz betas, got {suffix!r}")
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 2:
        raise ValueError(f"{path}: expected betas of shape (n_trials, n_voxels), got {betas.shape}")
    if len(table) != betas.shape[0]:
        raise ValueError(f"{path}: field 'table': expected one row per trial ({betas.shape[0]}), got {len(table)}")
    keep = np.isfinite(betas).all(axis=0)
    if not keep.all():
        if on_nonfinite == "raise":
            trial, voxel = (int(i[0]) for i in np.nonzero(~np.isfinite(betas)))
            raise ValueError(f"{path}: field 'betas': expected finite values, got {betas[trial, voxel]} at trial "
                             f"{trial}, voxel {voxel} ({int((~keep).sum())} voxel(s) affected); pass "
                             "on_nonfinite='mask' to leave those voxels out (reported)")
        step = {"step": "nonfinite", "on_nonfinite": "mask"}
        channels = drop_nonfinite(channels, keep, step, str(path))
        betas = betas[:, keep]
        provenance.append(step)
    if stimuli is not None:
        stimuli = check_stimulus_files(stimuli, stim_root)
    return EpochSet(betas[:, :, None], sfreq, channels, table, 0.0, provenance, stimuli)


#: the "69" data set (van Gerven et al.): V1-V3 responses to handwritten 6s and 9s, 28×28 images stored
#: column-major (reshape(28, 28) then transpose)
DIGITS69 = {
    "responses": {"train": "fmriTrn", "test": "fmriTest"},
    "images": {"train": "stimTrn", "test": "stimTest"},
    "labels": {"train": "labelTrn", "test": "labelTest"},
    "image_shape": (28, 28),
    "image_order": "F",
    "label_names": {1: "6", 2: "9"},
    "subject": "01",
}


def stimulus_id(pixels: np.ndarray) -> str:
    """An id that names an image by its content (``img-`` + 12 hex digits of the SHA-1 of its pixels), so that
    repeated presentations of one image share one stimulus."""
    import hashlib

    a = np.ascontiguousarray(pixels)
    return "img-" + hashlib.sha1(str((a.shape, a.dtype.str)).encode() + a.tobytes()).hexdigest()[:12]


def _mat_labels(path: Path, mat: Mapping[str, Any], key: str, n: int, names: Mapping[Any, str] | None) -> list[Any]:
    lab = np.asarray(mat[key]).ravel()
    if lab.shape[0] != n:
        raise ValueError(f"{path}: field '{key}': expected one label per trial ({n}), got {lab.shape[0]}")
    values = [_code(v.item()) for v in lab]
    if names:
        lookup = {_code(k): v for k, v in names.items()}      # YAML configs give the codes as strings
        unknown = sorted({v for v in values if v not in lookup})
        if unknown:
            raise ValueError(f"{path}: field '{key}': expected label codes among {sorted(lookup)} (label_names), got "
                             f"{unknown}; map every code of the file (in a training run: data.label_names={{...}}) or "
                             "keep the file's codes as labels (label_names=None; data.label_names=null)")
        return [lookup[v] for v in values]
    return values


def _code(value: Any) -> str:
    """A label code as text: 1, 1.0 and "1" are the same code."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _mat_images(path: Path, mat: Mapping[str, Any], key: str, n: int, image_shape: Sequence[int] | None,
                image_order: str) -> np.ndarray:
    imgs = np.asarray(mat[key])
    if imgs.shape[0] != n:
        raise ValueError(f"{path}: field '{key}': expected one image per trial ({n}), got {imgs.shape[0]}")
    if image_shape is not None:
        if imgs.ndim != 2 or imgs.shape[1] != int(np.prod(image_shape)):
            raise ValueError(f"{path}: field 'image_shape': expected {tuple(image_shape)} = "
                             f"{int(np.prod(image_shape))} pixels per image, got images of shape {imgs.shape[1:]} in "
                             f"'{key}'")
        imgs = np.stack([im.reshape(image_shape, order=image_order) for im in imgs])
    if not np.isfinite(imgs.astype(np.float64)).all():
        raise ValueError(f"{path}: field '{key}': expected finite pixel values, got NaN/Inf")
    return imgs


def load_mat(path: str | os.PathLike, *, responses: Mapping[str, str], images: Mapping[str, str] | None = None,
             labels: Mapping[str, str] | None = None, image_shape: Sequence[int] | None = None,
             image_order: str = "C", label_names: Mapping[Any, str] | None = None,
             subject: str | None = None) -> EpochSet:
    """Responses and stimuli from a MATLAB ``.mat`` file, one part (e.g. train/test) per key.

    ``load_mat(path, **DIGITS69)`` reads the digits69 set: 100 trials × 3,092 voxels of subject "01", a ``split``
    column (train/test), labels "6"/"9", and a stimulus table whose ``pixels`` column holds each 28×28 image
    flattened row by row (``pixels.reshape(28, 28)`` shows it upright) — the file stores images column by column,
    hence ``image_order="F"``. With images, a trial's stimulus id names its image's content (``stimulus_id``):
    repeated presentations share one id; without them each trial is its own stimulus (``<part>_<index>``).
    Each part must hold one label and one image per trial and finite values; label codes missing from
    ``label_names`` are an error.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MATLAB file")
    try:
        mat = loadmat(path)
    except (ValueError, OSError, TypeError) as err:
        raise ValueError(f"{path}: expected a MATLAB v5 .mat file, got {err}") from None
    for group in (responses, images or {}, labels or {}):
        missing = [k for k in group.values() if k not in mat]
        if missing:
            raise ValueError(f"{path}: expected variables {missing} in the file, got "
                             f"{sorted(k for k in mat if not k.startswith('__'))}")
    data, rows, stim = [], [], {}
    for part, key in responses.items():
        X = np.asarray(mat[key], dtype=np.float64)
        if X.ndim != 2 or not np.isfinite(X).all():
            raise ValueError(f"{path}: field '{key}': expected finite responses (n_trials, n_voxels), got shape "
                             f"{X.shape}" + ("" if X.ndim != 2 else f" with {int((~np.isfinite(X)).sum())} NaN/Inf"))
        if data and X.shape[1] != data[0].shape[1]:
            raise ValueError(f"{path}: field '{key}': expected {data[0].shape[1]} voxels like the first part, got "
                             f"{X.shape[1]}")
        n = X.shape[0]
        lab = _mat_labels(path, mat, labels[part], n, label_names) if labels is not None else [None] * n
        ids = [f"{part}_{i:04d}" for i in range(n)]
        if images is not None:
            imgs = _mat_images(path, mat, images[part], n, image_shape, image_order)
            ids = [stimulus_id(im) for im in imgs]
            for sid, im in zip(ids, imgs):
                stim.setdefault(sid, {"stimulus": sid, "pixels": np.ascontiguousarray(im).ravel(),
                                      "height": None if image_shape is None else int(image_shape[0]),
                                      "width": None if image_shape is None else int(image_shape[1])})
        rows += [{"subject": subject, "stimulus": ids[i], "split": part, "trial": i, "label": lab[i]}
                 for i in range(n)]
        data.append(X)
    X = np.concatenate(data)
    channels = Channels([f"voxel{i}" for i in range(X.shape[1])], "fmri-voxel")
    stimuli = pd.DataFrame(list(stim.values())) if stim else None
    return EpochSet(X[:, :, None], 1.0, channels, pd.DataFrame(rows), 0.0,
                    [{"step": "load_mat", "file": path.name}], stimuli)


def load_surface(files: Sequence[str | os.PathLike], *, mask: str | os.PathLike | np.ndarray | None = None,
                 stimulus_ids: Sequence[str] | None = None, sfreq: float = 1.0, subject: str | None = None) -> EpochSet:
    """Cortical-surface responses, one file per trial: ``(n_trials, n_vertices, n_frames)``.

    ``.gii`` files (GIfTI, e.g. on fsaverage) hold one data array per frame; ``.npy`` files hold frames of a
    flattened cortical surface image (``(n_frames, height, width)``, as MinD-3D/fMRI-Shape), of which ``mask``
    (``(height, width)``, non-zero = cortex) selects the vertices. Stimulus ids default to the file names.
    """
    import nibabel as nib

    files = [Path(f) for f in files]
    if not files:
        fail("files", "at least one surface file", "none")
    mask_arr = None
    if mask is not None:
        mask_arr = np.load(mask) if isinstance(mask, (str, os.PathLike)) else np.asarray(mask)
        mask_arr = mask_arr.astype(bool)
    trials = []
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no such surface file")
        if f.suffix == ".gii":
            arr = np.stack([d.data for d in nib.load(f).darrays]).reshape(-1, len(nib.load(f).darrays[0].data))
        elif f.suffix == ".npy":
            arr = np.load(f, allow_pickle=False)
            if arr.ndim != 3:
                raise ValueError(f"{f}: field 'data': expected frames of a flattened surface image (n_frames, height, "
                                 f"width), got shape {arr.shape}" + (
                                     "; a 2-D array is ambiguous (one image, or frames × vertices): save one image "
                                     "as arr[None]" if arr.ndim == 2 else ""))
            if mask_arr is not None:
                if arr.shape[1:] != mask_arr.shape:
                    raise ValueError(f"{f}: field 'mask': expected frames of the mask's shape {mask_arr.shape}, got "
                                     f"{arr.shape[1:]}")
                arr = arr[:, mask_arr]
            else:
                arr = arr.reshape(arr.shape[0], -1)
        else:
            raise ValueError(f"{f}: expected a .gii or .npy surface file, got {f.suffix!r}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{f}: field 'data': expected finite values, got {int((~np.isfinite(arr)).sum())} NaN/Inf")
        trials.append(arr.T)  # (n_vertices, n_frames)
    shapes = {t.shape for t in trials}
    if len(shapes) != 1:
        raise ValueError(f"field 'files': expected one (n_vertices, n_frames) shape for every file, got {sorted(shapes)}")
    ids = list(stimulus_ids) if stimulus_ids is not None else [f.stem for f in files]
    if len(ids) != len(files):
        fail("stimulus_ids", f"one id per file ({len(files)})", len(ids))
    n_vert = trials[0].shape[0]
    if n_vert == 0:
        fail("mask", "at least one vertex (non-zero entry)", "an empty selection")
    channels = Channels([f"vertex{i}" for i in range(n_vert)], "fmri-voxel", coord_frame="fsaverage")
    table = pd.DataFrame({"subject": subject, "stimulus": ids, "file": [f.name for f in files]})
    return EpochSet(np.stack(trials), sfreq, channels, table, 0.0,
                    [{"step": "load_surface", "n_files": len(files), "masked": mask is not None}])
