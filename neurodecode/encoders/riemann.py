"""Riemannian covariance features with the scikit-learn estimator API, batched in torch.

Estimators take ``(n_epochs, n_channels, n_times)`` signals or ``(n_epochs, [n_bands,] n, n)`` SPD matrices as numpy
arrays (or an :class:`~neurodecode.EpochSet`'s data) and return numpy float64 arrays; the maths is in
:mod:`neurodecode.encoders.spd` and equals pyRiemann's to 1e-6 relative (tested). ``device="cuda"`` runs it on a GPU.

=========================  =====================================================================================
``Covariances``            ``scm``/``cov``/``lwf``/``oas`` covariance, explicit ``reg`` for rank-deficient data
``AugmentedCovariances``   covariance of the time-delay embedding (order, lag; ``"auto"`` selects them)
``ERPCovariances``         xDAWN super-trial covariances for evoked responses (supervised: needs labels)
``FilterBankCovariances``  one covariance per frequency band → ``(n_epochs, n_bands, n, n)``
``TangentSpace``           vectors at the Riemannian (or log-Euclidean) mean, one reference per band
``MDM``                    minimum distance to the class means
``Recenter``               re-centre each group (subject/session) to the identity, unsupervised
``Stretch``                stretch each re-centred group to a common dispersion (RPA, step 2)
``Rotate``                 rotate each group's matrices onto a reference group's class means (RPA, step 3)
``Procrustes``             rotate each group's tangent vectors onto a reference group's anchors (tangent-space alignment)
=========================  =====================================================================================
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.core.estimators import Interval, check_params
from neurodecode.core.registry import register
from neurodecode.encoders import spd
from neurodecode.encoders.inputs import (ArrayInput, EpochMatrices, as_array, check_signals, check_spd, table_groups,
                                         table_of)

__all__ = ["MDM", "AugmentedCovariances", "Covariances", "ERPCovariances", "FgMDM", "FilterBankCovariances",
           "Procrustes",
           "Recenter", "Rotate", "Stretch", "TangentSpace", "select_order_lag"]


def _tensor(X: np.ndarray, device: str | None) -> torch.Tensor:
    return spd.to_tensor(X).to(device or "cpu")


@register
class Covariances(ArrayInput, TransformerMixin, BaseEstimator):
    """Covariance matrices of epochs.

    Parameters
    ----------
    estimator : {"scm", "cov", "lwf", "oas"}
        See :func:`neurodecode.encoders.spd.covariances`. ``"lwf"`` and ``"oas"`` shrink towards a scaled identity and are
        always positive definite; ``"scm"``/``"cov"`` are singular on rank-deficient data (a warning says so).
    reg : float
        Adds ``reg * trace(C) / n_channels`` to the diagonal.
    device : str, optional
        torch device for the computation (e.g. ``"cuda"``).

    Examples
    --------
    >>> C = Covariances("oas").fit_transform(X)   # X: (n_epochs, n_channels, n_times) → (n_epochs, n, n)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {"estimator": spd.COV_ESTIMATORS, "reg": Interval(0, None)}

    def __init__(self, estimator: str = "oas", reg: float = 0.0, device: str | None = None) -> None:
        self.estimator = estimator
        self.reg = reg
        self.device = device

    def fit(self, X: Any, y: Any = None) -> Covariances:
        """Check the parameters and the input (nothing is learned)."""
        check_params(self)
        X = check_signals(X)
        self.n_channels_in_ = X.shape[1]
        return self

    def _signals(self, X: np.ndarray) -> torch.Tensor:
        return _tensor(X, self.device)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``fit(X).transform(X)`` with the input checked once."""
        if type(self).fit is not Covariances.fit or type(self).transform is not Covariances.transform:
            return super().fit_transform(X, y, **fit_params)        # subclasses learn something in fit
        check_params(self)
        table = table_of(X)
        X = check_signals(X, finite=False)
        self.n_channels_in_ = X.shape[1]
        return EpochMatrices.wrap(self._covariances(X), table)

    def transform(self, X: Any) -> np.ndarray:
        """Covariances, shape (n_epochs, n, n) (n = n_channels, or n_channels * order for the augmented ones);
        an :class:`EpochMatrices` holding the table for an EpochSet or ``mne.Epochs`` input."""
        check_is_fitted(self, "n_channels_in_")
        return EpochMatrices.wrap(self._covariances(check_signals(X, finite=False)), table_of(X))

    def _covariances(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.n_channels_in_:
            raise ValueError(f"field 'X': expected {self.n_channels_in_} channels as in fit, got {X.shape[1]}")
        C = spd.covariances(self._signals(X), self.estimator, self.reg)
        if not bool(torch.isfinite(C).all()):   # NaN/Inf in X reach C: checked on C, 1/n_times of the data
            check_signals(X)
            raise ValueError("field 'X': expected signals whose squares do not overflow float64, got covariances "
                             "with Inf")
        if self.estimator in ("scm", "cov") and not self.reg:
            spd.check_spd(C, hint="use estimator='oas' or 'lwf', or set reg (e.g. reg=1e-3)")
        return C.cpu().numpy()


def _average_mutual_information(x: np.ndarray, lag: int, bins: int = 16) -> float:
    a, b = x[:-lag], x[lag:]
    hist, _, _ = np.histogram2d(a, b, bins=bins)
    p = hist / hist.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())


def _false_neighbour_fraction(x: np.ndarray, order: int, lag: int, rtol: float = 10.0) -> float:
    from sklearn.neighbors import NearestNeighbors

    n = len(x) - order * lag
    emb = np.stack([x[p * lag: p * lag + n] for p in range(order)], axis=1)
    nxt = x[order * lag: order * lag + n]
    dist, idx = NearestNeighbors(n_neighbors=2).fit(emb).kneighbors(emb)
    d, j = dist[:, 1], idx[:, 1]
    ok = d > 0
    return float(np.mean(np.abs(nxt[ok] - nxt[j[ok]]) / d[ok] > rtol))


def select_order_lag(X: Any, max_order: int = 10, max_lag: int = 10, fnn_threshold: float = 0.1,
                     n_series: int = 32, seed: int = 0) -> tuple[int, int]:
    """Choose the time-delay embedding by Takens' criteria instead of a grid search.

    The lag is the first local minimum of the average mutual information between ``x(t)`` and ``x(t + lag)``
    (Fraser & Swinney 1986); the order is the smallest embedding dimension whose fraction of false nearest
    neighbours falls below ``fnn_threshold`` (Kennel et al. 1992). Both are the median over up to ``n_series``
    channel time series drawn at random (``seed``).

    Parameters
    ----------
    X : array, shape (n_epochs, n_channels, n_times)

    Returns
    -------
    order, lag : int
    """
    X = check_signals(X)
    rng = np.random.default_rng(seed)
    pairs = [(e, c) for e in range(X.shape[0]) for c in range(X.shape[1])]
    picks = [pairs[i] for i in rng.choice(len(pairs), size=min(n_series, len(pairs)), replace=False)]
    lags, orders = [], []
    for e, c in picks:
        x = X[e, c].astype(np.float64)
        if x.std() == 0:
            continue
        ami = [_average_mutual_information(x, lag) for lag in range(1, max_lag + 2)]
        lag = next((k + 1 for k in range(1, len(ami) - 1) if ami[k] < ami[k - 1] and ami[k] <= ami[k + 1]),
                   max_lag)
        lag = min(lag, max_lag)
        order = max_order
        for m in range(1, max_order + 1):
            if m * lag >= len(x) - 2:
                order = max(1, m - 1)
                break
            if _false_neighbour_fraction(x, m, lag) < fnn_threshold:
                order = m
                break
        lags.append(lag)
        orders.append(order)
    if not lags:
        raise ValueError("field 'X': expected signals that vary in time, got constant channels only")
    return int(np.median(orders)), int(np.median(lags))


@register
class AugmentedCovariances(Covariances):
    """Augmented covariance matrices: covariance of the time-delay embedding of the epochs.

    As in Carrara & Papadopoulo, "Classification of BCI-EEG based on the augmented covariance matrix" (IEEE TBME
    2024) and MOABB's ``AugmentedDataset``: ``order`` lagged copies, ``lag`` samples apart, give matrices of size
    ``n_channels * order``.

    Parameters
    ----------
    order, lag : int or "auto"
        ``"auto"`` chooses them at ``fit`` with :func:`select_order_lag` (Takens' criteria); the values used are
        ``order_`` and ``lag_``. Grid search over them works as for any scikit-learn parameter.
    estimator, reg, device
        As in :class:`Covariances`.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **Covariances._parameter_constraints, "order": [Interval(1, None, integer=True), ("auto",)],
        "lag": [Interval(1, None, integer=True), ("auto",)], "max_order": Interval(1, None, integer=True),
        "max_lag": Interval(1, None, integer=True)}

    def __init__(self, order: int | str = 4, lag: int | str = 1, estimator: str = "oas", reg: float = 0.0,
                 device: str | None = None, max_order: int = 10, max_lag: int = 10) -> None:
        super().__init__(estimator, reg, device)
        self.order = order
        self.lag = lag
        self.max_order = max_order
        self.max_lag = max_lag

    def fit(self, X: Any, y: Any = None) -> AugmentedCovariances:
        X = check_signals(X)
        super().fit(X)             # checks the declared parameters
        if self.order == "auto" or self.lag == "auto":
            order, lag = select_order_lag(X, self.max_order, self.max_lag)
        else:
            order, lag = self.order, self.lag
        self.order_ = int(order if self.order == "auto" else self.order)
        self.lag_ = int(lag if self.lag == "auto" else self.lag)
        if self.order_ * self.lag_ >= X.shape[2]:
            raise ValueError(f"field 'order'/'lag': expected order * lag < n_times = {X.shape[2]}, got "
                             f"{self.order_} * {self.lag_}")
        return self

    def _signals(self, X: np.ndarray) -> torch.Tensor:
        return spd.time_delay_embedding(_tensor(X, self.device), self.order_, self.lag_)


@register
class ERPCovariances(Covariances):
    """xDAWN "super-trial" covariances for event-related potentials (N170, P300, visual evoked responses).

    As pyRiemann's ``XdawnCovariances`` (Barachant & Congedo 2014; Rivet et al. 2009): ``fit`` learns ``nfilter``
    xDAWN spatial filters per class with pyRiemann's ``Xdawn`` (signal-to-signal-plus-noise of the class evoked
    response) and keeps the filtered class evoked responses as prototypes; ``transform`` stacks the prototypes
    over each filtered epoch and returns the covariance of that super-trial, so that its off-diagonal blocks hold
    the epoch's cross-covariance with each class response (the phase-locked information that plain covariances
    average out). The covariances are neurodecode's (batched torch, any ``estimator``/``reg``); with the same
    estimator they equal pyRiemann's ``XdawnCovariances`` (tested).

    Parameters
    ----------
    nfilter : int
        xDAWN filters per class; the matrices are ``2 * n_classes * nfilter`` square.
    estimator, reg, device
        The super-trial covariance, as in :class:`Covariances`.
    xdawn_estimator : str
        pyRiemann's covariance estimator for the xDAWN signal and noise covariances.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    filters_ : ndarray, shape (n_classes * nfilter, n_channels)
    evokeds_ : ndarray, shape (n_classes * nfilter, n_times)
        The filtered class evoked responses (prototypes).
    """

    #: ``fit`` needs the labels (cross-subject re-centring fits it on the training subjects only)
    supervised = True

    def __init__(self, nfilter: int = 2, estimator: str = "scm", reg: float = 0.0, device: str | None = None,
                 xdawn_estimator: str = "scm") -> None:
        super().__init__(estimator, reg, device)
        self.nfilter = nfilter
        self.xdawn_estimator = xdawn_estimator

    def fit(self, X: Any, y: Any = None) -> ERPCovariances:
        """Learn the xDAWN filters and class prototypes from labelled epochs ``X`` (n_epochs, n_channels, n_times)."""
        from pyriemann.spatialfilters import Xdawn

        check_params(self)
        X = check_signals(X)
        if y is None:
            raise ValueError("field 'y': ERPCovariances is supervised (its prototypes are the class evoked "
                             "responses): expected one label per epoch, got None")
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"field 'y': expected {len(X)} labels (one per epoch), got shape {y.shape}")
        if y.dtype == object and any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
            raise ValueError("field 'y': expected a label for every epoch, got missing labels")
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2 or counts.min() < 2:
            raise ValueError(f"field 'y': expected at least two classes with two epochs each, got "
                             f"{dict(zip(classes.tolist(), counts.tolist()))}")
        if not isinstance(self.nfilter, (int, np.integer)) or not 1 <= self.nfilter <= X.shape[1]:
            raise ValueError(f"field 'nfilter': expected an integer in [1, {X.shape[1]}] (n_channels), got "
                             f"{self.nfilter!r}")
        xd = Xdawn(nfilter=int(self.nfilter), estimator=self.xdawn_estimator).fit(X, y)
        self.classes_, self.filters_, self.evokeds_ = classes, np.asarray(xd.filters_), np.asarray(xd.evokeds_)
        self.n_channels_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Super-trial covariances, shape (n_epochs, 2 * n_classes * nfilter, 2 * n_classes * nfilter)."""
        check_is_fitted(self, "filters_")
        table = table_of(X)
        X = check_signals(X, finite=False)                          # checked on the covariances (_covariances)
        if X.shape[2] != self.evokeds_.shape[1]:
            raise ValueError(f"field 'X': expected {self.evokeds_.shape[1]} samples per epoch as in fit (the class "
                             f"prototypes' length), got {X.shape[2]}")
        return EpochMatrices.wrap(self._covariances(X), table)

    def _signals(self, X: np.ndarray) -> torch.Tensor:
        Xt = _tensor(X, self.device)
        W, P = (_tensor(a, self.device) for a in (self.filters_, self.evokeds_))
        return torch.cat([P.expand(len(Xt), *P.shape), W @ Xt], dim=1)

    def component_names(self) -> list[str]:
        """``evoked[<class>]k`` (prototype rows) then ``xdawn[<class>]k`` (filtered epoch rows)."""
        comps = [f"[{c}]{k}" for c in self.classes_ for k in range(len(self.filters_) // len(self.classes_))]
        return [f"evoked{c}" for c in comps] + [f"xdawn{c}" for c in comps]


@register
class FilterBankCovariances(ArrayInput, TransformerMixin, BaseEstimator):
    """One covariance matrix per frequency band (band-pass with MNE's FIR filter).

    Parameters
    ----------
    bands : sequence of (low, high) in Hz
    sfreq : float
        Sampling rate of the epochs in Hz.
    estimator, reg, device
        As in :class:`Covariances`.

    ``transform`` returns ``(n_epochs, n_bands, n_channels, n_channels)``; :class:`TangentSpace` keeps one
    reference per band.
    """

    def __init__(self, bands: Any = ((8, 12), (12, 16), (16, 20), (20, 24), (24, 28), (28, 32)),
                 sfreq: float = 250.0, estimator: str = "oas", reg: float = 0.0, device: str | None = None) -> None:
        self.bands = bands
        self.sfreq = sfreq
        self.estimator = estimator
        self.reg = reg
        self.device = device

    _parameter_constraints: ClassVar[dict[str, Any]] = {**Covariances._parameter_constraints,
                                                        "sfreq": Interval(0, None, closed="neither")}

    def fit(self, X: Any, y: Any = None) -> FilterBankCovariances:
        check_params(self)
        X = check_signals(X)
        for band in self.bands:
            low, high = band
            if not 0 <= low < high <= self.sfreq / 2:
                raise ValueError(f"field 'bands': expected 0 <= low < high <= sfreq / 2 = {self.sfreq / 2}, got "
                                 f"{tuple(band)}")
        self.n_channels_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        import mne

        check_is_fitted(self, "n_channels_in_")
        table = table_of(X)
        X = check_signals(X).astype(np.float64)
        out = []
        for low, high in self.bands:
            Xf = mne.filter.filter_data(X, self.sfreq, low, high, verbose="warning")
            out.append(spd.covariances(_tensor(Xf, self.device), self.estimator, self.reg))
        return EpochMatrices.wrap(torch.stack(out, dim=1).cpu().numpy(), table)


@register
class TangentSpace(ArrayInput, TransformerMixin, BaseEstimator):
    """Map SPD matrices to vectors in the tangent space at their mean (as ``pyriemann.TangentSpace``).

    Parameters
    ----------
    metric : {"riemann", "logeuclid"}
        Mean and logarithmic map: affine-invariant (Riemannian mean, ``logm(R^-1/2 C R^-1/2)``) or log-Euclidean
        (log-Euclidean mean, pyRiemann's canonical log-Euclidean map).
    tsupdate : bool
        Re-estimate the reference on the data given to ``transform`` (unsupervised adaptation).
    device : str, optional

    Attributes
    ----------
    reference_ : ndarray, shape ([n_bands,] n, n)
        The reference point; one per band for filter-bank input.
    """

    def __init__(self, metric: str = "riemann", tsupdate: bool = False, device: str | None = None) -> None:
        self.metric = metric
        self.tsupdate = tsupdate
        self.device = device

    _parameter_constraints: ClassVar[dict[str, Any]] = {"metric": spd.metrics_with("mean", "map"), "tsupdate": bool}

    def _reference(self, C: torch.Tensor, sample_weight: Any = None) -> torch.Tensor:
        return spd.mean(C, self.metric, sample_weight)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> TangentSpace:
        check_params(self)
        C = check_spd(X)
        self.reference_ = self._reference(_tensor(C, self.device), sample_weight).cpu().numpy()
        self.n_features_in_ = int(np.prod(C.shape[1:]))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Tangent vectors, shape ``(n_epochs, n * (n + 1) / 2)`` (``n_bands`` times that for a filter bank)."""
        check_is_fitted(self, "reference_")
        C = check_spd(X)
        if C.shape[1:] != (self.reference_.shape if C.ndim == 4 else self.reference_.shape[-2:]) or \
                C.ndim - 1 != self.reference_.ndim:
            raise ValueError(f"field 'X': expected matrices of shape {('n_epochs',) + self.reference_.shape} as in "
                             f"fit, got {C.shape}")
        Ct = _tensor(C, self.device)
        ref = self._reference(Ct) if self.tsupdate else _tensor(self.reference_, self.device)
        T = spd.tangent_space(Ct, ref, self.metric)
        return T.reshape(T.shape[0], -1).cpu().numpy()

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        check_params(self)
        if self.metric != "riemann" or self.tsupdate:
            return self.fit(X, y, sample_weight).transform(X)
        # the Karcher iteration already computed the logarithms at the mean: reuse them
        C = check_spd(X)
        ref, logs = spd.mean_riemann(_tensor(C, self.device), sample_weight, return_log=True)
        self.reference_ = ref.cpu().numpy()
        self.n_features_in_ = int(np.prod(C.shape[1:]))
        T = spd.upper(logs)
        return T.reshape(T.shape[0], -1).cpu().numpy()

    def inverse_transform(self, X: Any) -> np.ndarray:
        """SPD matrices from tangent vectors (single-band input only)."""
        check_is_fitted(self, "reference_")
        if self.reference_.ndim != 2:
            raise ValueError("inverse_transform: expected a single-band TangentSpace, got a filter-bank one")
        return spd.untangent_space(_tensor(as_array(X), self.device), _tensor(self.reference_, self.device),
                                   self.metric).cpu().numpy()


def _matrices_and_labels(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """SPD matrices ``(n, c, c)`` and one label per matrix, checked (the classifiers' ``fit``)."""
    C = check_spd(X, (3,))
    y = np.asarray(y)
    if y.shape != (C.shape[0],):
        raise ValueError(f"field 'y': expected one label per matrix ({C.shape[0]}), got shape {y.shape}")
    return C, y


def _distance_softmax(d: np.ndarray) -> np.ndarray:
    """Class probabilities from distances ``(n, n_classes)``: the softmax of −d² (pyRiemann's MDM)."""
    d2 = -np.asarray(d) ** 2
    d2 -= d2.max(axis=1, keepdims=True)
    p = np.exp(d2)
    return p / p.sum(axis=1, keepdims=True)


@register
class MDM(ArrayInput, ClassifierMixin, BaseEstimator):
    """Minimum distance to mean: the class whose Riemannian mean is nearest (as ``pyriemann.MDM``).

    Parameters
    ----------
    metric : {"riemann", "logeuclid"}
        How class means are computed; distances are always affine-invariant Riemannian.
    device : str, optional

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    covmeans_ : ndarray, shape (n_classes, n, n)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {"metric": spd.metrics_with("mean")}

    def __init__(self, metric: str = "riemann", device: str | None = None) -> None:
        self.metric = metric
        self.device = device

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MDM:
        check_params(self)
        C, y = _matrices_and_labels(X, y)
        self.classes_ = np.unique(y)
        Ct = _tensor(C, self.device)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        means = []
        for c in self.classes_:
            sel = y == c
            wc = None if w is None else w[sel]
            means.append(spd.mean(Ct[torch.as_tensor(sel)], self.metric, wc))
        self.covmeans_ = torch.stack(means).cpu().numpy()
        self.n_features_in_ = C.shape[1] * C.shape[2]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Riemannian distance of each matrix to each class mean, shape (n_epochs, n_classes)."""
        check_is_fitted(self, "covmeans_")
        C = _tensor(check_spd(X, (3,)), self.device)
        means = _tensor(self.covmeans_, self.device)
        return spd.distances_to_means(C, means).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.transform(X).argmin(axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the negative squared distances."""
        return _distance_softmax(self.transform(X))


def _lda_directions(T: np.ndarray, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The discriminant directions (``coef_``) of scikit-learn's ``LinearDiscriminantAnalysis(solver="lsqr",
    shrinkage="auto")`` on ``T`` — the prior-weighted sum of each class's Ledoit-Wolf covariance of standardised
    features, rescaled — solved with a Cholesky factorisation of that SPD matrix instead of an SVD least squares
    (the same directions, ~10× faster at 2,080 features)."""
    from scipy.linalg import solve
    from sklearn.covariance import ledoit_wolf

    n, p = T.shape
    cov, means = np.zeros((p, p)), []
    for c in classes:
        Xg = T[y == c]
        scale = Xg.std(axis=0)
        scale[scale < 10 * np.finfo(scale.dtype).eps] = 1.0          # as StandardScaler
        shrunk = ledoit_wolf((Xg - Xg.mean(axis=0)) / scale)[0]
        cov += len(Xg) / n * (scale[:, None] * shrunk * scale[None, :])
        means.append(Xg.mean(axis=0))
    W = solve(cov, np.stack(means).T, assume_a="pos").T
    return W[1:] - W[:1] if len(classes) == 2 else W


@register
class FgMDM(ArrayInput, ClassifierMixin, BaseEstimator):
    """Minimum distance to mean after geodesic filtering (as ``pyriemann.classification.FgMDM``; Barachant et al.
    2012), on neurodecode's :class:`TangentSpace` and :class:`MDM`.

    The matrices are mapped to the tangent space at their Riemannian mean, filtered by the projection on the span
    of a shrinkage LDA's discriminant directions (pyRiemann's FGDA: ``W.T (W W.T)^+ W``), mapped back to matrices,
    and classified by :class:`MDM`. The same numbers as pyRiemann's (tested), in a fraction of its time
    (``benchmarks/bench_riemann.py``).

    Parameters
    ----------
    metric : {"riemann", "logeuclid"}
        Mean and tangent map (:class:`TangentSpace`), class means and distances (as pyRiemann's: log-Euclidean
        distances for ``logeuclid``).
    tsupdate : bool
        Re-estimate the tangent-space reference on the data given to ``predict`` (:class:`TangentSpace`).
    device : str, optional

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    tangent_space_ : TangentSpace
        Fitted on the training matrices.
    filter_ : ndarray, shape (n_features, n_features)
        The geodesic filter on tangent vectors (n_features = n(n+1)/2).
    mdm_ : MDM
        Fitted on the filtered training matrices (its ``covmeans_`` are the class means).
    direction_ : ndarray, shape (n_features,) or None
        For two classes (``metric="riemann"``, no ``tsupdate``): the one discriminant direction the filter keeps.
        Every filtered matrix then lies on one geodesic through the reference, so the class means and distances
        are exact in closed form (``class_coordinates_``: each class mean's position along it) instead of Karcher
        iterations and eigendecompositions.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {"metric": spd.metrics_with("mean", "map"),
                                                        "tsupdate": bool}

    def __init__(self, metric: str = "riemann", tsupdate: bool = False, device: str | None = None) -> None:
        self.metric = metric
        self.tsupdate = tsupdate
        self.device = device

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FgMDM:
        check_params(self)
        C, y = _matrices_and_labels(X, y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"field 'y': expected at least two classes, got {list(self.classes_)}")
        self.tangent_space_ = TangentSpace(self.metric, self.tsupdate, self.device)
        T = self.tangent_space_.fit_transform(C, sample_weight=sample_weight)
        W = _lda_directions(T, y, self.classes_)
        self.filter_ = W.T @ np.linalg.pinv(W @ W.T) @ W
        self.n_features_in_ = C.shape[1] * C.shape[2]
        self.direction_ = None
        if self.metric == "riemann" and not self.tsupdate and len(self.classes_) == 2:
            # two classes: the filter keeps one direction w, so every filtered matrix is R^1/2 expm(a S) R^1/2 with
            # a = t.w / w.w and S the matrix of w. These commute once whitened: each class's Riemannian mean is
            # R^1/2 expm(mean(a) S) R^1/2 exactly, and the distance to it |a - mean(a)| ||w||. No eigendecomposition.
            w = W[0]
            a = T @ w / (w @ w)
            sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            self.direction_ = w
            self.class_coordinates_ = np.array([np.average(a[y == c], weights=sw[y == c]) for c in self.classes_])
            self.mdm_ = MDM(self.metric, self.device)
            self.mdm_.classes_, self.mdm_.n_features_in_ = self.classes_, self.n_features_in_
            self.mdm_.covmeans_ = self.tangent_space_.inverse_transform(self.class_coordinates_[:, None] * w)
            return self
        self.mdm_ = MDM(self.metric, self.device).fit(self.tangent_space_.inverse_transform(T @ self.filter_), y,
                                                      sample_weight)
        return self

    def _filtered(self, X: Any) -> np.ndarray:
        return self.tangent_space_.inverse_transform(self.tangent_space_.transform(X) @ self.filter_)

    def transform(self, X: Any) -> np.ndarray:
        """Riemannian distance of each filtered matrix to each class mean, shape (n_epochs, n_classes)."""
        check_is_fitted(self, "mdm_")
        if self.direction_ is not None:
            w = self.direction_
            a = self.tangent_space_.transform(X) @ w / (w @ w)
            return np.abs(a[:, None] - self.class_coordinates_[None, :]) * np.sqrt(w @ w)
        if self.metric == "logeuclid":    # pyRiemann's MDM(metric="logeuclid") measures log-Euclidean distances
            L = spd.logm(_tensor(self._filtered(X), self.device))
            M = spd.logm(_tensor(self.mdm_.covmeans_, self.device))
            return torch.linalg.matrix_norm(L[:, None] - M[None], ord="fro").cpu().numpy()
        return self.mdm_.transform(self._filtered(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.transform(X).argmin(axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the negative squared distances (as :class:`MDM`)."""
        return _distance_softmax(self.transform(X))


@register
class Recenter(ArrayInput, TransformerMixin, BaseEstimator):
    """Re-centre the matrices of each group (subject, session) at the identity: ``M_g^-1/2 C M_g^-1/2``.

    ``M_g`` is the Riemannian mean of group ``g``'s matrices. It needs no labels, so a new subject is re-centred on
    its own unlabeled data at ``transform`` (Zanini et al. 2018). The groups are ``groups`` when given; else, for
    matrices of a covariance step fed an EpochSet or ``mne.Epochs`` (:class:`EpochMatrices`), the table's
    ``group_by`` column — so ``make_pipeline(Covariances(), Recenter(), TangentSpace(), clf)`` re-centres each
    subject inside ``cross_val_score``/``GridSearchCV``; else all matrices form one group.

    Parameters
    ----------
    metric : {"riemann", "logeuclid", "euclid"}
        The mean each group is centred at (pyRiemann's ``mean_covariance`` of that metric; "euclid": the arithmetic
        mean, as ``pyriemann.transfer.TLCenter(metric="euclid")``).
    group_by : str or None
        Table column naming each epoch's group (None: ignore the table).

    Attributes
    ----------
    references_ : dict of group → ndarray (n, n)
        Means of the groups seen in ``fit``.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {"metric": spd.metrics_with("mean"),
                                                        "group_by": [str, None]}

    def __init__(self, metric: str = "riemann", device: str | None = None, group_by: str | None = "subject") -> None:
        self.metric = metric
        self.device = device
        self.group_by = group_by

    def _mean(self, C: torch.Tensor) -> torch.Tensor:
        return spd.mean(C, self.metric)

    def fit(self, X: Any, y: Any = None, groups: Any = None) -> Recenter:
        check_params(self)
        C = _tensor(check_spd(X, (3,)), self.device)
        g = table_groups(X, groups, self.group_by, C.shape[0])
        self.references_ = {_py(k): self._mean(C[torch.as_tensor(g == k)]).cpu().numpy() for k in np.unique(g)}
        return self

    def transform(self, X: Any, groups: Any = None) -> np.ndarray:
        """Re-centred matrices; groups unseen in ``fit`` are centred on their own mean."""
        check_is_fitted(self, "references_")
        C = _tensor(check_spd(X, (3,)), self.device)
        g = table_groups(X, groups, self.group_by, C.shape[0])
        out = torch.empty_like(C)
        for k in np.unique(g):
            sel = torch.as_tensor(g == k)
            ref = _tensor(self.references_[k], self.device) if k in self.references_ else self._mean(C[sel])
            R = spd.invsqrtm(ref)
            out[sel] = R @ C[sel] @ R
        return out.cpu().numpy()

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None) -> np.ndarray:
        return self.fit(X, y, groups).transform(X, groups)


def _domain_codes(groups: np.ndarray, y: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """pyRiemann's transfer estimators read ``"domain/label"`` strings: map groups (and labels) to codes without a
    '/' so that any subject name or label survives the round trip. Returns (code → group, encoded labels)."""
    keys = list(np.unique(groups))
    code = {k: f"g{i}" for i, k in enumerate(keys)}
    labels = np.zeros(len(groups), dtype=int) if y is None else np.unique(y, return_inverse=True)[1]
    enc = np.array([f"{code[g]}/{c}" for g, c in zip(groups, labels)])
    return {v: k for k, v in code.items()}, enc


def _py(k: Any) -> Any:
    """A numpy scalar as the Python value it holds (for readable messages and dictionary keys)."""
    return k.item() if isinstance(k, np.generic) else k


def _shared_classes(y: np.ndarray, g: np.ndarray, ref: Any) -> None:
    want = sorted(np.unique(y[g == ref]).tolist())
    for k in np.unique(g).tolist():
        have = sorted(np.unique(y[g == k]).tolist())
        if have != want:
            raise ValueError(f"group {k!r}: expected labelled epochs of every class of the reference group {ref!r} "
                             f"{want}, got {have}")


def _reference_group(reference: Any, keys: list) -> Any:
    keys = [_py(k) for k in keys]
    ref = keys[0] if reference is None else _py(reference)
    if ref not in keys:
        raise ValueError(f"field 'reference': expected one of the groups {keys}, got {ref!r}")
    return ref


@register
class Stretch(ArrayInput, TransformerMixin, BaseEstimator):
    """Stretch each group's re-centred matrices around the identity to a common dispersion: ``C ↦ C^s``.

    The second step of Riemannian Procrustes analysis (RPA, Rodrigues et al. 2019), after :class:`Recenter`:
    the dispersion of a group is the mean squared Riemannian distance of its matrices to the identity,
    ``δ_g = mean ||log C||_F²``, and ``s = sqrt(dispersion / δ_g)``. Equals pyRiemann's
    ``TLScale(centered_data=True)`` (tested). Groups unseen in ``fit`` are stretched by their own dispersion. The
    groups come from ``groups`` or the table, as in :class:`Recenter`.

    Attributes
    ----------
    dispersions_ : dict of group → float
    """

    def __init__(self, dispersion: float = 1.0, device: str | None = None, group_by: str | None = "subject") -> None:
        self.dispersion = dispersion
        self.device = device
        self.group_by = group_by

    @staticmethod
    def _dispersion(C: torch.Tensor) -> float:
        return float((torch.log(spd.eigvalsh(C)) ** 2).sum(-1).mean())

    _parameter_constraints: ClassVar[dict[str, Any]] = {"dispersion": Interval(0, None, closed="neither"),
                                                        "group_by": [str, None]}

    def fit(self, X: Any, y: Any = None, groups: Any = None) -> Stretch:
        check_params(self)
        C = _tensor(check_spd(X, (3,)), self.device)
        g = table_groups(X, groups, self.group_by, C.shape[0])
        self.dispersions_ = {_py(k): self._dispersion(C[torch.as_tensor(g == k)]) for k in np.unique(g)}
        return self

    def transform(self, X: Any, groups: Any = None) -> np.ndarray:
        check_is_fitted(self, "dispersions_")
        C = _tensor(check_spd(X, (3,)), self.device)
        g = table_groups(X, groups, self.group_by, C.shape[0])
        out = torch.empty_like(C)
        for k in np.unique(g):
            sel = torch.as_tensor(g == k)
            disp = self.dispersions_[k] if k in self.dispersions_ else self._dispersion(C[sel])
            power = float(np.sqrt(self.dispersion / disp)) if disp > 0 else 1.0
            out[sel] = spd._eig_fn(C[sel], lambda w, p=power: w ** p)
        return out.cpu().numpy()

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None) -> np.ndarray:
        return self.fit(X, y, groups).transform(X, groups)


@register
class Rotate(ArrayInput, TransformerMixin, BaseEstimator):
    """Rotate each group's re-centred matrices, ``Q_g C Q_g^T``, so that its class means match a reference group's.

    The third step of RPA (Rodrigues et al. 2019), after :class:`Recenter` and :class:`Stretch`: ``Q_g`` minimises
    ``sum_c δ²(M_c^ref, Q M_c^g Q^T)`` over orthogonal matrices (``metric`` "euclid" or "riemann"). The
    optimisation is pyRiemann's ``TLRotate`` (manifold gradient descent with a Bhatia–Congedo warm start), which this
    estimator calls per group; the reference group keeps the identity. It needs labels in every group — for a new
    subject, a few calibration trials of each class.

    Parameters
    ----------
    reference : group id, optional
        The group the others are rotated onto (default: the first group in sorted order).
    metric : {"euclid", "riemann"}

    Attributes
    ----------
    rotations_ : dict of group → ndarray (n, n)
    """

    #: the distance TLRotate minimises (not a mean: pyRiemann's choice of two)
    _parameter_constraints: ClassVar[dict[str, Any]] = {"metric": ("euclid", "riemann")}

    def __init__(self, reference: Any = None, metric: str = "euclid") -> None:
        self.reference = reference
        self.metric = metric

    def fit(self, X: Any, y: Any, groups: Any = None) -> Rotate:
        from pyriemann.transfer import TLRotate

        check_params(self)
        C = check_spd(X, (3,)).astype(np.float64)
        y = np.asarray(y)
        g = table_groups(X, groups, None, C.shape[0])
        if y.shape != (C.shape[0],):
            raise ValueError(f"field 'y': expected one label per matrix ({C.shape[0]}), got shape {y.shape}")
        keys = list(np.unique(g))
        ref = _reference_group(self.reference, keys)
        _shared_classes(y, g, ref)
        self.rotations_ = {ref: np.eye(C.shape[-1])}
        if len(keys) > 1:
            back, enc = _domain_codes(g, y)
            code = {v: k for k, v in back.items()}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                tl = TLRotate(target_domain=code[ref], metric=self.metric).fit(C, enc)
            if any("Convergence not reached" in str(w.message) for w in caught):
                warnings.warn(f"Rotate: pyRiemann's TLRotate stopped after its 10,000 iterations before its step fell "
                              f"below 1e-9 (groups {[_py(k) for k in keys if _py(k) != ref]} onto {ref!r}); the "
                              "rotation is the best it found. With few classes the minimisers nearly tie, which is "
                              "what slows it.", RuntimeWarning, stacklevel=2)
            self.rotations_.update({_py(back[d]): Q for d, Q in tl.rotations_.items()})
        return self

    def transform(self, X: Any, groups: Any = None) -> np.ndarray:
        """Rotated matrices; ``groups`` must have been seen in ``fit`` (None: the reference group)."""
        check_is_fitted(self, "rotations_")
        C = check_spd(X, (3,)).astype(np.float64)
        reference = next(iter(self.rotations_))
        g = np.full(len(C), reference) if groups is None else table_groups(X, groups, None, len(C))
        unknown = sorted(set(np.unique(g).tolist()) - set(self.rotations_))
        if unknown:
            raise ValueError(f"field 'groups': expected groups seen in fit {sorted(self.rotations_)}, got {unknown}")
        out = np.empty_like(C)
        for k, Q in self.rotations_.items():
            sel = g == k
            out[sel] = Q @ C[sel] @ Q.T
        return out

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None) -> np.ndarray:
        return self.fit(X, y, groups).transform(X, groups)


@register
class Procrustes(TransformerMixin, BaseEstimator):
    """Rotate each group's tangent vectors onto a reference group's: tangent-space alignment (Bleuzé et al. 2022).

    The anchors of a group are its class means and, per class, ``n_clusters`` means of the vectors sorted along
    each of the class's first ``n_components`` principal directions (fitted on the rotated group, applied to the
    reference). ``Q_g`` solves the orthogonal Procrustes problem between the two groups' anchors, truncated to the
    singular directions that explain ``expl_var`` of the cross-product (so it is a partial isometry when classes
    are few). The computation is pyRiemann's ``TLRotate`` on tangent vectors, called per group; the reference
    group keeps the identity. Use it after :class:`Recenter` and :class:`TangentSpace`; it needs labels in every
    group, e.g. a few calibration trials of a new subject.

    Parameters
    ----------
    reference : group id, optional
        The group the others are rotated onto (default: the first group in sorted order).
    expl_var : float
        In (0, 1]: share of the cross-product's singular values kept; above 1: number of directions kept.
    n_components, n_clusters : int
        Anchors per class beyond its mean (``n_components=0``: class means only).

    Attributes
    ----------
    rotations_ : dict of group → ndarray (n_features, n_features)
        Applied as ``X @ rotations_[g]``.
    """

    def __init__(self, reference: Any = None, expl_var: float = 0.999, n_components: int = 1,
                 n_clusters: int = 3) -> None:
        self.reference = reference
        self.expl_var = expl_var
        self.n_components = n_components
        self.n_clusters = n_clusters

    def fit(self, X: Any, y: Any, groups: Any = None) -> Procrustes:
        from pyriemann.transfer import TLRotate
        from sklearn.utils.validation import validate_data

        X, y = validate_data(self, X, y, dtype=np.float64)
        g = np.zeros(len(y), dtype=int) if groups is None else np.asarray(groups)
        if g.shape != (X.shape[0],):
            raise ValueError(f"field 'groups': expected one group per vector ({X.shape[0]}), got shape {g.shape}")
        keys = list(np.unique(g))
        ref = _reference_group(self.reference, keys)
        _shared_classes(y, g, ref)
        self.rotations_ = {ref: np.eye(X.shape[1])}
        if len(keys) > 1:
            back, enc = _domain_codes(g, y)
            code = {v: k for k, v in back.items()}
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # pyRiemann only warns when a class has fewer vectors than anchors
                try:
                    tl = TLRotate(target_domain=code[ref], expl_var=self.expl_var, n_components=self.n_components,
                                  n_clusters=self.n_clusters).fit(X, enc)
                except UserWarning as err:
                    raise ValueError(f"field 'n_clusters': expected at most as many labelled vectors per class and "
                                     f"group as n_clusters={self.n_clusters} ({err}); lower n_clusters or give more "
                                     "calibration trials") from None
            self.rotations_.update({_py(back[d]): Q for d, Q in tl.rotations_.items()})
        return self

    def transform(self, X: Any, groups: Any = None) -> np.ndarray:
        """Rotated vectors; ``groups`` must have been seen in ``fit`` (None: the single group of ``fit``)."""
        from sklearn.utils.validation import validate_data

        check_is_fitted(self, "rotations_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        if groups is None:
            if len(self.rotations_) != 1:
                raise ValueError(f"field 'groups': expected one of {sorted(self.rotations_)} per vector, got None")
            groups = np.full(X.shape[0], next(iter(self.rotations_)))
        g = np.asarray(groups)
        if g.shape != (X.shape[0],):
            raise ValueError(f"field 'groups': expected one group per vector ({X.shape[0]}), got shape {g.shape}")
        unknown = sorted(set(np.unique(g).tolist()) - set(self.rotations_))
        if unknown:
            raise ValueError(f"field 'groups': expected groups seen in fit {sorted(self.rotations_)}, got {unknown}")
        out = np.empty_like(X)
        for k, Q in self.rotations_.items():
            sel = g == k
            out[sel] = X[sel] @ Q
        return out

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None) -> np.ndarray:
        return self.fit(X, y, groups).transform(X, groups)
