"""Feature extraction for analysis scripts: one call from epochs to a named feature table.

>>> feats = extract_features(epochs, "tangent_space", estimator="oas")   # doctest: +SKIP
>>> feats.X.shape, feats.names[:2], feats.table.columns[:3]              # doctest: +SKIP
>>> feats.to_frame().to_parquet("features.parquet")                        # doctest: +SKIP

A recipe is a declared scikit-learn pipeline (:class:`Recipe`: a builder function whose keyword parameters are the
recipe's own, so an unknown parameter fails with the list of valid ones) built by :func:`make_recipe` from a name
and keyword parameters; the Hydra configs in ``conf/features/`` build the same pipelines (``build("features",
name)``). The
reference points of the recipes (e.g. the tangent-space mean) are fitted on the epochs given; inside a
cross-validation use the pipeline itself (``make_recipe(...)``) so that they are fitted on training folds only.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from neurodecode.core.configs import load_config
from neurodecode.core.epochs import EpochSet
from neurodecode.core.validation import fail
from neurodecode.encoders.connectivity import Connectivity, GraphFeatures
from neurodecode.encoders.riemann import (AugmentedCovariances, Covariances, ERPCovariances, FilterBankCovariances,
                                          TangentSpace)
from neurodecode.encoders.spd import to_tensor, upper
from neurodecode.core.registry import register

__all__ = ["RECIPES", "RECIPE_BUILDERS", "SUPERVISED_RECIPES", "CovarianceVector", "Features", "Recipe",
           "augmented_tangent_space_recipe", "connectivity_recipe", "covariance_recipe", "encoder_input",
           "extract_features", "filterbank_tangent_space_recipe", "graph_connectivity_recipe", "load_recipe_config",
           "make_recipe", "reads_epochs", "recipe", "tangent_space_recipe", "xdawn_tangent_space_recipe"]


def _first_step(estimator: Any) -> Any:
    """The estimator that first sees the input: through pipelines and meta-estimators that hold one
    (``GridSearchCV(...).estimator``), stopping at a step that reads epochs itself."""
    while True:
        if isinstance(estimator, Pipeline):
            estimator = estimator.steps[0][1]
        elif not getattr(estimator, "reads_epochs", False) and hasattr(getattr(estimator, "estimator", None), "fit"):
            estimator = estimator.estimator
        else:
            return estimator


def reads_epochs(estimator: Any) -> bool:
    """Whether the first step of ``estimator`` reads an EpochSet (``reads_epochs``), looking through pipelines and
    meta-estimators that hold one (``GridSearchCV(...).estimator``)."""
    return bool(getattr(_first_step(estimator), "reads_epochs", False))


def takes_epochs(estimator: Any) -> bool:
    """Whether the first step of ``estimator`` takes an EpochSet: it reads one (:func:`reads_epochs`), or it is
    one of neurodecode's estimators, which all take an EpochSet wherever they take an array — and hand its table
    on (a covariance step's :class:`EpochMatrices`), so that a later ``Recenter`` re-centres each subject."""
    first = _first_step(estimator)
    return bool(getattr(first, "reads_epochs", False)) or type(first).__module__.startswith("neurodecode.")


def encoder_input(estimator: Any, epochs: EpochSet) -> Any:
    """What an encoder's ``fit``/``transform`` take from epochs: the EpochSet itself for the estimators that read
    it (:func:`reads_epochs`: :class:`~neurodecode.encoders.EncoderFeatures`,
    :class:`~neurodecode.encoders.FineTunedEncoder` — each epoch's subject picks its subject layer —, :class:`~neurodecode.encoders.TimeWindow`,
    also first in a pipeline or a ``GridSearchCV``), its data array for any other estimator."""
    return epochs if reads_epochs(estimator) else epochs.data



@register
class CovarianceVector(Covariances):
    """Covariance matrices vectorised by their upper triangle (off-diagonal × √2), for the 'covariance' recipe."""

    def transform(self, X: Any) -> np.ndarray:
        return upper(to_tensor(super().transform(X))).numpy()


def _tangent(cov: Any, metric: str, device: str | None) -> Pipeline:
    return Pipeline([("cov", cov), ("ts", TangentSpace(metric, device=device))])


def covariance_recipe(estimator: str = "oas", reg: float = 0.0, device: str | None = None) -> Pipeline:
    """Upper triangle of the covariance matrix, standardised per feature (n(n+1)/2 features)."""
    from sklearn.preprocessing import StandardScaler

    # raw entries are V² (~1e-11 for EEG): a classifier's default regularisation would predict one class
    return Pipeline([("cov", CovarianceVector(estimator, reg, device)), ("scale", StandardScaler())])


def tangent_space_recipe(estimator: str = "oas", reg: float = 0.0, metric: str = "riemann",
                         device: str | None = None) -> Pipeline:
    """Covariance → tangent space at the Riemannian mean (n(n+1)/2 features)."""
    return _tangent(Covariances(estimator, reg, device), metric, device)


def augmented_tangent_space_recipe(order: int | str = 4, lag: int | str = 1, estimator: str = "oas",
                                   reg: float = 0.0, metric: str = "riemann", device: str | None = None) -> Pipeline:
    """Augmented (time-delay) covariance → tangent space (order·n(order·n+1)/2 features)."""
    return _tangent(AugmentedCovariances(order, lag, estimator, reg, device), metric, device)


def xdawn_tangent_space_recipe(nfilter: int = 2, estimator: str = "scm", reg: float = 0.0, metric: str = "riemann",
                               device: str | None = None) -> Pipeline:
    """xDAWN super-trial covariance (ERPs; supervised: fitted with the labels) → tangent space (k(2k+1) features,
    k = n_classes·nfilter)."""
    return _tangent(ERPCovariances(nfilter, estimator, reg, device), metric, device)


def filterbank_tangent_space_recipe(sfreq: float | None = None, bands: Sequence[Sequence[float]] | None = None,
                                    estimator: str = "oas", reg: float = 0.0, metric: str = "riemann",
                                    device: str | None = None) -> Pipeline:
    """One covariance per band → tangent space per band (n_bands·n(n+1)/2 features)."""
    if sfreq is None:
        fail("sfreq", "the sampling rate of the epochs for the filter-bank recipe", None)
    kw = {} if bands is None else {"bands": tuple(tuple(float(v) for v in b) for b in bands)}
    cov = FilterBankCovariances(sfreq=float(sfreq), estimator=estimator, reg=reg, device=device, **kw)
    return _tangent(cov, metric, device)


def connectivity_recipe(kind: str = "correlation", estimator: str = "lwf", reference: str = "group",
                        discard_diagonal: bool = False, device: str | None = None) -> Pipeline:
    """Connectome of ROI series: correlation, partial correlation, tangent (group or per-subject reference),
    covariance or precision; nilearn's vectors (n(n+1)/2 features)."""
    return Pipeline([("conn", Connectivity(kind, estimator, reference, True, discard_diagonal, device=device))])


def graph_connectivity_recipe(kind: str = "correlation", estimator: str = "lwf", reference: str = "group",
                              density: float = 0.2, device: str | None = None) -> Pipeline:
    """Degree, clustering and 3-cycle participation of each ROI in the thresholded connectome (3n features)."""
    conn = Connectivity(kind, estimator, reference, False, False, device=device)
    return Pipeline([("conn", conn), ("graph", GraphFeatures(density))])


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A declared feature recipe: its builder (whose keyword parameters are the recipe's, no more) and whether its
    ``fit`` needs the labels."""

    name: str
    build: Callable[..., Pipeline]
    supervised: bool = False

    @property
    def description(self) -> str:
        return " ".join((self.build.__doc__ or "").split())

    @property
    def parameters(self) -> list[str]:
        return list(inspect.signature(self.build).parameters)


#: the feature recipes, by name (``conf/features/<name>.yaml`` builds the same pipelines)
RECIPE_BUILDERS: dict[str, Recipe] = {r.name: r for r in (
    Recipe("covariance", covariance_recipe),
    Recipe("tangent_space", tangent_space_recipe),
    Recipe("augmented_tangent_space", augmented_tangent_space_recipe),
    Recipe("filterbank_tangent_space", filterbank_tangent_space_recipe),
    Recipe("xdawn_tangent_space", xdawn_tangent_space_recipe, supervised=True),
    Recipe("connectivity", connectivity_recipe),
    Recipe("graph_connectivity", graph_connectivity_recipe),
)}

#: recipe name → description
RECIPES: dict[str, str] = {name: r.description for name, r in RECIPE_BUILDERS.items()}

#: recipes whose fit needs the labels
SUPERVISED_RECIPES = frozenset(name for name, r in RECIPE_BUILDERS.items() if r.supervised)


def recipe(name: str) -> Recipe:
    """The declared recipe ``name``, or an error listing the known ones."""
    if name not in RECIPE_BUILDERS:
        fail("recipe", f"one of {list(RECIPE_BUILDERS)}", repr(name))
    return RECIPE_BUILDERS[name]


def make_recipe(name: str, **params: Any) -> Pipeline:
    """Build the scikit-learn pipeline of the feature recipe ``name`` (one of :data:`RECIPES`).

    Each recipe takes its own parameters (see its builder, e.g. :func:`tangent_space_recipe`:
    ``estimator``, ``reg``, ``metric``, ``device``); a parameter the recipe does not take is refused with the list of
    those it does — never silently ignored. ``None`` for a parameter means the recipe's default.

    Parameters
    ----------
    name : str
        One of :data:`RECIPES` (``tangent_space``, ``augmented_tangent_space``, ``xdawn_tangent_space``,
        ``filter_bank``, ``covariance``, ``connectivity``, ...).
    **params
        The recipe's own parameters.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        A transformer from epochs ``(n_epochs, n_channels, n_times)`` (arrays, an EpochSet or an ``mne.Epochs``)
        to features ``(n_epochs, n_features)``; put a classifier after it.
    """
    r = recipe(name)
    unknown = sorted(set(params) - set(r.parameters))
    if unknown:
        raise ValueError(f"recipe {name!r}: unknown parameters {unknown}; it takes {r.parameters}")
    return r.build(**{k: v for k, v in params.items() if v is not None or k == "device"})


def _pair_names(names: Sequence[str]) -> list[str]:
    rows, cols = np.triu_indices(len(names))
    return [f"{names[i]}|{names[j]}" for i, j in zip(rows, cols)]


def _feature_names(name: str, pipeline: Pipeline, ch_names: Sequence[str]) -> list[str]:
    if "graph" in pipeline.named_steps:
        return pipeline.named_steps["graph"].feature_names(ch_names)
    if "conn" in pipeline.named_steps:
        return pipeline.named_steps["conn"].feature_names(ch_names)
    cov = pipeline.named_steps["cov"]
    if isinstance(cov, AugmentedCovariances):
        ch = [f"{c}@{p * cov.lag_}" for p in range(cov.order_) for c in ch_names]
        return _pair_names(ch)
    if isinstance(cov, FilterBankCovariances):
        return [f"{lo:g}-{hi:g}Hz:{pair}" for lo, hi in cov.bands for pair in _pair_names(ch_names)]
    if isinstance(cov, ERPCovariances):
        return _pair_names(cov.component_names())
    return _pair_names(ch_names)


@dataclasses.dataclass(frozen=True)
class Features:
    """Features of epochs with their names and the per-epoch table.

    Attributes
    ----------
    X : ndarray, shape (n_epochs, n_features)
    names : list of str
        ``"C3|C4"`` is the (C3, C4) entry of a (tangent-space) matrix; ``"C3@4"`` the C3 copy lagged by 4 samples
        in an augmented matrix; ``"8-12Hz:C3|C4"`` an entry of the 8-12 Hz band.
    table : DataFrame
        The epochs' table, one row per row of ``X``.
    recipe : dict
        The recipe name and parameters.
    """

    X: np.ndarray
    names: list[str]
    table: pd.DataFrame
    recipe: dict

    def to_frame(self) -> pd.DataFrame:
        """The table's columns followed by one column per feature."""
        feats = pd.DataFrame(self.X, columns=self.names)
        return pd.concat([self.table.reset_index(drop=True), feats], axis=1)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_frame` as Parquet (``.parquet``) or CSV (``.csv``)."""
        path = Path(path)
        frame = self.to_frame()
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            fail("path", "a file name ending in .parquet or .csv", str(path))


def extract_features(epochs: EpochSet | np.ndarray, recipe: str = "tangent_space", *,
                     ch_names: Sequence[str] | None = None, table: pd.DataFrame | None = None,
                     **params: Any) -> Features:
    """Compute a feature recipe on epochs.

    Parameters
    ----------
    epochs : EpochSet or ndarray, shape (n_epochs, n_channels, n_times)
        With an array, ``ch_names`` and ``table`` are optional (defaults: ``ch000, ...`` and an index table).
    recipe : str
        One of :data:`RECIPES`.
    **params
        Passed to :func:`make_recipe`; for an EpochSet, ``sfreq`` defaults to the epochs' sampling rate.

    Returns
    -------
    Features
    """
    if isinstance(epochs, EpochSet):
        data, names, tab = epochs.data, list(epochs.channels.names), epochs.table
        params.setdefault("sfreq", epochs.sfreq)
    else:
        data = np.asarray(epochs)
        if data.ndim != 3:
            fail("epochs", "an EpochSet or an array of shape (n_epochs, n_channels, n_times)",
                  f"shape {data.shape}")
        names = list(ch_names) if ch_names is not None else [f"ch{i:03d}" for i in range(data.shape[1])]
        tab = table if table is not None else pd.DataFrame({"epoch": np.arange(data.shape[0])})
        if len(names) != data.shape[1]:
            fail("ch_names", f"{data.shape[1]} names", len(names))
        if len(tab) != data.shape[0]:
            fail("table", f"{data.shape[0]} rows", len(tab))
    if "sfreq" not in RECIPE_BUILDERS.get(recipe, Recipe(recipe, make_recipe)).parameters:
        params.pop("sfreq", None)                     # the epochs' rate, for the recipes that take it
    y = None
    if recipe in SUPERVISED_RECIPES:
        if "label" not in tab.columns or tab["label"].isna().any():
            fail("table['label']", f"a label for every epoch (the {recipe} recipe is fitted with the labels)",
                 "missing labels" if "label" in tab.columns else "no label column")
        y = tab["label"].to_numpy()
    pipeline = make_recipe(recipe, **params)
    # an EpochSet goes in whole: its table tells group-aware steps (per-subject references) each epoch's subject
    X = pipeline.fit_transform(epochs if isinstance(epochs, EpochSet) else data.astype(np.float64), y)
    return Features(X, _feature_names(recipe, pipeline, names), tab.reset_index(drop=True),
                    {"recipe": recipe, **{k: v for k, v in params.items()}})


def load_recipe_config(recipe: str, overrides: Sequence[str] = (), sfreq: float | None = None) -> dict:
    """The parameters of ``conf/features/<recipe>.yaml`` with ``key=value`` overrides (``sfreq`` filled in)."""
    from omegaconf import OmegaConf

    cfg = load_config("features", recipe, overrides)
    if "sfreq" in cfg.keys() and OmegaConf.is_missing(cfg, "sfreq") and sfreq is not None:
        cfg.sfreq = float(sfreq)
    params = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    params.pop("_target_", None)
    return params
