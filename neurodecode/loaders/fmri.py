"""fMRI loaders: BOLD runs, masks and atlases, precomputed responses and surfaces → the common epoch format.

* :func:`read_run` opens a 4D BOLD run with its events, TR and confounds (fMRIPrep strategies via nilearn).
* :func:`trial_responses` turns runs into single-trial responses ``(n_trials, n_voxels, 1)``: a GLM per trial
  (least-squares-all or least-squares-separate; design matrices by nilearn with a chosen HRF and drift model, the
  ordinary least squares solved for all voxels at once) or the fast HRF-delayed TR average.
* :func:`read_volumes` gives one epoch per volume with per-volume labels (block designs such as Haxby 2001).
* :func:`roi_timeseries` gives windows of parcel-mean time series ``(n_windows, n_rois, n_trs)``.
* :func:`sliding_windows` cuts one-volume epochs into windows of consecutive scans (dynamic connectivity);
  :func:`kmeans_parcels` is a data-free parcellation of a mask for :func:`pool_rois`.
* :func:`to_nifti` maps any per-voxel vector back to a NIfTI image in the original space.

Voxel channels are named ``v<i>_<j>_<k>`` (their voxel indices) and positioned at the voxel centres in world
coordinates (metres); the mask's affine and shape are kept in the provenance so that :func:`to_nifti` works on
epochs loaded back from disk.
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

from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.core.validation import check_option, fail

__all__ = ["Run", "check_stimulus_files", "frac_ridge", "kmeans_parcels", "library_hrf", "load_image", "make_masker",
           "pool_rois", "read_run", "read_volumes", "roi_timeseries", "sliding_windows", "to_nifti", "trial_responses",
           "voxel_channels"]


def _name(img: Any) -> str:
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
    name = _name(img)
    if img.ndim != 4:
        raise ValueError(f"{name}: field 'bold': expected a 4D image (x, y, z, time), got {img.ndim}D with shape "
                         f"{img.shape}")
    return img, name, _tr_from(img, tr)


# ---------------------------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------------------------


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
        return _name(self.img)


#: the longest TR accepted (seconds); a longer one is almost always milliseconds mislabelled as seconds
MAX_TR = 100.0


def _check_tr(tr: float, where: str, source: str) -> float:
    if not (np.isfinite(tr) and 0 < tr <= MAX_TR):
        raise ValueError(f"{where}: field 'tr': expected a repetition time in seconds, 0 < TR <= {MAX_TR:g}, got "
                         f"{tr} from {source}" + (" — milliseconds labelled as seconds?" if tr > MAX_TR else ""))
    return float(tr)


def _tr_from(img: Any, tr: float | None) -> float:
    fn = _name(img)
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
    name = _name(img)
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


# ---------------------------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------------------------


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
            raise ValueError(f"{_name(ref)}: field 'mask': no mask given and nilearn's EPI mask failed ({err}); "
                             "pass a brain mask") from None
    mask_img = load_image(mask, "mask")
    same = mask_img.shape[:3] == ref.shape[:3] and np.allclose(mask_img.affine, ref.affine, atol=1e-3)
    if not same:
        if not resample_mask:
            raise ValueError(f"{_name(mask_img)}: field 'mask': expected the grid of {_name(ref)} (shape "
                             f"{ref.shape[:3]}, affine diag {np.diag(ref.affine)[:3].round(3).tolist()}), got shape "
                             f"{mask_img.shape[:3]}, affine diag {np.diag(mask_img.affine)[:3].round(3).tolist()}; pass "
                             "resample_mask=True to resample it")
        mask_img = resample_to_img(mask_img, ref.slicer[..., 0] if ref.ndim == 4 else ref, interpolation="nearest",
                                   force_resample=True, copy_header=True)
    if not np.asarray(mask_img.dataobj).any():
        raise ValueError(f"{_name(mask_img)}: field 'mask': expected at least one voxel, got an empty mask")
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


def _voxel_grid(epochs: EpochSet) -> tuple[dict, np.ndarray]:
    """The ``mask`` provenance step (shape, affine) and the voxel indices (n_voxels, 3) of voxel epochs."""
    prov = epochs.provenance
    if len(prov) == 1 and prov[0].get("step") == "concatenate":
        prov = tuple(prov[0]["processing"])
    steps = [st for st in prov if st.get("step") == "mask"]
    if not steps or set(epochs.channels.types) != {"fmri-voxel"}:
        fail("epochs", "voxel epochs made by neurodecode.fmri (a 'mask' provenance step)",
              f"types {sorted(set(epochs.channels.types))} and steps {[st.get('step') for st in prov]}")
    ijk = np.array([[int(v) for v in n[1:].split("_")] for n in epochs.channels.names])
    return steps[-1], ijk


def to_nifti(values: np.ndarray, epochs: EpochSet) -> Any:
    """A per-voxel vector (n_voxels,) — decoder weights, scores — as a NIfTI image in the epochs' original space.

    Uses the voxel channel names (indices) and the ``mask`` step of the provenance (shape, affine), so it works on
    epochs read back from a store. Voxels outside the mask are 0.
    """
    import nibabel as nib

    values = np.asarray(values, dtype=np.float32)
    if values.shape != (epochs.n_channels,):
        fail("values", f"one value per voxel channel ({epochs.n_channels},)", f"shape {values.shape}")
    step, ijk = _voxel_grid(epochs)
    vol = np.zeros(step["shape"], np.float32)
    vol[tuple(ijk.T)] = values
    return nib.Nifti1Image(vol, np.array(step["affine"]))


# ---------------------------------------------------------------------------------------------------------------
# single-trial responses
# ---------------------------------------------------------------------------------------------------------------


def _stimulus_column(events: pd.DataFrame) -> pd.Series:
    for col in ("stimulus", "stim_file", "stim_id"):
        if col in events.columns:
            return events[col]
    return events["trial_type"]


def _design(run: Run, events: pd.DataFrame, hrf_model: str, drift_model: str | None,
            high_pass: float) -> pd.DataFrame:
    from nilearn.glm.first_level import make_first_level_design_matrix

    frame_times = np.arange(run.n_volumes) * run.tr
    add = None if run.confounds is None else run.confounds
    names = None if add is None else [f"confound{i}" for i in range(add.shape[1])]
    return make_first_level_design_matrix(frame_times, events[["onset", "duration", "trial_type"]],
                                          hrf_model=hrf_model, drift_model=drift_model, high_pass=high_pass,
                                          add_regs=add, add_reg_names=names)


def _psc(Y: np.ndarray) -> np.ndarray:
    """Percent signal change per voxel (nilearn's ``signal_scaling=0``)."""
    mean = Y.mean(0)
    mean[mean == 0] = 1.0
    return 100.0 * (Y / mean - 1.0)


def _run_trials(run: Run, Y: np.ndarray, method: str, hrf_model: str, drift_model: str | None, high_pass: float,
                shift: float) -> np.ndarray:
    """Per-trial responses of one run, shape (n_trials, n_voxels)."""
    ev = run.events
    n = len(ev)
    if method == "tr_average":
        from nilearn.signal import clean

        Yc = clean(Y, detrend=True, standardize="zscore_sample", confounds=run.confounds, t_r=run.tr,
                   filter=False)
        times = np.arange(run.n_volumes) * run.tr
        out = np.empty((n, Y.shape[1]))
        for k, (onset, dur) in enumerate(zip(ev["onset"], ev["duration"])):
            sel = (times >= onset + shift) & (times < onset + max(dur, run.tr) + shift)
            if not sel.any():
                sel = np.zeros(len(times), bool)
                sel[min(int(round((onset + shift) / run.tr)), len(times) - 1)] = True
            out[k] = Yc[sel].mean(0)
        return out
    Y = _psc(Y)
    if method == "lsa":
        trials = ev.assign(trial_type=[f"trial{k:05d}" for k in range(n)])
        X = _design(run, trials, hrf_model, drift_model, high_pass)
        B = np.linalg.lstsq(X.to_numpy(), Y, rcond=None)[0]
        cols = [X.columns.get_loc(f"trial{k:05d}") for k in range(n)]
        return B[cols]
    out = np.empty((n, Y.shape[1]))
    for k in range(n):  # lss: the trial against all others, grouped by condition
        trials = ev.assign(trial_type=["other_" + str(t) for t in ev["trial_type"]])
        trials.loc[k, "trial_type"] = "target"
        X = _design(run, trials, hrf_model, drift_model, high_pass)
        B = np.linalg.lstsq(X.to_numpy(), Y, rcond=None)[0]
        out[k] = B[X.columns.get_loc("target")]
    return out


def trial_responses(runs: Sequence[Run], mask: Any = None, *, method: str = "lss", hrf_model: str = "glover",
                    drift_model: str | None = "cosine", high_pass: float = 0.01, shift: float = 4.5,
                    average_repeats: bool = False, subject: str | None = None, space: str = "scanner",
                    resample_mask: bool = False, stimuli: pd.DataFrame | None = None,
                    stim_root: str | os.PathLike | None = None, on_nonfinite: str = "raise",
                    hrf_library: Sequence[float] | None = None, fracridge: Sequence[float] | None = None) -> EpochSet:
    """Single-trial responses of BOLD runs: ``(n_trials, n_voxels, 1)``.

    Parameters
    ----------
    runs : sequence of Run
        With events (one row per trial). All runs must share the grid of the first one.
    mask : path or image, optional
        Voxels to keep (see :func:`make_masker`); default an EPI mask of the first run.
    method : {"lss", "lsa", "tr_average"}
        ``lsa``: one GLM per run with one regressor per trial; ``lss``: one GLM per trial, the trial against the
        other trials grouped by condition (Mumford et al. 2012); both on percent signal change with the drift
        model and confounds as nuisance regressors (design matrices by nilearn, OLS). ``tr_average``: per run
        detrended, confound-cleaned, z-scored signal averaged over the volumes from ``onset + shift`` to
        ``onset + duration + shift`` (at least one volume).
    hrf_model, drift_model, high_pass : as nilearn's ``make_first_level_design_matrix``.
    shift : float
        HRF delay in seconds for ``tr_average``.
    average_repeats : bool
        Average the trials of each stimulus (within the subject); the table keeps the first trial's row and
        ``n_repeats``.
    space : str
        Coordinate frame of the images (``"scanner"``, ``"mni_tal"`` for MNI-normalised data, ...).
    stimuli, stim_root : stimulus table (``stimulus`` id + e.g. ``file``) and the folder its files are relative to;
        every trial's stimulus needs a row and every file must exist.
    on_nonfinite : {"raise", "mask"}
        A NaN/Inf in a masked voxel of any run is an error naming the file, voxel and volume (``"raise"``), or
        leaves that voxel out of every run, logged and recorded in the provenance (``"mask"``). Never zero-filled.
    hrf_library : sequence of float, optional
        ``lsa`` only, GLMsingle's HRF step: peak delays (s) of a family of double-gamma HRFs (:func:`library_hrf`;
        6 is SPM's canonical one); each voxel takes the HRF whose LSA model explains most of its variance over all
        runs, and its betas are that model's. The chosen delay per voxel is in the provenance (``hrf_chosen``).

    Returns
    -------
    EpochSet
        Table: subject, session, run, stimulus (``stimulus``/``stim_file``/``trial_type`` of the events), label
        (``trial_type``), onset, duration and the other event columns.
    """
    if method not in ("lss", "lsa", "tr_average"):
        fail("method", "'lss', 'lsa' or 'tr_average'", repr(method))
    runs = list(runs)
    if not runs:
        fail("runs", "at least one Run", "none")
    for r in runs:
        if r.events is None or r.events.empty:
            raise ValueError(f"{r.name}: field 'events': expected trial events for single-trial responses, got none")
    check_runs(runs)
    masker = make_masker(mask, runs[0].img, resample_mask=resample_mask)
    channels, mask_step = voxel_channels(masker, space)
    signals = [masked_data(masker, r.img, on_nonfinite) for r in runs]
    keep = np.logical_and.reduce([finite for _, finite in signals])
    responses, extra = _responses(runs, [Y[:, keep] for Y, _ in signals], method, hrf_model, drift_model, high_pass,
                                  shift, hrf_library, fracridge)
    table = pd.concat([r.events.assign(subject=subject, session=r.session, run=r.run,
                                       stimulus=_stimulus_column(r.events), label=r.events["trial_type"])
                       for r in runs], ignore_index=True)
    data = np.concatenate(responses)[:, :, None]
    step = {"step": "trial_responses", "method": method, "hrf_model": hrf_model, "drift_model": drift_model,
            "high_pass": high_pass, "shift": shift if method == "tr_average" else None,
            "confounds": [None if r.confounds is None else int(r.confounds.shape[1]) for r in runs]}
    step.update(extra)
    channels = drop_nonfinite(channels, keep, step, runs[0].name)
    if average_repeats:
        data, table = _average_repeats(data, table)
        step["average_repeats"] = True
    if stimuli is not None:
        stimuli = check_stimulus_files(stimuli, stim_root)
    return EpochSet(data, 1.0 / runs[0].tr, channels, table, 0.0,
                    [{"step": "read_run", "file": Path(runs[0].name).name}, mask_step, step], stimuli)


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


def _average_repeats(data: np.ndarray, table: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """The trials of each stimulus averaged; the table keeps the first trial's row and ``n_repeats``."""
    keys = table["stimulus"].astype(str).to_numpy()
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)
    sums = np.zeros((len(uniq),) + data.shape[1:])
    np.add.at(sums, inverse, data)
    counts = np.bincount(inverse)
    return (sums / counts[:, None, None])[order], table.iloc[first[order]].reset_index(drop=True).assign(
        n_repeats=counts[order])


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


# ---------------------------------------------------------------------------------------------------------------
# per-volume epochs and ROI time series
# ---------------------------------------------------------------------------------------------------------------


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
            raise ValueError(f"{_name(labels_img)}: field 'labels_img': expected the grid of {runs[0].name} (shape "
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
    step = {"step": "roi_timeseries", "labels": _name(labels_img), "window": n_win * tr, "stride": n_step * tr,
            "standardize": standardize}
    return EpochSet(np.stack(data), 1.0 / tr, channels, pd.DataFrame(rows), 0.0, [step])


def pool_rois(epochs: EpochSet, labels_img: Any, *, names: Mapping[int, str] | None = None) -> EpochSet:
    """Average voxel channels within each parcel of an atlas on the epochs' grid: ``(n_epochs, n_rois, n_times)``.

    Parcels without any voxel of the epochs are left out; ROI channels sit at the parcel centres.
    """
    labels_img = load_image(labels_img, "parcellation")
    step, ijk = _voxel_grid(epochs)
    if list(labels_img.shape[:3]) != step["shape"] or not np.allclose(labels_img.affine, step["affine"], atol=1e-3):
        raise ValueError(f"{_name(labels_img)}: field 'labels_img': expected the epochs' grid (shape {step['shape']}), "
                         f"got shape {list(labels_img.shape[:3])}")
    vol = np.asarray(labels_img.dataobj).astype(int)
    codes_of_voxel = vol[tuple(ijk.T)]
    codes = [int(c) for c in np.unique(codes_of_voxel) if c != 0]
    if not codes:
        raise ValueError(f"{_name(labels_img)}: field 'labels_img': expected parcels covering the epochs' voxels, got "
                         "none")
    data = np.stack([epochs.data[:, codes_of_voxel == c].mean(1) for c in codes], axis=1)
    channels = Channels([(names or {}).get(c, f"roi{c}") for c in codes], "fmri-roi",
                        _parcel_centres(labels_img, codes), epochs.channels.coord_frame)
    pool = {"step": "pool_rois", "labels": _name(labels_img), "n_rois": len(codes)}
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


def library_hrf(delay: float, *, ratio: float = 1 / 6) -> Any:
    """A double-gamma HRF peaking near ``delay - 1`` seconds (SPM's shape; the undershoot ``delay + 10``), as the
    callable nilearn's design matrices take (``hrf(t_r, oversampling)`` → a kernel summing to 1). ``delay=6`` is
    SPM's canonical HRF."""
    from scipy.stats import gamma

    if not 2.0 <= float(delay) <= 16.0:
        fail("hrf_library", "peak delays between 2 and 16 s", delay)

    def hrf(t_r: float, oversampling: int = 50, time_length: float = 32.0, onset: float = 0.0) -> np.ndarray:
        dt = t_r / oversampling
        t = np.linspace(0, time_length, int(np.rint(time_length / dt))) - onset
        h = gamma.pdf(t, float(delay), loc=dt) - ratio * gamma.pdf(t, float(delay) + 10.0, loc=dt)
        return h / h.sum()

    hrf.__name__ = f"hrf{float(delay):g}".replace(".", "p")
    return hrf


def _responses(runs: Sequence[Run], signals: Sequence[np.ndarray], method: str, hrf_model: str,
               drift_model: str | None, high_pass: float, shift: float, hrf_library: Sequence[float] | None,
               fracridge: Sequence[float] | None) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Each run's single-trial responses (n_trials, n_voxels) by the chosen method and GLMsingle-style options, and
    what the provenance step records about those options."""
    extra: dict[str, Any] = {}
    groups: list[tuple[Any, np.ndarray]] = [(hrf_model, np.arange(signals[0].shape[1]))]
    if hrf_library is not None:
        delays = _check_library(hrf_library, method)
        responses, chosen = _library_trials(runs, signals, delays, drift_model, high_pass)
        extra.update(hrf_model="library", hrf_library=delays, hrf_chosen=chosen.tolist())
        groups = [(library_hrf(d), np.flatnonzero(chosen == d)) for d in delays if (chosen == d).any()]
    if fracridge is not None:
        fractions = _check_fractions(fracridge, method, runs)
        responses, frac = _frac_trials(runs, signals, groups, fractions, drift_model, high_pass)
        extra.update(fracridge=fractions, fraction_chosen=frac.tolist())
    elif hrf_library is None:
        responses = [_run_trials(r, Y, method, hrf_model, drift_model, high_pass, shift)
                     for r, Y in zip(runs, signals)]
    return responses, extra


def _check_library(hrf_library: Sequence[float], method: str) -> list[float]:
    if method != "lsa":
        fail("hrf_library", "method='lsa' (the HRF of each voxel is chosen on LSA fits)", f"method={method!r}")
    delays = [float(d) for d in hrf_library]
    for d in delays:
        library_hrf(d)                                      # checks the range
    if len(set(delays)) < 2:
        fail("hrf_library", "at least two distinct peak delays", delays)
    return delays


def _lsa(run: Run, Y: np.ndarray, hrf_model: Any, drift_model: str | None, high_pass: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """LSA betas ``(n_trials, n_voxels)`` of percent-signal-change ``Y``, and the model's R² per voxel."""
    design, cols = _trial_design(run, hrf_model, drift_model, high_pass)
    X = design.to_numpy()
    B = np.linalg.lstsq(X, Y, rcond=None)[0]
    total = ((Y - Y.mean(0)) ** 2).sum(0)
    r2 = 1.0 - ((Y - X @ B) ** 2).sum(0) / np.where(total > 0, total, 1.0)
    return B[cols], r2


def _trial_design(run: Run, hrf_model: Any, drift_model: str | None, high_pass: float
                  ) -> tuple[pd.DataFrame, list[int]]:
    """An LSA design (one regressor per trial, then drifts and confounds) and each trial's column."""
    n = len(run.events)
    trials = run.events.assign(trial_type=[f"trial{k:05d}" for k in range(n)])
    design = _design(run, trials, hrf_model, drift_model, high_pass)
    names = list(design.columns)
    cols = [next(i for i, c in enumerate(names) if c == f"trial{k:05d}" or c.startswith(f"trial{k:05d}_"))
            for k in range(n)]
    return design, cols


def _library_trials(runs: Sequence[Run], signals: Sequence[np.ndarray], delays: Sequence[float],
                    drift_model: str | None, high_pass: float) -> tuple[list[np.ndarray], np.ndarray]:
    """GLMsingle's HRF step: each voxel takes the library HRF whose LSA model explains most of its variance over
    all runs; returns each run's betas under the chosen HRFs and the chosen delay per voxel."""
    fits = [[_lsa(r, _psc(Y), library_hrf(d), drift_model, high_pass) for d in delays] for r, Y in zip(runs, signals)]
    r2 = np.sum([[f[1] for f in run_fits] for run_fits in fits], axis=0)      # (n_delays, n_voxels)
    best = r2.argmax(0)
    voxels = np.arange(len(best))
    betas = [np.stack([f[0] for f in run_fits])[best, :, voxels].T for run_fits in fits]
    return betas, np.asarray(delays, dtype=float)[best]


# -- GLMsingle's shrinkage: fractional ridge ------------------------------------------------------------------------

#: fracridge's grid of candidate penalties: from 1e-2·s_min² to 1e4·s_max² in steps of 10^0.2 (Rokem & Kay 2020)
_FRAC_GRID = (1e-2, 1e4, 0.2)


def frac_ridge(X: np.ndarray, Y: np.ndarray, fractions: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Fractional ridge regression (Rokem & Kay 2020): for each target column, the ridge solutions whose length is
    each given fraction of the ordinary-least-squares solution's.

    The same grid and interpolation as the ``fracridge`` package (penalties interpolated in log(1 + α) on a grid
    from 1e-2·s_min² to 1e4·s_max²), vectorised over targets (thousands of voxels in one pass, no loop per voxel).

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
    Y : ndarray (n_samples, n_targets)
    fractions : increasing values in (0, 1]; 1 is the OLS solution.

    Returns
    -------
    coef : ndarray (n_fractions, n_features, n_targets)
    alphas : ndarray (n_fractions, n_targets)
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or len(f) == 0 or (np.diff(f) <= 0).any() or f[0] <= 0 or f[-1] > 1:
        fail("fracridge", "increasing fractions in (0, 1]", list(np.atleast_1d(fractions)))
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    good = s > 1e-10
    ols = np.zeros((len(s), Y.shape[1]))
    ols[good] = (U[:, good].T @ Y) / s[good, None]                        # OLS coefficients, rotated
    small, big, step = _FRAC_GRID
    sv = s[good]
    grid = np.r_[0.0, 10.0 ** np.arange(np.floor(np.log10(small * sv[-1] ** 2)), np.ceil(np.log10(big * sv[0] ** 2)),
                                       step)]
    shrink = np.zeros((len(grid), len(s)))
    shrink[:, good] = sv ** 2 / (sv ** 2 + grid[:, None])
    length = np.sqrt(shrink ** 2 @ ols ** 2)                              # (n_grid, n_targets), decreasing
    ratio = length / np.where(length[0] > 0, length[0], 1.0)
    log_grid = np.log1p(grid)
    alphas = np.empty((len(f), Y.shape[1]))
    for i, frac in enumerate(f):                                           # interpolate each target's crossing
        k = np.clip((ratio >= frac).sum(0), 1, len(grid) - 1)
        r0, r1 = ratio[k - 1, np.arange(Y.shape[1])], ratio[k, np.arange(Y.shape[1])]
        w = np.where(r0 > r1, (r0 - frac) / np.where(r0 > r1, r0 - r1, 1.0), 0.0).clip(0, 1)
        alphas[i] = np.expm1(log_grid[k - 1] + w * (log_grid[k] - log_grid[k - 1]))
    alphas[:, length[0] == 0] = 0.0
    coef = np.empty((len(f), X.shape[1], Y.shape[1]))
    for i in range(len(f)):
        scale = np.zeros((len(s), Y.shape[1]))
        scale[good] = sv[:, None] ** 2 / (sv[:, None] ** 2 + alphas[i][None, :])
        coef[i] = Vt.T @ (scale * ols)
    return coef, alphas


def _check_fractions(fractions: Sequence[float], method: str, runs: Sequence[Run]) -> list[float]:
    if method != "lsa":
        fail("fracridge", "method='lsa' (the shrinkage of single-trial LSA betas)", f"method={method!r}")
    f = sorted({float(x) for x in fractions} | {1.0})
    if f[0] <= 0 or f[-1] > 1:
        fail("fracridge", "fractions in (0, 1]", list(fractions))
    if len(runs) < 2:
        fail("fracridge", "at least 2 runs (the fraction of each voxel is chosen by leave-one-run-out)", len(runs))
    return f


def _partial_out(design: pd.DataFrame, trial_cols: list[int], Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trial regressors and data with the nuisance regressors (drifts, constant, confounds) projected out, so that
    only the trial betas are shrunk (Frisch–Waugh–Lovell: at fraction 1 the betas are the LSA ones)."""
    X = design.to_numpy()
    nuisance = np.delete(X, trial_cols, axis=1)
    Q = np.linalg.qr(nuisance)[0] if nuisance.shape[1] else np.zeros((len(X), 0))
    Xt = X[:, trial_cols]
    return Xt - Q @ (Q.T @ Xt), Y - Q @ (Q.T @ Y)


def _frac_run(run: Run, Y: np.ndarray, hrf: Any, fractions: Sequence[float], drift_model: str | None,
              high_pass: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run's single-trial betas at every fraction (n_fractions, n_trials, n_voxels) and its projected trial
    regressors and data (for the cross-validation)."""
    design, cols = _trial_design(run, hrf, drift_model, high_pass)
    Xt, Yp = _partial_out(design, cols, _psc(Y))
    return frac_ridge(Xt, Yp, fractions)[0], Xt, Yp


def _held_out_r2(fits: Sequence[tuple], stimuli: Sequence[np.ndarray], h: int) -> np.ndarray:
    """R² (n_fractions, n_voxels) of run ``h``'s data predicted from the other runs' condition-mean betas."""
    coef_h, Xt, Yp = fits[h]
    train_stim = np.concatenate([stimuli[r] for r in range(len(fits)) if r != h])
    train_beta = np.concatenate([fits[r][0] for r in range(len(fits)) if r != h], axis=1)   # (F, n_train, V)
    rep = np.isin(stimuli[h], train_stim)
    if not rep.any():
        return np.zeros((len(coef_h), Yp.shape[1]))
    if (~rep).any():        # trials of stimuli not seen elsewhere are fitted out, not predicted
        Xo = Xt[:, ~rep]
        P = Xo @ np.linalg.pinv(Xo)
        Xr, Yr = Xt[:, rep] - P @ Xt[:, rep], Yp - P @ Yp
    else:
        Xr, Yr = Xt, Yp
    ids, where = np.unique(train_stim, return_inverse=True)
    means = np.stack([train_beta[:, where == i].mean(1) for i in range(len(ids))])        # (n_stimuli, F, V)
    pick = np.searchsorted(ids, stimuli[h][rep])
    total = (Yr ** 2).sum(0)
    return np.stack([1 - ((Yr - Xr @ means[pick, i]) ** 2).sum(0) / np.where(total > 0, total, 1.0)
                     for i in range(len(coef_h))])


def _frac_trials(runs: Sequence[Run], signals: Sequence[np.ndarray], hrf_groups: Sequence[tuple[Any, np.ndarray]],
                 fractions: Sequence[float], drift_model: str | None, high_pass: float
                 ) -> tuple[list[np.ndarray], np.ndarray]:
    """GLMsingle's shrinkage step: LSA betas by fractional ridge, each voxel's fraction chosen by leave-one-run-out
    prediction of the held-out run from the other runs' condition-mean betas, then each voxel's betas rescaled
    linearly onto its unregularised ones (GLMsingle's post-hoc scaling). ``hrf_groups``: (HRF, voxel indices)."""
    n_vox = signals[0].shape[1]
    betas = [np.empty((len(r.events), n_vox)) for r in runs]
    chosen = np.ones(n_vox)
    stimuli = [np.asarray(_stimulus_column(r.events)).astype(str) for r in runs]
    repeated = {s for k, a in enumerate(stimuli) for s in a if any(s in b for j, b in enumerate(stimuli) if j != k)}
    if not repeated:
        fail("fracridge", "stimuli repeated across runs (the fraction of each voxel is chosen by predicting a "
             "held-out run from the other runs' betas of the same stimuli)", "no stimulus in two runs",
             runs[0].name)
    for hrf, vox in hrf_groups:
        fits = [_frac_run(r, Y[:, vox], hrf, fractions, drift_model, high_pass) for r, Y in zip(runs, signals)]
        score = np.sum([_held_out_r2(fits, stimuli, h) for h in range(len(runs))], axis=0)      # (F, n)
        best = len(fractions) - 1 - score[::-1].argmax(0)          # ties: the larger fraction (less shrinkage)
        chosen[vox] = np.asarray(fractions)[best]
        shrunk = np.concatenate([f[0][best, :, np.arange(len(vox))].T for f in fits])          # (n_trials, n)
        ols = np.concatenate([f[0][-1] for f in fits])
        sc = shrunk - shrunk.mean(0)
        gain = (sc * (ols - ols.mean(0))).sum(0) / np.where((sc ** 2).sum(0) > 0, (sc ** 2).sum(0), 1.0)
        rescaled = ols.mean(0) + gain * sc
        starts = np.cumsum([0] + [len(r.events) for r in runs])
        for k in range(len(runs)):
            betas[k][:, vox] = rescaled[starts[k]:starts[k + 1]]
    return betas, chosen
