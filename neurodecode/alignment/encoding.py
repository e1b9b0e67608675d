"""Encoding models — the other direction: stimulus features → brain responses.

* :class:`RidgeEncoder` — ridge from stimulus features ``(n_trials, n_features)`` (pixels, image embeddings) to
  responses ``(n_trials, n_voxels)`` with one penalty per voxel (exact leave-one-out over a log grid, the
  :class:`~neurodecode.alignment.aligners.RidgeAlignment` solver).
* :func:`voxel_correlations` — held-out Pearson r per voxel; :func:`noise_ceiling` — the split-half reliability of
  repeated presentations (Spearman–Brown), the most an encoding model can explain; divide by it to normalise.
* :func:`encoding_scores` — cross-validated r of every voxel on training trials only, and :func:`select_voxels`, the
  voxels an encoding model predicts best. ``RidgeAlignment(select_voxels=k)`` decodes from those only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.alignment.aligners import (ALPHAS, RidgeAlignment, as_2d, encoding_scores, select_voxels,
                                            voxel_correlations)

# encoding_scores, select_voxels and voxel_correlations live beside the ridge solver (RidgeAlignment selects voxels
# with them); they are part of this module's API
__all__ = ["RidgeEncoder", "encoding_scores", "noise_ceiling", "pixel_features", "select_voxels",
           "voxel_correlations"]


def pixel_features(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Images ``(B, C, H, W)`` in [0, 1] → grey pixels at ``size`` × ``size``, flattened ``(B, size²)`` —
    differentiable, and the same resizing as :func:`~neurodecode.core.stimuli.resize_images` (bilinear with
    antialiasing), so that an encoder fitted on ``resize_images(images, size, 1)`` pixels reads generated images
    as it read its training stimuli."""
    def features(images: torch.Tensor) -> torch.Tensor:
        grey = images.mean(1, keepdim=True)
        if grey.shape[-1] != size or grey.shape[-2] != size:
            grey = torch.nn.functional.interpolate(grey, size=(size, size), mode="bilinear", antialias=True,
                                                   align_corners=False)
        return grey.flatten(1)

    return features


def noise_ceiling(responses: Any, stimulus: Sequence[Any], *, seed: int = 0, n_splits: int = 20) -> np.ndarray:
    """Per-voxel noise ceiling (in r) from repeated presentations.

    For each of ``n_splits`` random halvings of every stimulus's repeats, the correlation over stimuli between the
    two halves' means; averaged, then corrected to the full number of repeats (Spearman–Brown,
    ``2r / (1 + r)``), and its square root is the ceiling of a model's r against the mean response. Stimuli shown
    once are ignored; fewer than 3 repeated stimuli raise (no ceiling can be estimated).
    """
    Y = as_2d(responses, "responses")
    stim = np.asarray(stimulus).astype(str)
    if stim.shape != (len(Y),):
        raise ValueError(f"field 'stimulus': expected one id per trial ({len(Y)}), got shape {stim.shape}")
    groups = [np.flatnonzero(stim == s) for s in pd.unique(stim)]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 3:
        raise ValueError(f"field 'stimulus': expected at least 3 stimuli shown twice or more for a noise ceiling, got "
                         f"{len(groups)}")
    rng = np.random.default_rng(seed)
    rs = []
    for _ in range(n_splits):
        a, b = [], []
        for g in groups:
            g = rng.permutation(g)
            a.append(Y[g[: len(g) // 2]].mean(0))
            b.append(Y[g[len(g) // 2:]].mean(0))
        rs.append(voxel_correlations(np.array(a), np.array(b)))
    r = np.clip(np.nanmean(rs, axis=0), 0.0, None)
    return np.sqrt(2 * r / (1 + r))


class RidgeEncoder(RegressorMixin, BaseEstimator):
    """Ridge encoding model: stimulus features → voxel responses, one penalty per voxel.

    Parameters
    ----------
    alphas : sequence of float
        Candidate penalties (on standardised features), chosen per voxel by exact leave-one-out.
    device : str, optional

    Attributes
    ----------
    alpha_ : ndarray (n_voxels,)
    ridge_ : RidgeAlignment
    """

    def __init__(self, alphas: Sequence[float] = ALPHAS, device: str | None = None) -> None:
        self.alphas = alphas
        self.device = device

    def fit(self, X: Any, Y: Any) -> RidgeEncoder:
        self.ridge_ = RidgeAlignment(self.alphas, alpha_per_target=True, device=self.device).fit(X, Y)
        self.alpha_ = self.ridge_.alpha_
        self.n_features_in_ = self.ridge_.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted responses, shape (n_trials, n_voxels)."""
        check_is_fitted(self, "ridge_")
        return self.ridge_.predict(X)

    def activation(self, voxels: Any, features: Callable[[torch.Tensor], torch.Tensor], *,
                   standardize: Any = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """A differentiable predicted activation of a voxel group, for encoder-guided generation.

        Parameters
        ----------
        voxels : indices of the response columns (the group)
        features : the encoder's stimulus features as a torch function of images ``(B, C, H, W)`` in [0, 1] →
            ``(B, n_features)`` (e.g. :func:`pixel_features` for an encoder fitted on pixels)
        standardize : training features ``(n, n_features)``, optional: the activation is then in units of the
            standard deviation of the group's predicted activation over them (0 at their mean).

        Returns
        -------
        callable images → (B,) the mean predicted response of the group
        """
        check_is_fitted(self, "ridge_")
        idx = np.atleast_1d(np.asarray(voxels, dtype=int))
        if idx.size == 0 or idx.min() < 0 or idx.max() >= len(self.ridge_.coef_):
            raise ValueError(f"field 'voxels': expected indices among the {len(self.ridge_.coef_)} response columns, "
                             f"got {idx.tolist()[:5]}")
        w = self.ridge_.coef_[idx].mean(0)
        b = float(self.ridge_.intercept_[idx].mean())
        mean, sd = 0.0, 1.0
        if standardize is not None:
            acts = np.asarray(standardize, dtype=np.float64) @ w + b
            mean, sd = float(acts.mean()), float(acts.std()) or 1.0
        weights = torch.as_tensor(w, dtype=torch.float32)

        def activation(images: torch.Tensor) -> torch.Tensor:
            f = features(images)
            return (f @ weights.to(f.device, f.dtype) + b - mean) / sd

        return activation

    def score_voxels(self, X: Any, Y: Any, ceiling: np.ndarray | None = None) -> np.ndarray:
        """Held-out r per voxel, divided by ``ceiling`` (from :func:`noise_ceiling`) when given."""
        r = voxel_correlations(self.predict(X), Y)
        if ceiling is None:
            return r
        ceiling = np.asarray(ceiling, dtype=float)
        if ceiling.shape != r.shape:
            raise ValueError(f"field 'ceiling': expected one value per voxel ({r.shape[0]}), got {ceiling.shape}")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ceiling > 0, r / np.where(ceiling > 0, ceiling, 1.0), np.nan)

    def score(self, X: Any, Y: Any, sample_weight: Any = None) -> float:
        """Mean held-out r over voxels (the scikit-learn ``score``)."""
        return float(np.nanmean(voxel_correlations(self.predict(X), Y)))
