"""fMRI loaders, reading and masking: BOLD runs and masks → the common epoch format.

* :func:`read_run` opens a 4D BOLD run with its events, TR and confounds (fMRIPrep strategies via nilearn); the
  checks every fMRI loader shares (TR, events inside the run, finite voxels, stimulus files) are here.
* :func:`make_masker` / :func:`voxel_channels`: a mask (or an atlas) on the runs' grid and the voxel channels.
* :func:`read_volumes` gives one epoch per volume with per-volume labels (block designs such as Haxby 2001).
* :func:`to_nifti` maps any per-voxel vector back to a NIfTI image in the original space.

Single-trial responses from GLMs are in :mod:`neurodecode.loaders.glm`; ROI time series, parcels and windows in
:mod:`neurodecode.loaders.rois`; precomputed responses and surfaces in :mod:`neurodecode.loaders.precomputed`.

Voxel channels are named ``v<i>_<j>_<k>`` (their voxel indices) and positioned at the voxel centres in world
coordinates (metres); the mask's affine and shape are kept in the provenance so that :func:`to_nifti` works on
epochs loaded back from disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.core.validation import check_option, fail

__all__ = ["Run", "check_events", "check_runs", "check_stimulus_files", "drop_nonfinite", "image_name", "load_image", "make_masker", "masked_data", "read_run", "read_volumes", "to_nifti", "voxel_channels", "voxel_grid"]


def image_name(img: Any) -> str:
    """The file name of a nibabel image, for error messages (``<image>`` for one built in memory)."""
    fn = getattr(img, "get_filename", lambda: None)()
    return str(fn) if fn else "<image>"


def load_image(img: Any, what: str = "image") -> Any:
    """A nibabel image from a path (a clear error for a missing or unreadable file) or passed through."""
    import nibabel as nib

    if isinstance(img, (str, os.PathLike)):
        path = Path(img)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such {what}")
        try:
            return nib.load(path)
        except Exception as err:  # nibabel raises many kinds for broken files
            raise ValueError(f"{path}: expected a readable NIfTI {what}, got {err}") from None
    return img


def _load_4d(bold: Any, tr: float | None) -> tuple[Any, str, float]:
    """A 4D BOLD image, its name and its TR (3D images and a missing TR are refused)."""
    img = load_image(bold, "BOLD run")
    name = image_name(img)
    if img.ndim != 4:
        raise ValueError(f"{name}: field 'bold': expected a 4D image (x, y, z, time), got {img.ndim}D with shape "
                         f"{img.shape}")
    return img, name, _tr_from(img, tr)


@dataclasses.dataclass(frozen=True)
class Run:
    """One BOLD run: a 4D image, its TR, events and confounds.

    Attributes
    ----------
    img : nibabel image, 4D
    tr : float
        Repetition time in seconds.
    events : DataFrame or None
        ``onset``, ``duration`` (seconds), ``trial_type`` and any other columns (``stimulus``, ``stim_file``, ...).
    confounds : ndarray (n_volumes, n_confounds) or None
    run, session : str or None
    """

    img: Any
    tr: float
    events: pd.DataFrame | None = None
    confounds: np.ndarray | None = None
    run: str | None = None
    session: str | None = None

    def __post_init__(self) -> None:
        # a Run built by hand gets the checks read_run makes: TR, events inside the run, one confound row per volume
        if len(getattr(self.img, "shape", ())) != 4:
            raise ValueError(f"{self.name}: field 'img': expected a 4D image (x, y, z, time), got shape "
                             f"{getattr(self.img, 'shape', None)}")
        object.__setattr__(self, "tr", _check_tr(float(self.tr), self.name, "the Run"))
        if self.events is not None:
            object.__setattr__(self, "events", check_events(self.events, self.n_volumes, self.tr,
                                                            f"{self.name} events"))
        if self.confounds is not None:
            conf = np.asarray(self.confounds, dtype=np.float64)
            conf = conf[:, None] if conf.ndim == 1 else conf
            object.__setattr__(self, "confounds", _check_confounds(conf, self.n_volumes, self.name))

    @property
    def n_volumes(self) -> int:
        return int(self.img.shape[3])

    @property
    def name(self) -> str:
        return image_name(self.img)


#: the longest TR accepted (seconds); a longer one is almost always milliseconds mislabelled as seconds
MAX_TR = 100.0


def _check_tr(tr: float, where: str, source: str) -> float:
    if not (np.isfinite(tr) and 0 < tr <= MAX_TR):
        raise ValueError(f"{where}: field 'tr': expected a repetition time in seconds, 0 < TR <= {MAX_TR:g}, got "
                         f"{tr} from {source}" + (" — milliseconds labelled as seconds?" if tr > MAX_TR else ""))
    return float(tr)


def _tr_from(img: Any, tr: float | None) -> float:
    fn = image_name(img)
    if tr is not None:
        return _check_tr(float(tr), fn, "the argument")
    sidecar = Path(fn.replace(".nii.gz", ".json").replace(".nii", ".json")) if fn != "<image>" else None
    if sidecar is not None and sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
        except ValueError as err:
            raise ValueError(f"{sidecar}: expected a JSON sidecar, got {err}") from None
        if "RepetitionTime" in meta:
            return _check_tr(float(meta["RepetitionTime"]), fn, f"{sidecar.name} RepetitionTime")
    zooms = img.header.get_zooms()
    units = img.header.get_xyzt_units()[1] if hasattr(img.header, "get_xyzt_units") else "sec"
    if len(zooms) > 3 and zooms[3] > 0 and units in ("sec", "unknown"):
        return _check_tr(float(zooms[3]), fn, f"the NIfTI header (pixdim[4], units {units!r})")
    if len(zooms) > 3 and zooms[3] > 0 and units == "msec":
        return _check_tr(float(zooms[3]) / 1000.0, fn, "the NIfTI header (pixdim[4] in msec)")
    raise ValueError(f"{fn}: field 'tr': expected a repetition time (argument, BIDS sidecar RepetitionTime or NIfTI "
                     "header), got none")


def check_runs(runs: Sequence[Run]) -> None:
    """Every run on the first run's grid and TR (an error names both files)."""
    first = runs[0]
    for r in runs[1:]:
        if r.tr != first.tr:
            raise ValueError(f"{r.name}: field 'tr': expected {first.tr} s like {first.name}, got {r.tr} s; runs of "
                             "different TR cannot share one sampling rate")
        if r.img.shape[:3] != first.img.shape[:3] or not np.allclose(r.img.affine, first.img.affine, atol=1e-3):
            raise ValueError(f"{r.name}: expected the grid of {first.name} (shape {first.img.shape[:3]}), got "
                             f"shape {r.img.shape[:3]}; resample the runs first")


def masked_data(masker: Any, img: Any, on_nonfinite: str = "raise") -> tuple[np.ndarray, np.ndarray]:
    """The masker's (n_volumes, n_voxels) float64 signal of ``img`` and a boolean (n_voxels,) of the voxels whose
    signal is finite everywhere; non-finite voxels raise (``on_nonfinite="raise"``, naming the file, the voxel and the
    volume) instead of being silently zero-filled as nilearn does."""
    name = image_name(img)
    check_option("on_nonfinite", on_nonfinite, ("raise", "mask"), name)
    try:
        raw = np.asanyarray(img.dataobj)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{name}: expected the image data the header describes, got an unreadable or truncated "
                         f"file ({type(err).__name__}: {err})") from None
    inside = np.asarray(masker.mask_img_.dataobj) > 0
    vox = raw[inside].reshape(int(inside.sum()), -1)
    finite = np.isfinite(vox).all(axis=1) if np.issubdtype(vox.dtype, np.floating) else np.ones(len(vox), bool)
    if not finite.all() and on_nonfinite == "raise":
        v, t = (int(i[0]) for i in np.nonzero(~np.isfinite(vox)))
        ijk = tuple(int(c) for c in np.argwhere(inside)[v])
        raise ValueError(f"{name}: field 'data': expected finite BOLD values in the mask, got NaN/Inf in "
                         f"{int((~finite).sum())} voxel(s), the first at voxel {ijk}, volume {t}; pass "
                         "on_nonfinite='mask' to leave those voxels out (reported)")
    Y = masker.transform(img).astype(np.float64)
    return Y, finite


def check_events(table: pd.DataFrame, n_vol: int, tr: float, where: str) -> pd.DataFrame:
    """The events of a run, checked: ``onset``/``duration`` numeric seconds, every event inside the run.

    Parameters
    ----------
    table : DataFrame
        One row per event; ``trial_type`` defaults to ``"trial"``.
    n_vol, tr : the run's length in volumes and its repetition time (s).
    where : str
        Named in the errors (the events file).
    """
    table = table.copy()
    missing = [c for c in ("onset", "duration") if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: expected columns 'onset' and 'duration' (seconds), missing {missing}")
    if "trial_type" not in table.columns:
        table["trial_type"] = "trial"
    for col in ("onset", "duration"):
        bad = np.flatnonzero(~np.isfinite(pd.to_numeric(table[col], errors="coerce").to_numpy(np.float64)))
        if bad.size:
            raise ValueError(f"{where}: field '{col}': expected numbers in seconds, got "
                             f"{table[col].iloc[int(bad[0])]!r} at row {int(bad[0])}")
    table["onset"], table["duration"] = table["onset"].astype(float), table["duration"].astype(float)
    early = (table["onset"] < 0) | (table["duration"] < 0)
    if early.any():
        row = int(np.flatnonzero(early.to_numpy())[0])
        raise ValueError(f"{where}: event {row}: field 'onset'/'duration': expected an event inside the run "
                         f"(onset >= 0 s, duration >= 0 s), got onset {table['onset'].iloc[row]} s, duration "
                         f"{table['duration'].iloc[row]} s")
    end = table["onset"] + table["duration"]
    late = end > n_vol * tr + 1e-6
    if late.any():
        row = int(np.flatnonzero(late.to_numpy())[0])
        raise ValueError(f"{where}: event {row} (onset {table['onset'].iloc[row]} s, duration "
                         f"{table['duration'].iloc[row]} s) ends after the run ({n_vol} volumes × {tr} s = "
                         f"{n_vol * tr} s)")
    table = table.reset_index(drop=True)
    return table


def read_run(bold: Any, events: str | os.PathLike | pd.DataFrame | None = None, *, tr: float | None = None,
             confounds: Any = None, confounds_strategy: Sequence[str] | None = None, run: str | None = None,
             session: str | None = None) -> Run:
    """Open one BOLD run.

    Parameters
    ----------
    bold : path or nibabel image
        A 4D image (a 3D image is refused).
    events : path (``.tsv``/``.csv``) or DataFrame, optional
        Needs ``onset`` and ``duration`` in seconds; ``trial_type`` names the condition. Events that end after the
        run are refused.
    tr : float, optional
        Repetition time; default from the BIDS sidecar (``RepetitionTime``) or the NIfTI header.
    confounds : path, DataFrame or array (n_volumes, n_confounds), optional
    confounds_strategy : sequence of str, optional
        fMRIPrep confounds via ``nilearn.interfaces.fmriprep.load_confounds`` (e.g. ``["motion", "wm_csf"]``);
        needs the fMRIPrep ``*_desc-confounds_timeseries.tsv`` beside ``bold``.
    """
    img, name, tr = _load_4d(bold, tr)
    n_vol = int(img.shape[3])
    table = None
    if events is not None:
        if isinstance(events, (str, os.PathLike)):
            path = Path(events)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such events file")
            table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", na_values="n/a")
            where = str(path)
        else:
            table, where = events.copy(), f"{name} events"
        table = check_events(table, n_vol, tr, where)
    conf = None
    if confounds_strategy is not None:
        from nilearn.interfaces.fmriprep import load_confounds

        try:
            frame, _ = load_confounds(name, strategy=tuple(confounds_strategy))
        except (ValueError, FileNotFoundError) as err:
            raise ValueError(f"{name}: field 'confounds_strategy': {err}") from None
        conf = None if frame is None else frame.to_numpy(np.float64)
    elif confounds is not None:
        if isinstance(confounds, (str, os.PathLike)):
            confounds = pd.read_csv(confounds, sep="\t" if str(confounds).endswith(".tsv") else ",")
        conf = np.asarray(confounds, dtype=np.float64)
        conf = conf[:, None] if conf.ndim == 1 else conf
    return Run(img, tr, table, conf, run, session)


def _check_confounds(conf: np.ndarray, n_vol: int, name: str) -> np.ndarray:
    """Confounds with one row per volume; the leading n/a of fMRIPrep's derivative columns become 0, any other
    NaN/Inf is refused (it would silently change every beta)."""
    if conf.ndim != 2 or conf.shape[0] != n_vol:
        raise ValueError(f"{name}: field 'confounds': expected one row per volume ({n_vol}), got shape {conf.shape}")
    bad = ~np.isfinite(conf)
    leading = np.cumprod(bad, axis=0).astype(bool)  # the n/a rows a column starts with
    rest = bad & ~leading
    if rest.any():
        row, col = (int(v[0]) for v in np.nonzero(rest))
        raise ValueError(f"{name}: field 'confounds': expected finite values after the first rows, got "
                         f"{conf[row, col]} at volume {row}, column {col}")
    if np.isinf(conf[leading]).any():
        raise ValueError(f"{name}: field 'confounds': expected n/a or numbers, got Inf in the first rows")
    return np.where(leading, 0.0, conf)


def make_masker(mask: Any, reference: Any, *, resample_mask: bool = False) -> Any:
    """A fitted ``nilearn.maskers.NiftiMasker`` for the voxels of ``mask`` in the space of ``reference``.

    A mask whose shape or affine differ from the BOLD image is refused unless ``resample_mask=True`` (then it is
    resampled to the BOLD grid by nearest neighbour). With ``mask=None`` nilearn computes an EPI mask from
    ``reference``.
    """
    from nilearn.image import resample_to_img
    from nilearn.maskers import NiftiMasker

    ref = load_image(reference, "BOLD run")
    if mask is None:
        try:
            return NiftiMasker(mask_strategy="epi", standardize=None).fit(ref)
        except ValueError as err:
            raise ValueError(f"{image_name(ref)}: field 'mask': no mask given and nilearn's EPI mask failed ({err}); "
                             "pass a brain mask") from None
    mask_img = load_image(mask, "mask")
    same = mask_img.shape[:3] == ref.shape[:3] and np.allclose(mask_img.affine, ref.affine, atol=1e-3)
    if not same:
        if not resample_mask:
            raise ValueError(f"{image_name(mask_img)}: field 'mask': expected the grid of {image_name(ref)} (shape "
                             f"{ref.shape[:3]}, affine diag {np.diag(ref.affine)[:3].round(3).tolist()}), got shape "
                             f"{mask_img.shape[:3]}, affine diag {np.diag(mask_img.affine)[:3].round(3).tolist()}; pass "
                             "resample_mask=True to resample it")
        mask_img = resample_to_img(mask_img, ref.slicer[..., 0] if ref.ndim == 4 else ref, interpolation="nearest",
                                   force_resample=True, copy_header=True)
    if not np.asarray(mask_img.dataobj).any():
        raise ValueError(f"{image_name(mask_img)}: field 'mask': expected at least one voxel, got an empty mask")
    return NiftiMasker(mask_img=mask_img, standardize=None).fit()


def voxel_channels(masker: Any, space: str) -> tuple[Channels, dict]:
    """Voxel channels (``v<i>_<j>_<k>`` at the voxel centres, metres) of a fitted masker and its ``mask`` step."""
    mask_img = masker.mask_img_
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)  # nilearn orders masked voxels the same way (C order)
    xyz = (mask_img.affine @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3] / 1000.0  # mm → m
    names = [f"v{i}_{j}_{k}" for i, j, k in ijk]
    step = {"step": "mask", "n_voxels": len(names), "shape": list(mask_img.shape[:3]),
            "affine": np.asarray(mask_img.affine).round(6).tolist(), "space": space}
    return Channels(names, "fmri-voxel", xyz, space), step


def voxel_grid(epochs: EpochSet) -> tuple[dict, np.ndarray]:
    """The ``mask`` provenance step (shape, affine) and the voxel indices (n_voxels, 3) of voxel epochs."""
    prov = epochs.provenance
    if len(prov) == 1 and prov[0].get("step") == "concatenate":
        prov = tuple(prov[0]["processing"])
    steps = [st for st in prov if st.get("step") == "mask"]
    if not steps or set(epochs.channels.types) != {"fmri-voxel"}:
        fail("epochs", "voxel epochs made by neurodecode.loaders.fmri (a 'mask' provenance step)",
              f"types {sorted(set(epochs.channels.types))} and steps {[st.get('step') for st in prov]}")
    ijk = np.array([[int(v) for v in n[1:].split("_")] for n in epochs.channels.names])
    return steps[-1], ijk


def to_nifti(values: np.ndarray, epochs: EpochSet) -> Any:
    """A per-voxel vector (n_voxels,) — decoder weights, scores — as a NIfTI image in the epochs' original space.

    Uses the voxel channel names (indices) and the ``mask`` step of the provenance (shape, affine), so it works on
    epochs read back from a store. Voxels outside the mask are 0.

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
        One value per voxel channel of ``epochs``.
    epochs : EpochSet
        Voxel epochs made by :func:`read_volumes` or :func:`read_run` (their provenance holds the mask).

    Returns
    -------
    image : nibabel.Nifti1Image
        In the mask's grid and affine, for nilearn's ``plot_stat_map`` / ``plot_glass_brain``.
    """
    import nibabel as nib

    values = np.asarray(values, dtype=np.float32)
    if values.shape != (epochs.n_channels,):
        fail("values", f"one value per voxel channel ({epochs.n_channels},)", f"shape {values.shape}")
    step, ijk = voxel_grid(epochs)
    vol = np.zeros(step["shape"], np.float32)
    vol[tuple(ijk.T)] = values
    return nib.Nifti1Image(vol, np.array(step["affine"]))


def drop_nonfinite(channels: Channels, keep: np.ndarray, step: dict, where: str) -> Channels:
    """The voxel channels without those left out for non-finite values (recorded in ``step`` and logged)."""
    if keep.all():
        return channels
    from neurodecode.core.logs import logger

    dropped = [channels.names[i] for i in np.flatnonzero(~keep)]
    step["nonfinite_voxels_left_out"] = dropped
    logger.warning(f"{where}: {len(dropped)} voxel(s) with NaN/Inf left out (on_nonfinite='mask'), e.g. "
                   f"{dropped[:5]}")
    return channels.pick(np.flatnonzero(keep))


def check_stimulus_files(stimuli: pd.DataFrame, root: str | os.PathLike | None) -> pd.DataFrame:
    """``stimuli`` when every ``file`` it names exists under ``root``; else an error listing the missing ones."""
    if "file" not in stimuli.columns:
        return stimuli
    base = Path(root) if root is not None else Path(".")
    missing = [f for f in stimuli["file"].dropna().astype(str) if not (base / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{base}: field 'stimuli.file': expected a file for every stimulus id, got "
                                f"{len(missing)} missing, e.g. {missing[:3]}")
    return stimuli


def read_volumes(bold: Any, mask: Any, *, labels: Sequence[Any], runs: Sequence[Any], tr: float | None = None,
                 exclude: Sequence[Any] = ("rest",), detrend: bool = True, standardize: bool = True,
                 subject: str | None = None, space: str = "scanner", resample_mask: bool = False,
                 on_nonfinite: str = "raise") -> EpochSet:
    """One epoch per volume, ``(n_volumes, n_voxels, 1)``, for block designs labelled volume by volume.

    Each run is linearly detrended and z-scored per voxel (as in nilearn's Haxby decoding tutorial) before the
    volumes labelled ``exclude`` are dropped. NaN/Inf voxels: see :func:`trial_responses`' ``on_nonfinite``.
    """
    from nilearn.signal import clean

    img, name, tr = _load_4d(bold, tr)
    n = img.shape[3]
    labels, runs = np.asarray(labels), np.asarray(runs).astype(str)
    if labels.shape != (n,) or runs.shape != (n,):
        raise ValueError(f"{name}: field 'labels'/'runs': expected one per volume ({n}), got {labels.shape[0]} and "
                         f"{runs.shape[0]}")
    masker = make_masker(mask, img, resample_mask=resample_mask)
    channels, mask_step = voxel_channels(masker, space)
    Y, finite = masked_data(masker, img, on_nonfinite)
    step = {"step": "read_volumes", "file": Path(name).name, "detrend": detrend, "standardize": standardize,
            "exclude": [str(e) for e in exclude]}
    Y, channels = Y[:, finite], drop_nonfinite(channels, finite, step, name)
    if detrend or standardize:
        # run by run, written back in place: nilearn's clean(runs=...) returns the runs in the order of their sorted
        # labels, which permutes volumes when labels are not increasing in time ("10" sorts before "2")
        for r in pd.unique(runs):
            sel = runs == r
            Y[sel] = clean(Y[sel], detrend=detrend, standardize="zscore_sample" if standardize else None,
                           filter=False, t_r=tr)
    keep = ~np.isin(labels.astype(str), [str(e) for e in exclude])
    table = pd.DataFrame({"subject": subject, "run": runs[keep], "label": labels[keep],
                          "onset": (np.arange(n) * tr)[keep], "volume": np.flatnonzero(keep)})
    return EpochSet(Y[keep][:, :, None], 1.0 / tr, channels, table, 0.0, [mask_step, step])


#: names that moved to the job-specific modules in 0.3 (found here with a warning for one release)
_MOVED = {"trial_responses": "glm", "library_hrf": "glm", "frac_ridge": "glm", "roi_timeseries": "rois",
          "pool_rois": "rois", "kmeans_parcels": "rois", "sliding_windows": "rois"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib
        import warnings

        new = f"neurodecode.loaders.{_MOVED[name]}"
        warnings.warn(f"neurodecode.loaders.fmri.{name} moved to {new}.{name}", FutureWarning, stacklevel=2)
        return getattr(importlib.import_module(new), name)      # a lazy look-up, not an import cycle
    raise AttributeError(f"module 'neurodecode.loaders.fmri' has no attribute {name!r}")
