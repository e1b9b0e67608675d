"""What a linear decoder looks at: Haufe patterns, as scalp topographies (MNE) and brain maps (nilearn).

A linear decoder's weights (its *filters*) are not interpretable as brain activity: they also cancel noise, so a
channel can weigh heavily without carrying any signal. Haufe et al. (2014) turn them into *patterns* — the forward
model ``cov(X) w`` — which show where the decoded signal is. :func:`linear_patterns` fits MNE's
:class:`mne.decoding.LinearModel` (vectorised epochs → standardisation → the classifier) and reads both with
:func:`mne.decoding.get_coef` back in the epochs' layout ``(n_channels, n_times)``; :class:`LinearPatterns` draws
them as topomaps at chosen times (EEG/MEG, through :func:`neurodecode.to_mne`) or as a NIfTI image for nilearn's
glass brain (fMRI voxels, through :func:`neurodecode.loaders.fmri.to_nifti`). :func:`searchlight` maps where
information is with nilearn's :class:`nilearn.decoding.SearchLight` (Kriegeskorte et al. 2006) on voxel epochs, and
:func:`whole_brain_decoder` fits nilearn's ``Decoder`` or ``FREMClassifier`` on them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.core.epochs import EpochSet
from neurodecode.core.validation import fail

__all__ = ["LinearPatterns", "linear_patterns", "searchlight", "whole_brain_decoder"]


@dataclasses.dataclass
class LinearPatterns:
    """Haufe patterns and filters of a fitted linear decoder, in the epochs' layout.

    Attributes
    ----------
    patterns, filters : ndarray, shape (n_outputs, n_channels, n_times)
        One map per decision function (1 for two classes: the positive class is ``classes[1]``; one per class
        otherwise), in the data's units (the standardisation undone).
    classes : ndarray, shape (n_classes,)
    epochs : EpochSet
        The epochs it was fitted on (channels, positions, times, voxel grid).
    """

    patterns: np.ndarray
    filters: np.ndarray
    classes: np.ndarray
    epochs: EpochSet

    def _maps(self, kind: str, output: int) -> np.ndarray:
        if kind not in ("patterns", "filters"):
            fail("kind", "'patterns' or 'filters'", kind)
        maps = self.patterns if kind == "patterns" else self.filters
        if not 0 <= output < len(maps):
            fail("output", f"an index below {len(maps)} (the decision functions)", output)
        return maps[output]

    def to_evoked(self, kind: str = "patterns", output: int = 0) -> Any:
        """The maps as an ``mne.EvokedArray`` (EEG/MEG channels with their positions), for MNE's plots."""
        import mne

        from neurodecode.core.mne_convert import to_mne

        info = to_mne(self.epochs[:1]).info
        return mne.EvokedArray(self._maps(kind, output), info, tmin=self.epochs.tmin, verbose="error")

    def plot_topomap(self, times: Any = "auto", *, kind: str = "patterns", output: int = 0,
                     path: str | Path | None = None) -> Any:
        """Topomaps of the maps at ``times`` (seconds, or MNE's ``"auto"``/``"peaks"``), MNE's
        ``Evoked.plot_topomap``; the figure is saved to ``path`` when given (and closed).

        Returns
        -------
        matplotlib.figure.Figure
        """
        evoked = self.to_evoked(kind, output)
        positive = self.classes[-1] if len(self.patterns) == 1 else self.classes[output]
        fig = evoked.plot_topomap(times, ch_type=None, show=False, units="a.u.", scalings=1.0,
                                  time_format=f"{positive}, %0.2f s")
        if path is not None:                      # MNE lays the figure out itself (its colour bar)
            import matplotlib.pyplot as plt

            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig

    def to_nifti(self, kind: str = "patterns", output: int = 0, time: int = 0) -> Any:
        """The map of one time sample as a NIfTI image in the fMRI epochs' voxel grid (for nilearn's
        ``plot_glass_brain`` / ``plot_stat_map``)."""
        from neurodecode.loaders.fmri import to_nifti

        maps = self._maps(kind, output)
        if not 0 <= time < maps.shape[1]:
            fail("time", f"a sample index below {maps.shape[1]}", time)
        return to_nifti(maps[:, time], self.epochs)


def linear_patterns(epochs: EpochSet, estimator: Any = None, *, target: str = "label") -> LinearPatterns:
    """Fit a linear decoder on all ``epochs`` and return its Haufe patterns and filters (MNE's ``LinearModel``).

    Parameters
    ----------
    epochs : EpochSet
        Data ``(n_epochs, n_channels, n_times)`` — EEG/MEG windows (filter, crop or average first) or fMRI voxel
        responses ``(n_trials, n_voxels, 1)``; classes in ``table[target]``.
    estimator : scikit-learn linear classifier, optional
        One with ``coef_`` (logistic regression, linear SVM, LDA). Default: logistic regression.
    target : str
        The table column holding the classes.

    Returns
    -------
    LinearPatterns
        ``patterns`` and ``filters`` ``(n_outputs, n_channels, n_times)``.

    Notes
    -----
    The fit is on every epoch (patterns describe the data, they are not a score); the decoder's accuracy comes from
    :func:`~neurodecode.evaluation.evaluate` on the same pipeline. The pipeline is MNE's tutorial's:
    ``make_pipeline(Vectorizer(), StandardScaler(), LinearModel(estimator))``.
    """
    from mne.decoding import LinearModel, Vectorizer, get_coef
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = _class_labels(epochs, target, "an EpochSet")
    classes = np.unique(y)
    model = LinearModel(LogisticRegression(max_iter=1000) if estimator is None else estimator)
    clf = make_pipeline(Vectorizer(), StandardScaler(), model)
    try:
        clf.fit(epochs.data.astype(np.float64), y)
        if not hasattr(getattr(model, "model_", model.model), "coef_"):
            raise AttributeError("coef_")
    except AttributeError:                        # MNE's LinearModel reads the fitted model's coef_
        fail("estimator", "a linear classifier with coef_ (logistic regression, linear SVM, LDA)",
             type(model.model).__name__, exc=TypeError)

    def back(attr: str) -> np.ndarray:
        """MNE's ``get_coef(..., inverse_transform=True)``, kept in (n_outputs, n_channels, n_times): the
        standardisation undone, then the vectorisation (MNE transposes 2-D results on its own)."""
        coef = np.atleast_2d(get_coef(clf, attr, inverse_transform=False))
        return clf[0].inverse_transform(clf[1].inverse_transform(coef))

    return LinearPatterns(back("patterns_"), back("filters_"), classes, epochs)


def searchlight(epochs: EpochSet, *, radius: float = 5.0, estimator: Any = "svc", cv: Any = None,
                groups: str | None = "run", scoring: str | None = None, target: str = "label",
                n_jobs: int = 1) -> Any:
    """Cross-validated decoding in a sphere around every voxel (nilearn's ``SearchLight``), on voxel epochs.

    Parameters
    ----------
    epochs : EpochSet
        Voxel epochs ``(n_trials, n_voxels, 1)`` made by :mod:`neurodecode.loaders.fmri` (their provenance holds the
        mask and the affine: the spheres are in millimetres of that grid); classes in ``table[target]``.
    radius : float
        Sphere radius in millimetres.
    estimator : str or scikit-learn estimator
        nilearn's names (``"svc"``, ``"logistic"``, ``"ridge_classifier"``, ...) or an estimator.
    cv : int or splitter, optional
        Default: leave one ``groups`` value out (whole runs, so a sphere is never tested on its own run's
        volumes) when the table has that column, else 5-fold stratified.
    groups : str or None
        The table column of the runs.
    scoring : str, optional
        A scikit-learn scorer (nilearn's default: accuracy).
    target : str
        The table column holding the classes.
    n_jobs : int
        Parallel spheres (nilearn's ``n_jobs``).

    Returns
    -------
    nibabel.Nifti1Image
        The cross-validated score of each voxel's sphere in the epochs' voxel grid (0 outside the mask), for
        nilearn's ``plot_stat_map`` / ``plot_glass_brain``.
    """
    import nibabel as nib
    from nilearn.decoding import SearchLight

    step, y = _voxel_classes(epochs, target)
    if not isinstance(radius, (int, float)) or isinstance(radius, bool) or not radius > 0:
        fail("radius", "a sphere radius > 0 in millimetres", radius)
    cv, runs = _run_folds(epochs, cv, groups)
    mask, volumes = _voxel_images(epochs)
    sl = SearchLight(mask_img=mask, radius=float(radius), estimator=estimator, cv=cv, scoring=scoring,
                     n_jobs=n_jobs, verbose=0)
    sl.fit(volumes, y, groups=runs)
    return nib.Nifti1Image(np.asarray(sl.scores_, dtype=np.float32) * np.asarray(mask.dataobj),
                           np.array(step["affine"]))


def _voxel_classes(epochs: EpochSet, target: str) -> tuple[dict, np.ndarray]:
    """The ``mask`` provenance step of voxel epochs ``(n_trials, n_voxels, 1)`` and their classes, checked."""
    from neurodecode.loaders.fmri import voxel_grid

    if not isinstance(epochs, EpochSet):
        fail("epochs", "an EpochSet of voxel epochs", type(epochs).__name__, exc=TypeError)
    step, _ = voxel_grid(epochs)                      # voxel epochs with their grid, or an error naming them
    if epochs.n_times != 1:
        fail("epochs", "one response per trial and voxel (n_trials, n_voxels, 1)", f"n_times {epochs.n_times}")
    return step, _class_labels(epochs, target, "an EpochSet of voxel epochs")


def _class_labels(epochs: EpochSet, target: str, what: str) -> np.ndarray:
    """The classes ``table[target]`` of ``epochs`` as text: a class for every epoch and at least two of them."""
    if not isinstance(epochs, EpochSet):
        fail("epochs", what, type(epochs).__name__, exc=TypeError)
    if target not in epochs.table.columns or epochs.table[target].isna().any():
        fail(f"table[{target!r}]", "a class for every epoch", "missing values" if target in epochs.table.columns
             else "no such column")
    y = epochs.table[target].astype(str).to_numpy()
    if len(np.unique(y)) < 2:
        fail(f"table[{target!r}]", "at least two classes", list(np.unique(y)))
    return y


def _run_folds(epochs: EpochSet, cv: Any, groups: str | None) -> tuple[Any, np.ndarray | None]:
    """``cv`` as given, else leave one ``groups`` value (run) out when there are several, else 5-fold stratified."""
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedKFold

    if cv is not None:
        runs = epochs.table[groups].astype(str).to_numpy() if groups in epochs.table.columns else None
        return cv, runs
    if groups is not None and groups in epochs.table.columns and epochs.table[groups].nunique() > 1:
        return LeaveOneGroupOut(), epochs.table[groups].astype(str).to_numpy()
    return StratifiedKFold(5, shuffle=True, random_state=0), None


def _voxel_images(epochs: EpochSet) -> tuple[Any, Any]:
    """The mask and the 4-D image (one volume per trial) of voxel epochs, in their grid."""
    import nibabel as nib

    from neurodecode.loaders.fmri import to_nifti, voxel_grid

    step, _ = voxel_grid(epochs)
    mask = nib.Nifti1Image((np.asarray(to_nifti(np.ones(epochs.n_channels), epochs).dataobj) > 0).astype(np.int8),
                           np.array(step["affine"]))
    volumes = nib.concat_images([to_nifti(epochs.data[k, :, 0], epochs) for k in range(epochs.n_epochs)])
    return mask, volumes


def whole_brain_decoder(epochs: EpochSet, *, kind: str = "decoder", estimator: Any = "svc", cv: Any = None,
                        groups: str | None = "run", screening_percentile: float = 20, scoring: str = "roc_auc",
                        target: str = "label", n_jobs: int = 1) -> Any:
    """nilearn's whole-brain decoder — ``Decoder`` (univariate screening, then a linear model with an inner grid
    search) or ``FREMClassifier`` (an ensemble over clustered voxels, Hoyos-Idrobo et al. 2018) — fitted on voxel
    epochs, the mask and grid taken from their provenance.

    Parameters
    ----------
    epochs : EpochSet
        Voxel epochs ``(n_trials, n_voxels, 1)`` made by :mod:`neurodecode.loaders.fmri`; classes in
        ``table[target]``.
    kind : {"decoder", "frem"}
    estimator : str or estimator
        nilearn's names (``"svc"``, ``"logistic_l1"``, ...).
    cv : int or splitter, optional
        Default: leave one ``groups`` value (run) out when there are several, else 5-fold stratified.
    groups : str or None
        The table column of the runs.
    screening_percentile : float
        Percentage of voxels kept by the univariate screening (nilearn's default 20).
    scoring : str
        nilearn's scorer (default ``roc_auc``).
    target : str
    n_jobs : int

    Returns
    -------
    nilearn.decoding.Decoder or nilearn.decoding.FREMClassifier
        Fitted: ``cv_scores_`` (per class, per fold), ``coef_img_`` (weight maps per class, NIfTI),
        ``predict`` on new images.
    """
    from nilearn.decoding import Decoder, FREMClassifier

    if kind not in ("decoder", "frem"):
        fail("kind", "'decoder' or 'frem'", kind)
    _, y = _voxel_classes(epochs, target)
    cv, runs = _run_folds(epochs, cv, groups)
    mask, volumes = _voxel_images(epochs)
    cls = Decoder if kind == "decoder" else FREMClassifier
    model = cls(estimator=estimator, mask=mask, cv=cv, screening_percentile=screening_percentile, scoring=scoring,
                standardize="zscore_sample", n_jobs=n_jobs)
    return model.fit(volumes, y, groups=runs)
