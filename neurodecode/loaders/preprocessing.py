"""Preprocessing as data: a list of steps (plain dicts, e.g. from a Hydra config) applied to an ``mne.io.Raw``.

>>> steps = [{"step": "pick", "types": ["eeg"]},
...          {"step": "montage", "name": "standard_1005"},
...          {"step": "filter", "l_freq": 1.0, "h_freq": 30.0},
...          {"step": "reference", "kind": "average"}]
>>> raw, applied = apply_steps(raw, steps)            # doctest: +SKIP

Every step is validated before anything runs (unknown steps or parameters are refused with the step's index), runs
through MNE, and is returned with its resolved parameters so that it can be stored as provenance with the epochs.

===============  =====================================================================================================
``pick``         ``types`` (MNE channel types, e.g. ``["eeg"]``) and/or ``channels`` (names); stim channels are kept
                 (``events="stim"`` reads them after the steps; they never become epoch channels)
``montage``      ``name`` of an MNE built-in montage, or ``file`` of a montage/electrode file MNE reads
``filter``       ``l_freq``, ``h_freq`` in Hz (either may be null), ``method`` (``"fir"`` default or ``"iir"``)
``notch``        ``freqs`` in Hz (e.g. ``[50, 100]``)
``resample``     ``sfreq`` in Hz (MNE's anti-aliased FFT resampling)
``reference``    ``kind``: ``"average"`` (EEG/sEEG/ECoG), ``"channels"`` (with ``channels``), ``"bipolar"`` (sEEG/ECoG,
                 consecutive contacts of each shaft; positions at the contacts' midpoint), ``"laplacian"`` (EEG
                 surface Laplacian / current source density; needs positions)
``bads``         ``channels`` to handle, ``action``: ``"mark"``, ``"interpolate"`` (EEG only, needs positions),
                 ``"drop"``, or ``"auto"`` (default: interpolate EEG channels, drop the others)
``crop``         ``tmin``, ``tmax`` in seconds
``rename``       ``mapping`` (old → new channel names) or ``preset: "eegbci"`` (BCI2000 names such as ``Fc5.`` →
                 ``FC5``, MNE's ``eegbci.standardize``)
``filter_bank``  every data channel band-passed in each band and stacked (``O1@12.5-13.5Hz``, ...; band-major,
                 positions kept): ``bands`` (``[[low, high], ...]`` Hz) or ``frequencies`` (e.g. SSVEP stimulation
                 rates) with ``harmonics`` (default 1: the fundamentals; 2 adds 2f) and ``width`` (Hz, default 1:
                 f ± 0.5); ``method`` ``"fir"`` (MNE's default design, automatic transition bands) or ``"iir"``
                 (Butterworth of ``order`` 4, forward-backward: MOABB's design). The step as applied records each
                 filter's band and actual −3 dB pass band (``filters``): an FIR design passes far wider than asked
===============  =====================================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neurodecode.core.configs import conf_dir

if TYPE_CHECKING:  # pragma: no cover
    import mne

__all__ = ["CONF_DIR", "STEPS", "apply_steps", "bipolar_pairs", "check_steps", "ssvep_frequencies", "ssvep_steps"]

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
    "filter_bank": {"bands", "frequencies", "harmonics", "width", "method", "order"},
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
        if name == "filter_bank":
            _filter_bank_bands(step, i)
        out.append(dict(step))
    return out


def _filter_bank_bands(step: Mapping[str, Any], i: int) -> list[tuple[float, float]]:
    """The (low, high) bands of a ``filter_bank`` step, checked (not yet against the sampling rate)."""
    if ("bands" in step) == ("frequencies" in step):
        raise _step_error(i, step, "expected exactly one of 'bands' ([[low, high], ...] in Hz) or 'frequencies'")
    if step.get("method", "fir") not in ("fir", "iir"):
        raise _step_error(i, step, f"field 'method': expected 'fir' or 'iir', got {step.get('method')!r}")
    order = step.get("order", 4)
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise _step_error(i, step, f"field 'order': expected an IIR order ≥ 1, got {order!r}")
    if "order" in step and step.get("method", "fir") != "iir":
        raise _step_error(i, step, "field 'order': an IIR order needs method 'iir'")
    if "bands" in step:
        if {"harmonics", "width"} & set(step):
            raise _step_error(i, step, "fields 'harmonics'/'width' go with 'frequencies', not 'bands'")
        bands = step["bands"]
        if isinstance(bands, (str, Mapping)) or not len(bands):
            raise _step_error(i, step, f"field 'bands': expected a list of [low, high] in Hz, got {bands!r}")
        out = []
        for b in bands:
            if isinstance(b, (str, Mapping)) or len(b) != 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in b) or not 0 < b[0] < b[1]:
                raise _step_error(i, step, f"field 'bands': expected [low, high] with 0 < low < high in Hz, got {b!r}")
            out.append((float(b[0]), float(b[1])))
    else:
        freqs, harmonics, width = step["frequencies"], step.get("harmonics", 1), step.get("width", 1.0)
        if isinstance(freqs, (str, Mapping)) or not len(freqs) or not all(
                isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in freqs):
            raise _step_error(i, step, f"field 'frequencies': expected stimulation frequencies > 0 in Hz, got "
                                       f"{freqs!r}")
        if isinstance(harmonics, bool) or not isinstance(harmonics, int) or harmonics < 1:
            raise _step_error(i, step, f"field 'harmonics': expected an integer ≥ 1, got {harmonics!r}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < 2 * min(freqs):
            raise _step_error(i, step, f"field 'width': expected a band width in Hz, 0 < width < 2 × the lowest "
                                       f"frequency, got {width!r}")
        out = [(h * float(f) - width / 2, h * float(f) + width / 2) for h in range(1, harmonics + 1)
               for f in freqs]
    if len(set(out)) != len(out):
        raise _step_error(i, step, f"expected distinct bands, got {out}")
    return out


def _passband(sfreq: float, low: float, high: float, method: str, order: int) -> tuple[float, float]:
    """The −3 dB edges of the zero-phase response MNE applies for this band (FIR: the filter once, linear phase
    compensated; IIR: forward-backward, the squared magnitude)."""
    import mne
    from scipy import signal

    freqs = np.linspace(0, sfreq / 2, 2 ** 15)
    if method == "iir":
        filt = mne.filter.create_filter(None, sfreq, low, high, method="iir", verbose="error",
                                        iir_params={"order": order, "ftype": "butter", "output": "sos"})
        gain = np.abs(signal.sosfreqz(filt["sos"], worN=freqs, fs=sfreq)[1]) ** 2
    else:
        h = mne.filter.create_filter(None, sfreq, low, high, method="fir", verbose="error")
        gain = np.abs(signal.freqz(h, worN=freqs, fs=sfreq)[1])
    above = gain >= 10 ** (-3 / 20)
    centre = int(np.argmin(np.abs(freqs - (low + high) / 2)))
    if not above[centre]:
        return float("nan"), float("nan")
    lo = centre
    while lo > 0 and above[lo - 1]:
        lo -= 1
    hi = centre
    while hi < len(freqs) - 1 and above[hi + 1]:
        hi += 1
    return round(float(freqs[lo]), 2), round(float(freqs[hi]), 2)


def _filter_bank(raw: mne.io.BaseRaw, step: dict, i: int) -> mne.io.BaseRaw:
    from neurodecode.core.logs import logger

    sfreq = float(raw.info["sfreq"])
    bands = _filter_bank_bands(step, i)
    too_high = [b for b in bands if b[1] >= sfreq / 2]
    if too_high:
        raise _step_error(i, step, f"field 'bands': expected bands below the Nyquist frequency {sfreq / 2:g} Hz, "
                                   f"got {too_high}")
    method, order = step.get("method", "fir"), int(step.get("order", 4))
    types = raw.get_channel_types()
    names = [n for n, t in zip(raw.ch_names, types) if t in _DATA_TYPES]
    if not names:
        raise _step_error(i, step, f"expected data channels ({', '.join(_DATA_TYPES)}), got none")
    parts, passbands = [], []
    for low, high in bands:
        band = raw.copy().pick(names)
        kw = {"iir_params": {"order": order, "ftype": "butter"}} if method == "iir" else {}
        band.filter(low, high, method=method, verbose="error", **kw)
        band.rename_channels({n: f"{n}@{low:g}-{high:g}Hz" for n in names})
        parts.append(band)
        passbands.append(list(_passband(sfreq, low, high, method, order)))
    logger.info("filter bank (%s): %s Hz pass %s Hz at -3 dB", method, ", ".join(f"{lo:g}-{hi:g}" for lo, hi in bands),
                ", ".join(f"{lo:g}-{hi:g}" for lo, hi in passbands))
    others = [n for n in raw.ch_names if n not in names]
    out = parts[0]
    if len(parts) > 1:
        out.add_channels(parts[1:], force_update_info=True)
    if others:
        out.add_channels([raw.copy().pick(others)], force_update_info=True)
    step.update(method=method, filters=[{"band": list(b), "passband": p} for b, p in zip(bands, passbands)],
                **({"order": order} if method == "iir" else {}))
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
    "filter_bank": _filter_bank,
}
#: steps that need the data in memory
_LOADS = ("filter", "notch", "resample", "reference", "filter_bank")


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


def ssvep_frequencies(labels: Sequence[Any]) -> list[float]:
    """The stimulation frequencies of SSVEP labels, sorted: every label that reads as a number of Hz (``"13"``,
    ``"13Hz"``, ``13.5``); the others (``"rest"``) are classes without a frequency. An error names the labels when
    none is a frequency."""
    freqs = set()
    for label in labels:
        text = str(label).strip()
        text = text[:-2].strip() if text.lower().endswith("hz") else text
        try:
            f = float(text)
        except ValueError:
            continue
        if np.isfinite(f) and f > 0:
            freqs.add(f)
    if not freqs:
        raise ValueError(f"field 'label': expected SSVEP labels naming stimulation frequencies in Hz (e.g. '13', "
                         f"'13Hz'), got {sorted({str(v) for v in labels})}")
    return sorted(freqs)


def ssvep_steps(frequencies: Sequence[float], harmonics: int = 2, width: float = 1.0,
                method: str = "fir") -> list[dict]:
    """The SSVEP preprocessing: one band per stimulation frequency and harmonic (``width`` Hz wide), stacked as
    channels (the ``filter_bank`` step; ``method="iir"`` is MOABB's Butterworth design)."""
    return [{"step": "filter_bank", "frequencies": [float(f) for f in frequencies], "harmonics": int(harmonics),
             "width": float(width), "method": method}]
