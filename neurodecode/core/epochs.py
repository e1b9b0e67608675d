"""The common epoch format: one container that every loader produces and every encoder consumes.

An :class:`EpochSet` holds the epochs of one recording set (usually one subject) as a float32 array of shape
``(n_epochs, n_channels, n_times)``, its :class:`Channels` (names, types, positions and their coordinate frame,
units, bad channels), the sampling rate, the time of the first sample, a per-epoch table and the provenance (the
processing steps that produced it). fMRI single-trial responses are ``(n_trials, n_voxels, 1)`` and ROI time series
``(n_windows, n_rois, n_trs)``.

An :class:`EpochCollection` maps subject ids to EpochSets and keeps each subject's own channel set, because
subjects rarely share channels or voxel counts.

Every constructor validates its input and raises an error that names the field, what was expected and what was
received.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neurodecode.core.validation import check_float, fail, normalize_index

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "CHANNEL_TYPES",
    "COORD_FRAMES",
    "DEFAULT_UNITS",
    "TABLE_COLUMNS",
    "Channels",
    "EpochCollection",
    "DropReport",
    "EpochSet",
    "InputContract",
    "check_data",
    "check_stimuli",
    "check_table",
    "concatenate",
    "frames_equal",
    "duplicate_recordings",
    "epoch_digests",
]

#: Channel types understood by neurodecode.
CHANNEL_TYPES: tuple[str, ...] = ("eeg", "meg-mag", "meg-grad", "seeg", "ecog", "fmri-voxel", "fmri-roi")

#: SI unit of each channel type, used when no unit is given.
DEFAULT_UNITS: dict[str, str] = {
    "eeg": "V",
    "meg-mag": "T",
    "meg-grad": "T/m",
    "seeg": "V",
    "ecog": "V",
    "fmri-voxel": "a.u.",
    "fmri-roi": "a.u.",
}

#: Coordinate frames of channel positions: MNE's frames plus the fMRI spaces.
COORD_FRAMES: tuple[str, ...] = ("unknown", "head", "meg", "mri", "mni_tal", "ras", "scanner", "fsaverage")

#: Columns every per-epoch table has, in this order; any other columns are kept after them.
TABLE_COLUMNS: tuple[str, ...] = ("subject", "session", "run", "stimulus", "label", "onset")


# --------------------------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------------------------


def _check_names(names: Any) -> tuple[str, ...]:
    """Unique, non-empty channel-name strings."""
    if isinstance(names, str) or not isinstance(names, Iterable):
        fail("ch_names", "a sequence of channel-name strings", repr(names), exc=TypeError)
    names = tuple(names)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            fail("ch_names", "non-empty strings", f"{name!r} at index {i}", exc=TypeError)
    seen: dict[str, int] = {}
    dups = []
    for i, name in enumerate(names):
        if name in seen:
            dups.append(f"{name!r} at indices {seen[name]} and {i}")
        seen.setdefault(name, i)
    if dups:
        fail("ch_names", "unique channel names", "duplicates " + ", ".join(dups))
    return names


def _per_channel(field: str, values: tuple, n: int, what: str, plural: str) -> tuple:
    if len(values) != n:
        fail(field, f"one {what} per channel ({n})", f"{len(values)} {plural}")
    return values


def _check_positions(pos: Any, n: int) -> np.ndarray:
    """Positions (n, 3) in metres, NaN where unknown (all NaN when omitted), read-only."""
    if pos is None:
        pos_arr = np.full((n, 3), np.nan)
    else:
        try:
            pos_arr = np.array(pos, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"field 'ch_pos': expected numbers of shape ({n}, 3), got {err}") from None
        if pos_arr.shape != (n, 3):
            fail("ch_pos", f"an array of shape (n_channels, 3) = ({n}, 3)", f"shape {pos_arr.shape}")
        if np.isinf(pos_arr).any():
            fail("ch_pos", "finite positions or NaN where unknown", "infinite values")
    pos_arr.flags.writeable = False
    return pos_arr


@dataclasses.dataclass(frozen=True, eq=False)
class Channels:
    """The channel set of an :class:`EpochSet`.

    Parameters
    ----------
    names : sequence of str, length n_channels
        Unique, non-empty channel names.
    types : str or sequence of str, length n_channels
        One of :data:`CHANNEL_TYPES` per channel (a single string applies to all channels).
    pos : array-like, shape (n_channels, 3), optional
        Channel positions in metres (voxel or parcel centres for fMRI) in ``coord_frame``. NaN where unknown;
        all NaN when omitted.
    coord_frame : str
        One of :data:`COORD_FRAMES`.
    units : str or sequence of str, optional
        Unit of each channel's data; defaults to :data:`DEFAULT_UNITS` of its type.
    bads : sequence of str
        Names of channels marked bad (they stay in the data; loaders decide whether to drop or interpolate them).
    regions : sequence of str or None, optional
        Anatomical region of each channel (sEEG/ECoG contacts, fMRI parcels), None where unknown; encoders pool
        channels by region. Omitted: no region known.
    """

    names: tuple[str, ...]
    types: tuple[str, ...]
    pos: np.ndarray
    coord_frame: str = "unknown"
    units: tuple[str, ...] = ()
    bads: tuple[str, ...] = ()
    regions: tuple[str | None, ...] = ()

    def __init__(
        self,
        names: Sequence[str],
        types: str | Sequence[str],
        pos: np.ndarray | Sequence[Sequence[float]] | None = None,
        coord_frame: str = "unknown",
        units: str | Sequence[str] | None = None,
        bads: Sequence[str] = (),
        regions: Sequence[str | None] | None = None,
    ) -> None:
        names = _check_names(names)
        n = len(names)
        types = _per_channel("ch_types", (types,) * n if isinstance(types, str) else tuple(types), n, "type", "types")
        bad_types = sorted({t for t in types if t not in CHANNEL_TYPES}, key=str)
        if bad_types:
            fail("ch_types", f"types among {list(CHANNEL_TYPES)}", f"unknown type(s) {bad_types}")
        pos_arr = _check_positions(pos, n)
        if coord_frame not in COORD_FRAMES:
            fail("coord_frame", f"one of {list(COORD_FRAMES)}", repr(coord_frame))
        units = (tuple(DEFAULT_UNITS[t] for t in types) if units is None
                 else _per_channel("ch_units", (units,) * n if isinstance(units, str) else tuple(units), n, "unit",
                                "units"))
        for i, unit in enumerate(units):
            if not isinstance(unit, str) or not unit:
                fail("ch_units", "non-empty unit strings such as 'V' or 'T'", f"{unit!r} at index {i}", exc=TypeError)
        bads = (bads,) if isinstance(bads, str) else tuple(bads)
        unknown = [b for b in bads if b not in set(names)]
        if unknown:
            fail("bads", "names of channels in the set", f"unknown channel(s) {unknown}")
        regions = _per_channel("regions", (None,) * n if regions is None else tuple(regions), n,
                               "region label (or None)", "labels")
        for i, r in enumerate(regions):
            if r is not None and (not isinstance(r, str) or not r):
                fail("regions", "non-empty strings or None", f"{r!r} at index {i}", exc=TypeError)

        object.__setattr__(self, "names", names)
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "pos", pos_arr)
        object.__setattr__(self, "coord_frame", coord_frame)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "bads", bads)
        object.__setattr__(self, "regions", regions)

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Channels):
            return NotImplemented
        return (
            self.names == other.names
            and self.types == other.types
            and self.units == other.units
            and self.coord_frame == other.coord_frame
            and self.bads == other.bads
            and self.regions == other.regions
            and np.array_equal(self.pos, other.pos, equal_nan=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kinds = ", ".join(f"{t}: {self.types.count(t)}" for t in dict.fromkeys(self.types))
        n_pos = int(np.isfinite(self.pos).all(axis=1).sum())
        return f"<Channels | {len(self)} ({kinds}), {n_pos} with positions ({self.coord_frame})>"

    def differences(self, other: Channels) -> list[str]:
        """Human-readable list of what differs between two channel sets (empty when equal)."""
        out = []
        if self.names != other.names:
            only_a = [n for n in self.names if n not in other.names]
            only_b = [n for n in other.names if n not in self.names]
            if only_a or only_b:
                out.append(f"channel names differ (only in first: {only_a[:5]}, only in second: {only_b[:5]})")
            else:
                out.append("channel order differs")
        else:
            if self.types != other.types:
                out.append("channel types differ")
            if self.units != other.units:
                out.append("channel units differ")
            if not np.array_equal(self.pos, other.pos, equal_nan=True):
                out.append("channel positions differ")
            if self.regions != other.regions:
                out.append("channel region labels differ")
        if self.coord_frame != other.coord_frame:
            out.append(f"coordinate frames differ ({self.coord_frame!r} vs {other.coord_frame!r})")
        if self.bads != other.bads:
            out.append(f"bad channels differ ({list(self.bads)} vs {list(other.bads)})")
        return out

    def pick(self, idx: np.ndarray) -> Channels:
        """Channels at integer positions ``idx`` (bad marks kept for the channels picked)."""
        names = tuple(self.names[i] for i in idx)
        return Channels(
            names,
            tuple(self.types[i] for i in idx),
            self.pos[idx],
            self.coord_frame,
            tuple(self.units[i] for i in idx),
            tuple(b for b in self.bads if b in names),
            tuple(self.regions[i] for i in idx),
        )

    def replace(self, **changes: Any) -> Channels:
        """A copy with some fields replaced (validated again)."""
        fields = {"names": self.names, "types": self.types, "pos": self.pos, "coord_frame": self.coord_frame,
                  "units": self.units, "bads": self.bads, "regions": self.regions}
        fields.update(changes)
        return Channels(**fields)


# --------------------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------------------


def check_data(data: Any) -> np.ndarray:
    """The epochs' data as a float32 array (n_epochs, n_channels, n_times), or a ValueError naming field 'data'
    (dimensions, dtype, NaN/Inf with the position of the first)."""
    if hasattr(data, "detach") and hasattr(data, "cpu"):  # a torch tensor
        data = data.detach().cpu().numpy()
    if not isinstance(data, np.ndarray):
        fail("data", "a numpy array of shape (n_epochs, n_channels, n_times)", type(data).__name__, exc=TypeError)
    if data.ndim != 3:
        fail(
            "data",
            "3 dimensions (n_epochs, n_channels, n_times); fMRI single-trial responses are (n_trials, n_voxels, 1)",
            f"{data.ndim} dimension(s) with shape {data.shape}",
        )
    if not np.issubdtype(data.dtype, np.floating):
        fail("data", "a floating-point array (float32; float16/float64 are converted)", f"dtype {data.dtype}",
              exc=TypeError)
    if data.dtype != np.float32:
        with np.errstate(over="ignore"):
            data = data.astype(np.float32)
    finite = np.isfinite(data)
    if not finite.all():
        e, c, t = (int(i[0]) for i in np.nonzero(~finite))
        n_bad = int(data.size - np.count_nonzero(finite))
        fail("data", "finite values (no NaN or Inf, also after conversion to float32)",
              f"{n_bad} non-finite value(s), the first at epoch {e}, channel {c}, time {t}")
    view = data.view()
    view.flags.writeable = False
    return view


def check_table(table: pd.DataFrame | Mapping | None, n_epochs: int) -> pd.DataFrame:
    """The per-epoch table with the standard columns (missing ones empty), or a ValueError naming field 'table'
    (its length against ``n_epochs``)."""
    if table is None:
        table = pd.DataFrame(index=pd.RangeIndex(n_epochs))
    elif isinstance(table, Mapping):  # columns; a scalar value fills its column
        for key, value in table.items():
            if not np.isscalar(value) and value is not None and len(value) != n_epochs:
                fail("table", f"one row per epoch (n_epochs = {n_epochs})", f"{len(value)} values in column {key!r}")
        table = pd.DataFrame(dict(table), index=pd.RangeIndex(n_epochs))
    elif not isinstance(table, pd.DataFrame):
        fail("table", "a pandas DataFrame with one row per epoch", type(table).__name__, exc=TypeError)
    if len(table) != n_epochs:
        fail("table", f"one row per epoch (n_epochs = {n_epochs})", f"{len(table)} rows")
    bad_cols = [c for c in table.columns if not isinstance(c, str)]
    if bad_cols:
        fail("table", "string column names", f"column(s) {bad_cols}", exc=TypeError)
    if table.columns.has_duplicates:
        fail("table", "unique column names", f"duplicates {list(table.columns[table.columns.duplicated()])}")
    table = table.reset_index(drop=True)
    if "onset" in table.columns and not (pd.api.types.is_numeric_dtype(table["onset"])
                                         and not pd.api.types.is_bool_dtype(table["onset"])):
        fail("table['onset']", "numbers (seconds from the start of the recording) or NaN",
              f"dtype {table['onset'].dtype}", exc=TypeError)
    for col in TABLE_COLUMNS:
        if col not in table.columns:
            table[col] = np.nan if col == "onset" else None
    extra = [c for c in table.columns if c not in TABLE_COLUMNS]
    return table[list(TABLE_COLUMNS) + extra]


def check_stimuli(stimuli: pd.DataFrame | None, table: pd.DataFrame) -> pd.DataFrame | None:
    """The stimulus table (one row per stimulus id, every id the epochs' table names), or a ValueError naming
    field 'stimuli'; None stays None."""
    if stimuli is None:
        return None
    if not isinstance(stimuli, pd.DataFrame):
        fail("stimuli", "a pandas DataFrame with a 'stimulus' id column", type(stimuli).__name__, exc=TypeError)
    if "stimulus" not in stimuli.columns:
        fail("stimuli", "a 'stimulus' id column", f"columns {list(stimuli.columns)}")
    ids = stimuli["stimulus"]
    if ids.isna().any() or ids.duplicated().any():
        fail("stimuli['stimulus']", "unique, non-missing ids",
              f"duplicates {sorted(map(str, ids[ids.duplicated()].unique()))[:5]}" if ids.duplicated().any()
              else f"{int(ids.isna().sum())} missing")
    known = set(ids.tolist())
    unknown = sorted({s for s in table["stimulus"].dropna().tolist() if s not in known}, key=str)
    if unknown:
        fail("stimuli", "a row for every stimulus id of the table", f"no row for {unknown[:5]}"
              + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
    return stimuli.reset_index(drop=True)


def frames_equal(a: pd.DataFrame | None, b: pd.DataFrame | None) -> bool:
    """Equality of two tables that may hold arrays in cells (compared through Arrow)."""
    if a is None or b is None:
        return a is b
    import pyarrow as pa

    return list(a.columns) == list(b.columns) and pa.Table.from_pandas(a, preserve_index=False).equals(
        pa.Table.from_pandas(b, preserve_index=False))


# --------------------------------------------------------------------------------------------------------------
# EpochSet
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DropReport:
    """What epoching kept and dropped, and why.

    Attributes
    ----------
    events : DataFrame
        One row per candidate event: ``event`` (index), ``onset`` (s), ``description``, ``label``, ``kept`` (bool),
        ``reason`` (empty when kept; e.g. "peak-to-peak above 1e-04 on TP9", "window outside the recording").
    """

    events: pd.DataFrame

    @property
    def n_kept(self) -> int:
        return int(self.events["kept"].sum())

    @property
    def n_dropped(self) -> int:
        return int((~self.events["kept"]).sum())

    def summary(self) -> pd.DataFrame:
        """Counts per label and reason."""
        ev = self.events.assign(reason=self.events["reason"].where(~self.events["kept"], "kept"))
        return ev.groupby(["label", "reason"], dropna=False).size().rename("n").reset_index()

    def __str__(self) -> str:
        reasons = self.events.loc[~self.events["kept"], "reason"].value_counts()
        detail = "; ".join(f"{n} × {r}" for r, n in reasons.items())
        return f"{self.n_kept} epochs kept, {self.n_dropped} dropped" + (f" ({detail})" if detail else "")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class EpochSet:
    """Epochs with their channels, timing, per-epoch table and provenance.

    Parameters
    ----------
    data : ndarray, shape (n_epochs, n_channels, n_times)
        Floating-point data, stored as float32 (read-only). fMRI single-trial responses are
        ``(n_trials, n_voxels, 1)``; ROI time series ``(n_windows, n_rois, n_trs)``.
    sfreq : float
        Sampling rate in Hz (``1 / TR`` for fMRI), > 0.
    channels : Channels
        The channel set; ``len(channels) == n_channels``.
    table : DataFrame, optional
        One row per epoch. The columns :data:`TABLE_COLUMNS` (subject, session, run, stimulus, label, onset in
        seconds) always exist (missing ones are added empty); extra columns are kept. The index is not kept.
    tmin : float
        Time of the first sample relative to the event, in seconds.
    provenance : sequence of dict
        JSON-serialisable description of the steps that produced the data, oldest first.
    stimuli : DataFrame, optional
        The stimulus table: one row per stimulus, a unique ``stimulus`` id column and any description (``file``,
        ``caption``, ``asset``, 1-D ``pixels`` arrays, ...). Every stimulus id of ``table`` must have a row. Kept whole
        by selection; stored in the same file.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecode import Channels, EpochSet
    >>> ep = EpochSet(np.zeros((4, 2, 10), "float32"), 100.0, Channels(["C3", "C4"], "eeg"))
    >>> ep.shape
    (4, 2, 10)
    """

    data: np.ndarray
    sfreq: float
    channels: Channels
    table: pd.DataFrame
    tmin: float = 0.0
    provenance: tuple[dict, ...] = ()
    stimuli: pd.DataFrame | None = None

    def __init__(
        self,
        data: np.ndarray,
        sfreq: float,
        channels: Channels,
        table: pd.DataFrame | Mapping | None = None,
        tmin: float = 0.0,
        provenance: Sequence[dict] = (),
        stimuli: pd.DataFrame | None = None,
    ) -> None:
        data = check_data(data)
        sfreq = check_float("sfreq", sfreq, positive=True)
        tmin = check_float("tmin", tmin)
        if not isinstance(channels, Channels):
            fail("channels", "a neurodecode.Channels", type(channels).__name__, exc=TypeError)
        if len(channels) != data.shape[1]:
            fail("channels", f"one channel per data row (data has n_channels = {data.shape[1]})",
                  f"{len(channels)} channels")
        table = check_table(table, data.shape[0])
        provenance = tuple(provenance)
        for i, step in enumerate(provenance):
            if not isinstance(step, Mapping):
                fail("provenance", "a sequence of dicts", f"{type(step).__name__} at index {i}", exc=TypeError)
            try:
                json.dumps(step, allow_nan=False)
            except (TypeError, ValueError) as err:
                fail("provenance", "JSON-serialisable steps", f"step {i}: {err}", exc=TypeError)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "sfreq", sfreq)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "tmin", tmin)
        object.__setattr__(self, "provenance", tuple(dict(s) for s in provenance))
        object.__setattr__(self, "stimuli", check_stimuli(stimuli, table))

    # ---- convenience constructors ----------------------------------------------------------------------
    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        sfreq: float,
        ch_names: Sequence[str] | None = None,
        ch_types: str | Sequence[str] = "eeg",
        *,
        ch_pos: np.ndarray | None = None,
        coord_frame: str = "unknown",
        units: str | Sequence[str] | None = None,
        table: pd.DataFrame | Mapping | None = None,
        tmin: float = 0.0,
        subject: str | None = None,
        provenance: Sequence[dict] = (),
    ) -> EpochSet:
        """Build an EpochSet from an array and flat channel descriptions.

        ``ch_names`` defaults to ``ch000, ch001, ...``; ``subject``, when given, fills the table's subject column
        (it must not contradict a subject column already in ``table``).
        """
        arr = check_data(data)
        if ch_names is None:
            ch_names = [f"ch{i:03d}" for i in range(arr.shape[1])]
        channels = Channels(ch_names, ch_types, ch_pos, coord_frame, units)
        table = check_table(table, arr.shape[0])
        if subject is not None:
            present = table["subject"].dropna()
            if len(present) and not (present.astype(str) == str(subject)).all():
                fail("subject", "the same subject as the table's subject column",
                      f"{subject!r} vs {sorted(map(str, present.unique()))}")
            table["subject"] = str(subject)
        return cls(arr, sfreq, channels, table, tmin, provenance)

    # ---- shape and timing ---------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_epochs, n_channels, n_times)``. With it and ``epochs[indices, ...]``, scikit-learn's cross-validation
        and searches index an EpochSet as an array and hand the selected EpochSet (table included) to each
        estimator."""
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def n_epochs(self) -> int:
        return self.data.shape[0]

    @property
    def n_channels(self) -> int:
        return self.data.shape[1]

    @property
    def n_times(self) -> int:
        return self.data.shape[2]

    @property
    def times(self) -> np.ndarray:
        """Sample times in seconds, shape (n_times,)."""
        return self.tmin + np.arange(self.n_times) / self.sfreq

    @property
    def subjects(self) -> list[str]:
        """Distinct subject ids in table order (missing subjects excluded)."""
        return [str(s) for s in pd.unique(self.table["subject"].dropna())]

    def __len__(self) -> int:
        return self.n_epochs

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The data, so that ``np.asarray(epochs)`` and any array-taking estimator read an EpochSet."""
        if copy:
            return np.array(self.data, dtype=dtype)
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        subj = ", ".join(self.subjects[:3]) or "?"
        return (f"<EpochSet | {self.n_epochs} epochs × {self.n_channels} channels × {self.n_times} times, "
                f"{self.sfreq:g} Hz, tmin {self.tmin:g} s, subject(s) {subj}>")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpochSet):
            return NotImplemented
        return (
            self.sfreq == other.sfreq
            and self.tmin == other.tmin
            and self.channels == other.channels
            and self.provenance == other.provenance
            and frames_equal(self.stimuli, other.stimuli)
            and np.array_equal(self.data, other.data)
            and self.table.equals(other.table)
            and list(self.table.dtypes) == list(other.table.dtypes)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def processing(self) -> list[dict]:
        """The processing steps its provenance records (read, preprocessing as applied, epoching), without the
        per-recording details (file names, drop counts, drop reports); for concatenated recordings, theirs."""
        return _processing(self.provenance)

    @property
    def drop_report(self) -> DropReport | None:
        """What the loader that made these epochs kept and dropped, and why (``None`` when no loader recorded it;
        kept in the provenance, so it survives saving and loading)."""
        def events(provenance: Sequence[dict]) -> pd.DataFrame | None:
            entries = [p for p in provenance if p.get("step") == "drop_report"]
            return pd.DataFrame(entries[-1]["events"]) if entries else None

        if len(self.provenance) == 1 and self.provenance[0].get("step") == "concatenate":
            parts = [events(source) for source in self.provenance[0]["sources"]]   # each recording's report
            parts = [p.assign(recording=k) for k, p in enumerate(parts) if p is not None]
            return DropReport(pd.concat(parts, ignore_index=True)) if parts else None
        table = events(self.provenance)
        return None if table is None else DropReport(table)

    def with_drop_report(self, report: DropReport) -> EpochSet:
        """A copy whose provenance records ``report`` (loaders call it)."""
        events = json.loads(report.events.to_json(orient="records"))
        return self.replace(provenance=[*self.provenance, {"step": "drop_report", "events": events}])

    def replace(self, **changes: Any) -> EpochSet:
        """A copy with some fields replaced (validated again)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(changes)
        return EpochSet(**fields)

    # ---- selection ----------------------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> EpochSet:
        """Select epochs by int, slice, boolean mask of shape (n_epochs,) or integer array (``epochs[key, ...]``, as
        scikit-learn indexes arrays, selects the same)."""
        if isinstance(key, tuple) and len(key) == 2 and key[1] is Ellipsis:
            key = key[0]
        if isinstance(key, tuple):
            raise TypeError("EpochSet[...] selects epochs only (epochs[key] or epochs[key, ...]); use .data for "
                            "channel or time slices and .pick_channels(names) for channels")
        if isinstance(key, str):
            raise TypeError("EpochSet[...] selects epochs by position or mask; use .query(expr) for table queries "
                            "and .pick_channels(names) for channels")
        idx = normalize_index(key, self.n_epochs)
        return EpochSet(self.data[idx], self.sfreq, self.channels, self.table.iloc[idx], self.tmin,
                        self.provenance, self.stimuli)

    def query(self, expr: str, **kwargs: Any) -> EpochSet:
        """Epochs whose table rows satisfy a :meth:`pandas.DataFrame.query` expression, e.g. ``"run == '2'"``."""
        mask = self.table.eval(expr, **kwargs)
        if not isinstance(mask, pd.Series) or mask.dtype != bool:
            fail("expr", "a boolean expression over the table's columns", f"{expr!r} giving {type(mask).__name__}")
        return self[mask.to_numpy()]

    def pick_channels(self, names: Sequence[str]) -> EpochSet:
        """Keep the named channels, in the order given."""
        lookup = {n: i for i, n in enumerate(self.channels.names)}
        missing = [n for n in names if n not in lookup]
        if missing:
            fail("names", f"channels of this set ({self.n_channels} channels)", f"unknown channel(s) {missing}")
        idx = np.array([lookup[n] for n in names], dtype=np.intp)
        return EpochSet(self.data[:, idx], self.sfreq, self.channels.pick(idx), self.table, self.tmin,
                        self.provenance, self.stimuli)

    # ---- conversion ---------------------------------------------------------------------------------------
    def to_numpy(self) -> np.ndarray:
        """The data, shape (n_epochs, n_channels, n_times), float32 (a read-only view, no copy)."""
        return self.data

    def to_torch(self, device: str | torch.device | None = None) -> torch.Tensor:
        """The data as a float32 ``torch.Tensor`` of shape (n_epochs, n_channels, n_times) (a copy)."""
        import torch

        return torch.tensor(self.data, device=device)


# --------------------------------------------------------------------------------------------------------------
# concatenation and collections
# --------------------------------------------------------------------------------------------------------------


#: provenance keys that describe one recording rather than the processing (ignored when comparing sets)
PER_RECORDING_KEYS = frozenset({"file", "n_kept", "n_dropped", "sources"})
#: provenance steps that describe one recording, not its processing (a loader's drop report)
PER_RECORDING_STEPS = frozenset({"drop_report", "skipped_runs"})


@dataclasses.dataclass(frozen=True)
class InputContract:
    """What a model trained on some epochs needs of new ones (beside a head's
    :class:`~neurodecode.heads.base.LatentSpec`, what it reads): channel names and types in order, sampling rate,
    samples per epoch and epoch start.

    Examples
    --------
    >>> contract = InputContract.from_epochs(train_epochs)            # doctest: +SKIP
    >>> new = contract.check(new_epochs, "sub-02_eeg.h5")              # doctest: +SKIP
    """

    ch_names: tuple[str, ...]
    ch_types: tuple[str, ...]
    sfreq: float
    n_times: int
    tmin: float

    @classmethod
    def from_epochs(cls, epochs: EpochSet) -> InputContract:
        return cls(tuple(epochs.channels.names), tuple(epochs.channels.types), float(epochs.sfreq),
                   int(epochs.n_times), float(epochs.tmin))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "input contract") -> InputContract:
        """From ``to_dict``'s mapping (a checkpoint's), checked field by field."""
        missing = [k for k in ("ch_names", "ch_types", "sfreq", "n_times", "tmin") if k not in d]
        if missing:
            fail("contract", "ch_names, ch_types, sfreq, n_times and tmin", f"no {missing}", where)
        names, types = tuple(str(c) for c in d["ch_names"]), tuple(str(c) for c in d["ch_types"])
        if len(names) != len(types) or len(set(names)) != len(names):
            fail("contract.ch_names", "unique names, one type each", f"{len(names)} names, {len(types)} types", where)
        return cls(names, types, check_float("contract.sfreq", d["sfreq"], positive=True, where=where),
                   int(d["n_times"]), check_float("contract.tmin", d["tmin"], where=where))

    def to_dict(self) -> dict[str, Any]:
        return {"ch_names": list(self.ch_names), "ch_types": list(self.ch_types), "sfreq": self.sfreq,
                "n_times": self.n_times, "tmin": self.tmin}

    def problems(self, epochs: EpochSet) -> list[str]:
        """Every way ``epochs`` break the contract (empty: none)."""
        out = []
        types = dict(zip(self.ch_names, self.ch_types))
        have = dict(zip(epochs.channels.names, epochs.channels.types))
        missing = [c for c in self.ch_names if c not in have]
        extra = [c for c in have if c not in types]
        if missing:
            out.append(f"channels: {len(missing)} of the {len(self.ch_names)} the model was trained on are missing, "
                       f"e.g. {missing[:5]}")
        if extra:
            out.append(f"channels: {len(extra)} not known to the model, e.g. {extra[:5]} (pick them away)")
        wrong = [f"{c} ({have[c]} ≠ {types[c]})" for c in self.ch_names if c in have and have[c] != types[c]]
        if wrong:
            out.append(f"channel types: {wrong[:5]}")
        if not np.isclose(epochs.sfreq, self.sfreq):
            out.append(f"sfreq: expected {self.sfreq:g} Hz, got {epochs.sfreq:g} Hz (resample with the same recipe)")
        if epochs.n_times != self.n_times:
            out.append(f"n_times: expected {self.n_times} samples per epoch, got {epochs.n_times}")
        if not np.isclose(epochs.tmin, self.tmin, atol=0.5 / self.sfreq):
            out.append(f"tmin: expected {self.tmin:g} s, got {epochs.tmin:g} s")
        return out

    def check(self, epochs: EpochSet, where: str, checkpoint: str = "the checkpoint") -> EpochSet:
        """``epochs`` with the contract's channels in its order, or one ValueError listing every mismatch."""
        problems = self.problems(epochs)
        if problems:
            raise ValueError(f"{where}: the recordings do not match the input contract of {checkpoint}:\n  - "
                             + "\n  - ".join(problems))
        names = list(self.ch_names)
        return epochs if list(epochs.channels.names) == names else epochs.pick_channels(names)


def _processing(provenance: Sequence[dict]) -> list[dict]:
    """The processing a provenance describes, without per-recording details (file names, drop counts)."""
    if len(provenance) == 1 and provenance[0].get("step") == "concatenate":
        return list(provenance[0]["processing"])
    return [{k: v for k, v in step.items() if k not in PER_RECORDING_KEYS} for step in provenance
            if step.get("step") not in PER_RECORDING_STEPS]


def compatibility_problems(a: EpochSet, b: EpochSet) -> list[str]:
    """What keeps ``b`` from being concatenated after ``a`` (empty when nothing): channels, sfreq, tmin, n_times,
    processing."""
    out = []
    if a.sfreq != b.sfreq:
        out.append(f"sfreq differs ({a.sfreq} vs {b.sfreq} Hz)")
    if a.tmin != b.tmin:
        out.append(f"tmin differs ({a.tmin} vs {b.tmin} s)")
    if a.n_times != b.n_times:
        out.append(f"n_times differs ({a.n_times} vs {b.n_times})")
    out += a.channels.differences(b.channels)
    if _processing(a.provenance) != _processing(b.provenance):
        out.append("provenance (processing steps) differs")
    return out


def _sources(ep: EpochSet) -> str:
    """The files an EpochSet was read from, as its provenance names them (for error messages)."""
    names: list[str] = []

    def walk(prov: Any) -> None:
        for step in prov:
            if isinstance(step, dict):
                if step.get("step") == "concatenate":
                    for src in step.get("sources", []):
                        walk(src)
                elif isinstance(step.get("file"), str):
                    names.append(step["file"])
    walk(ep.provenance)
    subjects = ep.subjects
    what = ", ".join(dict.fromkeys(names)) or "no file recorded"
    return f"{what}; subject {', '.join(subjects[:3])}" if subjects else what


def epoch_digests(data: np.ndarray) -> list[bytes | None]:
    """A content hash (BLAKE2b, 128 bits) of each epoch of ``data`` (n_epochs, ...); None for a constant epoch (a
    flat line can repeat in distinct recordings)."""
    import hashlib

    flat = np.ascontiguousarray(data).reshape(len(data), -1)
    constant = flat.min(axis=1) == flat.max(axis=1) if flat.shape[1] else np.ones(len(flat), dtype=bool)
    return [None if c else hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row, c in zip(flat, constant)]


def duplicate_recordings(sets: Sequence[EpochSet], names: Sequence[str] | None = None) -> list[str]:
    """Where two of ``sets`` hold the same (non-constant) epochs, byte for byte: one line per pair naming both sets,
    their files and how many epochs they share. The same recording loaded twice (a file copied into two session
    folders, one run listed twice) would otherwise sit on both sides of a cross-validation split."""
    names = [f"set {i}" for i in range(len(sets))] if names is None else list(names)
    seen: dict[bytes, int] = {}
    shared: dict[tuple[int, int], int] = {}
    for j, ep in enumerate(sets):
        for digest in set(d for d in epoch_digests(ep.data) if d is not None):
            i = seen.setdefault(digest, j)
            if i != j:
                shared[(i, j)] = shared.get((i, j), 0) + 1
    return [f"{names[j]} ({_sources(sets[j])}) repeats {n} of its {sets[j].n_epochs} epochs from {names[i]} "
            f"({_sources(sets[i])})" for (i, j), n in sorted(shared.items())]


def concatenate(epoch_sets: Sequence[EpochSet], *, allow_duplicates: bool = False) -> EpochSet:
    """Concatenate EpochSets that share channels, sampling rate, timing and processing along the epoch axis.

    Sets whose provenance differs only in per-recording details (file names, drop counts) are concatenated; the
    result's provenance is one ``concatenate`` step holding the shared ``processing`` and each set's ``sources``.
    Sets that hold the same epochs byte for byte (:func:`duplicate_recordings`: one recording loaded twice) are an
    error naming both, unless ``allow_duplicates``.

    Subjects with different channel sets belong in an :class:`EpochCollection` instead.

    Parameters
    ----------
    epoch_sets : sequence of EpochSet
        At least one set.
    allow_duplicates : bool
        Concatenate sets that share epochs (e.g. to oversample on purpose).

    Returns
    -------
    EpochSet
        Data of shape (sum of n_epochs, n_channels, n_times); the tables are stacked (columns missing from some
        tables become empty).
    """
    epoch_sets = list(epoch_sets)
    if not epoch_sets:
        fail("epoch_sets", "at least one EpochSet", "an empty sequence")
    for i, ep in enumerate(epoch_sets):
        if not isinstance(ep, EpochSet):
            fail("epoch_sets", "EpochSet items", f"{type(ep).__name__} at index {i}", exc=TypeError)
    first = epoch_sets[0]
    for i, ep in enumerate(epoch_sets[1:], start=1):
        problems = compatibility_problems(first, ep)
        if problems:
            raise ValueError(
                f"field 'epoch_sets': expected sets with the same channels, sfreq, tmin, n_times and provenance, "
                f"got set {i} differing from set 0: " + "; ".join(problems)
                + ". Sets of subjects with different channels go into an EpochCollection.")
    duplicates = [] if allow_duplicates else duplicate_recordings(epoch_sets)
    if duplicates:
        fail("epoch_sets", "distinct recordings (the same epochs twice would sit on both sides of a "
             "cross-validation split; remove the copy, or pass allow_duplicates=True on purpose)",
             "; ".join(duplicates))
    data = np.concatenate([ep.data for ep in epoch_sets], axis=0)
    table = pd.concat([ep.table for ep in epoch_sets], ignore_index=True)
    provenance = first.provenance
    if any(ep.provenance != first.provenance for ep in epoch_sets):  # same processing, different recordings
        sources = []
        for ep in epoch_sets:
            prov = ep.provenance
            nested = len(prov) == 1 and prov[0].get("step") == "concatenate"
            sources += prov[0]["sources"] if nested else [list(prov)]
        provenance = ({"step": "concatenate", "processing": _processing(first.provenance), "sources": sources},)
    tables = [ep.stimuli for ep in epoch_sets if ep.stimuli is not None]
    stimuli = None
    if tables:  # union of the stimulus tables; one id must describe one stimulus
        stimuli = pd.concat(tables, ignore_index=True)
        dup = stimuli["stimulus"].duplicated(keep="first")
        for sid in stimuli.loc[dup, "stimulus"].unique():
            rows = stimuli[stimuli["stimulus"] == sid]
            if not all(frames_equal(rows.iloc[[0]].reset_index(drop=True), rows.iloc[[k]].reset_index(drop=True))
                       for k in range(1, len(rows))):
                fail("epoch_sets", "stimulus tables that agree on every shared id", f"different rows for {sid!r}")
        stimuli = stimuli[~dup].reset_index(drop=True)
    return EpochSet(data, first.sfreq, first.channels, table, first.tmin, provenance, stimuli)


class EpochCollection(Mapping[str, EpochSet]):
    """Epochs of several subjects, each with its own channel set, sampling rate and epoch length.

    Parameters
    ----------
    sets : mapping of str to EpochSet, or sequence of EpochSet
        With a mapping, each set's table must name only its key as subject. With a sequence, sets are grouped by
        their (single) subject and the sets of one subject are concatenated.

    Examples
    --------
    >>> coll = EpochCollection([ep_subject1, ep_subject2])  # doctest: +SKIP
    >>> coll["sub-01"].shape, coll.n_epochs  # doctest: +SKIP
    """

    def __init__(self, sets: Mapping[str, EpochSet] | Sequence[EpochSet]) -> None:
        if isinstance(sets, Mapping):
            items = dict(sets)
        else:
            groups: dict[str, list[EpochSet]] = {}
            for i, ep in enumerate(sets):
                if not isinstance(ep, EpochSet):
                    fail("sets", "EpochSet items", f"{type(ep).__name__} at index {i}", exc=TypeError)
                subs = ep.subjects
                if len(subs) != 1 or ep.table["subject"].isna().any():
                    fail("sets", "sets whose table names exactly one subject in every row",
                          f"set {i} with subjects {subs}" + (" and missing subjects" if ep.table["subject"].isna().any() else ""))
                groups.setdefault(subs[0], []).append(ep)
            items = {s: (g[0] if len(g) == 1 else concatenate(g)) for s, g in groups.items()}
        if not items:
            fail("sets", "at least one subject", "none")
        for key, ep in items.items():
            if not isinstance(key, str) or not key:
                fail("sets", "non-empty string subject ids as keys", repr(key), exc=TypeError)
            if not isinstance(ep, EpochSet):
                fail("sets", "EpochSet values", f"{type(ep).__name__} for subject {key!r}", exc=TypeError)
            subj = ep.table["subject"]
            if subj.isna().any() or not (subj.astype(str) == key).all():
                fail(f"sets[{key!r}].table['subject']", f"{key!r} in every row",
                      f"{sorted(map(str, subj.dropna().unique()))}" + (" with missing values" if subj.isna().any() else ""))
        loaded = [k for k, ep in items.items() if not isinstance(ep.data, np.memmap)]   # a lazy store stays lazy
        duplicates = duplicate_recordings([items[k] for k in loaded], [f"subject {k!r}" for k in loaded])
        if duplicates:
            fail("sets", "distinct recordings for distinct subjects (one recording under two subject ids would sit "
                 "on both sides of a leave-one-subject-out split)", "; ".join(duplicates))
        self._sets = items

    def __getitem__(self, subject: str) -> EpochSet:
        try:
            return self._sets[subject]
        except KeyError:
            raise KeyError(f"subject {subject!r} not in collection (subjects: {list(self._sets)})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._sets)

    def __len__(self) -> int:
        return len(self._sets)

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}: {e.n_epochs}×{e.n_channels}×{e.n_times}" for s, e in list(self._sets.items())[:4])
        more = ", ..." if len(self._sets) > 4 else ""
        return f"<EpochCollection | {len(self)} subjects, {self.n_epochs} epochs ({parts}{more})>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpochCollection):
            return NotImplemented
        return list(self) == list(other) and all(self[s] == other[s] for s in self)

    __hash__ = None  # type: ignore[assignment]

    @property
    def subjects(self) -> list[str]:
        return list(self._sets)

    @property
    def n_epochs(self) -> int:
        return sum(ep.n_epochs for ep in self._sets.values())

    @property
    def table(self) -> pd.DataFrame:
        """All subjects' tables stacked in subject order, with ``epoch`` = the row within its subject."""
        parts = [ep.table.assign(epoch=np.arange(ep.n_epochs)) for ep in self._sets.values()]
        return pd.concat(parts, ignore_index=True)

    def query(self, expr: str, **kwargs: Any) -> EpochCollection:
        """Apply :meth:`EpochSet.query` to each subject, dropping subjects left with no epoch."""
        kept = {s: ep.query(expr, **kwargs) for s, ep in self._sets.items()}
        kept = {s: ep for s, ep in kept.items() if ep.n_epochs}
        if not kept:
            raise ValueError(f"query {expr!r} selects no epoch in any subject")
        return EpochCollection(kept)
