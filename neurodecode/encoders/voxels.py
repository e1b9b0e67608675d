"""Voxel features: single-trial fMRI responses (or any epochs) as z-scored vectors — the plain fMRI encoder.

May import: ``neurodecode.core``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from neurodecode.core.registry import register

__all__ = ["VoxelFeatures"]


@register
class VoxelFeatures(TransformerMixin, BaseEstimator):
    """Epochs (n_epochs, n_channels, n_times) → vectors (n_epochs, n_channels · n_times), z-scored per feature
    with the training statistics (fMRI single-trial responses: one feature per voxel)."""

    def __init__(self, standardize: bool = True) -> None:
        self.standardize = standardize

    def _flat(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"field 'X': expected (n_epochs, n_channels, n_times), got shape {X.shape}")
        return X.reshape(len(X), -1)

    def fit(self, X: Any, y: Any = None) -> VoxelFeatures:
        F = self._flat(X)
        self.n_features_in_ = F.shape[1]
        self.mean_ = F.mean(0) if self.standardize else np.zeros(F.shape[1])
        sd = F.std(0) if self.standardize else np.ones(F.shape[1])
        self.scale_ = np.where(sd > 0, sd, 1.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        F = self._flat(X)
        if F.shape[1] != self.n_features_in_:
            raise ValueError(f"field 'X': expected {self.n_features_in_} features per epoch, got {F.shape[1]}")
        return ((F - self.mean_) / self.scale_).astype(np.float32)
