"""Conversion between :class:`~neurodecode.EpochSet` and ``mne.Epochs`` / ``mne.EpochsArray``.

MNE stores data in SI units (V, T, T/m), as neurodecode does, so values pass through unchanged (float64 in MNE,
float32 here). Positions come from each channel's ``loc[:3]``; MEG sensors (device frame) are moved into the head
frame with ``info["dev_head_t"]`` when EEG channels in the head frame sit beside them, so one coordinate frame holds
for the whole set. The per-epoch table travels as ``epochs.metadata``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.core.validation import fail

if TYPE_CHECKING:  # pragma: no cover
    import mne

__all__ = ["MNE_TO_TYPE", "TYPE_TO_MNE", "from_mne", "mne_info", "to_mne"]

#: MNE channel type → neurodecode channel type.
MNE_TO_TYPE = {"eeg": "eeg", "mag": "meg-mag", "grad": "meg-grad", "seeg": "seeg", "ecog": "ecog"}
#: neurodecode channel type → MNE channel type (fMRI channels have none).
TYPE_TO_MNE = {v: k for k, v in MNE_TO_TYPE.items()}


def _frames() -> dict[int, str]:
    from mne.io.constants import FIFF

    return {
        int(FIFF.FIFFV_COORD_UNKNOWN): "unknown",
        int(FIFF.FIFFV_COORD_HEAD): "head",
        int(FIFF.FIFFV_COORD_DEVICE): "meg",
        int(FIFF.FIFFV_COORD_MRI): "mri",
        int(FIFF.FIFFV_MNE_COORD_MNI_TAL): "mni_tal",
        int(FIFF.FIFFV_MNE_COORD_RAS): "ras",
    }


def _positions(info: mne.Info, where: str) -> tuple[np.ndarray, str]:
    """Channel positions (n_channels, 3) in one frame, NaN where unknown."""
    frames = _frames()
    pos = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=np.float64)
    known = np.isfinite(pos).all(axis=1) & (np.abs(pos).sum(axis=1) > 0)
    pos[~known] = np.nan
    ch_frames = np.array([int(ch["coord_frame"]) for ch in info["chs"]])
    used = sorted({int(f) for f in ch_frames[known]})
    unknown_frames = [f for f in used if f not in frames]
    if unknown_frames:
        fail("info['chs'][...]['coord_frame']", f"frames among {sorted(frames.values())}",
              f"FIFF frame code(s) {unknown_frames}", where)
    if len(used) <= 1:
        return pos, frames[used[0]] if used else "unknown"
    names = {frames[f] for f in used}
    if names == {"meg", "head"} and info.get("dev_head_t") is not None:
        from mne.transforms import apply_trans

        dev = known & (ch_frames == [k for k, v in frames.items() if v == "meg"][0])
        pos[dev] = apply_trans(info["dev_head_t"], pos[dev])
        return pos, "head"
    fail("info['chs'][...]['coord_frame']", "one coordinate frame for all channel positions (or MEG device + "
          "head with info['dev_head_t'] to map between them)", f"frames {sorted(names)}", where)
    raise AssertionError  # unreachable


def from_mne(
    epochs: mne.BaseEpochs,
    *,
    subject: str | None = None,
    session: str | None = None,
    run: str | None = None,
    label: str | None = "event",
    provenance: list[dict] | None = None,
) -> EpochSet:
    """Convert ``mne.Epochs`` (or ``EpochsArray``) into an :class:`~neurodecode.EpochSet`.

    Parameters
    ----------
    epochs : mne.BaseEpochs
        Epochs whose channels are all of types eeg, mag, grad, seeg or ecog (pick them first with
        ``epochs.pick([...])``). Data are loaded.
    subject, session, run : str, optional
        Filled into the table where ``epochs.metadata`` has no such column.
    label : str or None
        ``"event"`` (default) labels each epoch with its event name from ``epochs.event_id`` (the code when a name
        is ambiguous); any other string names a metadata column to copy into ``label``; None leaves labels empty.
        A ``label`` column already in the metadata wins.
    provenance : list of dict, optional
        Steps to record; a ``from_mne`` step is appended.

    Returns
    -------
    EpochSet
        ``data (n_epochs, n_channels, n_times)`` float32 in SI units; table columns: the standard ones, every
        metadata column, ``event_code`` (``epochs.events[:, 2]``) and ``onset`` (event sample / sfreq, seconds).
    """
    import mne

    where = f"mne epochs {getattr(epochs, 'filename', None) or ''}".strip()
    if not isinstance(epochs, mne.BaseEpochs):
        fail("epochs", "an mne.Epochs or mne.EpochsArray", type(epochs).__name__, exc=TypeError)
    info = epochs.info
    mne_types = epochs.get_channel_types()
    unsupported = sorted({t for t in mne_types if t not in MNE_TO_TYPE})
    if unsupported:
        bad = [n for n, t in zip(epochs.ch_names, mne_types) if t not in MNE_TO_TYPE]
        fail("info['chs'][...]['kind']", f"channel types among {sorted(MNE_TO_TYPE)}",
              f"{unsupported} (channels {bad[:6]}{'...' if len(bad) > 6 else ''}); pick the data channels first, "
              "e.g. epochs.pick(['eeg'])", where)
    pos, frame = _positions(info, where)
    units = ["V" if t in ("eeg", "seeg", "ecog") else "T" if t == "mag" else "T/m" for t in mne_types]
    channels = Channels(epochs.ch_names, [MNE_TO_TYPE[t] for t in mne_types], pos, frame, units,
                        [b for b in info["bads"] if b in epochs.ch_names])

    events = epochs.events
    table = epochs.metadata.reset_index(drop=True).copy() if epochs.metadata is not None else pd.DataFrame(
        index=pd.RangeIndex(len(events)))
    for col, value in (("subject", subject), ("session", session), ("run", run)):
        if col not in table.columns:
            table[col] = value
    if "onset" not in table.columns:
        table["onset"] = events[:, 0] / info["sfreq"]
    if "event_code" not in table.columns:
        table["event_code"] = events[:, 2].astype(np.int64)
    if "label" not in table.columns and label is not None:
        if label == "event":
            names: dict[int, list[str]] = {}
            for name, code in epochs.event_id.items():
                names.setdefault(int(code), []).append(name)
            table["label"] = [names[c][0] if len(names.get(c, [])) == 1 else str(c) for c in events[:, 2]]
        elif label in table.columns:
            table["label"] = table[label]
        else:
            fail("label", f"'event', None or a metadata column {list(table.columns)}", repr(label), where)
    steps = list(provenance or [])
    steps.append({"step": "from_mne", "mne_version": mne.__version__,
                  "event_id": {str(k): int(v) for k, v in epochs.event_id.items()}})
    return EpochSet(epochs.get_data(copy=False), info["sfreq"], channels, table, epochs.tmin, steps)


def _unique_samples(table: pd.DataFrame, sample: np.ndarray, n_times: int) -> np.ndarray:
    """Shift each (subject, session, run) unit's event samples past the previous unit's where they would overlap,
    so that all are unique."""
    keys = [c for c in ("subject", "session", "run") if c in table.columns]
    units = np.array(["/".join(map(str, r)) for r in table[keys].itertuples(index=False)] if keys
                     else [""] * len(sample))
    out, offset = sample.copy(), 0.0
    for u in pd.unique(units):
        sel = units == u
        out[sel] = sample[sel] + max(0.0, offset - sample[sel].min())  # untouched unless it overlaps the last
        offset = out[sel].max() + n_times + 1
    if len(np.unique(out)) < len(out):
        fail("table['onset']", "distinct onsets within each run (MNE needs one event sample per epoch)",
             f"{len(out) - len(np.unique(out))} repeated")
    return out


def mne_info(channels: Any, sfreq: float, verbose: str | bool = "error") -> mne.Info:
    """An ``mne.Info`` of ``channels`` (names, types, positions in their frame, bads) at ``sfreq`` — what MNE and
    braindecode (``chs_info``) read. Channel types without an MNE equivalent (fMRI) raise ``ValueError``."""
    import mne

    missing = sorted({t for t in channels.types if t not in TYPE_TO_MNE})
    if missing:
        fail("channels.types", f"types with an MNE equivalent {sorted(TYPE_TO_MNE)}", f"{missing}")
    frame_codes = {v: k for k, v in _frames().items()}
    if channels.coord_frame not in frame_codes:
        fail("channels.coord_frame", f"a frame MNE knows {sorted(frame_codes)}", repr(channels.coord_frame))
    info = mne.create_info(list(channels.names), float(sfreq), [TYPE_TO_MNE[t] for t in channels.types],
                           verbose=verbose)
    for ch, p in zip(info["chs"], channels.pos):
        ch["loc"][:3] = p
        ch["coord_frame"] = frame_codes[channels.coord_frame]
    info["bads"] = list(channels.bads)
    return info


def to_mne(epochs: EpochSet, *, event_id: dict[str, int] | None = None, verbose: str | bool = "error") -> mne.EpochsArray:
    """Convert an :class:`~neurodecode.EpochSet` to ``mne.EpochsArray``.

    Parameters
    ----------
    epochs : EpochSet
        Only EEG, MEG, sEEG and ECoG channels have an MNE equivalent; fMRI channels raise ``ValueError``.
    event_id : dict, optional
        Event name → code. Default: the codes in the table's ``event_code`` column named by ``label``, or codes
        1..K assigned to the sorted distinct labels.

    Returns
    -------
    mne.EpochsArray
        Data in float64; ``metadata`` is the full table; events sample = round(onset * sfreq) where onsets are
        known, else the epoch index. Epochs of several runs (or subjects, sessions) share onset times, and MNE needs
        unique event samples: each run's samples are then shifted past the previous run's last epoch (the onsets
        stay in ``metadata``).
    """
    import mne

    info = mne_info(epochs.channels, epochs.sfreq, verbose=verbose)

    table = epochs.table
    labels = table["label"]
    if event_id is None and "event_code" in table.columns and table["event_code"].notna().all():
        codes = table["event_code"].to_numpy(np.int64)
        event_id = {}
        for lab, code in zip(labels, codes):
            event_id.setdefault(str(code) if pd.isna(lab) else str(lab), int(code))
        if len(set(event_id.values())) != len(event_id):  # one code shared by several labels
            event_id = {str(c): int(c) for c in sorted(set(codes.tolist()))}
    else:
        str_labels = ["" if pd.isna(x) else str(x) for x in labels]
        if event_id is None:
            event_id = {lab or "unlabelled": i + 1 for i, lab in enumerate(sorted(set(str_labels)))}
        missing_labels = sorted({x or "unlabelled" for x in str_labels} - set(event_id))
        if missing_labels:
            fail("event_id", "a code for every label in the table", f"no code for {missing_labels}")
        codes = np.array([event_id[x or "unlabelled"] for x in str_labels], dtype=np.int64)
    shift = epochs.tmin * epochs.sfreq
    if abs(shift - round(shift)) > 1e-6:
        import warnings

        warnings.warn(f"tmin = {epochs.tmin} s is not on the sample grid of {epochs.sfreq} Hz; MNE moves it to "
                      f"{round(shift) / epochs.sfreq} s", UserWarning, stacklevel=2)
    onset = table["onset"].to_numpy(dtype=np.float64)
    sample = np.where(np.isfinite(onset), np.round(np.nan_to_num(onset) * epochs.sfreq), np.arange(len(onset)))
    if len(np.unique(sample)) < len(sample):
        sample = _unique_samples(table, sample, epochs.n_times)
    events = np.column_stack([sample.astype(np.int64), np.zeros(len(codes), np.int64), codes])
    return mne.EpochsArray(epochs.data.astype(np.float64), info, events=events, tmin=epochs.tmin, event_id=event_id,
                           metadata=table.copy(), verbose=verbose)
