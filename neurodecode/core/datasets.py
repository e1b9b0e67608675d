"""Serving epochs to torch: a ``Dataset`` over in-memory or stored epochs, leak-free splits, per-subject batches.

Splits are made by whole groups (runs, sessions or subjects), so no run, session or subject is on both sides of a
split. Stimuli shown in more than one group can still land on both sides — e.g. the shared test images of NSD —
and that is reported (warned, raised or ignored, as asked) with the list of stimuli concerned.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from neurodecode.core.epochs import EpochCollection, EpochSet
from neurodecode.core.validation import fail
from neurodecode.core.storage import CollectionStore, EpochStore

__all__ = ["EpochDataset", "LeakError", "SharedStimulusWarning", "Split", "SubjectBatchSampler", "check_split",
           "split_epochs"]

#: Columns that identify a group for each kind of split (a run is only the same run within subject and session).
GROUP_KEYS: dict[str, tuple[str, ...]] = {
    "subject": ("subject",),
    "session": ("subject", "session"),
    "run": ("subject", "session", "run"),
}


class LeakError(ValueError):
    """A split puts the same epoch, group or (when refused) stimulus on both sides."""


class SharedStimulusWarning(UserWarning):
    """Some stimuli appear in more than one part of a split."""


@dataclasses.dataclass(frozen=True)
class Split:
    """Indices (into the table the split was made from) of each part and what the parts share.

    Attributes
    ----------
    parts : dict of str to ndarray of int
        ``"train"``, ``"test"`` and, when asked for, ``"valid"`` → sorted row indices.
    by : str
        ``"run"``, ``"session"`` or ``"subject"``.
    groups : dict of str to list of tuple
        The groups (values of ``GROUP_KEYS`` ``[by]``) in each part.
    shared_stimuli : dict of str to list
        Stimulus id → the parts it appears in, for stimuli found in more than one part.
    """

    parts: dict[str, np.ndarray]
    by: str
    groups: dict[str, list[tuple]]
    shared_stimuli: dict[Any, list[str]]

    @property
    def train(self) -> np.ndarray:
        return self.parts["train"]

    @property
    def test(self) -> np.ndarray:
        return self.parts["test"]

    @property
    def valid(self) -> np.ndarray | None:
        return self.parts.get("valid")

    def summary(self) -> str:
        counts = ", ".join(f"{k}: {len(v)} epochs in {len(self.groups[k])} {self.by}(s)" for k, v in self.parts.items())
        return f"split by {self.by} ({counts}); {len(self.shared_stimuli)} stimulus id(s) shared across parts"


def _group_labels(table: pd.DataFrame, by: str) -> list[tuple]:
    if by not in GROUP_KEYS:
        fail("by", f"one of {list(GROUP_KEYS)}", repr(by))
    keys = GROUP_KEYS[by]
    missing_cols = [k for k in keys if k not in table.columns]
    if missing_cols:
        fail("table", f"columns {list(keys)} to split by {by}", f"missing {missing_cols}")
    for k in keys:
        na = table[k].isna()
        if na.any():
            fail(f"table['{k}']", f"a value in every row to split by {by} without leaks",
                  f"{int(na.sum())} missing value(s), first at row {int(np.flatnonzero(na.to_numpy())[0])}")
    return list(zip(*(table[k].astype(str) for k in keys)))


def _shared_stimuli(table: pd.DataFrame, parts: Mapping[str, np.ndarray]) -> dict[Any, list[str]]:
    if "stimulus" not in table.columns:
        return {}
    where: dict[Any, list[str]] = {}
    for name, idx in parts.items():
        for stim in pd.unique(table["stimulus"].iloc[idx].dropna()):
            where.setdefault(stim, []).append(name)
    return {s: p for s, p in where.items() if len(p) > 1}


def _report_shared(shared: Mapping[Any, list[str]], on_shared_stimulus: str) -> None:
    if not shared or on_shared_stimulus == "ignore":
        return
    examples = ", ".join(f"{s!r} in {p}" for s, p in list(shared.items())[:5])
    msg = (f"{len(shared)} stimulus id(s) appear in more than one part of the split ({examples}"
           f"{', ...' if len(shared) > 5 else ''}); a decoder can recognise them instead of generalising")
    if on_shared_stimulus == "raise":
        raise LeakError(msg)
    warnings.warn(msg, SharedStimulusWarning, stacklevel=3)


def check_split(table: pd.DataFrame, parts: Mapping[str, Sequence[int]], by: str = "run",
                on_shared_stimulus: str = "warn") -> Split:
    """Check a user-made split for leaks and report shared stimuli.

    Parameters
    ----------
    table : DataFrame
        The per-epoch table (of an EpochSet, store or ``EpochCollection.table``).
    parts : mapping of str to sequence of int
        Part name → row indices.
    by : {"run", "session", "subject"}
        The unit that must not be on two sides.
    on_shared_stimulus : {"warn", "raise", "ignore"}

    Raises
    ------
    LeakError
        When a row is in two parts or a group ({by}) has rows in two parts.
    """
    if on_shared_stimulus not in ("warn", "raise", "ignore"):
        fail("on_shared_stimulus", "'warn', 'raise' or 'ignore'", repr(on_shared_stimulus))
    labels = _group_labels(table, by)
    n = len(table)
    arrays: dict[str, np.ndarray] = {}
    owner = np.full(n, -1)
    names = list(parts)
    for p, name in enumerate(names):
        idx = np.asarray(parts[name], dtype=np.intp)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"part {name!r}: row indices must be in [0, {n}), got min {idx.min()} max {idx.max()}")
        twice = idx[owner[idx] >= 0]
        if twice.size:
            raise LeakError(f"row {int(twice[0])} is in parts {names[owner[twice[0]]]!r} and {name!r}")
        owner[idx] = p
        arrays[name] = np.sort(idx)
    groups: dict[str, list[tuple]] = {}
    group_owner: dict[tuple, str] = {}
    for name, idx in arrays.items():
        gs = list(dict.fromkeys(labels[i] for i in idx))
        for g in gs:
            if g in group_owner:
                raise LeakError(f"{by} {dict(zip(GROUP_KEYS[by], g))} has epochs in parts {group_owner[g]!r} and "
                                f"{name!r}")
            group_owner[g] = name
        groups[name] = gs
    shared = _shared_stimuli(table, arrays)
    _report_shared(shared, on_shared_stimulus)
    return Split(arrays, by, groups, shared)


def split_epochs(
    table: pd.DataFrame,
    by: str = "run",
    test: float | Sequence[Any] = 0.2,
    valid: float | Sequence[Any] | None = None,
    seed: int = 0,
    on_shared_stimulus: str = "warn",
) -> Split:
    """Split epochs into train/(valid)/test by whole runs, sessions or subjects.

    Parameters
    ----------
    table : DataFrame
        The per-epoch table.
    by : {"run", "session", "subject"}
        A run is identified by (subject, session, run), a session by (subject, session).
    test, valid : float or sequence
        A fraction in (0, 1) of the groups, drawn at random with ``seed`` (at least one group), or the values of
        the ``by`` column to put there (e.g. ``test=["3"]`` puts run "3" of every subject and session in test).
    seed : int
        Seed of the group draw.
    on_shared_stimulus : {"warn", "raise", "ignore"}
        What to do when a stimulus id appears in more than one part.

    Returns
    -------
    Split
    """
    labels = _group_labels(table, by)
    uniq = list(dict.fromkeys(labels))
    rng = np.random.default_rng(seed)
    remaining = list(uniq)
    chosen: dict[str, list[tuple]] = {}
    for name, spec in (("test", test), ("valid", valid)):
        if spec is None:
            continue
        if isinstance(spec, (float, int)) and not isinstance(spec, bool):
            if not 0 < spec < 1:
                fail(name, "a fraction in (0, 1) or a list of group values", spec)
            k = max(1, int(round(spec * len(uniq))))
            if k >= len(remaining):
                fail(name, f"fewer groups than the {len(remaining)} {by}(s) left for it", f"{k}")
            pick = rng.choice(len(remaining), size=k, replace=False)
            chosen[name] = [remaining[i] for i in sorted(pick)]
        else:
            values = {str(v) for v in spec}
            chosen[name] = [g for g in remaining if g[-1] in values]
            found = {g[-1] for g in chosen[name]}
            if values - found:
                fail(name, f"values of column '{GROUP_KEYS[by][-1]}' among the remaining groups",
                      f"unknown or already used {sorted(values - found)}")
        remaining = [g for g in remaining if g not in chosen[name]]
    if not remaining:
        fail("test/valid", "at least one group left for training", "none")
    assign = {g: "train" for g in remaining}
    for name, gs in chosen.items():
        assign.update({g: name for g in gs})
    order = ["train"] + [p for p in ("valid", "test") if p in chosen]
    part_of = np.array([assign[g] for g in labels])
    parts = {p: np.flatnonzero(part_of == p) for p in order}
    return check_split(table, parts, by=by, on_shared_stimulus=on_shared_stimulus)


# --------------------------------------------------------------------------------------------------------------
# Dataset and sampler
# --------------------------------------------------------------------------------------------------------------

Source = EpochSet | EpochStore | EpochCollection | CollectionStore


class EpochDataset(Dataset):
    """A torch ``Dataset`` over in-memory or stored epochs of one or several subjects.

    Parameters
    ----------
    source : EpochSet, EpochStore, EpochCollection or CollectionStore
        Stores are read lazily, one epoch per item.
    indices : sequence of int, optional
        Rows of ``table`` to serve (e.g. ``split.train``); default all.
    target : str or None
        Table column served as ``"y"``. Numeric columns are served as float32 (or int64 for integers); other
        columns are encoded as int64 class indices into ``classes`` (sorted over the whole source, so every
        split shares one encoding). Every served epoch needs a value.
    transform : callable, optional
        Applied to each ``x`` tensor (n_channels, n_times).

    Items are dicts: ``x`` float32 (n_channels, n_times), ``subject`` int64 (index into :attr:`subjects`),
    ``index`` int64 (row of ``table``) and ``y`` when ``target`` is set. Batch epochs of different subjects
    (different channel counts) with :class:`SubjectBatchSampler`.
    """

    def __init__(self, source: Source, indices: Sequence[int] | None = None, target: str | None = "label",
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if isinstance(source, (EpochSet, EpochStore)):
            parts = {"": source}
        elif isinstance(source, (EpochCollection, CollectionStore)):
            parts = dict(source.items())
        else:
            fail("source", "an EpochSet, EpochStore, EpochCollection or CollectionStore", type(source).__name__,
                  exc=TypeError)
        self._parts = list(parts.values())
        #: the served table: all parts' tables stacked (rows are what ``indices`` and ``index`` refer to)
        self.table = pd.concat([part.table for part in self._parts], ignore_index=True)
        self._part_of = np.repeat(np.arange(len(self._parts)), [len(part) for part in self._parts])
        self._row_in_part = np.concatenate([np.arange(len(part)) for part in self._parts])
        self.subjects: list[str] = sorted({str(s) for s in self.table["subject"].dropna()})
        subj_code = {s: i for i, s in enumerate(self.subjects)}
        self._subject = np.array([subj_code.get(str(s), -1) if pd.notna(s) else -1 for s in self.table["subject"]],
                                 dtype=np.int64)
        n = len(self.table)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.intp)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise IndexError(f"field 'indices': expected rows in [0, {n}), got min {self.indices.min()} "
                             f"max {self.indices.max()}")
        self.target = target
        self.classes: list[Any] | None = None
        self._y: np.ndarray | None = None
        if target is not None:
            if target not in self.table.columns:
                fail("target", f"a table column {list(self.table.columns)}", repr(target))
            col = self.table[target]
            served_na = col.iloc[self.indices].isna().to_numpy()
            if served_na.any():
                fail(f"table['{target}']", "a target value for every served epoch",
                      f"{int(served_na.sum())} missing value(s), first at row {int(self.indices[served_na][0])}")
            if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
                self.classes = sorted(pd.unique(col.dropna()).tolist(), key=str)
                code = {c: i for i, c in enumerate(self.classes)}
                self._y = np.array([code.get(v, -1) if pd.notna(v) else -1 for v in col], dtype=np.int64)
            elif pd.api.types.is_integer_dtype(col):
                self._y = col.to_numpy(np.int64)
            else:
                self._y = col.to_numpy(np.float32)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def subject_codes(self) -> np.ndarray:
        """Subject index of each served item, shape (len(self),)."""
        return self._subject[self.indices]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.indices[i])
        part = self._parts[self._part_of[row]]
        local = int(self._row_in_part[row])
        x = part.read(local) if isinstance(part, EpochStore) else part.data[local]
        x = torch.from_numpy(np.array(x, dtype=np.float32, copy=True))
        if self.transform is not None:
            x = self.transform(x)
        item = {"x": x, "subject": torch.tensor(self._subject[row]), "index": torch.tensor(row)}
        if self._y is not None:
            item["y"] = torch.tensor(self._y[row])
        return item


class SubjectBatchSampler(Sampler[list[int]]):
    """Yield batches of dataset positions in which all epochs come from one subject.

    Parameters
    ----------
    subject_codes : array of int, shape (n_items,)
        Subject of each dataset item, e.g. :attr:`EpochDataset.subject_codes`.
    batch_size : int
    shuffle : bool
        Shuffle items within each subject and the order of batches (reproducible with ``seed``; call
        ``set_epoch`` each training epoch for a new order).
    drop_last : bool
        Drop each subject's last incomplete batch.
    seed : int
    """

    def __init__(self, subject_codes: Sequence[int] | np.ndarray, batch_size: int, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            fail("batch_size", "a positive integer", repr(batch_size))
        self.subject_codes = np.asarray(subject_codes)
        if self.subject_codes.ndim != 1:
            fail("subject_codes", "a 1-D array", f"shape {self.subject_codes.shape}")
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last, self.seed, self.epoch = shuffle, drop_last, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        batches = []
        for s in np.unique(self.subject_codes):
            pos = np.flatnonzero(self.subject_codes == s)
            if self.shuffle:
                pos = rng.permutation(pos)
            for start in range(0, len(pos), self.batch_size):
                chunk = pos[start:start + self.batch_size]
                if len(chunk) == self.batch_size or not self.drop_last:
                    batches.append(chunk.tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        counts = np.unique(self.subject_codes, return_counts=True)[1]
        if self.drop_last:
            return int(sum(c // self.batch_size for c in counts))
        return int(sum(-(-c // self.batch_size) for c in counts))
