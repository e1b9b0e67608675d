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

__all__ = ["finish_figure", "plot_confusion_matrix", "plot_roc_curve"]


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
    ax : matplotlib.axes.Axes or None
        Draw into these axes; default: a new figure.
    path : str or Path or None
        Save the figure there (see :func:`finish_figure`).

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
    ax : matplotlib.axes.Axes or None
        Draw into these axes; default: a new figure.
    path : str or Path or None
        Save the figure there (see :func:`finish_figure`).

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
