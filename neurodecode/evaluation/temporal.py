"""When does information appear? Decoding over time and temporal generalisation on the epoch format.

The analysis is MNE's (King & Dehaene 2014): :class:`mne.decoding.SlidingEstimator` fits one classifier per time
sample, :class:`mne.decoding.GeneralizingEstimator` also tests each one at every other time. What neurodecode adds is
what a study needs around it: the folds of :func:`~neurodecode.evaluation.evaluate` (stratified k-fold within each
subject's session, or leave one subject out), per-subject curves, a Student-t interval over subjects, the chance
level of the metric, the time of the peak and the figures (:meth:`TimeResolvedResult.plot`).

>>> result = decode_over_time(epochs, scheme="cross_subject")          # doctest: +SKIP
>>> result.peak(), result.plot()                                       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from neurodecode.core.docs import fill_doc
from neurodecode.core.epochs import EpochCollection, EpochSet
from neurodecode.core.validation import fail

__all__ = ["TimeResolvedResult", "decode_over_time"]

#: the schemes of :func:`decode_over_time`
TIME_SCHEMES = ("within_session", "cross_subject")


@dataclasses.dataclass
class TimeResolvedResult:
    """Scores of a classifier trained and tested at each time sample (or each pair of times).

    Attributes
    ----------
    times : ndarray, shape (n_times,)
        Seconds relative to the event.
    scores : ndarray, shape (n_folds, n_times) or (n_folds, n_times, n_times)
        One row per fold; for temporal generalisation ``scores[f, i, j]`` is the classifier trained at ``times[i]``
        tested at ``times[j]`` (MNE's layout).
    folds : pandas.DataFrame
        One row per fold: ``subject``, ``session``, ``fold``, ``n_train``, ``n_test``.
    metric : str
        The scikit-learn scorer (``roc_auc``, ``balanced_accuracy``, ``accuracy``).
    chance : float
        The metric's chance level for these labels (0.5 for ROC-AUC, 1 / n_classes for balanced accuracy, the
        majority class's share for accuracy).
    scheme : str
        ``within_session`` or ``cross_subject``.
    generalize : bool
        Whether ``scores`` hold the temporal-generalisation matrices.
    """

    times: np.ndarray
    scores: np.ndarray
    folds: pd.DataFrame
    metric: str
    chance: float
    scheme: str
    generalize: bool

    def subject_scores(self) -> pd.DataFrame | np.ndarray:
        """The mean over each subject's folds: ``(n_subjects, n_times)`` (a DataFrame, one row per subject, one
        column per time) or, for temporal generalisation, an array ``(n_subjects, n_times, n_times)``."""
        subjects = self.folds["subject"].astype(str).to_numpy()
        names = list(dict.fromkeys(subjects))
        per = np.stack([self.scores[subjects == s].mean(axis=0) for s in names])
        if self.generalize:
            return per
        return pd.DataFrame(per, index=pd.Index(names, name="subject"), columns=pd.Index(self.times, name="time"))

    def _units(self) -> np.ndarray:
        """What the interval is over: subjects when there are several, else the folds."""
        per = np.asarray(self.subject_scores())
        return per if len(per) > 1 else self.scores

    def mean(self) -> np.ndarray:
        """The mean over subjects (of each subject's fold mean): ``(n_times,)`` or ``(n_times, n_times)``."""
        return np.asarray(self.subject_scores()).mean(axis=0)

    def diagonal(self) -> np.ndarray:
        """Per-time scores ``(n_times,)``: the mean curve, or the matrix's diagonal (trained and tested at the same
        time) for temporal generalisation."""
        m = self.mean()
        return np.diagonal(m).copy() if self.generalize else m

    def interval(self, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Student-t interval of the per-time scores (the diagonal) over subjects (over folds for one subject),
        clipped to [0, 1]: ``(low, high)``, each ``(n_times,)``."""
        from scipy import stats

        u = self._units()
        u = np.stack([np.diagonal(x) for x in u]) if self.generalize else u
        n = len(u)
        if n < 2:
            nan = np.full(u.shape[1], np.nan)
            return nan, nan
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * u.std(axis=0, ddof=1) / np.sqrt(n)
        m = u.mean(axis=0)
        return np.clip(m - half, 0, 1), np.clip(m + half, 0, 1)

    def peak(self) -> tuple[float, float]:
        """``(time, score)`` of the best per-time score (the diagonal)."""
        d = self.diagonal()
        i = int(np.nanargmax(d))
        return float(self.times[i]), float(d[i])

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per fold and time (``train_time``/``test_time`` for temporal generalisation)."""
        rows = []
        for k, fold in enumerate(self.folds.to_dict(orient="records")):
            if self.generalize:
                tr, te = np.meshgrid(self.times, self.times, indexing="ij")
                rows.append(pd.DataFrame({**fold, "train_time": tr.ravel(), "test_time": te.ravel(),
                                          "metric": self.metric, "score": self.scores[k].ravel()}))
            else:
                rows.append(pd.DataFrame({**fold, "time": self.times, "metric": self.metric,
                                          "score": self.scores[k]}))
        return pd.concat(rows, ignore_index=True)

    @fill_doc
    def plot(self, *, ax: Any = None, title: str | None = None, path: str | Path | None = None) -> Any:
        """The mean score over time with its interval and the chance line, or the temporal-generalisation matrix
        (training time × testing time, the colour scale centred on chance).

        Parameters
        ----------
        %(ax)s
        title : str, optional
        %(path)s

        Returns
        -------
        matplotlib.figure.Figure
        """
        from neurodecode.evaluation.plots import finish_figure, plot_scores_over_time, plot_temporal_generalization

        if self.generalize:
            fig = plot_temporal_generalization(self.mean(), self.times, metric=self.metric, chance=self.chance,
                                               title=title, ax=ax)
        else:
            low, high = self.interval()
            fig = plot_scores_over_time(self.times, self.mean(), (low, high), metric=self.metric,
                                        chance=self.chance, title=title, ax=ax,
                                        label=f"mean over {self._n_label()}")
        return finish_figure(fig, path)

    def _n_label(self) -> str:
        n = self.folds["subject"].nunique()
        return f"{n} subjects" if n > 1 else f"{len(self.folds)} folds"


def _sets(epochs: Any) -> dict[str, EpochSet]:
    """One EpochSet per subject (an ``mne.Epochs`` converted first, its events as labels)."""
    import sys

    from neurodecode.evaluation.classification import subject_sets

    mne = sys.modules.get("mne")
    if mne is not None and isinstance(epochs, mne.BaseEpochs):
        from neurodecode.core.mne_convert import from_mne

        epochs = from_mne(epochs)
    return subject_sets(epochs)


def _chance(metric: str, y: np.ndarray) -> float:
    """:func:`~neurodecode.evaluation.classification.metric_chance`; for another scorer, the majority class's share
    (as for accuracy)."""
    from neurodecode.evaluation.classification import metric_chance

    chance = metric_chance(metric, y)
    return metric_chance("accuracy", y) if chance is None else chance


def _folds(sets: dict[str, EpochSet], scheme: str, target: str, n_splits: int, seed: int) -> Any:
    """``(fold row, (X_train, y_train, X_test, y_test))`` of each fold: :func:`evaluate`'s folds — stratified k-fold
    inside each subject's session, or leave one subject out."""
    from neurodecode.evaluation.classification import joined_subjects, session_splits

    if scheme == "within_session":
        for subject, ep in sets.items():
            data: dict = {}
            for session, mask, y, fold, tr, te in session_splits(ep, target, n_splits, seed):
                if session not in data:                     # the session's data, converted once for its folds
                    data[session] = ep.data[mask].astype(np.float64)
                X = data[session]
                yield ({"subject": subject, "session": session, "fold": fold, "n_train": len(tr),
                        "n_test": len(te)}, (X[tr], y[tr], X[te], y[te]))
        return
    all_ep = joined_subjects(sets)
    X, y = all_ep.data.astype(np.float64), all_ep.table[target].astype(str).to_numpy()
    subj = all_ep.table["subject"].astype(str).to_numpy()
    for fold, subject in enumerate(sets):
        te = subj == subject
        yield ({"subject": subject, "session": "all", "fold": fold, "n_train": int((~te).sum()),
                "n_test": int(te.sum())}, (X[~te], y[~te], X[te], y[te]))


def decode_over_time(epochs: EpochSet | EpochCollection | Any, estimator: Any = None,
                     scheme: str = "within_session", *, generalize: bool = False, scoring: str | None = None,
                     target: str = "label", n_splits: int = 5, seed: int = 42, n_jobs: int = 1) -> TimeResolvedResult:
    """Decode the labels at each time sample (MNE's ``SlidingEstimator``), or train at each time and test at every
    time (``GeneralizingEstimator``), with neurodecode's folds.

    Parameters
    ----------
    epochs : EpochSet, EpochCollection or mne.Epochs
        Data ``(n_epochs, n_channels, n_times)``; the table's ``subject``, ``session`` and ``target`` columns define
        the folds and the classes. Filter, resample or take envelopes first: each time sample is one feature vector
        of ``n_channels`` values.
    estimator : scikit-learn classifier, optional
        Fitted on ``(n_epochs, n_channels)`` at each time. Default: standardisation → logistic regression (MNE's
        tutorial's).
    scheme : {"within_session", "cross_subject"}
        Stratified ``n_splits``-fold cross-validation inside each subject's session (the folds of
        :func:`~neurodecode.evaluation.evaluate` with the same ``seed``), or leave one subject out (the subjects
        need the same channels and times).
    generalize : bool
        Temporal generalisation: scores for every (training time, testing time) pair.
    scoring : str, optional
        A scikit-learn scorer name. Default: ``roc_auc`` for two classes, else ``balanced_accuracy``.
    target : str
        The table column holding the classes.
    n_splits, seed : int
        Folds of ``within_session``.
    n_jobs : int
        Parallel jobs over time samples (MNE's ``n_jobs``).

    Returns
    -------
    TimeResolvedResult
        Per-fold scores ``(n_folds, n_times)`` (or ``(n_folds, n_times, n_times)``), the folds, the metric and its
        chance level.
    """
    from mne.decoding import GeneralizingEstimator, SlidingEstimator

    if scheme not in TIME_SCHEMES:
        fail("scheme", f"one of {list(TIME_SCHEMES)}", scheme)
    sets = _sets(epochs)
    if estimator is None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if not all(target in ep.table for ep in sets.values()):
        fail(f"table[{target!r}]", "a column of class labels in every subject's table", "no such column")
    labels = {s: ep.table[target] for s, ep in sets.items()}
    for s, y in labels.items():
        if y.isna().any():
            fail(f"table[{target!r}]", f"a class for every epoch of subject {s}", f"{int(y.isna().sum())} missing")
    classes = sorted(pd.unique(pd.concat(labels.values()).astype(str)))
    if len(classes) < 2:
        fail(f"table[{target!r}]", "at least two classes", classes)
    metric = scoring or ("roc_auc" if len(classes) == 2 else "balanced_accuracy")
    Wrapper = GeneralizingEstimator if generalize else SlidingEstimator
    model = Wrapper(estimator, scoring=metric, n_jobs=n_jobs, verbose=False)
    rows, scores = [], []
    for row, (X_tr, y_tr, X_te, y_te) in _folds(sets, scheme, target, n_splits, seed):
        scores.append(clone(model).fit(X_tr, y_tr).score(X_te, y_te))
        rows.append(row)
    y_all = pd.concat(labels.values()).astype(str).to_numpy()
    return TimeResolvedResult(times=np.asarray(next(iter(sets.values())).times, dtype=np.float64),
                              scores=np.stack(scores),
                              folds=pd.DataFrame(rows), metric=metric, chance=_chance(metric, y_all),
                              scheme=scheme, generalize=generalize)
