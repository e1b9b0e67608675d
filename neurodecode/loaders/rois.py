"""Regions of interest of fMRI runs: parcel time series, parcels and sliding windows.

* :func:`roi_timeseries` gives windows of parcel-mean time series ``(n_windows, n_rois, n_trs)``.
* :func:`pool_rois` pools voxel epochs into parcels; :func:`kmeans_parcels` is a data-free parcellation of a mask.
* :func:`sliding_windows` cuts one-volume epochs into windows of consecutive scans (dynamic connectivity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.core.validation import fail
from neurodecode.loaders.fmri import Run, check_runs, image_name, load_image, voxel_grid

__all__ = ["kmeans_parcels", "pool_rois", "roi_timeseries", "sliding_windows"]


def _parcel_centres(labels_img: Any, codes: Sequence[int]) -> np.ndarray:
    vol = np.asarray(labels_img.dataobj)
    out = np.full((len(codes), 3), np.nan)
    for n, code in enumerate(codes):
        ijk = np.argwhere(vol == code)
        if len(ijk):
            out[n] = (labels_img.affine @ np.r_[ijk.mean(0), 1.0])[:3] / 1000.0
    return out


def roi_timeseries(runs: Sequence[Run], labels_img: Any, *, window: float, stride: float,
                   names: Mapping[int, str] | None = None, standardize: bool = True, subject: str | None = None,
                   space: str = "scanner", resample_labels: bool = False) -> EpochSet:
    """Windows of parcel-mean time series ``(n_windows, n_rois, n_trs)`` for self-supervised models (BrainMAE).

    Parameters
    ----------
    runs : sequence of Run
    labels_img : path or image
        Integer parcellation (0 = background); resampled to the BOLD grid only with ``resample_labels=True``.
    window, stride : float
        Window length and step in seconds (rounded to whole volumes).
    names : mapping, optional
        Label value → ROI name (default ``roi<value>``).
    """
    from nilearn.image import resample_to_img
    from nilearn.maskers import NiftiLabelsMasker

    labels_img = load_image(labels_img, "parcellation")
    ref = runs[0].img
    if labels_img.shape[:3] != ref.shape[:3] or not np.allclose(labels_img.affine, ref.affine, atol=1e-3):
        if not resample_labels:
            raise ValueError(f"{image_name(labels_img)}: field 'labels_img': expected the grid of {runs[0].name} (shape "
                             f"{ref.shape[:3]}), got shape {labels_img.shape[:3]}; pass resample_labels=True")
        labels_img = resample_to_img(labels_img, ref.slicer[..., 0], interpolation="nearest", force_resample=True,
                                     copy_header=True)
    codes = [int(c) for c in np.unique(np.asarray(labels_img.dataobj)) if c != 0]
    masker = NiftiLabelsMasker(labels_img, standardize="zscore_sample" if standardize else None).fit()
    tr = runs[0].tr
    n_win, n_step = int(round(window / tr)), int(round(stride / tr))
    if n_win < 1 or n_step < 1:
        fail("window/stride", f"at least one TR ({tr} s)", f"{window} s / {stride} s")
    data, rows = [], []
    check_runs(runs)
    labelled = np.asarray(labels_img.dataobj) != 0
    for r in runs:
        raw = np.asanyarray(r.img.dataobj)
        if np.issubdtype(raw.dtype, np.floating) and not np.isfinite(raw[labelled]).all():
            raise ValueError(f"{r.name}: field 'data': expected finite BOLD values inside the parcels, got NaN/Inf "
                             f"in {int((~np.isfinite(raw[labelled])).any(axis=1).sum())} voxel(s)")
        ts = masker.transform(r.img, confounds=r.confounds)  # (n_volumes, n_rois)
        for start in range(0, ts.shape[0] - n_win + 1, n_step):
            data.append(ts[start:start + n_win].T)
            rows.append({"subject": subject, "session": r.session, "run": r.run, "onset": start * tr})
    if not data:
        raise ValueError(f"{runs[0].name}: field 'window': expected windows of {n_win} volumes to fit in the runs, "
                         "got none")
    roi_names = [(names or {}).get(c, f"roi{c}") for c in codes]
    channels = Channels(roi_names, "fmri-roi", _parcel_centres(labels_img, codes), space)
    step = {"step": "roi_timeseries", "labels": image_name(labels_img), "window": n_win * tr, "stride": n_step * tr,
            "standardize": standardize}
    return EpochSet(np.stack(data), 1.0 / tr, channels, pd.DataFrame(rows), 0.0, [step])


def pool_rois(epochs: EpochSet, labels_img: Any, *, names: Mapping[int, str] | None = None) -> EpochSet:
    """Average voxel channels within each parcel of an atlas on the epochs' grid: ``(n_epochs, n_rois, n_times)``.

    Parcels without any voxel of the epochs are left out; ROI channels sit at the parcel centres.
    """
    labels_img = load_image(labels_img, "parcellation")
    step, ijk = voxel_grid(epochs)
    if list(labels_img.shape[:3]) != step["shape"] or not np.allclose(labels_img.affine, step["affine"], atol=1e-3):
        raise ValueError(f"{image_name(labels_img)}: field 'labels_img': expected the epochs' grid (shape {step['shape']}), "
                         f"got shape {list(labels_img.shape[:3])}")
    vol = np.asarray(labels_img.dataobj).astype(int)
    codes_of_voxel = vol[tuple(ijk.T)]
    codes = [int(c) for c in np.unique(codes_of_voxel) if c != 0]
    if not codes:
        raise ValueError(f"{image_name(labels_img)}: field 'labels_img': expected parcels covering the epochs' voxels, got "
                         "none")
    data = np.stack([epochs.data[:, codes_of_voxel == c].mean(1) for c in codes], axis=1)
    channels = Channels([(names or {}).get(c, f"roi{c}") for c in codes], "fmri-roi",
                        _parcel_centres(labels_img, codes), epochs.channels.coord_frame)
    pool = {"step": "pool_rois", "labels": image_name(labels_img), "n_rois": len(codes)}
    return EpochSet(data, epochs.sfreq, channels, epochs.table, epochs.tmin, epochs.provenance + (pool,),
                    epochs.stimuli)


def kmeans_parcels(mask: Any, n_parcels: int, *, seed: int = 0) -> Any:
    """A data-free parcellation: k-means on the millimetre coordinates of the mask's voxels, as a labels image on
    the mask's grid (1..n_parcels; 0 outside) for :func:`pool_rois` — compact, contiguous parcels where no atlas
    fits (a slice, a small field of view). Seeded, the same every run."""
    import nibabel as nib
    from sklearn.cluster import KMeans

    mask_img = load_image(mask, "mask")
    vol = np.asarray(mask_img.dataobj) != 0
    ijk = np.argwhere(vol)
    if not isinstance(n_parcels, (int, np.integer)) or not 1 <= n_parcels <= len(ijk):
        fail("n_parcels", f"an integer in [1, {len(ijk)}] (the mask's voxels)", repr(n_parcels))
    xyz = nib.affines.apply_affine(mask_img.affine, ijk)
    codes = KMeans(int(n_parcels), n_init=10, random_state=seed).fit_predict(xyz) + 1
    out = np.zeros(vol.shape, dtype=np.int32)
    out[tuple(ijk.T)] = codes
    return nib.Nifti1Image(out, mask_img.affine)


def _segments(table: pd.DataFrame, tr: float, by: list[str]) -> list[np.ndarray]:
    """Runs of consecutive volumes (onsets one TR apart) inside each unit, as index arrays in time order."""
    out = []
    units = np.array(["/".join(map(str, r)) for r in table[by].itertuples(index=False)] if by else [""] * len(table))
    for _, idx in pd.Series(units).groupby(units, sort=False).indices.items():
        idx = idx[np.argsort(table["onset"].to_numpy()[idx], kind="stable")]
        onset = table["onset"].to_numpy()[idx]
        breaks = np.flatnonzero(np.abs(np.diff(onset) - tr) > 1e-3 * tr) + 1
        out += [seg for seg in np.split(idx, breaks) if len(seg)]
    return out


def sliding_windows(epochs: EpochSet, window: float, stride: float, *, mixed: str = "drop",
                    by: Sequence[str] = ("subject", "session", "run")) -> EpochSet:
    """Windows of consecutive volumes, ``(n_windows, n_channels, n_win)``, from one-volume epochs (dynamic FC).

    Parameters
    ----------
    epochs : EpochSet, shape (n_volumes, n_channels, 1)
        One epoch per volume with an ``onset`` column (:func:`read_volumes`, :func:`pool_rois`); ``sfreq`` is 1/TR.
    window, stride : float
        Window length and step in seconds (whole volumes). Windows stay inside a run (``by``) and never span a gap
        (volumes dropped as rest), so each one is a stretch of consecutive scans.
    mixed : {"drop", "majority"}
        Windows whose volumes carry different labels are dropped, or take the most frequent label.

    Returns
    -------
    EpochSet
        ``sfreq`` 1/TR; the table holds the first volume's row (``onset`` = window start) and ``n_volumes``.
    """
    if epochs.n_times != 1:
        fail("epochs", "one volume per epoch (n_times 1), e.g. from read_volumes", f"n_times {epochs.n_times}")
    if mixed not in ("drop", "majority"):
        fail("mixed", "'drop' or 'majority'", repr(mixed))
    tr = 1.0 / epochs.sfreq
    n_win, n_step = int(round(window / tr)), int(round(stride / tr))
    if n_win < 2 or n_step < 1:
        fail("window/stride", f"a window of at least 2 volumes and a stride of at least 1 (TR {tr:g} s)",
             f"{window} s / {stride} s")
    table = epochs.table.reset_index(drop=True)
    if "onset" not in table.columns or table["onset"].isna().any():
        fail("table['onset']", "the onset of every volume (windows follow the scan order)", "missing onsets")
    keys = [c for c in by if c in table.columns]
    labels = table["label"].astype(str).to_numpy() if "label" in table.columns else None
    data, rows = [], []
    for seg in _segments(table, tr, keys):
        for start in range(0, len(seg) - n_win + 1, n_step):
            idx = seg[start:start + n_win]
            row = table.iloc[idx[0]].to_dict()
            if labels is not None:
                values, counts = np.unique(labels[idx], return_counts=True)
                if len(values) > 1 and mixed == "drop":
                    continue
                row["label"] = table["label"].iloc[idx[np.argmax(labels[idx] == values[np.argmax(counts)])]]
            data.append(epochs.data[idx, :, 0].T)
            rows.append({**row, "n_volumes": n_win})
    if not data:
        fail("window", f"windows of {n_win} consecutive volumes inside the runs", "none fit")
    step = {"step": "sliding_windows", "window": n_win * tr, "stride": n_step * tr, "mixed": mixed}
    return EpochSet(np.stack(data), epochs.sfreq, epochs.channels, pd.DataFrame(rows), 0.0,
                    epochs.provenance + (step,), epochs.stimuli)
