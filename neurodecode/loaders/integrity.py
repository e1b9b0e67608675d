"""What the EEG/MEG readers check before trusting a file: sizes against headers, plausible physical ranges, unique
channel names, and MNE's own warnings — surfaced, and turned into errors where they mean lost or altered data.

* :func:`check_edf` — an EDF/EDF+/BDF header against the file: header size, record count × record size = the bytes
  on disk (a truncated file is refused instead of being read short), finite and plausible physical ranges
  (``|range|`` ≤ 10 V for voltage channels, ≤ 1e9 for any), distinct digital limits, unique labels.
* :func:`check_eeglab` — an EEGLAB ``.set`` with its ``.fdt``: the data file holds n_channels × n_samples float32.
* :func:`read_with_checks` — runs an MNE reader catching its warnings: those that mean data were lost or changed
  (records inferred from the file size, invalid FIF tags, duplicate channel names renamed, annotations outside the
  data) raise ``ValueError`` naming the file and the field; the others are logged through the ``neurodecode`` logger
  with the file's name.

May import: ``neurodecode.core``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.core.logs import logger

__all__ = ["check_edf", "check_eeglab", "read_with_checks"]

#: largest plausible |physical minimum/maximum| of a voltage channel, in volts
MAX_VOLTS = 10.0
#: largest plausible |physical minimum/maximum| of any channel, in its own unit
MAX_PHYSICAL = 1e9
_VOLT_PREFIX = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "nv": 1e-9, "pv": 1e-12}

#: MNE warnings that mean lost or altered data: (message fragment, field, what it means)
DATA_LOSS = (
    ("Number of records from the header does not match the file size", "n_records",
     "the file is shorter (truncated) or longer than its header says"),
    ("Invalid tag", "data", "the FIF file holds invalid tags: truncated or damaged"),
    ("outside data range", "annotations", "events lie outside the recorded data"),
    ("expanding outside the data range", "annotations", "events extend past the recorded data"),
    ("Incorrect number of samples", "data", "the data file holds fewer samples than the header says"),
)
_DUPLICATES = "Channel names are not unique"


def _field(raw: bytes, start: int, width: int) -> str:
    return raw[start:start + width].decode("latin-1").strip()


def _numbers(raw: bytes, start: int, ns: int, width: int, what: str, path: Path) -> list[float]:
    out = []
    for i in range(ns):
        text = _field(raw, start + i * width, width)
        try:
            out.append(float(text))
        except ValueError:
            raise ValueError(f"{path}: field '{what}': expected a number for signal {i}, got {text!r} (a damaged "
                             "header)") from None
    return out


def check_edf(path: str | os.PathLike, rename_duplicates: bool = False) -> dict[str, Any]:
    """Check an EDF/EDF+/BDF file against its header; returns the header's counts and per-signal fields."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(256)
        if len(head) < 256:
            raise ValueError(f"{path}: expected a 256-byte EDF/BDF header, got {len(head)} bytes")
        bdf = head[:1] == b"\xff"
        try:
            header_bytes, n_records, duration, ns = (int(_field(head, 184, 8)), int(_field(head, 236, 8)),
                                                     float(_field(head, 244, 8)), int(_field(head, 252, 4)))
        except ValueError:
            raise ValueError(f"{path}: fields 'header bytes'/'n_records'/'duration'/'ns': expected numbers, got a "
                             "damaged header") from None
        signals = fh.read(256 * ns)
    if ns < 1 or header_bytes != 256 * (ns + 1):
        raise ValueError(f"{path}: field 'header bytes': expected 256 × (1 + {ns} signals) = {256 * (ns + 1)}, got "
                         f"{header_bytes}")
    if len(signals) < 256 * ns:
        raise ValueError(f"{path}: field 'header bytes': expected a header of {header_bytes} bytes, got "
                         f"{256 + len(signals)}: the file ends inside its header (truncated)")
    labels = [_field(signals, i * 16, 16) for i in range(ns)]
    units = [_field(signals, ns * 96 + i * 8, 8) for i in range(ns)]
    offsets = {name: ns * k for name, k in (("physical_min", 104), ("physical_max", 112), ("digital_min", 120),
                                            ("digital_max", 128))}
    values = {name: _numbers(signals, off, ns, 8, name, path) for name, off in offsets.items()}
    samples = [int(v) for v in _numbers(signals, ns * 216, ns, 8, "samples per record", path)]
    record = sum(samples) * (3 if bdf else 2)
    size = path.stat().st_size
    expected = header_bytes + n_records * record
    if n_records > 0 and size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        raise ValueError(f"{path}: field 'n_records': expected {n_records} data records of {record} bytes as the "
                         f"header says ({expected} bytes), got {size} bytes = {(size - header_bytes) / record:.2f} "
                         f"records: the file is {what}")
    _check_ranges(path, labels, units, values)
    dups = sorted({x for x in labels if labels.count(x) > 1})
    if dups and not rename_duplicates:
        raise ValueError(f"{path}: field 'ch_names': expected unique signal labels, got duplicates {dups}; MNE would "
                         "rename them with running numbers — pass rename_duplicates=True to accept that")
    return {"n_records": n_records, "duration": duration, "labels": labels, "units": units, "samples": samples,
            **values}


def _check_ranges(path: Path, labels: list[str], units: list[str], values: dict[str, list[float]]) -> None:
    for i, (label, unit) in enumerate(zip(labels, units)):
        if label.startswith(("EDF Annotations", "BDF Annotations")):
            continue
        lo, hi = values["physical_min"][i], values["physical_max"][i]
        scale = _VOLT_PREFIX.get(unit.lower())
        limit = MAX_PHYSICAL if scale is None else MAX_VOLTS / scale
        if not (np.isfinite([lo, hi]).all() and max(abs(lo), abs(hi)) <= limit and lo != hi):
            raise ValueError(f"{path}: signal {label!r}: field 'physical_min'/'physical_max': expected a finite, "
                             f"non-empty range within ±{limit:g} {unit or '(no unit)'}"
                             f"{f' (±{MAX_VOLTS:g} V)' if scale else ''}, got {lo:g} … {hi:g}")
        if values["digital_min"][i] == values["digital_max"][i]:
            raise ValueError(f"{path}: signal {label!r}: field 'digital_min'/'digital_max': expected a non-empty "
                             f"range, got {values['digital_min'][i]:g} for both")


def check_eeglab(raw: Any, path: Path) -> None:
    """The ``.fdt`` beside an EEGLAB ``.set`` holds n_channels × n_samples float32 values."""
    fdt = [Path(f) for f in getattr(raw, "filenames", []) if f and str(f).lower().endswith(".fdt")]
    fdt = fdt or [path.with_suffix(".fdt")]
    if not fdt[0].is_file():
        return                               # the data are inside the .set
    expected = raw.info["nchan"] * raw.n_times * 4
    if fdt[0].stat().st_size != expected:
        raise ValueError(f"{fdt[0]}: field 'data': expected {raw.info['nchan']} channels × {raw.n_times} samples × 4 "
                         f"bytes = {expected} bytes as {path.name} says, got {fdt[0].stat().st_size}: truncated or "
                         "from another recording")


def read_with_checks(path: Path, read: Callable[[], Any], rename_duplicates: bool = False) -> Any:
    """``read()`` (an MNE reader) with MNE's warnings turned into errors where data were lost or altered, and logged
    otherwise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = read()
    for w in caught:
        message = str(w.message)
        for fragment, field, meaning in DATA_LOSS:
            if fragment in message:
                raise ValueError(f"{path}: field '{field}': {meaning} (MNE: {message.splitlines()[0][:300]})")
        if _DUPLICATES in message:
            if not rename_duplicates:
                raise ValueError(f"{path}: field 'ch_names': expected unique channel names, got duplicates that MNE "
                                 f"renames ({message.splitlines()[0][:300]}); pass rename_duplicates=True to accept "
                                 "the renamed channels")
            logger.warning(f"{path}: {message.splitlines()[0][:300]}")
        elif issubclass(w.category, (RuntimeWarning, UserWarning)):
            logger.warning(f"{path}: {message.splitlines()[0][:300]}")
    return raw
