"""Conversion between :class:`~neurodecode.EpochSet` and braindecode's windows datasets, both ways.

braindecode keeps windows as a ``BaseConcatDataset`` of one dataset per recording: a ``WindowsDataset`` (an
``mne.Epochs`` whose metadata holds ``target``, ``i_window_in_trial``, ``i_start_in_trial``, ``i_stop_in_trial``)
or an ``EEGWindowsDataset`` (a continuous ``mne.io.Raw`` and that metadata, windows cut on access), each with a
``description`` (subject, session, run, ...). :func:`to_braindecode` writes an EpochSet as the former, one dataset
per subject × session × run; :func:`from_braindecode` reads either kind back into one EpochSet, checking what it
reads: equal window lengths, rates and channels across datasets, finite values, amplitudes in SI units (braindecode
pipelines often scale EEG to µV: pass ``scale``), and no per-window ``transform`` it would silently skip.

braindecode is imported inside the functions (it loads torchaudio).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import EpochSet, compatibility_problems, concatenate
from neurodecode.core.validation import fail

__all__ = ["from_braindecode", "import_braindecode", "to_braindecode"]

def import_braindecode(module: str = "braindecode") -> Any:
    """``importlib.import_module(module)`` for a braindecode module, without braindecode 1.8's import-time warning
    (it builds EEGPT's montage with a name MNE 1.13 deprecates: nothing a user can act on)."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Montage name 'standard_1020' is deprecated", category=FutureWarning)
        return importlib.import_module(module)


#: the recording keys of a braindecode description, in the order they split an EpochSet
RECORDING_KEYS = ("subject", "session", "run")
#: the largest plausible median |amplitude| per SI unit (10 mV, 100 nT, 10 µT/m): above it, data are not in SI
_MAX_MEDIAN = {"V": 1e-2, "T": 1e-7, "T/m": 1e-5}


def to_braindecode(epochs: EpochSet, *, target: str = "label", mapping: Mapping[Any, int] | None = None) -> Any:
    """An EpochSet as braindecode's ``BaseConcatDataset`` of ``WindowsDataset`` (one per subject × session × run).

    Parameters
    ----------
    epochs : EpochSet
        EEG, MEG, sEEG or ECoG epochs ``(n_epochs, n_channels, n_times)`` (fMRI has no MNE equivalent).
    target : str
        The table column whose values become braindecode's ``target``.
    mapping : mapping, optional
        Value of ``target`` → integer code. Default: the sorted distinct values → 0 … K−1 (braindecode's
        classifiers take integer targets). A value without a code is an error.

    Returns
    -------
    braindecode.datasets.BaseConcatDataset
        Each dataset's ``windows`` is an ``mne.EpochsArray`` whose metadata is the epochs' table plus ``target``
        and one window per trial (``i_window_in_trial`` 0, ``i_start_in_trial`` 0, ``i_stop_in_trial``
        ``n_times``); its ``description`` holds subject, session and run. The datasets come in the order the
        table first shows each recording, their windows in table order: :func:`from_braindecode` gives the epochs
        back grouped by recording (the same order when the table already is).
    """
    import mne

    from neurodecode.core.mne_convert import to_mne

    datasets_module = import_braindecode("braindecode.datasets")
    BaseConcatDataset, WindowsDataset = datasets_module.BaseConcatDataset, datasets_module.WindowsDataset

    if not isinstance(epochs, EpochSet):
        fail("epochs", "an EpochSet", type(epochs).__name__, "to_braindecode", TypeError)
    table = epochs.table
    if target not in table.columns:
        fail("target", f"a column of the epochs' table {list(table.columns)}", repr(target), "to_braindecode")
    values = table[target]
    if values.isna().any():
        fail(f"table['{target}']", "a target for every epoch", f"{int(values.isna().sum())} missing",
             "to_braindecode")
    codes = dict(mapping) if mapping is not None else {v: i for i, v in enumerate(sorted(values.unique(), key=str))}
    unknown = sorted({str(v) for v in values if v not in codes})
    if unknown:
        fail("mapping", f"an integer code for every value of table['{target}']", f"none for {unknown}",
             "to_braindecode")
    keys = table[list(RECORDING_KEYS)].astype(str).agg("\x1f".join, axis=1)
    datasets = []
    for key in dict.fromkeys(keys):                       # recordings in the order the table first shows them
        rows = np.flatnonzero(keys.to_numpy() == key)
        part = epochs[rows]
        mne_epochs = to_mne(part)
        meta = part.table.copy()
        meta["target"] = [int(codes[v]) for v in part.table[target]]
        meta["i_window_in_trial"], meta["i_start_in_trial"], meta["i_stop_in_trial"] = 0, 0, part.n_times
        with mne.utils.use_log_level("error"):
            mne_epochs.metadata = meta
        description = pd.Series({k: part.table[k].iloc[0] for k in RECORDING_KEYS})
        datasets.append(WindowsDataset(mne_epochs, description=description))
    return BaseConcatDataset(datasets)


def _windows(ds: Any, where: str) -> tuple[np.ndarray, Any, pd.DataFrame, float, np.ndarray]:
    """(windows (n, n_channels, n_times), mne Info, metadata, tmin, onsets in seconds) of one braindecode windows
    dataset."""
    datasets_module = import_braindecode("braindecode.datasets")
    EEGWindowsDataset, WindowsDataset = datasets_module.EEGWindowsDataset, datasets_module.WindowsDataset
    if not isinstance(ds, (WindowsDataset, EEGWindowsDataset)):
        fail("datasets", "braindecode WindowsDataset or EEGWindowsDataset (window the recordings first, e.g. "
             "braindecode.preprocessing.create_windows_from_events)", type(ds).__name__, where, TypeError)
    if getattr(ds, "transform", None) is not None:
        fail("transform", "no per-window transform (from_braindecode reads the stored windows; apply it to the "
             "EpochSet instead)", type(ds.transform).__name__, where)
    if getattr(ds, "targets_from", "metadata") != "metadata":
        fail("targets_from", "'metadata' (one target per window)", repr(ds.targets_from), where)
    meta = ds.metadata.reset_index(drop=True)
    if isinstance(ds, WindowsDataset):
        win = ds.windows
        return (win.get_data(copy=False), win.info, meta, float(win.tmin),
                win.events[:, 0] / win.info["sfreq"])
    raw = ds.raw                                          # an EEGWindowsDataset: windows cut from the recording
    start, stop = meta["i_start_in_trial"].to_numpy(int), meta["i_stop_in_trial"].to_numpy(int)
    lengths = np.unique(stop - start)
    if len(lengths) != 1:
        fail("metadata['i_stop_in_trial'] - ['i_start_in_trial']", "one window length", sorted(lengths.tolist()),
             where)
    if start.min() < 0 or stop.max() > raw.n_times:
        fail("metadata['i_start_in_trial'/'i_stop_in_trial']", f"windows inside the recording (0 … "
             f"{raw.n_times} samples)", f"{start.min()} … {stop.max()}", where)
    data = raw.get_data()
    return (np.stack([data[:, a:b] for a, b in zip(start, stop)]), raw.info, meta, 0.0,
            start / raw.info["sfreq"])


def from_braindecode(dataset: Any, *, labels: Mapping[int, str] | None = None, scale: float = 1.0) -> EpochSet:
    """One EpochSet from braindecode windows (a ``BaseConcatDataset`` of windows datasets, or one of them).

    Parameters
    ----------
    dataset : braindecode BaseConcatDataset, WindowsDataset or EEGWindowsDataset
        Every window the same length, rate and channels (subjects with other montages belong in an
        ``EpochCollection``: convert them one by one).
    labels : mapping, optional
        ``target`` code → label. Default: the metadata's ``label`` column where it has one (a set written by
        :func:`to_braindecode`), else the code itself as a string.
    scale : float
        Multiplies the data: ``1e-6`` for windows in µV (braindecode's ``scale(1e6)`` preprocessing). Data must
        end in SI units (V, T, T/m): a median amplitude above 10 mV (EEG), 100 nT or 10 µT/m is refused.

    Returns
    -------
    EpochSet
        Table: the description's subject, session and run (filled into every window), ``label``, ``target``, the
        window indices, and ``onset`` (seconds: the window's start in its recording for raw-based datasets, the
        event sample / sfreq for epochs-based ones).
    """
    import mne

    from neurodecode.core.mne_convert import from_mne

    BaseConcatDataset = import_braindecode("braindecode.datasets").BaseConcatDataset
    parts_in = dataset.datasets if isinstance(dataset, BaseConcatDataset) else [dataset]
    if not parts_in:
        fail("dataset", "at least one windows dataset", "an empty BaseConcatDataset", "from_braindecode")
    if not np.isfinite(scale) or scale <= 0:
        fail("scale", "a finite number > 0", scale, "from_braindecode")
    parts = []
    for i, ds in enumerate(parts_in):
        where = f"from_braindecode: datasets[{i}]"
        data, info, meta, tmin, onset = _windows(ds, where)
        if len(data) == 0:
            continue
        data = data * scale
        if not np.isfinite(data).all():
            fail("windows", "finite values", f"{int((~np.isfinite(data)).sum())} NaN/inf samples", where)
        description = getattr(ds, "description", None)
        description = {} if description is None else dict(description)
        table = meta.copy()
        for key in RECORDING_KEYS:
            if key in description and key not in table.columns:
                table[key] = str(description[key])
        if "label" not in table.columns:
            if "target" not in table.columns:
                fail("metadata['target']", "a target per window", list(table.columns), where)
            table["label"] = [str(labels[t]) if labels is not None and t in labels else str(t)
                              for t in table["target"]]
        if "onset" not in table.columns:
            table["onset"] = onset
        events = np.column_stack([np.arange(len(data)), np.zeros(len(data), int), np.ones(len(data), int)])
        epochs = mne.EpochsArray(data, info, events=events, tmin=tmin, metadata=table, verbose="error")
        source = {"dataset": i, "description": {k: str(v) for k, v in description.items()}}
        part = from_mne(epochs, label=None, provenance=[{"step": "from_braindecode", "sources": source}])
        for unit in set(part.channels.units):
            cols = [k for k, u in enumerate(part.channels.units) if u == unit]
            median = float(np.median(np.abs(part.data[:, cols])))
            if unit in _MAX_MEDIAN and median > _MAX_MEDIAN[unit]:
                fail("windows", f"data in {unit} (median |x| ≤ {_MAX_MEDIAN[unit]:g}; µV data need scale=1e-6)",
                     f"median |x| = {median:.3g} {unit}", where)
        parts.append(part)
    if not parts:
        fail("dataset", "at least one window", "none", "from_braindecode")
    for i, part in enumerate(parts[1:], 1):
        problems = compatibility_problems(parts[0], part)
        if problems:
            fail(f"datasets[{i}]", "windows like the first dataset's (rate, length, channels: subjects with other "
                 "montages belong in an EpochCollection, converted one by one)", "; ".join(problems),
                 "from_braindecode")
    return concatenate(parts) if len(parts) > 1 else parts[0]
