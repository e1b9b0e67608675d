"""Functional connectivity of ROI (or channel) time series: connectomes and graph features, batched in torch.

Each epoch is one time-series window ``(n_rois, n_times)`` — a whole run for static connectivity, or the windows of
:func:`~neurodecode.loaders.fmri.sliding_windows` for dynamic connectivity — and gets one connectome:

==========================  ==========================================================================================
``Connectivity(kind)``      ``covariance``, ``correlation``, ``partial correlation``, ``precision`` or ``tangent``
                            (log of the connectome whitened by a reference: one group mean, as nilearn's, or each
                            subject's own mean); vectorised as nilearn does (lower triangle, diagonal / √2)
``GraphFeatures(density)``  per-ROI degree, clustering coefficient and 3-cycle participation of the network that
                            keeps the strongest ``density`` share of the connections
==========================  ==========================================================================================

Both are scikit-learn transformers; with the same Ledoit-Wolf estimator the connectomes equal nilearn's
``ConnectivityMeasure`` (tested). Many short windows are where the batch pays: one call, not one estimator fit per
window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.encoders import spd
from neurodecode.encoders.inputs import ArrayInput, EpochMatrices, as_array, check_signals, table_groups, table_of
from neurodecode.encoders.riemann import Recenter
from neurodecode.core.registry import register

__all__ = ["GRAPH_FEATURES", "KINDS", "Connectivity", "GraphFeatures", "connectivity_sequence", "vectorize"]

#: connectome kinds (nilearn's names)
KINDS = ("covariance", "correlation", "partial correlation", "precision", "tangent")
#: per-ROI graph measures
GRAPH_FEATURES = ("degree", "clustering", "cycles3")


def vectorize(M: np.ndarray, discard_diagonal: bool = False) -> np.ndarray:
    """Lower triangle of ``(..., n, n)`` row by row, the diagonal divided by √2 (kept norm), as nilearn's
    ``sym_matrix_to_vec``; ``discard_diagonal`` drops it."""
    n = M.shape[-1]
    rows, cols = np.tril_indices(n, k=-1 if discard_diagonal else 0)
    out = M[..., rows, cols].copy()
    if not discard_diagonal:
        out[..., rows == cols] /= np.sqrt(2.0)
    return out


def _corr(C: torch.Tensor) -> torch.Tensor:
    d = torch.rsqrt(torch.diagonal(C, dim1=-2, dim2=-1))
    return C * d[..., :, None] * d[..., None, :]


@register
class Connectivity(ArrayInput, TransformerMixin, BaseEstimator):
    """One connectome per epoch of ROI time series.

    Parameters
    ----------
    kind : {"covariance", "correlation", "partial correlation", "precision", "tangent"}
        ``correlation`` z-scores each ROI's series (sample standard deviation) before the covariance, as nilearn;
        ``partial correlation`` is ``-P_ij / sqrt(P_ii P_jj)`` of the precision ``P`` (diagonal 1); ``tangent``
        is ``logm(M^-1/2 C M^-1/2)`` of the covariance ``C`` at a reference ``M``.
    estimator : {"lwf", "oas", "scm"}
        Covariance estimator (nilearn's default is Ledoit-Wolf, ``"lwf"``); see :class:`~neurodecode.encoders.
        riemann.Covariances`.
    reference : {"group", "subject"}
        ``tangent`` only. ``group``: the Riemannian mean of the covariances seen in ``fit`` (nilearn);
        ``subject``: each subject's own mean (``groups``, or the table's ``group_by`` column when the input is an
        EpochSet), so that between-subject offsets vanish — unseen subjects are centred on their own epochs.
    vectorize : bool
        Return ``(n_epochs, n(n+1)/2)`` vectors (nilearn's order) instead of ``(n_epochs, n, n)`` matrices.
    discard_diagonal : bool
        Drop the diagonal from the vectors.
    group_by : str or None
    device : str, optional

    Attributes
    ----------
    mean_ : ndarray (n, n)
        ``tangent`` with ``reference="group"``: the reference.
    """

    def __init__(self, kind: str = "correlation", estimator: str = "lwf", reference: str = "group",
                 vectorize: bool = True, discard_diagonal: bool = False, group_by: str | None = "subject",
                 device: str | None = None) -> None:
        self.kind = kind
        self.estimator = estimator
        self.reference = reference
        self.vectorize = vectorize
        self.discard_diagonal = discard_diagonal
        self.group_by = group_by
        self.device = device

    def _check_params(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field 'kind': expected one of {list(KINDS)}, got {self.kind!r}")
        if self.reference not in ("group", "subject"):
            raise ValueError(f"field 'reference': expected 'group' or 'subject', got {self.reference!r}")

    def _covariances(self, X: Any) -> torch.Tensor:
        S = check_signals(X)
        if S.shape[2] < 2:
            raise ValueError(f"field 'X': expected windows of at least 2 samples, got {S.shape[2]}")
        T = spd.to_tensor(S).to(self.device or "cpu")
        if self.kind == "correlation":
            T = (T - T.mean(-1, keepdim=True)) / T.std(-1, keepdim=True)
        C = spd.covariances(T, self.estimator)
        spd.check_spd(C, hint="use estimator='lwf' or 'oas', or longer windows")
        return C

    def fit(self, X: Any, y: Any = None, groups: Any = None) -> Connectivity:
        """Check the input; for a group tangent space, the reference (Riemannian mean of the covariances)."""
        self._check_params()
        C = self._covariances(X)
        self.n_channels_in_ = C.shape[-1]
        if self.kind == "tangent" and self.reference == "group":
            self.mean_ = spd.mean_riemann(C).cpu().numpy()
        return self

    def transform(self, X: Any, groups: Any = None) -> np.ndarray:
        """Connectomes ``(n_epochs, n, n)``, or their vectors with ``vectorize``."""
        check_is_fitted(self, "n_channels_in_")
        C = self._covariances(X)
        if C.shape[-1] != self.n_channels_in_:
            raise ValueError(f"field 'X': expected {self.n_channels_in_} ROIs as in fit, got {C.shape[-1]}")
        if self.kind == "correlation":
            M = _corr(C)
        elif self.kind in ("precision", "partial correlation"):
            M = torch.linalg.inv(C)
            if self.kind == "partial correlation":
                M = -_corr(M)
                M.diagonal(dim1=-2, dim2=-1).fill_(1.0)
        elif self.kind == "tangent":
            M = self._tangent(C, X, groups)
        else:
            M = C
        out = M.cpu().numpy()
        return vectorize(out, self.discard_diagonal) if self.vectorize else EpochMatrices.wrap(out, table_of(X))

    def _tangent(self, C: torch.Tensor, X: Any, groups: Any) -> torch.Tensor:
        if self.reference == "group":
            W = spd.invsqrtm(spd.to_tensor(self.mean_).to(self.device or "cpu"))
            return spd.logm(W @ C @ W)
        # each subject at its own Riemannian mean: Recenter's whitening, then the log
        centred = Recenter(device=self.device, group_by=None).fit_transform(
            C.cpu().numpy(), groups=table_groups(X, groups, self.group_by, len(C), "epoch"))
        return spd.logm(spd.to_tensor(centred).to(C.device))

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None) -> np.ndarray:
        return self.fit(X, y, groups).transform(X, groups)

    def feature_names(self, names: Sequence[str]) -> list[str]:
        """``"A|B"`` for each vector entry (``"A|A"`` on the diagonal), in the order of :func:`vectorize`."""
        rows, cols = np.tril_indices(len(names), k=-1 if self.discard_diagonal else 0)
        return [f"{names[i]}|{names[j]}" for i, j in zip(rows, cols)]


@register
class GraphFeatures(TransformerMixin, BaseEstimator):
    """Per-ROI graph measures of thresholded connectomes (the ADHD-200 "3-cycle maps" among them).

    Each connectome keeps its strongest ``density`` share of off-diagonal connections (by absolute value with
    ``absolute=True``, else by value) as an unweighted, undirected network ``A``; per ROI: ``degree`` (number of
    kept connections), ``clustering`` (closed triangles over possible ones, ``(A³)_ii / (k_i (k_i - 1))``, 0 for
    k < 2) and ``cycles3`` (3-cycles through the ROI, ``(A³)_ii / 2``).

    Parameters
    ----------
    density : float in (0, 1]
    features : sequence of {"degree", "clustering", "cycles3"}
    absolute : bool

    ``transform`` takes ``(n_epochs, n, n)`` matrices (``Connectivity(vectorize=False)``) and returns
    ``(n_epochs, n_features × n)``: the first measure for every ROI, then the next.
    """

    def __init__(self, density: float = 0.2, features: Sequence[str] = GRAPH_FEATURES, absolute: bool = True) -> None:
        self.density = density
        self.features = features
        self.absolute = absolute

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def fit(self, X: Any, y: Any = None) -> GraphFeatures:
        if not 0 < float(self.density) <= 1:
            raise ValueError(f"field 'density': expected a share of connections in (0, 1], got {self.density!r}")
        unknown = [f for f in self.features if f not in GRAPH_FEATURES]
        if unknown or not len(self.features):
            raise ValueError(f"field 'features': expected some of {list(GRAPH_FEATURES)}, got {list(self.features)}")
        M = _matrices(X)
        self.n_channels_in_ = M.shape[-1]
        return self

    def adjacency(self, X: Any) -> np.ndarray:
        """The kept networks, ``(n_epochs, n, n)`` of 0/1."""
        M = torch.as_tensor(_matrices(X))
        n = M.shape[-1]
        W = M.abs() if self.absolute else M.clone()
        rows, cols = torch.triu_indices(n, n, 1)
        w = W[:, rows, cols]
        k = max(1, int(round(float(self.density) * w.shape[1])))
        keep = torch.zeros_like(w, dtype=torch.bool)
        keep.scatter_(1, torch.topk(w, k, dim=1).indices, True)   # ties broken by position, the same every run
        A = torch.zeros_like(M)
        A[:, rows, cols] = keep.to(M.dtype)
        return (A + A.mT).numpy()

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_channels_in_")
        A = torch.as_tensor(self.adjacency(X))
        if A.shape[-1] != self.n_channels_in_:
            raise ValueError(f"field 'X': expected {self.n_channels_in_} ROIs as in fit, got {A.shape[-1]}")
        k = A.sum(-1)
        tri = torch.diagonal(A @ A @ A, dim1=-2, dim2=-1)               # 2 × the triangles through each ROI
        out = {"degree": k, "cycles3": tri / 2,
               "clustering": torch.where(k > 1, tri / (k * (k - 1)).clamp_min(1), torch.zeros_like(k))}
        return torch.cat([out[f] for f in self.features], dim=1).numpy()

    def feature_names(self, names: Sequence[str]) -> list[str]:
        return [f"{f}:{n}" for f in self.features for n in names]


def _matrices(X: Any) -> np.ndarray:
    M = as_array(X).astype(np.float64)
    if M.ndim != 3 or M.shape[-1] != M.shape[-2]:
        raise ValueError(f"field 'X': expected connectomes of shape (n_epochs, n, n) (Connectivity(vectorize=False)), "
                         f"got shape {M.shape}")
    if not np.isfinite(M).all():
        raise ValueError("field 'X': expected finite connectomes, got NaN or Inf")
    return M


def connectivity_sequence(epochs: Any, window: float, stride: float, *, kind: str = "correlation",
                          estimator: str = "lwf") -> Any:
    """Dynamic functional connectivity as epochs: each epoch's ROI series ``(n_rois, n_times)`` → the sequence of
    its sliding-window connectomes, ``(n_epochs, n_edges, n_windows)`` — one channel per ROI pair (``"b|a"``, the
    lower triangle without the diagonal, nilearn's order), one time point per window.

    The result is an ordinary :class:`~neurodecode.core.epochs.EpochSet` at ``1 / stride`` Hz, so the masked
    autoencoder engine pretrains on it as on any signal: its tokens are spans of consecutive windows of each edge
    (``conf/encoder/tiny_mae_fc.yaml``). Edges sit at the midpoint of their two ROIs' positions (when known).

    Parameters
    ----------
    epochs : EpochSet of ROI series (e.g. :func:`~neurodecode.loaders.fmri.sliding_windows` of parcel means)
    window, stride : seconds (whole samples); windows stay inside each epoch.
    kind : {"covariance", "correlation", "partial correlation", "precision"} (:class:`Connectivity`; "tangent"
        needs a reference fitted on training data, so it has no place in a fixed transform).
    """
    from neurodecode.core.epochs import Channels, EpochSet

    if kind == "tangent" or kind not in KINDS:
        raise ValueError(f"field 'kind': expected one of {[k for k in KINDS if k != 'tangent']}, got {kind!r}")
    if not isinstance(epochs, EpochSet):
        raise TypeError(f"field 'epochs': expected an EpochSet of ROI series, got {type(epochs).__name__}")
    n_win, n_step = int(round(window * epochs.sfreq)), int(round(stride * epochs.sfreq))
    if n_win < 3 or n_step < 1 or n_win > epochs.n_times:
        raise ValueError(f"field 'window/stride': expected a window of 3 to {epochs.n_times} samples and a stride of "
                         f"at least 1 at {epochs.sfreq:g} Hz, got {window} s / {stride} s")
    starts = np.arange(0, epochs.n_times - n_win + 1, n_step)
    X = check_signals(epochs.data).astype(np.float64)
    stacked = np.stack([X[:, :, s:s + n_win] for s in starts], axis=1)            # (n, n_windows, n_rois, n_win)
    n, w, r = stacked.shape[:3]
    vectors = Connectivity(kind, estimator=estimator, vectorize=True, discard_diagonal=True).fit_transform(
        stacked.reshape(n * w, r, n_win))
    data = vectors.reshape(n, w, -1).transpose(0, 2, 1)                             # (n, n_edges, n_windows)
    rows, cols = np.tril_indices(r, k=-1)                   # the vectors' order (vectorize)
    names = list(epochs.channels.names)
    pos = epochs.channels.pos
    channels = Channels([f"{names[a]}|{names[b]}" for a, b in zip(rows, cols)], epochs.channels.types[0],
                        None if pos is None else (pos[rows] + pos[cols]) / 2)
    step = {"step": "connectivity_sequence", "window": float(window), "stride": float(stride), "kind": kind,
            "estimator": estimator, "n_windows": int(w)}
    return EpochSet(data.astype(np.float32), 1.0 / (n_step / epochs.sfreq), channels, epochs.table,
                    epochs.tmin, list(epochs.provenance) + [step], epochs.stimuli)
