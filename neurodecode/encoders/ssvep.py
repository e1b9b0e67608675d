"""The classical SSVEP classifiers, from MOABB, on the epoch format.

:class:`SSVEPClassifier` holds one of MOABB's SSVEP pipelines (``SSVEP_CCA``, ``SSVEP_TRCA``, ``SSVEP_MsetCCA``,
``SSVEP_itCCA``, ``SSVEP_eCCA``, ``SSVEP_TRCA_R``, ``SSVEP_SSCOR``, ``SSVEP_TDCA``) by name: it takes an
:class:`~neurodecode.EpochSet`, ``mne.Epochs`` or an array with its sampling rate, reads the stimulation frequency
of each class from its label (``"13"``, ``"13Hz"``, or ``freq_map``), and hands MOABB the ``mne.Epochs`` and
frequency labels it expects, so that its scores are MOABB's own. These classifiers compare an epoch with sinusoids
or templates at each stimulation frequency: a class without one (``rest``) cannot be predicted, and is refused
rather than never predicted (drop it, or use the filter-bank tangent-space recipe, which classifies rest too).

May import: ``neurodecode.core``, ``neurodecode.loaders``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.core.registry import register
from neurodecode.core.validation import fail
from neurodecode.encoders.inputs import ArrayInput, check_signals

__all__ = ["SSVEP_METHODS", "SSVEPClassifier"]

#: MOABB's SSVEP classifiers (``moabb.pipelines.classification.SSVEP_<name>``)
SSVEP_METHODS = ("CCA", "TRCA", "MsetCCA", "itCCA", "eCCA", "TRCA_R", "SSCOR", "TDCA")


@register
class SSVEPClassifier(ArrayInput, ClassifierMixin, BaseEstimator):
    """One of MOABB's SSVEP classifiers on epochs, with the stimulation frequencies read from the labels.

    Parameters
    ----------
    method : str
        One of :data:`SSVEP_METHODS`: ``"CCA"`` (Bin et al. 2009; sinusoidal references, no training),
        ``"TRCA"`` (Nakanishi et al. 2018; task-related components of filter-bank templates), ``"MsetCCA"``
        (Zhang et al. 2014), ...
    options : mapping, optional
        The MOABB class's own arguments, e.g. ``{"n_harmonics": 3}`` (CCA), ``{"n_fbands": 3}`` (TRCA).
    sfreq : float, optional
        Sampling rate of array inputs (an EpochSet or ``mne.Epochs`` brings its own).
    freq_map : mapping, optional
        Label → stimulation frequency in Hz; by default each label is read as a number of Hz (``"13"``,
        ``"13Hz"``).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    frequencies_ : dict
        Label → frequency in Hz.
    model_ : the fitted MOABB estimator.

    ``fit(X, y)`` takes ``X`` of shape ``(n_epochs, n_channels, n_times)`` (EpochSet, ``mne.Epochs`` or array);
    ``predict_proba`` returns MOABB's normalised scores, shape ``(n_epochs, n_classes)``.
    """

    #: evaluate() hands over the EpochSet itself (channels and sampling rate)
    reads_epochs: ClassVar[bool] = True

    def __init__(self, method: str = "CCA", options: Mapping[str, Any] | None = None, sfreq: float | None = None,
                 freq_map: Mapping[Any, float] | None = None) -> None:
        self.method = method
        self.options = options
        self.sfreq = sfreq
        self.freq_map = freq_map

    def _moabb_class(self) -> type:
        if self.method not in SSVEP_METHODS:
            fail("method", f"one of MOABB's SSVEP classifiers {list(SSVEP_METHODS)}", repr(self.method))
        from moabb.pipelines import classification

        return getattr(classification, f"SSVEP_{self.method}")

    def _epochs(self, X: Any) -> Any:
        """``mne.Epochs`` for MOABB, from an EpochSet, ``mne.Epochs`` or an array with ``sfreq``."""
        import mne

        from neurodecode.core.epochs import EpochSet
        from neurodecode.core.mne_convert import to_mne

        if isinstance(X, mne.BaseEpochs):
            epochs = X
        elif isinstance(X, EpochSet):
            epochs = to_mne(X.replace(table=X.table.assign(label="x")))
        else:
            X = check_signals(X, finite=False).astype(np.float64)
            if self.sfreq is None:
                fail("sfreq", "the sampling rate of array inputs (an EpochSet or mne.Epochs brings its own)", None)
            info = mne.create_info([f"ch{k}" for k in range(X.shape[1])], float(self.sfreq), "eeg")
            epochs = mne.EpochsArray(X, info, verbose="error")
        check_signals(epochs.get_data(copy=False))             # finite
        if hasattr(self, "sfreq_") and (epochs.info["sfreq"] != self.sfreq_ or
                                        len(epochs.times) != self.n_times_ or epochs.ch_names != self.ch_names_):
            fail("X", f"epochs like the training ones ({self.sfreq_:g} Hz, {self.n_times_} samples, channels "
                       f"{self.ch_names_[:4]}...)", f"{epochs.info['sfreq']:g} Hz, {len(epochs.times)} samples, "
                       f"channels {epochs.ch_names[:4]}...")
        return epochs

    def _frequencies(self, classes: np.ndarray) -> dict[Any, float]:
        from neurodecode.loaders.preprocessing import ssvep_frequencies

        out, none = {}, []
        for c in classes:
            if self.freq_map is not None and c in self.freq_map:
                out[c] = float(self.freq_map[c])
                continue
            try:
                out[c] = ssvep_frequencies([c])[0]
            except ValueError:
                none.append(c)
        if none:
            fail("label", f"a stimulation frequency for every class ({self.method} compares epochs with references "
                          "at each frequency; drop the other classes, give freq_map, or use the filter-bank "
                          "tangent-space recipe, which classifies them too)",
                 f"classes without one: {[str(c) for c in none]}")
        if len(set(out.values())) != len(out):
            fail("label", "one stimulation frequency per class", out)
        return out

    def fit(self, X: Any, y: Any) -> SSVEPClassifier:
        cls = self._moabb_class()
        epochs = self._epochs(X)
        y = np.asarray(y)
        if len(y) != len(epochs):
            fail("y", f"one label per epoch ({len(epochs)})", len(y))
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            fail("y", "at least 2 classes", list(self.classes_))
        self.frequencies_ = self._frequencies(self.classes_)
        # MOABB reads the frequency from the label: hand it "13" (and back)
        self._to_moabb = {c: f"{f:g}" for c, f in self.frequencies_.items()}
        self._from_moabb = {v: c for c, v in self._to_moabb.items()}
        options = dict(self.options or {})
        if "freq_map" in inspect.signature(cls.__init__).parameters:
            options.setdefault("freq_map", {v: float(v) for v in self._to_moabb.values()})
        self.model_ = cls(**options)
        self.sfreq_, self.n_times_, self.ch_names_ = epochs.info["sfreq"], len(epochs.times), list(epochs.ch_names)
        self.model_.fit(epochs, np.array([self._to_moabb[c] for c in y]))
        return self

    def _save_to(self, folder: Any) -> None:
        """Refused: MOABB's fitted classes keep their state in objects of their own, which a checkpoint (JSON and
        safetensors, no pickle) cannot hold; refit from the parameters (``get_params``) instead."""
        raise TypeError(f"{folder}: SSVEPClassifier ({self.method}) cannot be saved as a checkpoint component: MOABB's "
                        "fitted classifier is not plain arrays (and checkpoints never pickle); refit it from its "
                        "parameters")

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        pred = [str(p) for p in self.model_.predict(self._epochs(X))]
        unknown = sorted(set(pred) - set(self._from_moabb))
        if unknown:      # never guess a class
            raise RuntimeError(f"MOABB's SSVEP_{self.method} predicted {unknown}, not one of the frequencies it was "
                               f"fitted on {sorted(self._from_moabb)}")
        return np.array([self._from_moabb[p] for p in pred], dtype=self.classes_.dtype)

    def predict_proba(self, X: Any) -> np.ndarray:
        """MOABB's scores normalised per epoch, columns in the order of ``classes_``."""
        check_is_fitted(self, "model_")
        proba = np.asarray(self.model_.predict_proba(self._epochs(X)), dtype=np.float64)
        order = [self._to_moabb[c] for c in self.classes_]
        moabb_classes = [str(c) for c in getattr(self.model_, "freqs_", order)]
        return proba[:, [moabb_classes.index(o) for o in order]]
