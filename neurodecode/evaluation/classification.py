"""Classification evaluations as in MOABB: within-session k-fold, cross-session, cross-subject.

Every evaluation returns an :class:`EvaluationResult`: a tidy table (one row per fold and metric), a summary with
95 % confidence intervals (Student t over folds), JSON and a plot. Folds are seeded, so the same call gives the
same folds every time.

Cross-subject and cross-session evaluations can align the units after the covariance step: re-centring
(:class:`~neurodecode.encoders.riemann.Recenter`, Zanini et al. 2018), Riemannian Procrustes analysis (re-centre,
:class:`~neurodecode.encoders.riemann.Stretch`, :class:`~neurodecode.encoders.riemann.Rotate`; Rodrigues et al.
2019) or tangent-space Procrustes (:class:`~neurodecode.encoders.riemann.Procrustes`, Bleuzé et al. 2022), the last
two with a few labelled calibration trials of the test unit.
"""

from __future__ import annotations

import contextvars
import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from neurodecode.core.epochs import EpochCollection, EpochSet, concatenate
from neurodecode.core.persistence import dumps
from neurodecode.core.validation import fail

__all__ = ["PARADIGM_RECIPES", "SCHEMES", "TRANSFERS", "VERDICT_METRICS", "EvaluationResult", "LeaveOneSubjectOut",
           "ParadigmDefaults", "TRIAL_COLUMNS", "TRIAL_METRICS", "imbalanced", "paradigm_defaults",
           "student_interval", "calibration_trials", "compare_evaluations",
           "evaluate", "evaluation_verdict", "joined_subjects", "metric_chance", "recipe_classifier",
           "score_predictions", "session_splits", "subject_sets"]

SCHEMES = ("within_session", "within_subject", "cross_session", "cross_subject")


def score_predictions(y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray | None,
                      classes: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and ROC-AUC (one-vs-rest macro for more than two classes; needs ``scores``)."""
    out = {"accuracy": float(accuracy_score(y_true, y_pred)),
           "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred))}
    if scores is not None and len(np.unique(y_true)) > 1:
        if len(classes) == 2:
            s = scores[:, 1] if scores.ndim == 2 else scores
            out["roc_auc"] = float(roc_auc_score(y_true == classes[1], s))
        elif len(np.unique(y_true)) == len(classes):
            out["roc_auc"] = float(roc_auc_score(y_true, scores, multi_class="ovr", labels=classes))
    return out


#: columns of ``EvaluationResult.trials``
TRIAL_COLUMNS = ["scheme", "subject", "session", "fold", "trial", "label", "prediction"]
#: the columns that name one fold of an evaluation
_FOLD_KEYS = TRIAL_COLUMNS[:4]

#: metrics whose values lie in [0, 1]: their confidence intervals are clipped to it
UNIT_METRICS = frozenset({"accuracy", "balanced_accuracy", "roc_auc"})


def student_interval(values: Any, metric: str = "", confidence: float = 0.95) -> dict[str, float]:
    """Mean, standard deviation and Student-t interval of ``values`` (folds, or subjects), the interval clipped to
    [0, 1] for a metric of ``UNIT_METRICS`` (over few values near ceiling it otherwise reaches past 1); sd and
    interval are NaN for a single value. Keys ``mean, std, ci_low, ci_high, n``."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    sd = float(v.std(ddof=1)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)) if n > 1 else float("nan")
    low, high = float(v.mean()) - half, float(v.mean()) + half
    if metric in UNIT_METRICS and n > 1:
        low, high = max(0.0, low), min(1.0, high)
    return {"mean": float(v.mean()), "std": sd, "ci_low": low, "ci_high": high, "n": n}


def metric_chance(metric: str, labels: Any = None) -> float | None:
    """The chance level of a classification metric for these true labels: 0.5 for ROC-AUC, the majority class's
    share for accuracy, 1 / n_classes for balanced accuracy; None when it depends on labels not given (or for
    another metric)."""
    if metric == "roc_auc":
        return 0.5
    if labels is None or not len(labels):
        return None
    shares = pd.Series(np.asarray(labels)).astype(str).value_counts(normalize=True)
    return {"accuracy": float(shares.max()), "balanced_accuracy": 1.0 / len(shares)}.get(metric)


def imbalanced(labels: Any) -> bool:
    """Whether the smallest class holds under 0.8 of an equal share of ``labels`` (then balanced accuracy, not
    accuracy, is the headline metric, and classifiers weight the classes)."""
    counts = pd.Series(np.asarray(labels)).value_counts()
    return bool(len(counts) > 1 and counts.min() / counts.sum() < 0.8 / len(counts))


def _scores(model: Any, X: np.ndarray) -> np.ndarray | None:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    if hasattr(model, "decision_function"):
        return model.decision_function(X)
    return None


@dataclasses.dataclass
class EvaluationResult:
    """Per-fold scores of one evaluation.

    Attributes
    ----------
    scores : DataFrame
        Columns ``scheme, subject, session, fold, test, n_train, n_test, fit_seconds, predict_seconds, metric,
        value`` (the seconds of the fold's fit, and of its predictions on the test trials).
    trials : DataFrame or None
        One row per test trial of every fold: ``scheme, subject, session, fold, trial`` (the epoch's position in
        its subject's epochs for within-subject folds, in all the epochs for cross-subject ones), ``label``,
        ``prediction`` — what trial-level paired tests (:func:`compare_evaluations`) read.
    baseline : EvaluationResult or None
        The plain baseline evaluated on the same folds (``evaluate(..., baseline=...)``).
    comparison : DataFrame or None
        Pipeline minus baseline per scheme and metric, paired over trials (accuracy, balanced accuracy) or folds
        (the other metrics) (:func:`compare_evaluations`).
    """

    scores: pd.DataFrame
    trials: pd.DataFrame | None = None
    baseline: EvaluationResult | None = None
    comparison: pd.DataFrame | None = None

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Mean, standard deviation and a Student-t confidence interval of each metric over folds.

        The interval of a metric bounded to [0, 1] (accuracy, balanced accuracy, ROC AUC) is clipped to [0, 1]:
        a Student-t interval over few folds near ceiling otherwise reaches past 1.
        """
        rows = []
        for (scheme, metric), grp in self.scores.groupby(["scheme", "metric"], sort=False):
            stat = student_interval(grp["value"], metric, confidence)
            rows.append({"scheme": scheme, "metric": metric, "mean": stat["mean"], "std": stat["std"],
                         "n_folds": stat["n"], "ci_low": stat["ci_low"], "ci_high": stat["ci_high"]})
        return pd.DataFrame(rows)

    def to_json(self, path: str | Path | None = None) -> str:
        out: dict[str, Any] = {"scores": self.scores.to_dict(orient="records"),
                               "summary": self.summary().to_dict(orient="records")}
        if self.trials is not None:
            out["trials"] = self.trials.to_dict(orient="records")
        if self.baseline is not None:
            out["baseline"] = {"scores": self.baseline.scores.to_dict(orient="records"),
                               "summary": self.baseline.summary().to_dict(orient="records"),
                               "comparison": self.comparison.to_dict(orient="records")}
        text = dumps(out, indent=2)      # strict JSON
        if path is not None:
            Path(path).write_text(text)
        return text

    def plot(self, path: str | Path | None = None) -> Any:
        """Per-fold scores (dots), mean with confidence interval (bars) and chance (dashed), one panel per metric.

        Chance is read from the test trials: the majority class's share for accuracy, one over the number of
        classes for balanced accuracy, 0.5 for ROC AUC. Returns the figure; with ``path`` it is saved there and
        closed (:func:`~neurodecode.evaluation.plots.finish_figure`).
        """
        import matplotlib.pyplot as plt

        from neurodecode.evaluation.plots import finish_figure

        summary = self.summary()
        metrics = list(dict.fromkeys(summary["metric"]))
        schemes = list(dict.fromkeys(summary["scheme"]))
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            for k, scheme in enumerate(schemes):
                row = summary[(summary["metric"] == metric) & (summary["scheme"] == scheme)]
                if row.empty:
                    continue
                r = row.iloc[0]
                err = [[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]] if r["n_folds"] > 1 else None
                shift = -0.2 if self.baseline is not None else 0.0
                ax.bar(k + shift, r["mean"], width=0.4 if shift else 0.8, yerr=err, color="tab:blue", alpha=0.6,
                       capsize=4, label="pipeline" if k == 0 else None)
                v = self.scores[(self.scores["metric"] == metric) & (self.scores["scheme"] == scheme)]["value"]
                ax.plot(np.full(len(v), k + shift) + np.linspace(-0.1, 0.1, len(v)), v, "k.", ms=4)
                if self.baseline is not None:
                    b = self.baseline.summary()
                    b = b[(b["metric"] == metric) & (b["scheme"] == scheme)]
                    if len(b):
                        rb = b.iloc[0]
                        eb = [[rb["mean"] - rb["ci_low"]], [rb["ci_high"] - rb["mean"]]] if rb["n_folds"] > 1 else None
                        ax.bar(k + 0.2, rb["mean"], width=0.4, yerr=eb, color="tab:grey", alpha=0.6, capsize=4,
                               label="baseline" if k == 0 else None)
            chance = self._chance(metric)
            if chance is not None:
                ax.axhline(chance, color="tab:red", ls="--", lw=1)
            if self.baseline is not None:
                ax.legend(fontsize=7)
            ax.set_xticks(range(len(schemes)), [s.replace("_", "\n") for s in schemes], fontsize=8)
            ax.set_ylim(0, 1)
            ax.set_title(metric, fontsize=9)
        return finish_figure(fig, path, dpi=100)

    def _chance(self, metric: str) -> float | None:
        labels = None if self.trials is None or "label" not in self.trials else self.trials["label"]
        return metric_chance(metric, labels)


def subject_sets(epochs: EpochSet | EpochCollection) -> dict[str, EpochSet]:
    """One EpochSet per subject: a collection's sets, or an EpochSet split by its table's ``subject`` column (one
    set named ``unknown`` when it has none)."""
    if isinstance(epochs, EpochCollection):
        return dict(epochs.items())
    if isinstance(epochs, EpochSet):
        subjects = epochs.subjects or ["unknown"]
        if len(subjects) == 1:
            return {subjects[0]: epochs}
        return {s: epochs.query("subject == @s", local_dict={"s": s}) for s in subjects}
    fail("epochs", "an EpochSet or EpochCollection", type(epochs).__name__, exc=TypeError)
    raise AssertionError


def _labels(ep: EpochSet, target: str) -> np.ndarray:
    if target not in ep.table.columns:
        fail("target", f"a table column {list(ep.table.columns)}", repr(target))
    y = ep.table[target]
    if y.isna().any():
        fail(f"table['{target}']", "a label for every epoch", f"{int(y.isna().sum())} missing")
    return y.astype(str).to_numpy() if not pd.api.types.is_numeric_dtype(y) else y.to_numpy()


#: set by ``evaluate(..., train_score=True)`` for the folds it runs: also score the training trials
_TRAIN_SCORE: contextvars.ContextVar[bool] = contextvars.ContextVar("train_score", default=False)


def _fit_score(pipeline: Any, X_tr: np.ndarray, y_tr: np.ndarray, X_te: np.ndarray, y_te: np.ndarray,
               base: dict, trial_ids: np.ndarray, trials: list[dict]) -> list[dict]:
    """Fit on the training trials, score the test ones: one row per metric (with the fit and predict seconds), and
    one row per test trial (its label and prediction) appended to ``trials`` — for trial-level paired tests."""
    t0 = time.perf_counter()
    model = clone(pipeline).fit(X_tr, y_tr)
    t1 = time.perf_counter()
    y_pred = model.predict(X_te)
    scores = _scores(model, X_te)
    t2 = time.perf_counter()
    classes = getattr(model, "classes_", np.unique(y_tr))
    out = score_predictions(y_te, y_pred, scores, classes)
    if _TRAIN_SCORE.get():                  # how well it fits what it was trained on (overfitting shows here)
        out["train_accuracy"] = float(np.mean(model.predict(X_tr) == y_tr))
    keys = {k: base[k] for k in _FOLD_KEYS}
    trials += [{**keys, "trial": int(i), "label": t, "prediction": p}
               for i, t, p in zip(np.asarray(trial_ids), np.asarray(y_te).tolist(), np.asarray(y_pred).tolist())]
    timed = {**base, "fit_seconds": t1 - t0, "predict_seconds": t2 - t1}
    return [{**timed, "metric": m, "value": v} for m, v in out.items()]


def _inputs(ep: EpochSet, pipeline: Any) -> Any:
    """What the pipeline is fitted on: the EpochSet itself when its first step takes one (``takes_epochs``: steps
    that read channel names, positions or subjects, and neurodecode's own estimators, whose covariance steps hand
    the table on so that a ``Recenter`` step re-centres each subject), else its data as float64."""
    from neurodecode.encoders.features import takes_epochs

    return ep if takes_epochs(pipeline) else ep.data.astype(np.float64)


#: cross-subject / cross-session alignments of ``evaluate(..., transfer=...)``
TRANSFERS = ("recenter", "rpa", "procrustes")


def evaluate(epochs: EpochSet | EpochCollection, pipeline: Any, scheme: str = "within_session", *,
             target: str = "label", n_splits: int = 5, seed: int = 42, recenter: bool = False,
             transfer: str | None = None, n_calibration: int = 0, baseline: Any = None,
             baseline_name: str = "baseline", train_score: bool = False,
             name: str = "pipeline") -> EvaluationResult:
    """Evaluate a scikit-learn pipeline on epochs (and, with ``baseline``, the plain reference on the same folds).

    Parameters
    ----------
    epochs : EpochSet or EpochCollection
        The table's ``subject`` and ``session`` columns define the units; ``target`` holds the labels.
    pipeline : estimator
        Takes ``(n_epochs, n_channels, n_times)`` arrays, e.g. ``make_recipe("tangent_space")`` followed by a
        classifier.
    scheme : {"within_session", "within_subject", "cross_session", "cross_subject"}
        ``within_session``: stratified k-fold (shuffled with ``seed``) inside each subject × session;
        ``within_subject``: the same inside each subject, its sessions pooled (session ``"all"``: MOABB's
        within-session evaluation of a set whose recordings it reads as runs of one session);
        ``cross_session``: leave one session out inside each subject (subjects with one session are skipped);
        ``cross_subject``: leave one subject out (all subjects need the same channels).
    transfer : {None, "recenter", "rpa", "procrustes"}
        Cross-session/cross-subject only: align the units (sessions or subjects) after the pipeline's covariance
        step (found inside nested pipelines too). The covariance step is fitted on the training units (with their
        labels when it is supervised, e.g. xDAWN), then applied to every unit.
        ``recenter``: each unit re-centred at the identity on its own epochs (Zanini et al. 2018; unlabeled);
        ``rpa``: re-centre, stretch to unit dispersion, rotate every training unit's class means onto the test
        unit's (Riemannian Procrustes analysis, Rodrigues et al. 2019; pyRiemann's TLCenter/TLScale/TLRotate);
        ``procrustes``: re-centre, tangent space, rotate every training unit's tangent vectors onto the test
        unit's anchors (Bleuzé et al. 2022; the step after the covariances must be a TangentSpace).
    recenter : bool
        Shorthand for ``transfer="recenter"``.
    n_calibration : int
        Labelled calibration trials per class taken from the test unit (seeded with ``seed``): they fit the test
        unit's alignment, join the training set, and are not scored. Needed by ``rpa`` and ``procrustes``. With
        ``0`` (``recenter``), the test unit is re-centred on all its epochs, unlabeled.
    baseline : estimator, optional
        The plain reference (e.g. ``recipe_classifier("tangent_space")``), evaluated with the same scheme,
        transfer, calibration trials and folds; the result then carries it and the paired comparison.
    baseline_name : its label in the comparison.
    name : the pipeline's label in the comparison (e.g. ``"EEGNet (braindecode)"``).
    train_score : bool
        Also score each fold's training trials (metric ``train_accuracy``), as scikit-learn's
        ``return_train_score``: a model that fits its training folds but not the test ones overfits.

    Returns
    -------
    EvaluationResult
    """
    if scheme not in SCHEMES:
        fail("scheme", f"one of {list(SCHEMES)}", repr(scheme))
    if recenter:
        if transfer not in (None, "recenter"):
            fail("recenter", f"False with transfer={transfer!r} (recenter=True means transfer='recenter')", True)
        transfer = "recenter"
    if transfer is not None and transfer not in TRANSFERS:
        fail("transfer", f"None or one of {list(TRANSFERS)}", repr(transfer))
    if (transfer or n_calibration) and scheme.startswith("within"):
        field = "recenter" if recenter else ("transfer" if transfer else "n_calibration")
        fail(field, f"{'True' if recenter else 'a value'} only with scheme='cross_subject' or 'cross_session'",
             f"scheme={scheme!r}")
    if not isinstance(n_calibration, (int, np.integer)) or n_calibration < 0:
        fail("n_calibration", "a number of labelled trials per class ≥ 0", repr(n_calibration))
    if transfer in ("rpa", "procrustes") and n_calibration < 1:
        fail("n_calibration", f"at least 1 labelled calibration trial per class of the test unit for "
             f"transfer={transfer!r} (its rotation matches class means)", n_calibration)
    sets = subject_sets(epochs)
    token = _TRAIN_SCORE.set(bool(train_score))
    try:
        result = _run_scheme(sets, pipeline, scheme, target, transfer, int(n_calibration), n_splits, seed)
        if baseline is not None:
            result.baseline = _run_scheme(sets, baseline, scheme, target, transfer, int(n_calibration), n_splits,
                                          seed)
    finally:
        _TRAIN_SCORE.reset(token)
    if baseline is not None:
        result.comparison = compare_evaluations(result, result.baseline, names=(name, baseline_name),
                                                seed=seed)
    return result


def _run_scheme(sets: dict[str, EpochSet], pipeline: Any, scheme: str, target: str, transfer: str | None,
                n_calibration: int, n_splits: int, seed: int) -> EvaluationResult:
    trials: list[dict] = []
    if scheme.startswith("within"):
        rows = _within_session(sets, pipeline, target, n_splits, seed, trials, pooled=scheme == "within_subject")
    elif scheme == "cross_session":
        rows = _cross_session(sets, pipeline, target, transfer, n_calibration, seed, trials)
    else:
        rows = _cross_subject(sets, pipeline, target, transfer, n_calibration, seed, trials)
    return EvaluationResult(pd.DataFrame(rows), trials=pd.DataFrame(trials, columns=TRIAL_COLUMNS))


class LeaveOneSubjectOut:
    """scikit-learn splitter that leaves one subject out, reading each epoch's subject from the EpochSet (or
    ``mne.Epochs`` metadata, or covariance output) it is handed: the inner folds of a model selection inside a
    cross-subject evaluation, e.g. ``GridSearchCV(pipeline, grid, cv=LeaveOneSubjectOut())`` — chosen on the
    training subjects only, never on the held-out one.

    Parameters
    ----------
    column : str
        Table column holding the subject.
    """

    def __init__(self, column: str = "subject") -> None:
        self.column = column

    def _groups(self, X: Any, groups: Any) -> np.ndarray:
        from neurodecode.encoders.inputs import table_of

        if groups is not None:
            return np.asarray(groups).astype(str)
        table = table_of(X)
        if table is None or self.column not in table.columns:
            fail("X", f"epochs whose table has a {self.column!r} column (an EpochSet; a pipeline reading it, e.g. "
                      "TimeWindow first)", type(X).__name__, exc=TypeError)
        return table[self.column].astype(str).to_numpy()

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return len(np.unique(self._groups(X, groups)))

    def split(self, X: Any, y: Any = None, groups: Any = None):
        g = self._groups(X, groups)
        subjects = pd.unique(g)
        if len(subjects) < 2:
            fail("X", "epochs of at least 2 subjects to leave one out", list(subjects))
        for s in subjects:
            yield np.flatnonzero(g != s), np.flatnonzero(g == s)

    def __repr__(self) -> str:
        return f"LeaveOneSubjectOut(column={self.column!r})"


#: the metrics a classification verdict reads, in this order, trial-level comparisons first (when scored)
VERDICT_METRICS = ("balanced_accuracy", "accuracy", "roc_auc")

#: metrics compared trial by trial when both results hold their trials
TRIAL_METRICS = ("accuracy", "balanced_accuracy")



def _trial_weights(trials: pd.DataFrame, metric: str) -> np.ndarray:
    """Each test trial's weight in the fold-mean ``metric``: ``1 / (n_folds · n_fold)`` for accuracy,
    ``1 / (n_folds · n_classes_fold · n_fold_class)`` for balanced accuracy — so that the weighted sum of the
    trials' correctness (1 or 0) equals the metric's mean over folds (the summary's value)."""
    fold = trials.groupby(_FOLD_KEYS, sort=False).ngroup().to_numpy()
    n_folds = fold.max() + 1
    if metric == "accuracy":
        return 1.0 / (n_folds * np.bincount(fold)[fold])
    labels = trials["label"].astype(str)
    per_class = trials.assign(label=labels).groupby([*_FOLD_KEYS, "label"], sort=False)["trial"].transform("size")
    n_classes = trials.assign(label=labels).groupby(_FOLD_KEYS, sort=False)["label"].transform("nunique")
    return 1.0 / (n_folds * n_classes.to_numpy() * per_class.to_numpy())


def _paired_trials(result: EvaluationResult, baseline: EvaluationResult) -> pd.DataFrame | None:
    """Both results' trials side by side (``prediction`` and ``prediction_baseline``); None when either lacks them;
    an error when both have them and they are not the same test trials (their folds would not be the same)."""
    a, b = result.trials, baseline.trials
    if a is None or b is None or a.empty or b.empty:
        return None
    keys = [*_FOLD_KEYS, "trial"]
    both = a.merge(b[[*keys, "label", "prediction"]], on=keys, suffixes=("", "_baseline"))
    if len(both) != len(a) or len(a) != len(b) or not (
            both["label"].astype(str) == both["label_baseline"].astype(str)).all():
        fail("baseline", "an evaluation of the same test trials as the pipeline's (same epochs, labels and folds)",
             f"{len(both)} of {len(a)} trials matched (baseline: {len(b)})")
    return both


def compare_evaluations(result: EvaluationResult, baseline: EvaluationResult, *,
                        names: tuple[str, str] = ("pipeline", "baseline"), seed: int = 0) -> pd.DataFrame:
    """Pipeline minus baseline for each scheme and metric, paired over the same test trials or folds.

    Accuracy and balanced accuracy are compared trial by trial when both results hold their trials (the same test
    trials of the same folds): each trial's weighted correctness (``_trial_weights``: their mean is the metric's
    mean over folds) paired between the two pipelines — a bootstrap interval over trials and a sign-flip p-value
    (the exact McNemar-type test of :func:`~neurodecode.core.scores.paired_difference`), which can reach small
    values: with n discordant trials the smallest is about 2^(1-n). Trials of one subject are not independent, so
    read a trial-level p-value as the test of these trials, not of a population of subjects. The other metrics
    (ROC-AUC) are paired over folds; with few folds their p-value cannot be small: 5 folds give at least 1/16.

    Returns
    -------
    DataFrame
        ``scheme`` + :data:`~neurodecode.core.scores.COLUMNS` + ``unit`` (``"trials"`` or ``"folds"``; ``kind``
        is ``"classification"``, ``n_items`` the trials or folds).
    """
    from neurodecode.core.scores import COLUMNS, paired_difference

    keys = ["scheme", "subject", "session", "fold", "test", "metric"]
    both = result.scores.merge(baseline.scores[[*keys, "value"]], on=keys, suffixes=("", "_baseline"))
    if len(both) != len(result.scores):
        fail("baseline", "scores on the same folds as the pipeline's", f"{len(both)} of {len(result.scores)} matched")
    trials = _paired_trials(result, baseline)
    rows = []
    for (scheme, metric), grp in both.groupby(["scheme", "metric"], sort=False):
        if len(grp) < 2:
            continue
        head = {"scheme": scheme, "kind": "classification", "metric": metric, "pipeline": names[0],
                "baseline_name": names[1]}
        if trials is not None and metric in TRIAL_METRICS:
            t = trials[trials["scheme"] == scheme]
            w = _trial_weights(t, metric) * len(t)     # per-trial values whose mean is the fold-mean metric
            mine = w * (t["label"].astype(str) == t["prediction"].astype(str)).to_numpy()
            theirs = w * (t["label"].astype(str) == t["prediction_baseline"].astype(str)).to_numpy()
            rows.append({**head, **paired_difference(mine, theirs, seed=seed), "unit": "trials"})
        else:
            rows.append({**head, **paired_difference(grp["value"], grp["value_baseline"], seed=seed),
                         "unit": "folds"})
    return pd.DataFrame(rows, columns=["scheme", *COLUMNS, "unit"])


def evaluation_verdict(comparison: pd.DataFrame) -> tuple[bool, str]:
    """:func:`~neurodecode.core.scores.verdict` on the first of :data:`VERDICT_METRICS` compared trial by trial,
    else the first compared over folds."""
    from neurodecode.core.scores import verdict

    units = comparison["unit"] if "unit" in comparison.columns else pd.Series("folds", index=comparison.index)
    for unit in ("trials", "folds"):
        present = set(comparison.loc[units == unit, "metric"])
        metric = next((m for m in VERDICT_METRICS if m in present), None)
        if metric is not None:
            return verdict(comparison[units == unit], metric)
    fail("comparison", f"a compared metric among {VERDICT_METRICS} (at least 2 folds)",
         sorted(set(comparison["metric"])))
    raise AssertionError


def session_splits(ep: EpochSet, target: str, n_splits: int, seed: int, pooled: bool = False) -> Any:
    """The within-session folds of one subject's epochs: ``(session, mask, y, fold, train, test)`` — stratified
    ``n_splits``-fold (shuffled with ``seed``) inside each session (all sessions together with ``pooled``); ``y``
    are the session's labels, ``train``/``test`` index the session's epochs (``ep[mask]``). Every within-session
    evaluation uses these."""
    sessions = (pd.Series("all", index=ep.table.index) if pooled else ep.table["session"].fillna("1").astype(str))
    labels = _labels(ep, target)
    for session in pd.unique(sessions):
        mask = (sessions == session).to_numpy()
        y = labels[mask]
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for fold, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y)):
            yield session, mask, y, fold, tr, te


def joined_subjects(sets: Mapping[str, EpochSet]) -> EpochSet:
    """The subjects' epochs as one EpochSet for leave-one-subject-out: at least two subjects, each with the first
    one's channels and n_times (an error naming the subject and the difference otherwise)."""
    if len(sets) < 2:
        fail("epochs", "at least two subjects for cross_subject", f"{list(sets)}")
    first = next(iter(sets.values()))
    for s, ep in sets.items():
        if ep.channels.names != first.channels.names or ep.n_times != first.n_times:
            fail(f"epochs[{s!r}]", "the channels and n_times of the first subject for cross_subject (harmonise them "
                 "first)", "; ".join(ep.channels.differences(first.channels)) or f"n_times {ep.n_times} vs "
                 f"{first.n_times}")
    return concatenate([ep.replace(provenance=first.provenance) for ep in sets.values()])


def _within_session(sets: dict[str, EpochSet], pipeline: Any, target: str, n_splits: int, seed: int,
                    trials: list[dict], pooled: bool = False) -> list[dict]:
    rows: list[dict] = []
    scheme = "within_subject" if pooled else "within_session"
    for subject, ep in sets.items():
        inputs: dict = {}
        for session, mask, y, fold, tr, te in session_splits(ep, target, n_splits, seed, pooled):
            if session not in inputs:                      # the session's inputs, made once for its folds
                inputs[session] = (_inputs(ep[mask], pipeline), np.flatnonzero(mask))
            X, index = inputs[session]
            base = {"scheme": scheme, "subject": subject, "session": session, "fold": fold,
                    "test": f"fold {fold}", "n_train": len(tr), "n_test": len(te)}
            rows += _fit_score(pipeline, X[tr], y[tr], X[te], y[te], base, index[te], trials)
    return rows


def calibration_trials(y: np.ndarray, test: np.ndarray, n_per_class: int, seed: int, unit: str = "") -> np.ndarray:
    """Mask of ``n_per_class`` trials of each class drawn (seeded) from the test unit ``test`` (a boolean mask)."""
    cal = np.zeros(len(y), dtype=bool)
    if n_per_class == 0:
        return cal
    rng = np.random.default_rng(seed)
    for c in np.unique(y[test]):
        idx = np.flatnonzero(test & (y == c))
        if len(idx) <= n_per_class:
            fail("n_calibration", f"fewer trials per class than {unit or 'the test unit'} has (class {c!r}: "
                 f"{len(idx)}), so that some are left to score", n_per_class)
        cal[rng.choice(idx, n_per_class, replace=False)] = True
    return cal


def _aligned(pipeline: Any, transfer: str | None, X: np.ndarray, y: np.ndarray, units: np.ndarray,
             train: np.ndarray, test_unit: str, n_calibration: int, cache: dict) -> tuple[np.ndarray, Any]:
    """The inputs of every epoch after the alignment of one fold, and the rest of the pipeline to fit on them."""
    if transfer is None:
        return X, pipeline
    from neurodecode.encoders.riemann import Procrustes, Recenter, Rotate, Stretch, TangentSpace

    covariances, rest = split_at_covariances(pipeline)
    if getattr(covariances.steps[-1][1], "supervised", False):
        # fitted on the training units with their labels, never on the test unit's uncalibrated epochs
        C = clone(covariances).fit(X[train], y[train]).transform(X)
    else:
        if "C" not in cache:  # learns nothing from the epochs: the same for every fold
            cache["C"] = clone(covariances).fit(X).transform(X)
        C = cache["C"]
    if C.ndim != 3:
        fail("transfer", "a covariance step that outputs one matrix per epoch (n_epochs, n, n)",
             f"{type(covariances.steps[-1][1]).__name__} with output shape {C.shape}", exc=TypeError)
    # a unit's alignment is fitted on its epochs in the training set; without calibration the test unit is
    # re-centred on all its (unlabeled) epochs
    fit_on = train if n_calibration else np.ones(len(y), dtype=bool)
    C = Recenter().fit(C[fit_on], groups=units[fit_on]).transform(C, groups=units)
    if transfer == "rpa":
        C = Stretch().fit(C[fit_on], groups=units[fit_on]).transform(C, groups=units)
        C = Rotate(reference=test_unit).fit(C[train], y[train], units[train]).transform(C, groups=units)
    if transfer != "procrustes":
        return C, rest
    if len(rest.steps) < 2 or not isinstance(rest.steps[0][1], TangentSpace):
        fail("pipeline", "a TangentSpace step right after the covariance step, then a classifier, for "
             "transfer='procrustes'", " → ".join(type(e).__name__ for _, e in rest.steps), exc=TypeError)
    T = clone(rest.steps[0][1]).fit(C[train]).transform(C)
    T = Procrustes(reference=test_unit).fit(T[train], y[train], units[train]).transform(T, units)
    return T, Pipeline(rest.steps[1:])


def _transfer_rows(base: dict, pipeline: Any, transfer: str | None, X: np.ndarray, y: np.ndarray,
                   units: np.ndarray, test_unit: str, n_calibration: int, seed: int, cache: dict,
                   trials: list[dict]) -> list[dict]:
    te = units == test_unit
    cal = calibration_trials(y, te, n_calibration, seed, unit=f"{base['test']}")
    train, test = ~te | cal, te & ~cal
    Z, model = _aligned(pipeline, transfer, X, y, units, train, test_unit, n_calibration, cache)
    base = {**base, "n_train": int(train.sum()), "n_test": int(test.sum()), "n_calibration": n_calibration}
    return _fit_score(model, Z[train], y[train], Z[test], y[test], base, np.flatnonzero(test), trials)


def _scheme_name(scheme: str, transfer: str | None) -> str:
    return scheme + (f"+{transfer}" if transfer else "")


def _cross_session(sets: dict[str, EpochSet], pipeline: Any, target: str, transfer: str | None, n_calibration: int,
                   seed: int, trials: list[dict]) -> list[dict]:
    rows: list[dict] = []
    for subject, ep in sets.items():
        sessions = ep.table["session"].astype(str).to_numpy()
        uniq = list(pd.unique(sessions))
        if len(uniq) < 2:
            continue
        X, y = _inputs(ep, pipeline), _labels(ep, target)
        cache: dict = {}
        for fold, session in enumerate(uniq):
            base = {"scheme": _scheme_name("cross_session", transfer), "subject": subject, "session": session,
                    "fold": fold, "test": f"session {session}"}
            rows += _transfer_rows(base, pipeline, transfer, X, y, sessions, session, n_calibration, seed, cache,
                                   trials)
    if not rows:
        fail("epochs", "a subject with at least two sessions for cross_session", "none")
    return rows


def _cross_subject(sets: dict[str, EpochSet], pipeline: Any, target: str, transfer: str | None, n_calibration: int,
                   seed: int, trials: list[dict]) -> list[dict]:
    all_ep = joined_subjects(sets)
    X, y = _inputs(all_ep, pipeline), _labels(all_ep, target)
    subj = all_ep.table["subject"].astype(str).to_numpy()
    rows: list[dict] = []
    cache: dict = {}
    for fold, subject in enumerate(sets):
        base = {"scheme": _scheme_name("cross_subject", transfer), "subject": subject, "session": "all",
                "fold": fold, "test": f"subject {subject}"}
        rows += _transfer_rows(base, pipeline, transfer, X, y, subj, str(subject), n_calibration, seed, cache,
                               trials)
    return rows


def _leaf_steps(pipeline: Any) -> list[tuple[str, Any]]:
    """The steps of a (nested) Pipeline, flattened: ``make_pipeline(make_recipe(...), clf)`` → cov, ts, clf."""
    if not isinstance(pipeline, Pipeline):
        return [(type(pipeline).__name__.lower(), pipeline)]
    out: list[tuple[str, Any]] = []
    for name, step in pipeline.steps:
        out += _leaf_steps(step) if isinstance(step, Pipeline) else [(name, step)]
    return out


def split_at_covariances(pipeline: Any) -> tuple[Pipeline, Pipeline]:
    """A pipeline cut after its first covariance step (which outputs SPD matrices), nested pipelines included:
    (the steps up to the covariances, the rest)."""
    from neurodecode.encoders.riemann import AugmentedCovariances, Covariances, FilterBankCovariances

    steps = _leaf_steps(pipeline)
    k = next((i for i, (_, est) in enumerate(steps)
              if isinstance(est, (Covariances, AugmentedCovariances, FilterBankCovariances))), None)
    if k is None or k == len(steps) - 1:
        fail("pipeline", "a Pipeline with a covariance step (Covariances, AugmentedCovariances, "
             "FilterBankCovariances) followed by more steps when transfer (or recenter) is set",
             " → ".join(type(e).__name__ for _, e in steps), exc=TypeError)
    return Pipeline(steps[:k + 1]), Pipeline(steps[k + 1:])


def recipe_classifier(recipe: str, overrides: Sequence[str] = (), *, sfreq: float | None = None,
                      C: float = 1.0, class_weight: str | None = None) -> Pipeline:
    """A feature recipe of ``conf/features`` (with ``key=value`` overrides) followed by logistic regression — the
    plain decoder that ``neurodecode evaluate`` scores (``class_weight="balanced"`` for imbalanced classes)."""
    from sklearn.linear_model import LogisticRegression

    from neurodecode.encoders.features import load_recipe_config, make_recipe

    params = load_recipe_config(recipe, overrides, sfreq=sfreq)
    name = params.pop("name")
    lr = LogisticRegression(C=C, max_iter=1000, class_weight=class_weight)
    return Pipeline(make_recipe(name, **params).steps + [("lr", lr)])


#: paradigm → its plain recipe (``conf/features`` name, overrides): the default of ``neurodecode evaluate``
PARADIGM_RECIPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "erp": ("xdawn_tangent_space", ()),                        # evoked responses: xDAWN super-trial covariances
    "ssvep": ("tangent_space", ("estimator=scm",)),            # power in the filter bank's stacked bands
    "oscillatory": ("tangent_space", ("estimator=oas",)),      # motor imagery, rhythms, resting states
}


@dataclasses.dataclass(frozen=True)
class ParadigmDefaults:
    """What a classification of these epochs defaults to, and why.

    Attributes
    ----------
    paradigm : {"erp", "ssvep", "oscillatory"}
    reason : str
        What it was read or inferred from (``table['paradigm']``, a ``filter_bank`` step, the labels, the window).
    recipe, overrides : the plain recipe (:data:`PARADIGM_RECIPES`).
    class_weight : "balanced" when the smallest class holds under 0.8 of an equal share, else None.
    metric : the headline metric: ``balanced_accuracy`` for imbalanced classes, else ``accuracy``.
    """

    paradigm: str
    reason: str
    recipe: str
    overrides: tuple[str, ...]
    class_weight: str | None
    metric: str


def paradigm_defaults(epochs: EpochSet | EpochCollection, target: str = "label") -> ParadigmDefaults:
    """The paradigm of ``epochs`` — declared in a ``paradigm`` table column (``erp``, ``ssvep``, ``oscillatory`` or
    ``motor_imagery``), else inferred: a ``filter_bank`` preprocessing step or labels naming frequencies (``13``,
    ``13Hz``) → SSVEP; epochs that start before the event and last at most 1.5 s → ERP; otherwise oscillatory — and
    the recipe, class weighting and headline metric that follow from it and from the class balance."""
    from neurodecode.loaders.preprocessing import ssvep_frequencies

    sets = subject_sets(epochs)
    first = next(iter(sets.values()))
    table = pd.concat([ep.table for ep in sets.values()], ignore_index=True)
    if "paradigm" in table.columns and table["paradigm"].notna().any():
        declared = {str(v).lower() for v in table["paradigm"].dropna()}
        declared = {"oscillatory" if v == "motor_imagery" else v for v in declared}
        if len(declared) != 1 or not declared <= set(PARADIGM_RECIPES):
            fail("table['paradigm']", f"one of {sorted(PARADIGM_RECIPES)} (or motor_imagery) for every epoch",
                 sorted(declared))
        paradigm, reason = declared.pop(), "declared in table['paradigm']"
    else:
        labels = [v for v in pd.unique(table[target].dropna())]
        try:
            freqs = ssvep_frequencies(labels)
        except ValueError:
            freqs = []
        duration = first.n_times / first.sfreq
        if any(step.get("step") == "filter_bank" for step in first.processing):
            paradigm, reason = "ssvep", "a filter_bank step in the preprocessing"
        elif len(freqs) >= 2:
            paradigm, reason = "ssvep", f"labels naming stimulation frequencies {freqs} Hz"
        elif first.tmin < 0 and duration <= 1.5:
            paradigm, reason = "erp", (f"epochs from {first.tmin:g} s around the event, {duration:.2g} s long "
                                       "(event-related)")
        else:
            paradigm, reason = "oscillatory", (f"epochs from {first.tmin:g} s, {duration:.2g} s long, labels "
                                               f"{[str(v) for v in labels][:4]}")
    unbalanced = imbalanced(table[target])
    recipe, overrides = PARADIGM_RECIPES[paradigm]
    return ParadigmDefaults(paradigm, reason, recipe, overrides, "balanced" if unbalanced else None,
                            "balanced_accuracy" if unbalanced else "accuracy")
