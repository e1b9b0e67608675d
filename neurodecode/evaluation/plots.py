"""Figures a decoding paper shows: scores with intervals and chance, confusion matrices, ROC curves.

Every function draws with matplotlib (imported when called), returns its :class:`~matplotlib.figure.Figure`, and
saves it when given a ``path`` (the figure is then closed, as a command-line run wants); without a path the figure
stays open for a notebook or the documentation's gallery to show. The drawing of confusion matrices and ROC curves
is scikit-learn's (``ConfusionMatrixDisplay``, ``RocCurveDisplay``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from neurodecode.core.docs import fill_doc

__all__ = ["finish_figure", "plot_confusion_matrix", "plot_roc_curve", "plot_scores_over_time",
           "plot_temporal_generalization"]


def finish_figure(fig: Any, path: str | Path | None = None, dpi: int = 110) -> Any:
    """Lay out ``fig``; with ``path``, save it there and close it. Returns ``fig``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or Path or None
        Where to write it (the format from the suffix: ``.png``, ``.pdf``, ``.svg``); None keeps it open.
    dpi : int
        Resolution of raster formats.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    fig.tight_layout()
    if path is not None:
        import matplotlib.pyplot as plt

        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig


def _axes(ax: Any, size: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


@fill_doc
def plot_confusion_matrix(y_true: Sequence[Any], y_pred: Sequence[Any], classes: Sequence[Any] | None = None, *,
                          normalize: bool = True, title: str | None = None, ax: Any = None,
                          path: str | Path | None = None) -> Any:
    """The confusion matrix of predicted against true classes (scikit-learn's ``ConfusionMatrixDisplay``).

    Parameters
    ----------
    y_true, y_pred : sequence, shape (n_trials,)
        True and predicted classes, e.g. ``result.trials["label"]`` and ``result.trials["prediction"]`` of an
        :class:`~neurodecode.evaluation.EvaluationResult`.
    classes : sequence or None
        The classes in display order; default: the sorted union of both.
    normalize : bool
        Rows as proportions of each true class (True) or counts.
    title : str or None
        The axes' title; default: the accuracy and balanced accuracy.
    %(ax)s
    %(path)s

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from sklearn.metrics import ConfusionMatrixDisplay, balanced_accuracy_score

    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or not len(y_true):
        raise ValueError(f"field 'y_true'/'y_pred': expected two non-empty 1D sequences of one length, got "
                         f"{y_true.shape} and {y_pred.shape}")
    labels = [str(c) for c in classes] if classes is not None else sorted(set(y_true) | set(y_pred))
    fig, ax = _axes(ax, (3.6, 3.2))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=labels, normalize="true" if normalize else None,
                                            ax=ax, colorbar=False, cmap="Blues",
                                            values_format=".2f" if normalize else "d")
    if title is None:
        title = (f"accuracy {np.mean(y_true == y_pred):.3f}, balanced "
                 f"{balanced_accuracy_score(y_true, y_pred):.3f} (n = {len(y_true)})")
    ax.set_title(title, fontsize=9)
    return finish_figure(fig, path)


@fill_doc
def plot_roc_curve(y_true: Sequence[Any], scores: np.ndarray, positive: Any = None, *, name: str | None = None,
                   ax: Any = None, path: str | Path | None = None) -> Any:
    """The ROC curve of a two-class decoder (scikit-learn's ``RocCurveDisplay``), with the chance diagonal.

    Parameters
    ----------
    y_true : sequence, shape (n_trials,)
        True classes (two distinct values).
    scores : ndarray, shape (n_trials,)
        A score that grows with the positive class (``decision_function``, or ``predict_proba[:, 1]``).
    positive : object or None
        The positive class; default: the larger of the two sorted class names.
    name : str or None
        The curve's legend label (the area under it is appended).
    %(ax)s
    %(path)s

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from sklearn.metrics import RocCurveDisplay

    y_true = np.asarray(y_true).astype(str)
    scores = np.asarray(scores, dtype=np.float64)
    classes = sorted(set(y_true))
    if len(classes) != 2:
        raise ValueError(f"field 'y_true': a ROC curve needs two classes, got {len(classes)}: {classes[:5]}")
    if scores.shape != y_true.shape or not np.isfinite(scores).all():
        raise ValueError(f"field 'scores': expected {y_true.shape} finite scores, got shape {scores.shape}")
    positive = classes[1] if positive is None else str(positive)
    if positive not in classes:
        raise ValueError(f"field 'positive': {positive!r} is not one of the classes {classes}")
    fig, ax = _axes(ax, (3.4, 3.4))
    RocCurveDisplay.from_predictions(y_true == positive, scores, name=name, ax=ax, plot_chance_level=True)
    ax.set_title(f"ROC, positive class {positive!r}", fontsize=9)
    return finish_figure(fig, path)


@fill_doc
def plot_scores_over_time(times: np.ndarray, scores: np.ndarray, interval: tuple[np.ndarray, np.ndarray] | None = None,
                          *, metric: str = "score", chance: float | None = None, label: str | None = None,
                          title: str | None = None, ax: Any = None, path: str | Path | None = None) -> Any:
    """A decoding score against time: the curve, its interval as a band, the chance level and the event at 0 s.

    Parameters
    ----------
    times : ndarray, shape (n_times,)
        Seconds relative to the event.
    scores : ndarray, shape (n_times,)
        The mean score at each time.
    interval : (ndarray, ndarray) or None
        Lower and upper bounds, each ``(n_times,)`` (e.g. a 95 % interval over subjects); NaN bounds are not drawn.
    metric : str
        The y-axis label.
    chance : float or None
        Drawn as a dashed line.
    label : str or None
        The curve's legend label.
    title : str or None
    %(ax)s
    %(path)s

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    times, scores = np.asarray(times, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if times.ndim != 1 or scores.shape != times.shape:
        raise ValueError(f"field 'scores': expected one score per time {times.shape}, got shape {scores.shape}")
    fig, ax = _axes(ax, (6.0, 3.0))
    ax.plot(times, scores, color="tab:blue", label=label)
    if interval is not None:
        low, high = (np.asarray(v, dtype=np.float64) for v in interval)
        if low.shape != times.shape or high.shape != times.shape:
            raise ValueError(f"field 'interval': expected two arrays of shape {times.shape}, got {low.shape}, "
                             f"{high.shape}")
        if np.isfinite(low).any():
            ax.fill_between(times, low, high, color="tab:blue", alpha=0.2, lw=0, label="95 % interval")
    if chance is not None:
        ax.axhline(chance, color="tab:red", ls="--", lw=1, label="chance")
    if times[0] <= 0 <= times[-1]:
        ax.axvline(0.0, color="k", lw=0.8)
    ax.set(xlabel="time (s)", ylabel=metric, title=title)
    if label or interval is not None or chance is not None:
        ax.legend(fontsize=8, loc="best")
    return finish_figure(fig, path)


@fill_doc
def plot_temporal_generalization(matrix: np.ndarray, times: np.ndarray, *, metric: str = "score",
                                 chance: float = 0.5, title: str | None = None, ax: Any = None,
                                 path: str | Path | None = None) -> Any:
    """A temporal-generalisation matrix: the classifier trained at each time (rows, y axis) tested at each time
    (columns, x axis), the colour scale centred on chance (as in MNE's tutorial).

    Parameters
    ----------
    matrix : ndarray, shape (n_times, n_times)
        ``matrix[i, j]``: trained at ``times[i]``, tested at ``times[j]``.
    times : ndarray, shape (n_times,)
    metric : str
        The colour bar's label.
    chance : float
        The centre of the diverging colour scale.
    title : str or None
    %(ax)s
    %(path)s

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    times, matrix = np.asarray(times, dtype=np.float64), np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (len(times), len(times)):
        raise ValueError(f"field 'matrix': expected shape (n_times, n_times) = ({len(times)}, {len(times)}), got "
                         f"{matrix.shape}")
    fig, ax = _axes(ax, (4.2, 3.6))
    span = float(np.nanmax(np.abs(matrix - chance))) or 0.5
    im = ax.imshow(matrix, origin="lower", cmap="RdBu_r", vmin=chance - span, vmax=chance + span,
                   extent=(times[0], times[-1], times[0], times[-1]), aspect="auto", interpolation="nearest")
    if times[0] <= 0 <= times[-1]:
        ax.axvline(0.0, color="k", lw=0.6)
        ax.axhline(0.0, color="k", lw=0.6)
    ax.plot([times[0], times[-1]], [times[0], times[-1]], color="k", lw=0.6, ls=":")
    ax.set(xlabel="testing time (s)", ylabel="training time (s)", title=title or "temporal generalisation")
    fig.colorbar(im, ax=ax, label=metric)
    return finish_figure(fig, path)
