"""Bring epochs of several recordings or datasets under one checked channel contract.

:func:`harmonize` gives every set the same sampling rate (anti-aliased resampling, downsampling only) and the same
channels — their intersection, or their union with missing EEG channels interpolated from their neighbours
(spherical splines, MNE) — after renaming channels with an explicit ``mapping``. Channels of one name must agree
in type and unit. Nothing is ever zero-padded: a channel that cannot be interpolated is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from neurodecode.core.epochs import Channels, EpochSet

__all__ = ["harmonize"]


def _label(i: int, ep: EpochSet) -> str:
    subj = ",".join(ep.subjects[:2]) or "?"
    return f"set {i} (subject {subj})"


def _rename(ep: EpochSet, mapping: Mapping[str, str]) -> EpochSet:
    names = [mapping.get(n, n) for n in ep.channels.names]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"field 'mapping': expected distinct channel names after renaming, got duplicates {dup}")
    bads = [mapping.get(b, b) for b in ep.channels.bads]
    return ep.replace(channels=ep.channels.replace(names=names, bads=bads))


def _resample(ep: EpochSet, sfreq: float) -> EpochSet:
    import mne

    data = mne.filter.resample(ep.data.astype(np.float64), up=sfreq, down=ep.sfreq, axis=-1, verbose="error")
    step = {"step": "resample", "sfreq": float(sfreq), "from_sfreq": ep.sfreq, "method": "mne.filter.resample"}
    return EpochSet(data, sfreq, ep.channels, ep.table, ep.tmin, ep.provenance + (step,))


def _interpolate(ep: EpochSet, names: list[str], info_of: dict[str, tuple], i: int) -> EpochSet:
    """Add the channels ``names`` (EEG, with known positions) to ``ep`` by spherical-spline interpolation."""
    import mne

    own = ep.channels
    if not np.isfinite(own.pos).all():
        raise ValueError(f"{_label(i, ep)}: expected positions of all its channels to interpolate {names}, got "
                         "channels without positions (set a montage first)")
    pos = np.vstack([own.pos] + [info_of[n][2] for n in names])
    all_names = list(own.names) + names
    types = list(own.types) + ["eeg"] * len(names)
    info = mne.create_info(all_names, ep.sfreq, ["eeg" if t == "eeg" else "misc" for t in types])
    data = np.concatenate([ep.data.astype(np.float64), np.zeros((ep.n_epochs, len(names), ep.n_times))], axis=1)
    arr = mne.EpochsArray(data, info, tmin=ep.tmin, verbose="error")
    montage = mne.channels.make_dig_montage(dict(zip(all_names, pos)), coord_frame="head")
    arr.set_montage(montage, on_missing="ignore", verbose="error")
    arr.info["bads"] = names  # the placeholder rows are replaced by interpolation, never kept as zeros
    arr.interpolate_bads(reset_bads=True, verbose="error")
    channels = Channels(all_names, types, pos, own.coord_frame, list(own.units) + [info_of[n][1] for n in names],
                        own.bads, list(own.regions) + [None] * len(names))
    step = {"step": "interpolate_channels", "channels": names, "method": "spherical spline (mne)"}
    return EpochSet(arr.get_data(), ep.sfreq, channels, ep.table, ep.tmin, ep.provenance + (step,))


def harmonize(sets: Sequence[EpochSet], *, sfreq: float | None = None, channels: str = "intersection",
              mapping: Mapping[str, str] | None = None) -> list[EpochSet]:
    """Give several EpochSets one sampling rate and one channel set.

    Parameters
    ----------
    sets : sequence of EpochSet
    sfreq : float, optional
        Target rate (default: the lowest rate among the sets); sets above it are resampled with MNE's anti-aliased
        resampling; a set below it is an error (no upsampling).
    channels : {"intersection", "union"}
        ``"intersection"`` keeps the channels every set has (in the first set's order); ``"union"`` keeps all, and
        interpolates EEG channels missing from a set from that set's own channels (positions needed; they must be
        in one coordinate frame). A missing channel of another type is an error.
    mapping : dict, optional
        Channel renaming applied to every set first (e.g. ``{"EEG 001": "Fp1"}``), the way to match channels
        named differently across datasets.

    Returns
    -------
    list of EpochSet
        In the input order, each with the same channel names, types, units and sampling rate; the steps taken are
        appended to each set's provenance.
    """
    sets = list(sets)
    if not sets or not all(isinstance(ep, EpochSet) for ep in sets):
        raise TypeError("field 'sets': expected a non-empty sequence of EpochSet")
    if channels not in ("intersection", "union"):
        raise ValueError(f"field 'channels': expected 'intersection' or 'union', got {channels!r}")
    if mapping:
        sets = [_rename(ep, mapping) for ep in sets]
    # one type, unit and (for union) position per channel name
    info_of: dict[str, tuple] = {}
    for i, ep in enumerate(sets):
        for n, t, u, p in zip(ep.channels.names, ep.channels.types, ep.channels.units, ep.channels.pos):
            if n in info_of:
                t0, u0, _, j = info_of[n]
                if t != t0 or u != u0:
                    raise ValueError(f"{_label(i, ep)}: channel {n!r}: expected type {t0!r} and unit {u0!r} as in "
                                     f"{_label(j, sets[j])}, got type {t!r} and unit {u!r}; rename with 'mapping' or "
                                     "convert units first")
            else:
                info_of[n] = (t, u, p, i)
    target = min(ep.sfreq for ep in sets) if sfreq is None else float(sfreq)
    low = [(i, ep.sfreq) for i, ep in enumerate(sets) if ep.sfreq < target]
    if low:
        raise ValueError(f"field 'sfreq': expected every set at or above the target {target} Hz (no upsampling), "
                         f"got {', '.join(f'{_label(i, sets[i])} at {s} Hz' for i, s in low)}")
    sets = [ep if ep.sfreq == target else _resample(ep, target) for ep in sets]
    names0 = list(sets[0].channels.names)
    if channels == "intersection":
        common = [n for n in names0 if all(n in ep.channels.names for ep in sets)]
        if not common:
            raise ValueError("field 'channels': expected channels shared by every set, got none in common; use "
                             "'mapping' to match names")
        out = [ep.pick_channels(common) for ep in sets]
        return [ep.replace(provenance=ep.provenance + ({"step": "harmonize", "channels": "intersection",
                                                        "n_channels": len(common)},)) for ep in out]
    union = names0 + [n for ep in sets[1:] for n in ep.channels.names if n not in names0]
    union = list(dict.fromkeys(union))
    frames = {ep.channels.coord_frame for ep in sets}
    out = []
    for i, ep in enumerate(sets):
        missing = [n for n in union if n not in ep.channels.names]
        not_eeg = [n for n in missing if info_of[n][0] != "eeg"]
        if not_eeg:
            raise ValueError(f"{_label(i, ep)}: expected every non-EEG channel of the union, got {not_eeg} missing; "
                             "only EEG channels are interpolated — use channels='intersection' or a 'mapping'")
        no_pos = [n for n in missing if not np.isfinite(info_of[n][2]).all()]
        if no_pos:
            raise ValueError(f"{_label(i, ep)}: expected positions for missing channels {no_pos} to interpolate "
                             "them, got none")
        if missing and len(frames) > 1:
            raise ValueError(f"field 'sets': expected positions in one coordinate frame to interpolate, got "
                             f"{sorted(frames)}")
        done = _interpolate(ep, missing, info_of, i) if missing else ep
        done = done.pick_channels(union)
        out.append(done.replace(provenance=done.provenance + ({"step": "harmonize", "channels": "union",
                                                               "n_channels": len(union)},)))
    return out
