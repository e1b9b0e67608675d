"""Measured defaults: an aligner chosen by inner cross-validation on the training trials (``aligner=auto``).

:class:`AutoAlignment` fits each candidate aligner (ridge and MindEye's learned mapper by default) on the folds
of the *training* trials only — folds grouped by stimulus, so repeats of one image never sit on both sides — scores
the held-out fold by two-way identification (or the mean correlation per latent dimension), keeps the best, refits
it on all the training trials and says which it chose and why. Ties go to the candidate listed first (the simpler).

It lives with the aligners: its scores are the pure ones of :mod:`neurodecode.core.scores` (until 0.3 it sat in the
pipeline stage because scoring lived in the evaluation stage; ``neurodecode.pipeline.selection`` still works for one
release).

May import: ``neurodecode.core``, ``neurodecode.loaders``, ``neurodecode.encoders``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from neurodecode.alignment.aligners import as_2d, target_groups, voxel_correlations
from neurodecode.core.logs import logger
from neurodecode.core.validation import fail
from neurodecode.core.registry import register

__all__ = ["SCORINGS", "AutoAlignment"]

#: how a held-out fold is scored
SCORINGS = ("two_way", "correlation")


def _default_candidates() -> dict[str, Any]:
    from neurodecode.core.configs import build

    return {"ridge": build("aligner", "ridge"), "mlp": build("aligner", "mlp")}


def _score(pred: np.ndarray, true: np.ndarray, scoring: str) -> float:
    from neurodecode.core.scores import trial_scores

    if scoring == "two_way":
        return float(trial_scores(pred, true)["two_way"].mean())
    return float(np.nanmean(voxel_correlations(pred, true)))


@register
class AutoAlignment(RegressorMixin, BaseEstimator):
    """Pick an aligner by inner cross-validation on the training trials.

    Parameters
    ----------
    candidates : dict of str to estimator, optional
        Name → an unfitted aligner (scikit-learn ``fit``/``predict``). Default: ``conf/aligner`` ridge and mlp.
    cv : int
        Folds of the training trials, grouped by identical targets (one stimulus per group).
    scoring : {"two_way", "correlation"}
        Two-way identification (cosine, ties ½) among the fold's trials, or the mean Pearson correlation of each
        latent dimension.

    Attributes
    ----------
    choice_ : str
        The chosen candidate.
    cv_scores_ : dict of str to list of float
        Each candidate's score on each fold.
    cv_seconds_ : dict of str to float
        Each candidate's fitting time over the folds.
    best_estimator_ : the chosen candidate refitted on all the training trials.
    reason_ : str
        One sentence: which was chosen, on what evidence.
    """

    def __init__(self, candidates: Mapping[str, Any] | None = None, cv: int = 5, scoring: str = "two_way") -> None:
        self.candidates = candidates
        self.cv = cv
        self.scoring = scoring

    def _folds(self, Y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        from sklearn.model_selection import GroupKFold

        groups = target_groups(Y)
        n_groups = len(np.unique(groups))
        if not isinstance(self.cv, int) or self.cv < 2:
            fail("cv", "an integer ≥ 2 (folds of the training trials)", self.cv)
        if n_groups < 4:
            fail("y", "at least 4 distinct targets (stimuli) to cross-validate the choice of aligner", n_groups)
        splits = GroupKFold(n_splits=min(self.cv, n_groups // 2)).split(Y, groups=groups)
        return [(tr, te) for tr, te in splits]

    def fit(self, X: Any, y: Any) -> AutoAlignment:
        """Score every candidate on the inner folds, keep the best, refit it on all of ``X (n_samples,
        n_features)``, ``y (n_samples, n_targets)``."""
        X, Y = as_2d(X, "X"), as_2d(np.asarray(y).reshape(len(y), -1) if np.ndim(y) == 1 else y, "y")
        if X.shape[0] != Y.shape[0]:
            fail("y", f"one target row per sample ({X.shape[0]})", Y.shape[0])
        if self.scoring not in SCORINGS:
            fail("scoring", f"one of {SCORINGS}", self.scoring)
        candidates = dict(self.candidates) if self.candidates else _default_candidates()
        if not candidates:
            fail("candidates", "at least one aligner", "none")
        folds = self._folds(Y)
        self.cv_scores_, self.cv_seconds_ = {}, {}
        for name, est in candidates.items():
            t0 = time.perf_counter()
            self.cv_scores_[name] = [_score(np.asarray(clone(est).fit(X[tr], Y[tr]).predict(X[te])), Y[te],
                                            self.scoring) for tr, te in folds]
            self.cv_seconds_[name] = time.perf_counter() - t0
        means = {k: float(np.mean(v)) for k, v in self.cv_scores_.items()}
        self.choice_ = max(means, key=lambda k: (means[k], -list(means).index(k)))     # ties: the first listed
        self.best_estimator_ = clone(candidates[self.choice_]).fit(X, Y)
        sems = {k: float(np.std(v, ddof=1) / np.sqrt(len(v))) for k, v in self.cv_scores_.items()}
        others = ", ".join(f"{k} {means[k]:.3f} ± {sems[k]:.3f}" for k in means if k != self.choice_)
        self.reason_ = (f"aligner=auto chose {self.choice_}: inner {len(folds)}-fold {self.scoring} on the training "
                        f"trials {means[self.choice_]:.3f} ± {sems[self.choice_]:.3f}"
                        + (f" vs {others}" if others else "") + " (mean ± s.e. over folds)")
        logger.info(self.reason_)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The chosen aligner's predictions (n_samples, n_targets)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def selection(self) -> dict[str, Any]:
        """What was chosen and why, as JSON-ready values."""
        check_is_fitted(self, "best_estimator_")
        return {"choice": self.choice_, "scoring": self.scoring, "cv_scores": self.cv_scores_,
                "cv_seconds": {k: round(v, 2) for k, v in self.cv_seconds_.items()}, "reason": self.reason_}
