"""What the encoders' estimators accept: arrays, tensors, an EpochSet, an ``mne.Epochs`` (or the list of them that
scikit-learn's cross-validation makes), and the per-epoch table that travels with a covariance step's output."""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from neurodecode.core.registry import register

__all__ = ["ArrayInput", "EpochMatrices", "SplitBands", "TimeWindow", "as_array", "channel_scaling", "check_signals", "check_spd", "standardized",
           "table_groups", "table_of"]


def _is_mne_epochs(X: Any) -> bool:
    mne = sys.modules.get("mne")  # an mne.Epochs can only exist once mne is imported
    return mne is not None and isinstance(X, mne.BaseEpochs)


def _is_epochs(X: Any) -> bool:
    return (hasattr(X, "data") and hasattr(X, "channels") and hasattr(X, "table")) or _is_mne_epochs(X)


def _epochs_data(X: Any) -> np.ndarray:
    if _is_mne_epochs(X):
        return X.get_data(copy=False)
    return X.data


def as_array(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a numeric array: arrays and tensors as they are; an EpochSet or an ``mne.Epochs`` as its data (all
    its channels: pick them first, as for MNE's decoding); a list of them — what scikit-learn's cross-validation
    makes of an ``mne.Epochs``, which it indexes epoch by epoch — concatenated along the epochs."""
    if _is_epochs(X):
        X = _epochs_data(X)
    elif isinstance(X, (list, tuple)) and X and all(_is_epochs(x) for x in X):
        X = np.concatenate([_epochs_data(x) for x in X])
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise TypeError(f"field '{name}': expected a numeric array, got dtype {X.dtype}")
    return X


def table_of(X: Any) -> pd.DataFrame | None:
    """The per-epoch table of an EpochSet, the metadata of an ``mne.Epochs`` (or of a list of them), else None."""
    if isinstance(X, (list, tuple)) and X and all(_is_epochs(x) for x in X):
        tables = [table_of(x) for x in X]
        return None if any(t is None for t in tables) else pd.concat(tables, ignore_index=True)
    if _is_mne_epochs(X):
        return None if X.metadata is None else X.metadata.reset_index(drop=True)
    if _is_epochs(X):
        return X.table.reset_index(drop=True)
    return getattr(X, "table", None) if isinstance(X, EpochMatrices) else None


class EpochMatrices(np.ndarray):
    """A covariance step's output for an EpochSet or ``mne.Epochs`` input: the matrices, plus the epochs' table in
    ``.table`` so that group-aware steps (:class:`Recenter`, :class:`Stretch`) find each epoch's subject inside a
    scikit-learn pipeline. Anything derived from it (a slice, a product) is a plain array again: a table that no
    longer matches its rows is dropped, never carried."""

    table: pd.DataFrame | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self.table = None

    @classmethod
    def wrap(cls, C: np.ndarray, table: pd.DataFrame | None) -> np.ndarray:
        if table is None:
            return C
        if len(table) != len(C):
            raise ValueError(f"field 'table': expected one row per epoch ({len(C)}), got {len(table)}")
        out = np.asarray(C).view(cls)
        out.table = table
        return out


def check_signals(X: Any, finite: bool = True) -> np.ndarray:
    """``X`` as a 3-D numeric array; with ``finite=False`` the caller checks finiteness on its (smaller) result."""
    X = as_array(X)
    if X.ndim != 3:
        raise ValueError(f"field 'X': expected signals of shape (n_epochs, n_channels, n_times), got {X.ndim} "
                         f"dimension(s) with shape {X.shape}")
    if finite and not np.isfinite(X).all():
        raise ValueError("field 'X': expected finite values, got NaN or Inf")
    return X


def channel_scaling(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (n_channels, 1) of epochs (n_epochs, n_channels, n_times), over epochs
    and times; a constant channel gets scale 1."""
    sd = A.std(axis=(0, 2))[:, None]
    return A.mean(axis=(0, 2))[:, None], np.where(sd > 0, sd, 1.0)


def standardized(X: Any, mean: np.ndarray, scale: np.ndarray, n_times: int) -> torch.Tensor:
    """Epochs z-scored per channel with the statistics of fit (:func:`channel_scaling`), as float32; an error
    naming the field when they are not finite epochs of ``len(mean)`` channels × ``n_times`` times."""
    from neurodecode.core.validation import fail

    X = as_array(X).astype(np.float64)
    if X.ndim != 3:
        fail("X", "epochs (n_epochs, n_channels, n_times)", X.shape)
    if X.shape[1:] != (mean.shape[0], n_times):
        fail("X", f"epochs of {mean.shape[0]} channels × {n_times} times as in fit", X.shape[1:])
    if not np.isfinite(X).all():
        fail("X", "finite values", "NaN or Inf")
    return torch.as_tensor((X - mean) / scale, dtype=torch.float32)


def check_spd(C: Any, n_matrix_axes: tuple[int, ...] = (3, 4)) -> np.ndarray:
    """SPD matrices (n_epochs, [n_bands,] n, n) as an array (their dtype kept), or a ValueError naming field 'X'."""
    C = as_array(C)
    if C.ndim not in n_matrix_axes or C.shape[-1] != C.shape[-2]:
        raise ValueError(f"field 'X': expected SPD matrices of shape (n_epochs, [n_bands,] n, n), got shape "
                         f"{C.shape}")
    if not np.isfinite(C).all():
        raise ValueError("field 'X': expected finite matrices, got NaN or Inf")
    return C


class ArrayInput:
    """Tells scikit-learn that the estimator takes 3-D (or 4-D) arrays, not 2-D feature tables."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


def table_groups(X: Any, groups: Any, group_by: str | None, n: int, what: str = "matrix") -> np.ndarray:
    """The group of each of the ``n`` items of ``X``: ``groups`` if given; else the ``group_by`` column of the table
    that ``X`` carries (an EpochSet, an ``mne.Epochs``' metadata, :class:`EpochMatrices`); else one group, 0."""
    if groups is None and group_by is not None:
        table = table_of(X)
        if table is not None and group_by in table.columns:
            col = table[group_by]
            if col.isna().any():
                raise ValueError(f"field 'table[{group_by!r}]': expected a group for every epoch, got "
                                 f"{int(col.isna().sum())} missing")
            groups = col.astype(str).to_numpy()
    g = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"field 'groups': expected one group per {what} ({n}), got shape {g.shape}")
    return g


@register
class TimeWindow(ArrayInput, TransformerMixin, BaseEstimator):
    """Keep the samples of each epoch between ``tmin`` and ``tmax`` seconds (both included, as MNE's ``crop``): the
    epoch window as a parameter of a pipeline, so that it can be chosen on inner folds (``GridSearchCV``).

    Parameters
    ----------
    tmin, tmax : float or None
        Window in seconds on the epochs' own time axis (relative to the event); None keeps that end.

    Takes an :class:`~neurodecode.EpochSet` (or an ``mne.Epochs``), whose times it reads, of shape
    ``(n_epochs, n_channels, n_times)``; returns the EpochSet cropped to ``(n_epochs, n_channels, n_window)``, table
    kept (so that a later :class:`~neurodecode.encoders.Recenter` finds each epoch's subject). A window outside the
    epochs is an error naming the field, never a shorter window.
    """

    #: evaluate() hands over the EpochSet (its times and table)
    reads_epochs = True

    def __init__(self, tmin: float | None = None, tmax: float | None = None) -> None:
        self.tmin = tmin
        self.tmax = tmax

    def fit(self, X: Any, y: Any = None) -> TimeWindow:
        self._window(X)                                  # an EpochSet or mne.Epochs, and a window inside it
        self.n_channels_in_ = int(_epochs_data(X).shape[1])
        return self

    def _window(self, X: Any) -> np.ndarray:
        """Indices of the samples inside the window."""
        if not _is_epochs(X):
            raise TypeError(f"field 'X': expected an EpochSet or an mne.Epochs (TimeWindow reads their times), got "
                            f"{type(X).__name__}")
        times = np.asarray(X.times, dtype=np.float64)
        step = times[1] - times[0] if len(times) > 1 else 1.0
        lo = times[0] if self.tmin is None else float(self.tmin)
        hi = times[-1] if self.tmax is None else float(self.tmax)
        if not hi > lo:
            raise ValueError(f"field 'tmax': expected tmax > tmin = {lo:g}, got {hi:g}")
        if lo < times[0] - step / 2 or hi > times[-1] + step / 2:
            raise ValueError(f"field 'tmin'/'tmax': expected a window inside the epochs ({times[0]:g} to "
                             f"{times[-1]:g} s), got {lo:g} to {hi:g} s")
        return np.flatnonzero((times >= lo - step * 1e-3) & (times <= hi + step * 1e-3))

    def transform(self, X: Any) -> Any:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "n_channels_in_")
        idx = self._window(X)
        if _is_mne_epochs(X):
            return X.copy().crop(X.times[idx[0]], X.times[idx[-1]], include_tmax=True)
        return X.replace(data=X.data[:, :, idx], tmin=float(X.times[idx[0]]))


_BAND_NAME = re.compile(r"^(?P<channel>.+)@(?P<low>[0-9.]+)-(?P<high>[0-9.]+)Hz$")


@register
class SplitBands(ArrayInput, TransformerMixin, BaseEstimator):
    """Filter-bank epochs, bands stacked as channels, in MOABB's filter-bank layout: one axis per band, last.

    A ``filter_bank`` preprocessing step stacks the band-passed copies of the channels band-major
    (``C3@8-12Hz, C4@8-12Hz, ..., C3@12-16Hz, ...``); MOABB's filter-bank paradigms and its
    ``moabb.pipelines.utils.FilterBank`` (one clone of an estimator per band, e.g. CSP for FBCSP) read
    ``(n_epochs, n_channels, n_times, n_bands)``. This step turns the first into the second.

    Parameters
    ----------
    n_bands : int, optional
        The number of bands. Default: read from the channel names of an EpochSet or ``mne.Epochs``
        (``<channel>@<low>-<high>Hz``); required for a plain 3-D array. A 4-D array (MOABB's own filter-bank
        epochs) passes unchanged.

    Attributes
    ----------
    bands_ : list of str
        The bands, as the channel names give them (``"8-12Hz"``, ...), or ``"band0"``... for a plain array.
    n_channels_ : int
        Channels per band.

    Takes ``(n_epochs, n_bands * n_channels, n_times)`` (an EpochSet, an ``mne.Epochs`` or an array), returns
    ``(n_epochs, n_channels, n_times, n_bands)``. Channels whose names do not follow the band pattern, or bands
    that do not hold the same channels in the same order, are an error naming them: a silent reshape would mix
    bands and channels.
    """

    #: evaluate() hands over the EpochSet (its channel names)
    reads_epochs = True

    def __init__(self, n_bands: int | None = None) -> None:
        self.n_bands = n_bands

    def _layout(self, X: Any) -> tuple[list[str], int]:
        """(bands, channels per band) of ``X``, checked."""
        if self.n_bands is not None and (isinstance(self.n_bands, bool) or not isinstance(self.n_bands, int)
                                         or self.n_bands < 1):
            raise ValueError(f"field 'n_bands': expected an integer >= 1 or None, got {self.n_bands!r}")
        names = _channel_names(X)
        data = as_array(X)
        if data.ndim == 4:
            n_bands = data.shape[-1]
            if self.n_bands is not None and self.n_bands != n_bands:
                raise ValueError(f"field 'n_bands': {self.n_bands}, but the 4-D epochs hold {n_bands} bands on "
                                 "their last axis")
            return [f"band{k}" for k in range(n_bands)], data.shape[1]
        if data.ndim != 3:
            raise ValueError(f"field 'X': expected (n_epochs, n_bands * n_channels, n_times) or MOABB's "
                             f"(n_epochs, n_channels, n_times, n_bands), got shape {data.shape}")
        if names is None:
            if self.n_bands is None:
                raise ValueError("field 'n_bands': a plain array carries no channel names to read the bands from; "
                                 "give n_bands, or pass the EpochSet")
            if data.shape[1] % self.n_bands:
                raise ValueError(f"field 'n_bands': {data.shape[1]} channels do not split into {self.n_bands} bands")
            return [f"band{k}" for k in range(self.n_bands)], data.shape[1] // self.n_bands
        parsed = [_BAND_NAME.match(n) for n in names]
        odd = [n for n, m in zip(names, parsed) if m is None]
        if odd:
            raise ValueError(f"field 'channels': expected filter-bank channels named <channel>@<low>-<high>Hz (a "
                             f"filter_bank preprocessing step), got {odd[:5]}{' ...' if len(odd) > 5 else ''}; pick "
                             "the filter-bank channels first")
        bands = list(dict.fromkeys(f"{m['low']}-{m['high']}Hz" for m in parsed))
        per = len(names) // len(bands)
        blocks = [[m["channel"] for m in parsed[k * per:(k + 1) * per]] for k in range(len(bands))]
        ok = len(names) == per * len(bands) and all(
            {f"{m['low']}-{m['high']}Hz" for m in parsed[k * per:(k + 1) * per]} == {b} for k, b in enumerate(bands))
        if not ok or any(block != blocks[0] for block in blocks):
            raise ValueError(f"field 'channels': expected the bands {bands} stacked band-major, each holding the "
                             "same channels in the same order, got another layout")
        if self.n_bands is not None and self.n_bands != len(bands):
            raise ValueError(f"field 'n_bands': {self.n_bands}, but the channel names give {len(bands)} bands "
                             f"{bands}")
        return bands, per

    def fit(self, X: Any, y: Any = None) -> SplitBands:
        self.bands_, self.n_channels_ = self._layout(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "bands_")
        bands, per = self._layout(X)
        if len(bands) != len(self.bands_) or per != self.n_channels_:
            raise ValueError(f"field 'X': expected {len(self.bands_)} bands of {self.n_channels_} channels as in "
                             f"fit, got {len(bands)} bands of {per}")
        data = as_array(X)
        if data.ndim == 4:
            return data
        n = data.shape[0]
        return np.ascontiguousarray(data.reshape(n, len(bands), per, data.shape[-1]).transpose(0, 2, 3, 1))


def _channel_names(X: Any) -> list[str] | None:
    """The channel names of an EpochSet or an ``mne.Epochs`` (or a list of them), else None."""
    if isinstance(X, (list, tuple)) and X and all(_is_epochs(x) for x in X):
        X = X[0]
    if _is_mne_epochs(X):
        return list(X.ch_names)
    if _is_epochs(X):
        return list(X.channels.names)
    return None
