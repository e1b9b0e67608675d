"""EEG / MEG / sEEG / ECoG loaders: recordings → preprocessing steps → epochs in the common format.

Readers are MNE's (FIF, EDF/EDF+/BDF, BrainVision, EEGLAB, GDF, CNT and every other format ``mne.io.read_raw``
knows), plus CSV/TSV recordings with a marker column (consumer headsets) and MNE evoked files; ``mne.io.Raw`` and
``mne.Epochs`` objects are accepted as they are. BIDS datasets are read with mne-bids.

>>> epochs = load_epochs("sub-01_task-n170.vhdr", tmin=-0.1, tmax=0.8, labels={"1": "house", "2": "face"},
...                              steps=[{"step": "filter", "l_freq": 1, "h_freq": 30}], reject={"eeg": 100e-6},
...                              subject="01")                                            # doctest: +SKIP
>>> report.summary()                                                                       # doctest: +SKIP

Source files are only ever opened for reading. Every error names the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import DropReport, EpochSet
from neurodecode.core.validation import check_option
from neurodecode.core.mne_convert import from_mne
from neurodecode.loaders.preprocessing import apply_steps, check_steps

if TYPE_CHECKING:  # pragma: no cover
    import mne

__all__ = ["DropReport", "assign_regions", "epochs_to_store", "load_epochs", "load_recordings", "make_epochs",
           "read_bids",
           "read_csv_raw", "read_evoked", "read_raw"]

#: file endings read by MNE through ``mne.io.read_raw`` (the common ones; others MNE knows work too)
MNE_EXTENSIONS = (".fif", ".fif.gz", ".edf", ".bdf", ".vhdr", ".set", ".gdf", ".cnt", ".mff", ".ds", ".sqd",
                  ".con", ".mef", ".nxe", ".lay", ".eeg", ".ns1", ".ns2", ".ns3", ".ns4", ".ns5", ".ns6", ".ncs")
CSV_EXTENSIONS = (".csv", ".tsv", ".txt")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such recording")
    return path


# ---------------------------------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------------------------------


def read_csv_raw(path: str | os.PathLike, *, sfreq: float | None = None, time_column: str | None = "timestamps",
                 marker_column: str | None = "auto", channels: Sequence[str] | None = None,
                 exclude: Sequence[str] = (), ch_types: str | Sequence[str] = "eeg", unit: str = "uV",
                 max_drift: float = 0.05) -> mne.io.RawArray:
    """Read a CSV/TSV recording with one column per channel and an event-marker column.

    Parameters
    ----------
    path : str or path-like
    sfreq : float, optional
        Sampling rate in Hz (e.g. the device's nominal rate); default: samples / span of ``time_column``.
    time_column : str or None
        Column of sample times in seconds. Host timestamps of wireless headsets jitter (Muse: packets of samples
        share a time), so they are only checked to stay within ``max_drift`` of a regular grid at ``sfreq``.
    marker_column : str, "auto" or None
        Column whose non-zero values mark event onsets (they become annotations named by the value, e.g. "1");
        "auto" picks the first column whose name starts with "Marker"/"marker"/"trigger"/"event".
    channels, exclude : column names to use (default all numeric columns but time and marker) and to leave out.
    ch_types : MNE channel type(s) of the channels.
    unit : {"V", "mV", "uV", "µV", "nV"}
        Unit of the values; data are converted to volts.
    max_drift : float
        Largest accepted distance in seconds between a timestamp and the regular grid (dropped samples or a
        wrong ``sfreq`` exceed it).

    Returns
    -------
    mne.io.RawArray
        With the markers as annotations (``raw.annotations``).
    """
    import mne

    path = _check_file(path)
    sep = "\t" if _suffix(path) == ".tsv" else ","
    frame = _read_table(path, sep)
    scale = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6, "nV": 1e-9}
    if unit not in scale:
        raise ValueError(f"{path}: field 'unit': expected one of {list(scale)}, got {unit!r}")
    cols = list(frame.columns)
    if marker_column == "auto":
        marker_column = next((c for c in cols if str(c).lower().startswith(("marker", "trigger", "event"))), None)
    for name, col in (("time_column", time_column), ("marker_column", marker_column)):
        if col is not None and col not in cols:
            raise ValueError(f"{path}: field '{name}': expected a column among {cols}, got {col!r}")
    if channels is None:
        channels = [c for c in cols if c not in (time_column, marker_column) and c not in exclude]
    missing = [c for c in channels if c not in cols]
    if missing or not channels:
        raise ValueError(f"{path}: field 'channels': expected columns among {cols}, got "
                         f"{missing if missing else 'none left'}")
    data = _numeric(frame, list(channels) + [c for c in (time_column, marker_column) if c is not None], path)
    _check_rows(data, path)
    if time_column is not None:
        sfreq = _csv_rate(data[time_column], sfreq, max_drift, f"{path}: field '{time_column}'")
    elif sfreq is None:
        raise ValueError(f"{path}: field 'sfreq': expected a sampling rate when there is no time column")
    signals = np.stack([data[c] for c in channels]) * scale[unit]
    if not np.isfinite(signals).all():
        c, r = (int(i[0]) for i in np.nonzero(~np.isfinite(signals)))
        raise ValueError(f"{path}: field {channels[c]!r}: expected finite channel values, got an empty cell or "
                         f"NaN/Inf at row {r}")
    data = signals
    info = mne.create_info([str(c) for c in channels], float(sfreq), ch_types)
    raw = mne.io.RawArray(data, info, verbose="error")
    if marker_column is not None:
        marks = frame[marker_column].to_numpy(np.float64)
        idx = np.flatnonzero(marks != 0)
        desc = [str(int(v)) if float(v).is_integer() else str(v) for v in marks[idx]]
        raw.set_annotations(mne.Annotations(idx / sfreq, np.zeros(len(idx)), desc))
    raw._filenames = [path]  # noqa: SLF001 - lets MNE and our errors name the source file
    return raw


def _read_table(path: Path, sep: str) -> pd.DataFrame:
    """The CSV/TSV as text cells, with its header's column names checked to be unique (pandas would rename them)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh, delimiter=sep), [])
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, csv.Error) as err:
        raise ValueError(f"{path}: expected a {sep!r}-separated table with a header row, got an unreadable file "
                         f"({err})") from None
    dups = sorted({c for c in header if header.count(c) > 1})
    if dups:
        raise ValueError(f"{path}: field 'columns': expected unique column names, got duplicates {dups}")
    return frame


def _numeric(frame: pd.DataFrame, columns: list[str], path: Path) -> dict[str, np.ndarray]:
    """The columns as float64; a cell that is not a number is an error naming the column and the row (a text cell
    would otherwise make pandas read the whole column as text and drop the channel)."""
    out = {}
    for c in columns:
        cells = frame[c].str.strip()
        values = pd.to_numeric(cells.replace("", "nan"), errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(np.isnan(values) & ~cells.str.lower().isin(["", "nan"]).to_numpy())
        if bad.size:
            raise ValueError(f"{path}: field {c!r}: expected numbers, got {frame[c].iloc[bad[0]]!r} at row "
                             f"{int(bad[0])} (exclude the column with exclude=[{c!r}] if it is not a channel)")
        out[c] = values
    return out


def _check_rows(data: dict[str, np.ndarray], path: Path) -> None:
    """Consecutive identical rows (every column, time included) mean duplicated samples, not a recording."""
    table = np.column_stack(list(data.values()))
    same = np.flatnonzero((table[1:] == table[:-1]).all(axis=1)) + 1
    if same.size:
        raise ValueError(f"{path}: field 'rows': expected one row per sample, got {same.size} row(s) identical to the "
                         f"row before, the first at row {int(same[0])} (duplicated samples would double the "
                         "apparent sampling rate)")


def _csv_rate(t: np.ndarray, sfreq: float | None, max_drift: float, where: str) -> float:
    """The sampling rate of host timestamps ``t`` (``sfreq`` when given), checked to be one regular grid.

    Host timestamps of wireless headsets jitter: packets arrive late and the next ones catch up, so single samples
    may sit tens of milliseconds off the grid (or even a millisecond before the previous one) without any sample
    missing. A lost block of samples instead shifts every later timestamp: the running median of the distance to
    the grid steps and stays. So the rate is the median over windows of many samples, and the check is that the
    running median (over a quarter second) stays within ``max_drift`` of its overall median.
    """
    from scipy.ndimage import median_filter

    n = len(t)
    if n < 2 or not t[-1] > t[0]:
        raise ValueError(f"{where}: expected sample times that increase overall, got "
                         f"{t[0] if n else None} … {t[-1] if n else None}")
    back = np.flatnonzero(np.diff(t) < -max_drift)
    if back.size:
        raise ValueError(f"{where}: expected sample times that never go back by more than {max_drift} s, got "
                         f"{t[back[0] + 1]} after {t[back[0]]} at row {int(back[0]) + 1}")
    if sfreq is None and n < 64:                            # too short for windows: the median interval
        d = np.diff(t)
        rate = 1.0 / float(np.median(d[d > 0])) if (d > 0).any() else (n - 1) / (t[-1] - t[0])
    elif sfreq is None:
        w = min(n - 1, max(16, n // 20))
        k = np.arange(0, n - w, max(1, w // 4))
        spans = t[k + w] - t[k]
        rate = float(np.median(w / spans[spans > 0])) if (spans > 0).any() else (n - 1) / (t[-1] - t[0])
    else:
        rate = float(sfreq)
    r = t - np.arange(n) / rate
    baseline = median_filter(r - np.median(r), size=min(n, 2 * max(1, int(rate / 8)) + 1), mode="nearest")
    row = int(np.argmax(np.abs(baseline)))
    if abs(baseline[row]) > max_drift:
        raise ValueError(f"{where}: expected samples on one regular grid at {rate:.3f} Hz (the timestamps' running "
                         f"median within {max_drift} s of it), got {baseline[row]:+.3f} s at row {row}: samples "
                         "missing (a gap) or a wrong sfreq")
    return rate


def read_raw(source: str | os.PathLike | mne.io.BaseRaw, *, preload: bool = False, rename_duplicates: bool = False,
             **csv_kwargs: Any) -> mne.io.BaseRaw:
    """Open a recording with MNE (by file ending), a CSV/TSV reader, or pass an ``mne.io.Raw`` through.

    The file is checked against what it says of itself (:mod:`neurodecode.loaders.integrity`): EDF/BDF sizes against
    the header's record count, physical ranges, unique channel names (``rename_duplicates=True`` accepts MNE's
    running numbers), EEGLAB ``.fdt`` sizes; MNE's warnings about the file are logged, or raised where they mean
    lost data (a truncated file read short, invalid FIF tags, events outside the data).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unknown file ending, a file MNE cannot read (corrupted, truncated), or one that fails a check; the message
        names the file and the field.
    """
    import mne

    from neurodecode.loaders.integrity import check_edf, check_eeglab, read_with_checks

    if isinstance(source, mne.io.BaseRaw):
        return source
    path = _check_file(source)
    ext = _suffix(path)
    if ext in CSV_EXTENSIONS:
        return read_csv_raw(path, **csv_kwargs)
    if csv_kwargs:
        raise TypeError(f"{path}: CSV options {sorted(csv_kwargs)} apply to .csv/.tsv files only")
    if ext not in MNE_EXTENSIONS and not path.is_dir():
        raise ValueError(f"{path}: expected a recording ending in one of {sorted(MNE_EXTENSIONS + CSV_EXTENSIONS)}, "
                         f"got {ext or 'no ending'!r}")
    if ext in (".edf", ".bdf"):
        check_edf(path, rename_duplicates)
    try:
        raw = read_with_checks(path, lambda: mne.io.read_raw(path, preload=preload, verbose="warning"),
                               rename_duplicates)
    except (ValueError, OSError, RuntimeError, IndexError, KeyError, EOFError, TypeError) as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: expected a readable {ext} recording, got an error from MNE: {err}") from None
    if ext == ".set":
        check_eeglab(raw, path)
    return raw


def read_evoked(path: str | os.PathLike, *, subject: str | None = None) -> EpochSet:
    """Read an MNE evoked file (``*-ave.fif``): one epoch per condition, labelled by its comment.

    Data channels (EEG, MEG magnetometers and gradiometers, sEEG, ECoG) are kept with their types and positions
    (MEG sensors moved into the head frame); other channels (EOG, stim) are left out.
    """
    import mne

    path = _check_file(path)
    try:
        evokeds = mne.read_evokeds(path, verbose="error")
    except (ValueError, OSError, RuntimeError) as err:
        raise ValueError(f"{path}: expected an MNE evoked file, got an error from MNE: {err}") from None
    info = evokeds[0].info
    arr = mne.EpochsArray(np.stack([e.data for e in evokeds]), info, tmin=evokeds[0].tmin, verbose="error")
    arr = arr.pick(["eeg", "meg", "seeg", "ecog"], exclude=())
    table = pd.DataFrame({"label": [e.comment for e in evokeds], "nave": [int(e.nave) for e in evokeds]})
    arr.metadata = table
    ep = from_mne(arr, subject=subject, label=None,
                           provenance=[{"step": "read_evokeds", "file": path.name}])
    return ep


# ---------------------------------------------------------------------------------------------------------------
# epoching
# ---------------------------------------------------------------------------------------------------------------


def _events_table(raw: mne.io.BaseRaw, events: Any, stim_channel: str | None, where: str) -> pd.DataFrame:
    """Candidate events as a table with ``sample``, ``onset`` (s from the recording start) and ``description``."""
    import mne

    sfreq = raw.info["sfreq"]
    if isinstance(events, pd.DataFrame):
        if "onset" not in events.columns:
            raise ValueError(f"{where}: field 'events': expected a table with an 'onset' column in seconds, got "
                             f"columns {list(events.columns)}")
        table = events.reset_index(drop=True).copy()
        if "description" not in table.columns:
            table["description"] = table["trial_type"].astype(str) if "trial_type" in table.columns else "event"
        table["description"] = table["description"].astype(str)
        table["sample"] = np.round(table["onset"].to_numpy(np.float64) * sfreq).astype(np.int64) + raw.first_samp
        return table
    if events == "stim" or stim_channel is not None:
        try:
            ev = mne.find_events(raw, stim_channel=stim_channel, verbose="error")
        except ValueError as err:
            raise ValueError(f"{where}: field 'stim_channel': {err}") from None
        desc = [str(c) for c in ev[:, 2]]
        return pd.DataFrame({"sample": ev[:, 0].astype(np.int64), "onset": (ev[:, 0] - raw.first_samp) / sfreq,
                             "description": desc})
    if events != "annotations":
        raise ValueError(f"{where}: field 'events': expected 'annotations', 'stim' or a DataFrame, got {events!r}")
    ann = raw.annotations
    onset = ann.onset - (raw.first_time if ann.orig_time is not None else 0.0)
    sample = np.round(onset * sfreq).astype(np.int64) + raw.first_samp
    return pd.DataFrame({"sample": sample, "onset": onset, "description": [str(d) for d in ann.description]})


def _label_map(labels: Mapping[str, Any] | Sequence[str] | None, events: pd.DataFrame, where: str,
               absent_labels: str = "raise") -> dict[str, Any]:
    """Event description → label; descriptions asked for but absent from ``events`` are an error unless
    ``absent_labels="allow"`` (one run of a set: :func:`load_recordings` checks the whole set)."""
    if absent_labels not in ("raise", "allow"):
        raise ValueError(f"{where}: field 'absent_labels': expected 'raise' or 'allow', got {absent_labels!r}")
    present = list(dict.fromkeys(events["description"]))
    if labels is None:
        return {d: d for d in present}
    label_of = ({str(k): v for k, v in labels.items()} if isinstance(labels, Mapping)
                else {str(k): str(k) for k in labels})
    absent = [d for d in label_of if d not in present]
    if absent and absent_labels == "raise":
        raise ValueError(f"{where}: field 'labels': expected events present in the recording {present[:20]}, got "
                         f"absent {absent}")
    return label_of


def make_epochs(
    raw: mne.io.BaseRaw,
    *,
    tmin: float,
    tmax: float,
    labels: Mapping[str, Any] | Sequence[str] | None = None,
    stimulus: Mapping[str, Any] | str | None = None,
    events: str | pd.DataFrame = "annotations",
    stim_channel: str | None = None,
    baseline: tuple[float | None, float | None] | None = None,
    reject: Mapping[str, float] | None = None,
    flat: Mapping[str, float] | None = None,
    picks: str | Sequence[str] = "data",
    subject: str | None = None,
    session: str | None = None,
    run: str | None = None,
    provenance: Sequence[dict] = (),
    absent_labels: str = "raise",
) -> tuple[EpochSet, DropReport]:
    """Cut a (preprocessed) recording into labelled epochs.

    Parameters
    ----------
    raw : mne.io.Raw
    tmin, tmax : float
        Window in seconds around each event (``tmax`` included, as in MNE).
    labels : mapping, sequence or None
        Event description (annotation text, stim code as text, or table ``description``) → label; a sequence keeps
        those descriptions as their own labels; None keeps every event. Descriptions asked for but absent are an
        error unless ``absent_labels="allow"`` (a run of a set: :func:`load_recordings` checks the whole set).
    stimulus : mapping, str or None
        Description → stimulus id, or the name of a column of an events table holding it.
    events : "annotations", "stim" or DataFrame
        Where events come from; a table needs ``onset`` (seconds from the start of the recording) and a
        ``description`` (or BIDS ``trial_type``) column; its other columns go into the per-epoch table.
    baseline : (start, end) or None
        Baseline correction window in seconds (as MNE).
    reject, flat : dict, optional
        Peak-to-peak limits per MNE channel type in SI units (e.g. ``{"eeg": 100e-6}``): epochs above ``reject`` or
        below ``flat`` are dropped and reported.
    picks : channels to keep (default the data channels).

    Returns
    -------
    EpochSet, DropReport
    """
    import mne

    where = str(raw.filenames[0]) if raw.filenames and raw.filenames[0] else "recording"
    if not tmax > tmin:
        raise ValueError(f"{where}: field 'tmax': expected tmax > tmin = {tmin}, got {tmax}")
    table, label_of = _select_events(raw, events, stim_channel, labels, stimulus, tmin, tmax, where, absent_labels)
    codes = {d: i + 1 for i, d in enumerate(filter(set(table["description"]).__contains__, label_of))}
    ev = np.column_stack([table["sample"].to_numpy(np.int64), np.zeros(len(table), np.int64),
                          table["description"].map(codes).to_numpy(np.int64)])
    order = np.argsort(ev[:, 0], kind="stable")
    ev, table = ev[order], table.iloc[order].reset_index(drop=True)
    event_id = {d: c for d, c in codes.items() if c in set(ev[:, 2])}
    epochs = mne.Epochs(raw, ev, event_id, tmin=tmin, tmax=tmax, baseline=baseline, reject=reject, flat=flat,
                        picks=picks, preload=True, event_repeated="drop", reject_by_annotation=True,
                        verbose="error")
    reasons = _drop_reasons(epochs.drop_log, reject, flat)
    kept = np.array([r == "" for r in reasons])
    report = DropReport(pd.DataFrame({"event": np.arange(len(table)), "onset": table["onset"].to_numpy(),
                                      "description": table["description"].to_numpy(),
                                      "label": table["label"].to_numpy(), "kept": kept, "reason": reasons}))
    if not kept.any():
        raise ValueError(f"{where}: every epoch was dropped: {report}")
    meta = table.loc[kept].drop(columns=["sample", "description"]).reset_index(drop=True)
    meta = meta.assign(event_description=table.loc[kept, "description"].to_numpy(),
                       onset=table.loc[kept, "onset"].to_numpy(np.float64))
    with mne.utils.use_log_level("error"):
        epochs.metadata = meta
    steps = list(provenance) + [{"step": "epochs", "tmin": float(tmin), "tmax": float(tmax),
                                 "baseline": list(baseline) if baseline else None,
                                 "reject": dict(reject) if reject else None, "flat": dict(flat) if flat else None,
                                 "n_kept": report.n_kept, "n_dropped": report.n_dropped}]
    ep = from_mne(epochs, subject=subject, session=session, run=run, label=None, provenance=steps)
    # from_mne's step and event_code column hold our internal event codes only
    return ep.replace(table=ep.table.drop(columns=["event_code"]), provenance=ep.provenance[:-1]), report


def _select_events(raw: mne.io.BaseRaw, events: Any, stim_channel: str | None, labels: Any, stimulus: Any,
                   tmin: float, tmax: float, where: str, absent_labels: str = "raise"
                   ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The labelled candidate events (with ``label`` and ``stimulus``) and the description → label map; errors
    when no event is asked for or no window fits inside the recording."""
    table = _events_table(raw, events, stim_channel, where)
    label_of = _label_map(labels, table, where, absent_labels)
    table = table[table["description"].isin(list(label_of))].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"{where}: field 'events': expected at least one event, got none")
    table["label"] = table["description"].map(label_of)
    if isinstance(stimulus, Mapping):
        table["stimulus"] = table["description"].map({str(k): v for k, v in stimulus.items()})
    elif isinstance(stimulus, str):
        if stimulus not in table.columns:
            raise ValueError(f"{where}: field 'stimulus': expected a column of the events table "
                             f"{list(table.columns)}, got {stimulus!r}")
        table["stimulus"] = table[stimulus]
    sfreq = raw.info["sfreq"]
    start = table["sample"] + int(np.round(tmin * sfreq))
    stop = table["sample"] + int(np.round(tmax * sfreq))
    if not ((start >= raw.first_samp) & (stop <= raw.last_samp)).any():
        raise ValueError(f"{where}: field 'tmin'/'tmax': expected windows inside the recording "
                         f"({raw.times[-1]:.1f} s), got [{tmin}, {tmax}] s around {len(table)} events, none inside")
    return table, label_of


def _drop_reasons(drop_log: Sequence[Sequence[str]], reject: Mapping[str, float] | None,
                  flat: Mapping[str, float] | None) -> list[str]:
    """Why MNE dropped each epoch, in words ("" for the kept ones)."""
    reasons = []
    for log in drop_log:
        if not log:
            reasons.append("")
        elif log[0] in ("NO_DATA", "TOO_SHORT"):
            reasons.append("window outside the recording")
        elif log[0] == "DROPPED_BY_ANNOTATION" or str(log[0]).upper().startswith("BAD"):
            reasons.append("overlaps a BAD annotation")
        elif log[0] == "DROP DUPLICATE":
            reasons.append("duplicate event sample")
        else:
            limits = [f"above {k} {v:g}" for k, v in (reject or {}).items()]
            limits += [f"below {k} {v:g}" for k, v in (flat or {}).items()]
            reasons.append(f"peak-to-peak {' or '.join(limits)} on {', '.join(map(str, log))}")
    return reasons


def load_epochs(
    source: str | os.PathLike | mne.io.BaseRaw | mne.BaseEpochs,
    *,
    steps: Sequence[Mapping[str, Any]] = (),
    csv: Mapping[str, Any] | None = None,
    regions: Mapping[str, str] | pd.DataFrame | None = None,
    return_report: bool | None = None,
    **epoch_kwargs: Any,
) -> EpochSet | tuple[EpochSet, DropReport | None]:
    """Read, preprocess and epoch one recording: :func:`read_raw` → :func:`apply_steps` → :func:`make_epochs`.

    ``mne.Epochs`` input is converted directly (``steps`` must then be empty). ``csv`` holds options of
    :func:`read_csv_raw`; ``regions`` a channel → region table (see :func:`assign_regions`). The steps applied are
    stored in the epochs' provenance, with the source file's name.

    Returns
    -------
    EpochSet
        Carrying its drop report (``epochs.drop_report``: what epoching kept and dropped, and why). With
        ``return_report=True``, the 0.2 pair ``(epochs, report)``; the default (``None``) still returns that pair
        for one release, with a FutureWarning — pass ``return_report=False``.
    """
    import mne

    if isinstance(source, mne.BaseEpochs):
        if steps:
            raise ValueError("field 'steps': preprocessing steps apply to continuous recordings, got mne.Epochs")
        ep = from_mne(source, **{k: epoch_kwargs[k] for k in ("subject", "session", "run")
                                          if k in epoch_kwargs})
        return _returned(assign_regions(ep, regions) if regions is not None else ep, None, return_report,
                         "load_epochs")
    steps = check_steps(steps)
    raw = read_raw(source, **(csv or {}))
    name = Path(raw.filenames[0]).name if raw.filenames and raw.filenames[0] else "<raw>"
    raw, applied = apply_steps(raw, steps)
    ep, report = make_epochs(raw, provenance=[{"step": "read", "file": name}] + applied, **epoch_kwargs)
    if regions is not None:
        ep = assign_regions(ep, regions)
    return _returned(ep, report, return_report, "load_epochs")


def _returned(ep: EpochSet, report: DropReport | None, return_report: bool | None, name: str
              ) -> EpochSet | tuple[EpochSet, DropReport | None]:
    """The epochs carrying their drop report; the 0.2 pair when asked (or by default, with a warning)."""
    import warnings

    if report is not None:
        ep = ep.with_drop_report(report)
    if return_report is None:
        warnings.warn(f"{name} returns (epochs, report) for one more release; pass return_report=False to get the "
                      "epochs alone (their report is epochs.drop_report)", FutureWarning, stacklevel=3)
        return ep, report
    return (ep, report) if return_report else ep


# ---------------------------------------------------------------------------------------------------------------
# sEEG / ECoG regions
# ---------------------------------------------------------------------------------------------------------------


def assign_regions(epochs: EpochSet, table: Mapping[str, str] | pd.DataFrame | None = None, *,
                   atlas: Any = None, atlas_labels: Mapping[int, str] | Sequence[str] | None = None) -> EpochSet:
    """Give each channel an anatomical region, from a table or from an atlas image.

    Parameters
    ----------
    epochs : EpochSet
    table : mapping or DataFrame, optional
        Channel name → region (a DataFrame needs ``name`` and ``region`` columns). A bipolar channel ``A-B`` takes
        the region of ``A`` and ``B`` when they agree.
    atlas : str, path or nibabel image, optional
        A label volume (e.g. an MNI atlas): each channel position (metres, in the atlas' world space — give
        positions in ``mni_tal``/``mri`` frames) is looked up in it; positions outside the volume or on label 0
        get None.
    atlas_labels : mapping or sequence
        Integer label → region name.
    """
    names = epochs.channels.names
    if (table is None) == (atlas is None):
        raise ValueError("assign_regions: expected exactly one of 'table' or 'atlas'")
    if table is not None:
        if isinstance(table, pd.DataFrame):
            missing = [c for c in ("name", "region") if c not in table.columns]
            if missing:
                raise ValueError(f"field 'table': expected columns 'name' and 'region', missing {missing}")
            table = dict(zip(table["name"].astype(str), table["region"]))
        lookup = {str(k): (None if pd.isna(v) else str(v)) for k, v in table.items()}
        regions = []
        for n in names:
            if n in lookup:
                regions.append(lookup[n])
            elif "-" in n and all(p in lookup for p in n.split("-", 1)):
                a, b = (lookup[p] for p in n.split("-", 1))
                regions.append(a if a == b else None)
            else:
                regions.append(None)
        unmatched = [n for n, r in zip(names, regions) if r is None and n not in lookup]
        if len(unmatched) == len(names):
            raise ValueError(f"field 'table': expected region labels for the channels {list(names[:6])}, got none "
                             "matching")
    else:
        import nibabel as nib

        img = nib.load(atlas) if isinstance(atlas, (str, os.PathLike)) else atlas
        vol = np.asarray(img.dataobj)
        if epochs.channels.coord_frame not in ("mni_tal", "mri", "ras", "scanner"):
            raise ValueError(f"field 'channels.coord_frame': expected positions in the atlas' world space "
                             f"(mni_tal, mri, ras or scanner), got {epochs.channels.coord_frame!r}; MNE stores montage "
                             "positions in its head frame (identity without fiducials): if they are MNI, say so "
                             "with epochs.replace(channels=epochs.channels.replace(coord_frame='mni_tal'))")
        ijk = nib.affines.apply_affine(np.linalg.inv(img.affine), epochs.channels.pos * 1000.0)  # m → mm
        regions = []
        for p in ijk:
            if not np.isfinite(p).all():
                regions.append(None)
                continue
            i, j, k = np.round(p).astype(int)
            inside = all(0 <= v < s for v, s in zip((i, j, k), vol.shape[:3]))
            code = int(vol[i, j, k]) if inside else 0
            if code == 0:
                regions.append(None)
            else:
                labels = atlas_labels or {}
                name = labels[code] if isinstance(labels, Mapping) and code in labels else (
                    labels[code] if isinstance(labels, Sequence) and code < len(labels) else str(code))
                regions.append(str(name))
    return epochs.replace(channels=epochs.channels.replace(regions=regions))


# ---------------------------------------------------------------------------------------------------------------
# BIDS
# ---------------------------------------------------------------------------------------------------------------


def read_bids(root: str | os.PathLike, *, subject: str, task: str, session: str | None = None,
              run: str | None = None, datatype: str | None = None, steps: Sequence[Mapping[str, Any]] = (),
              on_ch_mismatch: str = "raise", return_report: bool | None = None,
              **epoch_kwargs: Any) -> EpochSet | tuple[EpochSet, DropReport]:
    """Epochs of one BIDS recording (EEG, MEG or iEEG) read with mne-bids.

    Events come from ``*_events.tsv``: ``trial_type`` is the description mapped by ``labels``, and every other
    column (``value``, ``stim_file``, ``response_time``, ...) goes into the per-epoch table; the subject, session,
    task and run entities fill the table too. Positions come from ``*_electrodes.tsv``/``*_coordsystem.json`` as
    mne-bids reads them. When ``*_channels.tsv`` names channels differently from the data file, mne-bids refuses;
    ``on_ch_mismatch="rename"`` takes the names of ``channels.tsv`` (``"reorder"`` matches them by name).
    Returns the epochs carrying their drop report, as :func:`load_epochs` (``return_report`` likewise).
    """
    import mne_bids

    from neurodecode.loaders.integrity import read_with_checks

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such BIDS root folder")
    path = mne_bids.BIDSPath(root=root, subject=subject, session=session, task=task, run=run, datatype=datatype)
    matches = path.match()
    recordings = [m for m in matches if m.suffix in ("eeg", "meg", "ieeg") and m.extension not in (".json", ".tsv")]
    if not recordings:
        raise FileNotFoundError(f"{root}: no BIDS recording for subject={subject!r} session={session!r} "
                                f"task={task!r} run={run!r} datatype={datatype!r}")
    if len(recordings) > 1:
        raise ValueError(f"{root}: field 'run'/'session': expected one recording, got {len(recordings)}: "
                         f"{[m.basename for m in recordings]}")
    bp = recordings[0]
    channels_tsv = bp.copy().update(suffix="channels", extension=".tsv").fpath
    if channels_tsv.exists():                  # mne-bids renames duplicated names (FC5-0, FC5-1) without a word
        names = pd.read_csv(channels_tsv, sep="\t", dtype=str, keep_default_na=False).get("name")
        dups = sorted(set(names[names.duplicated()])) if names is not None else []
        if dups:
            raise ValueError(f"{channels_tsv}: field 'name': expected unique channel names, got duplicates {dups}")
    try:
        raw = read_with_checks(bp.fpath, lambda: mne_bids.read_raw_bids(bp, on_ch_mismatch=on_ch_mismatch,
                                                                          verbose="warning"))
    except (ValueError, OSError, RuntimeError) as err:
        if str(err).startswith(str(bp.fpath)):   # read_with_checks' own error: it names the file and the field
            raise
        raise ValueError(f"{bp.fpath}: expected a readable BIDS recording, got an error from mne-bids: {err}") \
            from None
    events_tsv = bp.copy().update(suffix="events", extension=".tsv")
    if events_tsv.fpath.exists():
        table = pd.read_csv(events_tsv.fpath, sep="\t", na_values="n/a")
        table = table.rename(columns={"trial_type": "description"}) if "trial_type" in table.columns else table
        epoch_kwargs.setdefault("events", table.drop(columns=["sample"], errors="ignore"))
    raw, applied = apply_steps(raw, steps)
    ep, report = make_epochs(raw, subject=subject, session=session, run=run,
                             provenance=[{"step": "read_bids", "file": bp.basename}] + applied, **epoch_kwargs)
    ep = ep.replace(table=ep.table.assign(task=task))
    return _returned(ep, report, return_report, "read_bids")


# ---------------------------------------------------------------------------------------------------------------
# chunked epoching into the store
# ---------------------------------------------------------------------------------------------------------------


def epochs_to_store(source: str | os.PathLike | mne.io.BaseRaw, store: str | os.PathLike, *, tmin: float,
                    tmax: float, steps: Sequence[Mapping[str, Any]] = (), events_per_chunk: int = 200,
                    pad: float = 10.0, overwrite: bool = False, progress: bool = True,
                    **epoch_kwargs: Any) -> DropReport:
    """Epoch a recording larger than memory straight into an on-disk store, one chunk of events at a time.

    The recording is opened without loading it; for each chunk of ``events_per_chunk`` events the span they cover,
    plus ``pad`` seconds on each side, is loaded, preprocessed with ``steps`` and epoched, and the epochs are
    appended to an :class:`~neurodecode.EpochWriter`. With ``pad`` at least half the longest filter, filtered
    epochs equal those of the whole recording; resampling steps are approximate near chunk edges, so resample the
    epochs afterwards when exact equality matters.

    Returns
    -------
    DropReport
        Of all chunks together; the store is written only if every chunk succeeds.
    """
    from tqdm.auto import tqdm

    from neurodecode.core.storage import EpochWriter

    raw = read_raw(source)
    where = str(raw.filenames[0]) if raw.filenames and raw.filenames[0] else "recording"
    steps = check_steps(steps)
    events = epoch_kwargs.pop("events", "annotations")
    table = _events_table(raw, events, epoch_kwargs.pop("stim_channel", None), where)
    labels = epoch_kwargs.pop("labels", None)
    label_of = _label_map(labels, table, where)  # on the whole recording: a chunk may hold only some labels
    table = table[table["description"].isin(list(label_of))]
    table = table.sort_values("sample", kind="stable").reset_index(drop=True)
    sfreq = raw.info["sfreq"]
    writer, reports = None, []
    try:
        chunks = range(0, len(table), events_per_chunk)
        for start in tqdm(chunks, desc=f"epoching {Path(where).name}", disable=not progress):
            part = table.iloc[start:start + events_per_chunk]
            t0 = max(0.0, (part["sample"].min() - raw.first_samp) / sfreq + tmin - pad)
            t1 = min(raw.times[-1], (part["sample"].max() - raw.first_samp) / sfreq + tmax + pad)
            seg = raw.copy().crop(t0, t1).load_data(verbose="error")
            offset = (seg.first_samp - raw.first_samp) / sfreq
            seg, applied = apply_steps(seg, steps)
            ev = part.drop(columns=["sample"]).assign(onset=(part["sample"] - seg.first_samp) / sfreq)
            chunk_labels = {d: label_of[d] for d in dict.fromkeys(part["description"])}
            ep, report = make_epochs(seg, tmin=tmin, tmax=tmax, events=ev, labels=chunk_labels, provenance=[
                {"step": "read", "file": Path(where).name}] + applied, **epoch_kwargs)
            ep = ep.replace(table=ep.table.assign(onset=ep.table["onset"] + offset))
            reports.append(report.events.assign(onset=report.events["onset"] + offset))
            if writer is None:
                writer = EpochWriter(store, sfreq=ep.sfreq, channels=ep.channels, n_times=ep.n_times, tmin=ep.tmin,
                                     provenance=ep.provenance + ({"step": "chunked", "events_per_chunk":
                                                                  events_per_chunk, "pad": pad},),
                                     overwrite=overwrite)
            writer.append(ep.data, ep.table)
        if writer is None:
            raise ValueError(f"{where}: field 'events': expected at least one event, got none")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    events_all = pd.concat(reports, ignore_index=True)
    return DropReport(events_all.assign(event=np.arange(len(events_all))))


#: stimulus-table columns that hold file paths: image files, and mesh files (3D heads train on them)
FILE_COLUMNS = ("file", "mesh")


def _resolve_stimulus_files(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The table with the paths of its file columns (:data:`FILE_COLUMNS`) made absolute (relative ones are
    relative to the table's folder), every file checked to exist."""
    for column in (c for c in FILE_COLUMNS if c in table.columns):
        files = [Path(str(f)) if Path(str(f)).is_absolute() else path.parent / str(f) for f in table[column]]
        missing = [(i, str(f)) for i, f in enumerate(files) if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{path}: field '{column}': expected stimulus files (relative to the table's "
                                    f"folder), got {len(missing)} missing, first at row {missing[0][0]}: "
                                    f"{missing[0][1]}")
        table = table.assign(**{column: [str(f) for f in files]})
    return table


def load_recordings(path: str | os.PathLike | Sequence[str | os.PathLike], *, stimuli: str | os.PathLike | None = None,
                    subject: str | None = None, steps: Sequence[Mapping[str, Any]] = (), on_error: str = "raise",
                    **epoch_kwargs: Any) -> EpochSet:
    """Several runs of one subject through :func:`load_epochs`, concatenated, with a stimulus table from a file.

    ``path`` is one recording or a list (run ids ``1, 2, ...`` in that order unless ``epoch_kwargs`` name a run);
    ``stimuli`` a CSV/TSV/parquet table with a ``stimulus`` id column (and ``file``, ``caption``, ...). This is the
    data recipe of ``conf/data/meeg.yaml``: ``neurodecode reconstruct`` calls it again on new recordings.

    ``on_error="skip"`` goes on past a run that cannot be read or epoched (a damaged file, no labelled event in the
    window): each skipped run is logged and recorded, with its error, in the result's provenance
    (``{"step": "skipped_runs", "runs": [{"path", "error"}, ...]}``) — never silently; when every run fails the
    error lists them all. ``"raise"`` (default) stops at the first.
    """
    from neurodecode.core.epochs import compatibility_problems, concatenate, duplicate_recordings
    from neurodecode.core.logs import logger

    check_option("on_error", on_error, ("raise", "skip"))
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        raise ValueError("field 'path': expected one recording or a list of them, got an empty list")
    sets, seen, kept, skipped = [], set(), [], []
    for i, p in enumerate(paths):
        kw = {"run": str(i + 1), **epoch_kwargs} if len(paths) > 1 else dict(epoch_kwargs)
        if len(paths) > 1 and kw.get("labels") is not None:
            kw.setdefault("absent_labels", "allow")          # a run may hold some of the labels; checked below
        try:
            ep = load_epochs(p, steps=steps, subject=subject, return_report=False, **kw)
        except (ValueError, OSError, RuntimeError) as err:
            if on_error == "raise":
                raise
            logger.warning("%s: run skipped (on_error='skip'): %s", p, err)
            skipped.append({"path": str(p), "error": str(err)})
            continue
        report = ep.drop_report
        sets.append(ep)
        kept.append(p)
        seen.update(report.events["description"].astype(str) if report is not None else ())
    if not sets:
        raise ValueError("field 'path': expected at least one readable run, got none: " + "; ".join(
            f"{r['path']}: {r['error']}" for r in skipped))
    paths = kept
    labels = epoch_kwargs.get("labels")
    if len(paths) > 1 and labels is not None:
        absent = [str(d) for d in labels if str(d) not in seen]
        if absent:
            raise ValueError(f"{[str(p) for p in paths]}: field 'labels': expected every labelled event in at least "
                             f"one run, got {absent} in none (present: {sorted(seen)[:20]})")
    for p, other in zip(paths[1:], sets[1:]):
        problems = compatibility_problems(sets[0], other)
        if problems:
            raise ValueError(f"{p}: expected a run compatible with {paths[0]} (same channels, sampling rate, epoch "
                             f"window and processing), got: " + "; ".join(problems))
    duplicates = duplicate_recordings(sets, [str(p) for p in paths])
    if duplicates:
        raise ValueError("field 'path': expected distinct recordings (the same epochs twice would sit on both "
                         "sides of a cross-validation split), got: " + "; ".join(duplicates))
    # duplicates were refused above, naming the paths: concatenate need not hash every epoch a second time
    ep = sets[0] if len(sets) == 1 else concatenate(sets, allow_duplicates=True)
    if skipped:
        ep = ep.replace(provenance=[*ep.provenance, {"step": "skipped_runs", "runs": skipped}])
    if stimuli is not None:
        sp = Path(stimuli)
        if not sp.is_file():
            raise FileNotFoundError(f"{sp}: field 'stimuli': no such stimulus table")
        table = (pd.read_parquet(sp) if sp.suffix == ".parquet"
                 else pd.read_csv(sp, sep="\t" if sp.suffix == ".tsv" else ",", dtype={"stimulus": str}))
        table = _resolve_stimulus_files(table, sp)
        ep = EpochSet(ep.data, ep.sfreq, ep.channels, ep.table, ep.tmin, ep.provenance, table)
    return ep
