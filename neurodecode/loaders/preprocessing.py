"""Preprocessing as data: a list of steps (plain dicts, e.g. from a Hydra config) applied to an ``mne.io.Raw``.

>>> steps = [{"step": "pick", "types": ["eeg"]},
...          {"step": "montage", "name": "standard_1005"},
...          {"step": "filter", "l_freq": 1.0, "h_freq": 30.0},
...          {"step": "reference", "kind": "average"}]
>>> raw, applied = apply_steps(raw, steps)            # doctest: +SKIP

Every step is validated before anything runs (unknown steps or parameters are refused with the step's index), runs
through MNE, and is returned with its resolved parameters so that it can be stored as provenance with the epochs.

=============  =====================================================================================================
``pick``        ``types`` (MNE channel types, e.g. ``["eeg"]``) and/or ``channels`` (names); stim channels are kept
                (``events="stim"`` reads them after the steps; they never become epoch channels)
``montage``     ``name`` of an MNE built-in montage, or ``file`` of a montage/electrode file MNE reads
``filter``      ``l_freq``, ``h_freq`` in Hz (either may be null), ``method`` (``"fir"`` default or ``"iir"``)
``notch``       ``freqs`` in Hz (e.g. ``[50, 100]``)
``resample``    ``sfreq`` in Hz (MNE's anti-aliased FFT resampling)
``reference``   ``kind``: ``"average"`` (EEG/sEEG/ECoG), ``"channels"`` (with ``channels``), ``"bipolar"`` (sEEG/ECoG,
                consecutive contacts of each shaft; positions at the contacts' midpoint), ``"laplacian"`` (EEG
                surface Laplacian / current source density; needs positions)
``bads``        ``channels`` to handle, ``action``: ``"mark"``, ``"interpolate"`` (EEG only, needs positions),
                ``"drop"``, or ``"auto"`` (default: interpolate EEG channels, drop the others)
``crop``        ``tmin``, ``tmax`` in seconds
``rename``      ``mapping`` (old → new channel names) or ``preset: "eegbci"`` (BCI2000 names such as ``Fc5.`` →
                ``FC5``, MNE's ``eegbci.standardize``)
=============  =====================================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neurodecode.core.configs import conf_dir

if TYPE_CHECKING:  # pragma: no cover
    import mne

__all__ = ["CONF_DIR", "STEPS", "apply_steps", "bipolar_pairs", "check_steps"]

#: ready-made step lists (``steps:`` key), usable as a Hydra config group
CONF_DIR = conf_dir() / "preprocessing"

#: step name → allowed parameters
STEPS: dict[str, set[str]] = {
    "pick": {"types", "channels"},
    "montage": {"name", "file", "on_missing"},
    "filter": {"l_freq", "h_freq", "method", "picks"},
    "notch": {"freqs", "picks"},
    "resample": {"sfreq"},
    "reference": {"kind", "channels", "ch_type"},
    "bads": {"channels", "action"},
    "crop": {"tmin", "tmax"},
    "rename": {"mapping", "preset"},
}
_DATA_TYPES = ("eeg", "mag", "grad", "seeg", "ecog")
_SHAFT = re.compile(r"^(?P<shaft>.*?[A-Za-z'_ -])(?P<num>\d+)$")


def _step_error(i: int, step: Mapping, msg: str, where: str = "") -> ValueError:
    prefix = f"{where}: " if where else ""
    return ValueError(f"{prefix}preprocessing step {i} ({step.get('step', '?')!r}): {msg}")


def check_steps(steps: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Validate a list of steps without running them; returns plain dicts."""
    if isinstance(steps, Mapping) or isinstance(steps, str):
        raise TypeError(f"field 'steps': expected a list of step dicts, got {type(steps).__name__}")
    out = []
    for i, step in enumerate(steps):
        if not isinstance(step, Mapping) or "step" not in step:
            raise TypeError(f"preprocessing step {i}: expected a dict with a 'step' key, got {step!r}")
        name = step["step"]
        if name not in STEPS:
            raise _step_error(i, step, f"expected a step among {sorted(STEPS)}, got {name!r}")
        unknown = sorted(set(step) - STEPS[name] - {"step"})
        if unknown:
            raise _step_error(i, step, f"expected parameters among {sorted(STEPS[name])}, got unknown {unknown}")
        if name == "reference" and step.get("kind") not in ("average", "channels", "bipolar", "laplacian"):
            raise _step_error(i, step, f"field 'kind': expected 'average', 'channels', 'bipolar' or 'laplacian', "
                                       f"got {step.get('kind')!r}")
        if name == "bads" and step.get("action", "auto") not in ("mark", "interpolate", "drop", "auto"):
            raise _step_error(i, step, f"field 'action': expected 'mark', 'interpolate', 'drop' or 'auto', got "
                                       f"{step.get('action')!r}")
        if name == "resample" and not (isinstance(step.get("sfreq"), (int, float)) and step["sfreq"] > 0):
            raise _step_error(i, step, f"field 'sfreq': expected a rate > 0 in Hz, got {step.get('sfreq')!r}")
        if name == "montage" and ("name" in step) == ("file" in step):
            raise _step_error(i, step, "expected exactly one of 'name' or 'file'")
        if name == "rename" and (("mapping" in step) == ("preset" in step) or step.get("preset", "eegbci") != "eegbci"):
            raise _step_error(i, step, f"expected 'mapping' (old → new names) or preset 'eegbci', got "
                                       f"{ {k: v for k, v in step.items() if k != 'step'} }")
        out.append(dict(step))
    return out


def bipolar_pairs(ch_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Anodes and cathodes of consecutive contacts along each shaft (``LA1-LA2``, ``LA2-LA3``, ...).

    Contacts are grouped by their name without the trailing number; only contacts whose numbers differ by one are
    paired, so a gap (a removed contact) is never bridged.
    """
    shafts: dict[str, list[tuple[int, str]]] = {}
    for name in ch_names:
        m = _SHAFT.match(name)
        if m:
            shafts.setdefault(m["shaft"], []).append((int(m["num"]), name))
    anodes, cathodes = [], []
    for contacts in shafts.values():
        contacts.sort()
        for (n1, a), (n2, c) in zip(contacts, contacts[1:]):
            if n2 == n1 + 1:
                anodes.append(a)
                cathodes.append(c)
    return anodes, cathodes


def _builtin_montage(name: str) -> str:
    """MNE renamed standard_* montages to colin27_* (1.13); accept either name on any MNE version."""
    import mne

    available = set(mne.channels.get_builtin_montages())
    if name in available:
        return name
    for old, new in (("standard_", "colin27_"), ("colin27_", "standard_")):
        if name.startswith(old) and new + name[len(old):] in available:
            return new + name[len(old):]
    raise ValueError(f"field 'name': expected an MNE built-in montage, got {name!r}")


def _require_channels(raw: mne.io.BaseRaw, names: Sequence[str], i: int, step: Mapping) -> list[str]:
    missing = [c for c in names if c not in raw.ch_names]
    if missing:
        raise _step_error(i, step, f"expected channels of the recording, got unknown {missing}")
    return list(names)


def _bipolar(raw: mne.io.BaseRaw, i: int, step: Mapping) -> mne.io.BaseRaw:
    import mne

    types = dict(zip(raw.ch_names, raw.get_channel_types()))
    names = [n for n in raw.ch_names if types[n] in ("seeg", "ecog")]
    anodes, cathodes = bipolar_pairs(names)
    if not anodes:
        raise _step_error(i, step, f"expected sEEG/ECoG contacts named shaft + number (e.g. 'LA1', 'LA2'), got "
                                   f"{names[:6]}")
    pos = {ch["ch_name"]: ch["loc"][:3].copy() for ch in raw.info["chs"]}
    out = mne.set_bipolar_reference(raw, anodes, cathodes, drop_refs=True, copy=False, verbose="error")
    for ch in out.info["chs"]:  # MNE puts a bipolar channel at its anode; the midpoint is where it records
        if "-" in ch["ch_name"]:
            a, c = ch["ch_name"].split("-", 1)
            if a in pos and c in pos:
                ch["loc"][:3] = (pos[a] + pos[c]) / 2
    unpaired = [n for n in names if n not in anodes and n not in cathodes and n in out.ch_names]
    if unpaired:
        out.drop_channels(unpaired)
    return out


def _rename(raw: mne.io.BaseRaw, step: Mapping, i: int) -> mne.io.BaseRaw:
    import mne

    if "preset" in step:
        mne.datasets.eegbci.standardize(raw)
    else:
        _require_channels(raw, list(step["mapping"]), i, step)
        raw.rename_channels(dict(step["mapping"]))
    return raw


def _pick(raw: mne.io.BaseRaw, step: Mapping, i: int) -> mne.io.BaseRaw:
    # stim channels stay: events="stim" reads them after the steps, and they never become epoch channels
    stim = [n for n, t in zip(raw.ch_names, raw.get_channel_types()) if t == "stim"]
    if "types" in step:
        raw.pick(list(step["types"]) + (["stim"] if stim and "stim" not in step["types"] else []))
    if "channels" in step:
        wanted = _require_channels(raw, step["channels"], i, step)
        raw.pick(list(wanted) + [n for n in stim if n not in wanted])
    return raw


def _montage(raw: mne.io.BaseRaw, step: dict, i: int) -> mne.io.BaseRaw:
    import mne

    if "name" in step:
        montage = step["name"] = _builtin_montage(step["name"])
    else:
        montage = mne.channels.read_custom_montage(step["file"])
    raw.set_montage(montage, on_missing=step.get("on_missing", "raise"), verbose="error")
    return raw


def _reference(raw: mne.io.BaseRaw, step: Mapping, i: int) -> mne.io.BaseRaw:
    import mne

    kind = step["kind"]
    if kind == "average":
        raw.set_eeg_reference("average", ch_type=step.get("ch_type", "auto"), verbose="error")
    elif kind == "channels":
        raw.set_eeg_reference(list(step["channels"]), verbose="error")
    elif kind == "bipolar":
        raw = _bipolar(raw, i, step)
    else:
        raw = mne.preprocessing.compute_current_source_density(raw, verbose="error")
    return raw


def _bads(raw: mne.io.BaseRaw, step: dict, i: int) -> mne.io.BaseRaw:
    """Mark, interpolate (EEG, needs positions) or drop bad channels; records what was done in ``step``."""
    chans = _require_channels(raw, step.get("channels", []), i, step)
    raw.info["bads"] = sorted(set(raw.info["bads"]) | set(chans))
    action = step.get("action", "auto")
    types = dict(zip(raw.ch_names, raw.get_channel_types()))
    bads = list(raw.info["bads"])
    interp = [b for b in bads if types[b] == "eeg"] if action in ("auto", "interpolate") else []
    if action == "interpolate" and len(interp) != len(bads):
        raise _step_error(i, step, f"interpolation is for EEG channels only, got "
                                   f"{[b for b in bads if types[b] != 'eeg']}; use action 'drop'")
    if interp:
        pos = np.array([raw.info["chs"][raw.ch_names.index(b)]["loc"][:3] for b in interp])
        if not np.isfinite(pos).all() or not np.abs(pos).sum():
            raise _step_error(i, step, f"expected positions (a montage step first) to interpolate {interp}")
        raw.info["bads"] = interp
        raw.interpolate_bads(reset_bads=True, verbose="error")
        raw.info["bads"] = [b for b in bads if b not in interp]
    to_drop = [b for b in raw.info["bads"] if action in ("auto", "drop")]
    if to_drop:
        raw.drop_channels(to_drop)
    step.update(action=action, interpolated=interp, dropped=to_drop)
    return raw


#: step name → function(raw, step as applied (may be completed), index) -> raw
_APPLY = {
    "rename": _rename,
    "pick": _pick,
    "montage": _montage,
    "filter": lambda raw, step, i: raw.filter(step.get("l_freq"), step.get("h_freq"), picks=step.get("picks", "data"),
                                              method=step.get("method", "fir"), verbose="error"),
    "notch": lambda raw, step, i: raw.notch_filter(list(step["freqs"]), picks=step.get("picks", "data"),
                                                   verbose="error"),
    "resample": lambda raw, step, i: raw.resample(float(step["sfreq"]), verbose="error"),
    "reference": _reference,
    "bads": _bads,
    "crop": lambda raw, step, i: raw.crop(step.get("tmin", 0.0), step.get("tmax")),
}
#: steps that need the data in memory
_LOADS = ("filter", "notch", "resample", "reference")


def apply_steps(raw: mne.io.BaseRaw, steps: Sequence[Mapping[str, Any]]) -> tuple[mne.io.BaseRaw, list[dict]]:
    """Apply preprocessing steps to a copy of ``raw``; return it and the steps as applied (for provenance).

    The data are loaded into memory when a step needs them (filtering, referencing, resampling).
    """
    steps = check_steps(steps)
    where = str(raw.filenames[0]) if raw.filenames and raw.filenames[0] else ""
    raw = raw.copy()
    applied = []
    for i, step in enumerate(steps):
        name = step["step"]
        done = dict(step)
        try:
            if name in _LOADS or (name == "bads" and step.get("action") != "mark"):
                raw.load_data(verbose="error")
            raw = _APPLY[name](raw, done, i)
        except ValueError as err:
            if "preprocessing step" in str(err).split(":", 2)[0] + str(err)[:40]:
                raise ValueError(f"{where}: {err}" if where and not str(err).startswith(where) else str(err)) \
                    from None
            raise _step_error(i, step, str(err), where) from None
        applied.append(done)
    return raw, applied
