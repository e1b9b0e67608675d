"""Public data sets as laid out on disk (the shared recordings of the benchmarks, tests and examples): one loader
each, so that every study reads a data set the same way.

* :func:`eegmmidb` — PhysioNet EEG Motor Movement/Imagery: imagined (runs 4, 8, 12) or executed (3, 7, 11) left vs
  right fist, one EpochSet over the subjects (``S001`` from ``eegmmidb_S001/``, ``S002``–``S010`` from
  ``eegmmidb_multi/``), 7–30 Hz FIR, 1–2 s after the cue (the reference recipe of the data README).
* :func:`muse` — consumer EEG (Muse, 4 channels, 256 Hz) of the N170 and P300 paradigms, all runs of a subject,
  1–30 Hz, 100 µV rejection, optionally rescaled (``scale``) to inputs of order one.
* :func:`ssvep_exo` — the SSVEP exoskeleton set (Kalunga et al. 2016, MOABB's ``Kalunga2016``): 8 occipital
  channels, 256 Hz, rest vs 13/17/21 Hz flicker, two sessions per subject; the stimulation frequencies (read from the
  labels) and their harmonics band-passed and stacked as channels (``filter_bank``), 2–5 s after the cue.
* :func:`digits69` — the 69-digit fMRI set (``fmri_digits69/digit69_28x28.mat``): voxels z-scored with the training
  statistics, the images and the training mask.
* :func:`haxby_runs` — the one-slice Haxby 2001 runs with their events, and the slice's mask.

Each takes the folder that holds the data sets (``root``, e.g. ``../shared/data``; :func:`shared_data` finds it) and
raises an error naming the missing file. May import: ``neurodecode.core``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.core.epochs import EpochSet, concatenate

__all__ = ["EEGMMIDB_STEPS", "MUSE_STEPS", "SSVEP_EXO_EVENTS", "digits69", "eegmmidb", "haxby_runs", "muse",
           "shared_data", "ssvep_exo"]

#: the motor-imagery recipe of the data README: 10-05 names and positions, 7–30 Hz (MNE's FIR)
EEGMMIDB_STEPS = ({"step": "rename", "preset": "eegbci"}, {"step": "montage", "name": "standard_1005"},
                  {"step": "filter", "l_freq": 7.0, "h_freq": 30.0})
#: the Muse ERP recipe: 1–30 Hz
MUSE_STEPS = ({"step": "filter", "l_freq": 1.0, "h_freq": 30.0},)


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing ({what}; see the data README of the shared recordings)")
    return path


def shared_data() -> Path:
    """The folder of the shared recordings: ``$NEURODECODE_SHARED_DATA``, else ``shared/data`` beside a development
    checkout of neurodecode (``<checkout>/../shared/data``).

    Returns
    -------
    root : Path
        The folder (it exists).

    Raises
    ------
    FileNotFoundError
        Naming both places when neither exists.
    """
    if os.environ.get("NEURODECODE_SHARED_DATA"):
        root = Path(os.environ["NEURODECODE_SHARED_DATA"])
        if not root.is_dir():
            raise FileNotFoundError(f"$NEURODECODE_SHARED_DATA is {str(root)!r}, which is not a folder")
        return root
    beside = Path(__file__).resolve().parents[3] / "shared" / "data"
    if beside.is_dir():
        return beside
    raise FileNotFoundError(f"the shared recordings are not at {beside} (beside this checkout): set "
                            "$NEURODECODE_SHARED_DATA to their folder")


def eegmmidb(root: str | os.PathLike, subjects: Sequence[str] = ("S001",), runs: Sequence[int] = (4, 8, 12), *,
             tmin: float = 1.0, tmax: float = 2.0, steps: Sequence[Mapping[str, Any]] = EEGMMIDB_STEPS) -> EpochSet:
    """Left vs right fist epochs of EEGMMIDB subjects (64 channels, 160 Hz): one EpochSet with the ``subject``,
    ``session`` (1) and ``run`` columns; runs 4/8/12 are imagined, 3/7/11 executed movements."""
    from neurodecode.loaders.meeg import load_epochs

    root = Path(root)
    parts = []
    for subject in subjects:
        folder = root / "eegmmidb_S001" if subject == "S001" else root / "eegmmidb_multi" / subject
        for r in runs:
            f = _existing(folder / f"{subject}R{int(r):02d}.edf", f"EEGMMIDB {subject} run {r}")
            parts.append(load_epochs(f, return_report=False, tmin=tmin, tmax=tmax,
                                     labels={"T1": "left", "T2": "right"}, steps=list(steps), subject=subject,
                                     session="1", run=str(r)))
    return concatenate(parts)


#: the SSVEP exoskeleton set's event codes → labels (MOABB's ``Kalunga2016`` names: the stimulation rate in Hz)
SSVEP_EXO_EVENTS = {"1": "rest", "2": "13", "3": "21", "4": "17"}


def ssvep_exo(root: str | os.PathLike, subjects: Sequence[int] = (1, 2, 3, 4, 5, 6), *, tmin: float = 2.0,
              tmax: float = 5.0, harmonics: int = 2, width: float = 1.0, method: str = "fir",
              steps: Sequence[Mapping[str, Any]] | None = None) -> EpochSet:
    """SSVEP epochs of the exoskeleton set (``ssvep_exo/subjectNN/*_raw.fif`` with their ``*-eve.fif``): one
    EpochSet with ``subject`` (``"1"``...), ``session`` (``"1"``, ``"2"``: the recordings in time order) and ``run``
    columns, labels ``rest``, ``13``, ``17``, ``21`` (Hz).

    ``steps`` default to :func:`ssvep_steps` of the frequencies the labels name (13, 17, 21 Hz) with ``harmonics``,
    ``width`` and ``method``: 8 channels × 3 frequencies × ``harmonics`` bands. ``steps=[]`` keeps the raw 8
    channels (for CCA-type classifiers, which filter nothing)."""
    import mne
    import pandas as pd

    from neurodecode.loaders.meeg import load_epochs
    from neurodecode.loaders.preprocessing import ssvep_frequencies, ssvep_steps

    if steps is None:
        steps = ssvep_steps(ssvep_frequencies(SSVEP_EXO_EVENTS.values()), harmonics, width, method)
    parts = []
    for subject in subjects:
        folder = _existing(Path(root) / "ssvep_exo" / f"subject{int(subject):02d}", f"SSVEP subject {subject}")
        files = sorted(folder.glob("*_raw.fif"))
        if not files:
            raise FileNotFoundError(f"{folder}: no *_raw.fif recordings")
        for k, f in enumerate(files):
            eve = _existing(f.with_name(f.name[:-len("_raw.fif")] + "-eve.fif"), "the recording's events")
            raw = mne.io.read_raw_fif(f, verbose="error")
            ev = mne.read_events(eve, verbose="error")
            if len(ev) and not (raw.first_samp <= ev[:, 0].min() and ev[:, 0].max() <= raw.last_samp):
                raise ValueError(f"{eve}: field 'sample': expected events inside the recording (samples "
                                 f"{raw.first_samp}-{raw.last_samp}), got {ev[:, 0].min()}-{ev[:, 0].max()}")
            unknown = sorted({str(c) for c in ev[:, 2]} - set(SSVEP_EXO_EVENTS))
            if unknown:
                raise ValueError(f"{eve}: field 'event code': expected codes among {sorted(SSVEP_EXO_EVENTS)}, "
                                 f"got {unknown}")
            table = pd.DataFrame({"onset": (ev[:, 0] - raw.first_samp) / raw.info["sfreq"],
                                  "description": [str(c) for c in ev[:, 2]]})
            parts.append(load_epochs(raw, return_report=False, events=table, tmin=tmin, tmax=tmax,
                                     labels=SSVEP_EXO_EVENTS, steps=list(steps), subject=str(int(subject)),
                                     session=str(k + 1), run=str(k + 1)))
    return concatenate(parts)


def muse(root: str | os.PathLike, paradigm: str = "N170", subject: str = "1",
         labels: Mapping[str, str] | None = None, *, scale: float | None = None,
         steps: Sequence[Mapping[str, Any]] = MUSE_STEPS) -> EpochSet:
    """All runs of one Muse subject of a paradigm (``N170``: 1 = house, 2 = face; ``P300``: 1 = non-target,
    2 = target), −0.1 to 0.8 s, rejection at 100 µV; ``scale`` multiplies the data (1e5: units of 10 µV)."""
    from neurodecode.loaders.meeg import load_epochs

    default = {"N170": {"1": "house", "2": "face"}, "P300": {"1": "nontarget", "2": "target"}}
    labels = dict(labels or default.get(paradigm, {}))
    folder = _existing(Path(root) / "muse_eeg" / paradigm / f"subject{subject}", f"Muse {paradigm} subject {subject}")
    files = sorted(folder.glob("*/*.csv"))
    if not files:
        raise FileNotFoundError(f"{folder}: no CSV runs")
    parts = [load_epochs(f, return_report=False, tmin=-0.1, tmax=0.8, labels=labels,
                         csv={"exclude": ["Right AUX"], "sfreq": 256.0}, steps=list(steps), reject={"eeg": 100e-6},
                         subject=f"{paradigm}-{subject}", session="1", run=str(k)) for k, f in enumerate(files)]
    ep = concatenate(parts)
    return ep if scale is None else ep.replace(data=ep.data * float(scale))


def digits69(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 69-digit fMRI set: voxels (n, 3092) z-scored with the training trials' statistics, images (n, 28, 28)
    in [0, 1], and the training mask (n,) (the file's own split)."""
    from neurodecode.loaders.precomputed import DIGITS69, load_mat

    ep = load_mat(_existing(Path(path), "the digits69 .mat file"), **DIGITS69)
    st = ep.stimuli.set_index("stimulus")
    images = np.stack([np.asarray(st.loc[s, "pixels"], dtype=np.float64).reshape(28, 28)
                       for s in ep.table["stimulus"]]) / 255.0
    train = (ep.table["split"] == "train").to_numpy()
    X = ep.data[:, :, 0].astype(np.float64)
    return (X - X[train].mean(0)) / X[train].std(0), images, train


def haxby_runs(root: str | os.PathLike) -> tuple[list[Any], Path]:
    """The 12 runs of the one-slice Haxby 2001 subject (TR 2.5 s, with their events) and the slice's mask."""
    import pandas as pd

    from neurodecode.loaders.fmri import read_run

    sub = Path(root) / "haxby2001_slice" / "openfmri_haxby2001" / "sub001" / "BOLD"
    runs = []
    for r in range(1, 13):
        folder = _existing(sub / f"task001_run{r:03d}", f"Haxby run {r}")
        events = pd.read_csv(folder / "bold_events.tsv", sep="\t")
        runs.append(read_run(folder / "bold_1slice.nii.gz", events, tr=2.5, run=str(r)))
    return runs, _existing(Path(root) / "haxby2001_slice" / "tutorial_slice" / "mask.nii.gz", "the Haxby mask")
