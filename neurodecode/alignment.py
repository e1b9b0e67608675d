"""Alignment of brain features with a target space: closed-form ridge regression, batched in torch.

:class:`RidgeAlignment` maps brain features ``(n_samples, n_features)`` (e.g. voxels of single-trial responses)
to targets ``(n_samples, n_targets)`` (pixels, image or text embeddings). The regularisation is chosen per target
(or shared) by efficient leave-one-out or k-fold cross-validation on one eigendecomposition of the Gram matrix,
so dozens of alphas cost about one fit; it runs on CPU or GPU (``device``) in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["RidgeAlignment"]


def _as_2d(X: Any, name: str) -> np.ndarray:
    if hasattr(X, "data") and hasattr(X, "channels"):  # an EpochSet: channels × times flattened
        X = X.data.reshape(X.n_epochs, -1)
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"field '{name}': expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"field '{name}': expected finite values, got NaN or Inf")
    return X


class RidgeAlignment(RegressorMixin, BaseEstimator):
    """Ridge regression from brain features to a target space, with the penalty chosen by cross-validation.

    Parameters
    ----------
    alphas : sequence of float
        Candidate penalties (on standardised features).
    alpha_per_target : bool
        Choose one alpha per target column (MindEye-style voxel→embedding ridge often benefits) or one for all.
    cv : int or None
        None: exact leave-one-out (from the eigendecomposition of the Gram matrix); an int: k-fold with
        contiguous folds.
    standardize : bool
        Z-score the features (statistics from ``fit``); targets are centred.
    device : str, optional
        torch device.

    Attributes
    ----------
    coef_ : ndarray (n_targets, n_features)
    intercept_ : ndarray (n_targets,)
    alpha_ : ndarray (n_targets,)
    cv_scores_ : ndarray (n_alphas, n_targets)
        Cross-validated squared error of each alpha and target.
    """

    def __init__(self, alphas: Sequence[float] = tuple(np.logspace(-2, 6, 17)), alpha_per_target: bool = False,
                 cv: int | None = None, standardize: bool = True, device: str | None = None) -> None:
        self.alphas = alphas
        self.alpha_per_target = alpha_per_target
        self.cv = cv
        self.standardize = standardize
        self.device = device

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float64, device=self.device or "cpu")

    def fit(self, X: Any, y: Any) -> RidgeAlignment:
        X, Y = _as_2d(X, "X"), _as_2d(np.asarray(y).reshape(len(y), -1) if np.ndim(y) == 1 else y, "y")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"field 'y': expected one target row per sample ({X.shape[0]}), got {Y.shape[0]}")
        if X.shape[0] < 3:
            raise ValueError(f"field 'X': expected at least 3 samples for cross-validation, got {X.shape[0]}")
        alphas = np.asarray(self.alphas, dtype=np.float64)
        if alphas.ndim != 1 or len(alphas) == 0 or (alphas <= 0).any():
            raise ValueError(f"field 'alphas': expected positive penalties, got {self.alphas}")
        self.x_mean_ = X.mean(0)
        self.x_scale_ = X.std(0) if self.standardize else np.ones(X.shape[1])
        self.x_scale_[self.x_scale_ == 0] = 1.0
        self.y_mean_ = Y.mean(0)
        Xs, Yc = self._t((X - self.x_mean_) / self.x_scale_), self._t(Y - self.y_mean_)
        errors = self._cv_errors(Xs, Yc, alphas)  # (n_alphas, n_targets)
        best = errors.argmin(0) if self.alpha_per_target else np.full(Y.shape[1], errors.mean(1).argmin())
        self.alpha_ = alphas[best]
        self.cv_scores_ = errors
        # dual solution on the full data: W = X^T (K + a I)^-1 Y, one eigendecomposition of K = X X^T
        evals, U = torch.linalg.eigh(Xs @ Xs.T)
        UtY = U.T @ Yc
        coef = torch.empty((Y.shape[1], X.shape[1]), dtype=torch.float64, device=Xs.device)
        for a in np.unique(self.alpha_):
            cols = torch.as_tensor(np.flatnonzero(self.alpha_ == a), device=Xs.device)
            dual = U @ (UtY[:, cols] / (evals + a)[:, None])
            coef[cols] = (Xs.T @ dual).T
        self.coef_ = (coef / self._t(self.x_scale_)).cpu().numpy()
        self.intercept_ = self.y_mean_ - self.coef_ @ self.x_mean_
        self.n_features_in_ = X.shape[1]
        return self

    def _cv_errors(self, Xs: torch.Tensor, Yc: torch.Tensor, alphas: np.ndarray) -> np.ndarray:
        n = Xs.shape[0]
        if self.cv is None:  # exact leave-one-out: (I - H) y / diag(I - H), H = 11^T/n + K (K + a I)^-1 (centred)
            evals, U = torch.linalg.eigh(Xs @ Xs.T)
            UtY = U.T @ Yc
            out = []
            for a in alphas:
                shrink = evals / (evals + a)
                fitted = U @ (UtY * shrink[:, None])
                h = (U**2 @ shrink) + 1.0 / n  # the intercept's leverage
                resid = (Yc - fitted) / (1 - h)[:, None]
                out.append((resid**2).mean(0))
            return torch.stack(out).cpu().numpy()
        k = int(self.cv)
        if not 2 <= k <= n:
            raise ValueError(f"field 'cv': expected None or 2 <= folds <= n_samples = {n}, got {self.cv}")
        folds = np.array_split(np.arange(n), k)
        out = torch.zeros((len(alphas), Yc.shape[1]), dtype=torch.float64, device=Xs.device)
        for test in folds:
            train = np.setdiff1d(np.arange(n), test)
            Xtr, Ytr = Xs[train], Yc[train]
            mu_x, mu_y = Xtr.mean(0), Ytr.mean(0)
            Xtr, Ytr, Xte = Xtr - mu_x, Ytr - mu_y, Xs[test] - mu_x
            evals, U = torch.linalg.eigh(Xtr @ Xtr.T)
            UtY, KteU = U.T @ Ytr, (Xte @ Xtr.T) @ U
            for j, a in enumerate(alphas):
                pred = KteU @ (UtY / (evals + a)[:, None]) + mu_y
                out[j] += ((Yc[test] - pred) ** 2).sum(0)
        return (out / n).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets)."""
        check_is_fitted(self, "coef_")
        X = _as_2d(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"field 'X': expected {self.n_features_in_} features as in fit, got {X.shape[1]}")
        return X @ self.coef_.T + self.intercept_
