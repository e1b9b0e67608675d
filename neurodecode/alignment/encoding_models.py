"""Encoding models — the other direction of decoding: stimulus features → brain responses.

* :class:`RidgeEncodingModel` — ridge from stimulus features ``(n_trials, n_features)`` (pixels, image embeddings)
  to responses ``(n_trials, n_voxels)`` with one penalty per voxel (exact leave-one-out over a log grid, the
  :class:`~neurodecode.alignment.aligners.RidgeAlignment` solver); its differentiable group activation steers
  encoder-guided generation (BrainDiVE).
* :class:`TransformerEncodingModel` — "transformer brain encoders" (Adeli et al. 2023): each brain region has a
  learned query that attends over the image's tokens (:func:`image_patches`, or any image embedder's token
  features) and every voxel reads its response linearly from its region's output (:class:`RegionQueryEncoder`);
  trained on the one trainable-estimator base (:class:`~neurodecode.core.estimators.TorchEstimator`).
* :func:`temporal_response_function` — continuous-stimulus encoding of M/EEG (TRF: a speech envelope, a
  luminance trace → each channel, over time lags): MNE's :class:`mne.decoding.ReceptiveField` on epochs, with
  cross-validated correlations per channel (:class:`TRFResult`).
* :func:`voxel_correlations` — held-out Pearson r per voxel; :func:`noise_ceiling` — the split-half reliability of
  repeated presentations (Spearman–Brown), the most an encoding model can explain; divide by it to normalise.
* :func:`encoding_scores` — cross-validated r of every voxel on training trials only, and :func:`select_voxels`, the
  voxels an encoding model predicts best. ``RidgeAlignment(select_voxels=k)`` decodes from those only.

The names say "encoding model" (stimulus → brain), never "encoder" — in neurodecode an encoder maps brain to
features (:mod:`neurodecode.encoders`), and ``TransformerEncoder`` is torch's. The 0.2 names ``RidgeEncoder`` and
``TransformerEncoder`` (``neurodecode.alignment.encoding`` / ``.brain_encoder``) work for one release with a warning.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from neurodecode.alignment.aligners import (ALPHAS, RidgeAlignment, as_2d, encoding_scores, select_voxels,
                                            voxel_correlations)
from neurodecode.core.docs import fill_doc
from neurodecode.core.estimators import Interval, TorchEstimator
from neurodecode.core.registry import ConfigMixin, register

# encoding_scores, select_voxels and voxel_correlations live beside the ridge solver (RidgeAlignment selects voxels
# with them); they are part of this module's API
__all__ = ["BrainGuidance", "TRFResult", "RegionQueryEncoder", "RidgeEncodingModel", "TransformerEncodingModel", "encoding_scores", "image_patches", "temporal_response_function",
           "noise_ceiling", "pixel_features", "select_voxels", "voxel_correlations"]


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


@register
class RidgeEncodingModel(RegressorMixin, BaseEstimator):
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

    def fit(self, X: Any, Y: Any) -> RidgeEncodingModel:
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


def image_patches(images: Any, patch: int) -> np.ndarray:
    """Non-overlapping ``patch × patch`` patches of ``(n_images, height, width)`` images as tokens
    ``(n_images, n_patches, patch²)`` in row-major order."""
    im = np.asarray(images, dtype=np.float64)
    if im.ndim != 3 or im.shape[1] % patch or im.shape[2] % patch:
        raise ValueError(f"field 'images': expected (n_images, height, width) divisible by patch={patch}, got shape "
                         f"{im.shape}")
    n, h, w = im.shape
    p = im.reshape(n, h // patch, patch, w // patch, patch).transpose(0, 1, 3, 2, 4)
    return p.reshape(n, (h // patch) * (w // patch), patch * patch)


class RegionQueryEncoder(ConfigMixin, nn.Module):
    """Region queries cross-attend over image tokens; voxels read out their region's embedding.

    Parameters
    ----------
    n_tokens, token_dim : int
        Image tokens per image and their size.
    regions : sequence of int (n_voxels,)
        The region (0..n_regions-1) of each voxel.
    embed_dim, num_heads, num_layers : int
    dropout : float
    """

    def __init__(self, n_tokens: int, token_dim: int, regions: Sequence[int], embed_dim: int = 64, num_heads: int = 4,
                 num_layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        regions = torch.as_tensor(np.asarray(regions, dtype=np.int64))
        n_regions = int(regions.max()) + 1
        self.register_buffer("regions", regions)
        self.embed = nn.Linear(token_dim, embed_dim)
        self.pos = nn.Parameter(torch.randn(n_tokens, embed_dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(n_regions, embed_dim) * 0.02)
        self.layers = nn.ModuleList(nn.TransformerDecoderLayer(embed_dim, num_heads, 2 * embed_dim, dropout,
                                                               batch_first=True, norm_first=True)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dim)
        n_voxels = len(regions)
        self.readout = nn.Parameter(torch.randn(n_voxels, embed_dim) / embed_dim ** 0.5)
        self.bias = nn.Parameter(torch.zeros(n_voxels))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(batch, n_tokens, token_dim)`` → ``(batch, n_voxels)``."""
        memory = self.embed(tokens) + self.pos
        q = self.queries.expand(len(tokens), -1, -1)
        for layer in self.layers:
            q = layer(q, memory)
        z = self.norm(q)[:, self.regions]                       # (batch, n_voxels, embed_dim): each voxel's region
        return (z * self.readout).sum(-1) + self.bias


@fill_doc
@register
class TransformerEncodingModel(RegressorMixin, TorchEstimator):
    """Fit a :class:`RegionQueryEncoder` to voxel responses (MSE on z-scored voxels, AdamW with a cosine schedule,
    full batches of up to ``trainer['batch_size']`` images, seeded).

    Parameters
    ----------
    n_regions : int
        Regions = k-means clusters of the voxels' training responses (correlated voxels share a query), unless
        ``regions`` is given to ``fit`` (e.g. from an atlas).
    embed_dim, num_heads, num_layers, dropout : model size
    %(trainer)s
        Here: 300 epochs of one batch, lr 3e-3, weight decay 0.05.
    %(seed)s
    %(device)s
    epochs, lr, weight_decay :
        Deprecated (one release): ``trainer={"max_epochs": ..., "lr": ..., "weight_decay": ...}``.

    Attributes
    ----------
    model_ : RegionQueryEncoder
    regions_ : ndarray (n_voxels,)
    history_ : list of dict
    """

    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 300, "batch_size": 4096, "lr": 3e-3,
                                                     "weight_decay": 0.05, "schedule": "cosine"}
    _deprecated_trainer_params: ClassVar[Mapping[str, str]] = {"epochs": "max_epochs", "lr": "lr",
                                                               "weight_decay": "weight_decay"}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **TorchEstimator._parameter_constraints, "n_regions": Interval(1, None, integer=True),
        "dropout": Interval(0, 1, closed="left")}

    def __init__(self, n_regions: int = 16, embed_dim: int = 64, num_heads: int = 4, num_layers: int = 1,
                 dropout: float = 0.1, trainer: Mapping[str, Any] | None = None, seed: int = 0,
                 device: str | None = None, epochs: int | None = None, lr: float | None = None,
                 weight_decay: float | None = None) -> None:
        self.n_regions = n_regions
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.dropout = dropout
        self.trainer = trainer
        self.seed = seed
        self.device = device
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay

    def _tokens(self, X: Any) -> torch.Tensor:
        T = np.asarray(X, dtype=np.float32)
        if T.ndim != 3 or not np.isfinite(T).all():
            raise ValueError(f"field 'tokens': expected finite tokens (n_images, n_tokens, token_dim), got shape "
                             f"{T.shape}" + ("" if T.ndim != 3 else " with NaN/Inf"))
        return torch.as_tensor((T - self.t_mean_) / self.t_scale_)

    def _regions(self, Y: np.ndarray, regions: Any) -> np.ndarray:
        if regions is not None:
            r = np.asarray(regions)
            if r.shape != (Y.shape[1],) or not np.issubdtype(r.dtype, np.integer) or r.min() < 0:
                raise ValueError(f"field 'regions': expected a region index ≥ 0 per voxel ({Y.shape[1]}), got "
                                 f"{r.dtype} of shape {r.shape}")
            return np.unique(r, return_inverse=True)[1]
        from sklearn.cluster import KMeans

        k = min(int(self.n_regions), Y.shape[1])
        return KMeans(k, n_init=4, random_state=self.seed).fit_predict(Y.T)

    def fit(self, X: Any, Y: Any, regions: Any = None, resume: bool = False) -> TransformerEncodingModel:
        """``X``: tokens ``(n_images, n_tokens, token_dim)``; ``Y``: responses ``(n_images, n_voxels)``;
        ``regions``: a region index per voxel (default: k-means clusters of the responses)."""
        self._fit_regions = regions
        return super().fit(X, Y, resume)

    def _prepare(self, X: Any, y: Any) -> tuple[torch.Tensor, ...]:
        T = np.asarray(X, dtype=np.float32)
        Y = np.asarray(y, dtype=np.float32)
        if T.ndim != 3 or Y.ndim != 2 or len(T) != len(Y):
            raise ValueError(f"field 'X'/'Y': expected tokens (n, n_tokens, token_dim) and responses (n, n_voxels), "
                             f"got shapes {T.shape} and {Y.shape}")
        self.t_mean_, self.t_scale_ = T.mean((0, 1)), T.std((0, 1)) + 1e-6
        self.y_mean_, self.y_scale_ = Y.mean(0), Y.std(0) + 1e-6
        self.regions_ = self._regions((Y - self.y_mean_) / self.y_scale_, self._fit_regions)
        self.n_features_in_ = T.shape[2]
        return self._tokens(T), torch.as_tensor((Y - self.y_mean_) / self.y_scale_)

    def _build(self, tensors: tuple[torch.Tensor, ...]) -> torch.nn.Module:
        T = tensors[0]
        return RegionQueryEncoder(int(T.shape[1]), int(T.shape[2]), [int(r) for r in self.regions_], self.embed_dim,
                                  self.num_heads, self.num_layers, self.dropout)

    def _loss(self, model: torch.nn.Module, batch: Any, trainer: Any) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted responses ``(n_images, n_voxels)`` in the units of ``Y``."""
        check_is_fitted(self, "model_")
        with torch.no_grad():
            z = self.model_(self._tokens(X).to(self._model_device)).cpu().numpy()
        return z * self.y_scale_ + self.y_mean_


@register
class BrainGuidance(BaseEstimator):
    """Encoder-guided generation's encoding model (BrainDiVE): a :class:`RidgeEncodingModel` from the training
    images' grey pixels at ``size`` to the ``top_voxels`` brain features it predicts best (5-fold cross-validated
    r on the training trials), whose group activation — in standard deviations of the training images' — steers an
    image head's sampling (``activation``).

    Parameters
    ----------
    top_voxels : int
        Size of the voxel (feature) group.
    size : int
        Side of the grey images the encoder reads (the image head's).

    Attributes
    ----------
    encoder_ : RidgeEncodingModel
    voxels_ : list of int
        The group's columns of the brain features.
    mean_, sd_ : float
        The group activation's mean and standard deviation over the training images.
    """

    def __init__(self, top_voxels: int = 100, size: int = 32) -> None:
        self.top_voxels = top_voxels
        self.size = size

    def fit(self, images: Any, X: Any) -> BrainGuidance:
        """``images`` (n, H, W[, C]) in [0, 1] shown on the trials of the brain features ``X`` (n, n_features)."""
        from neurodecode.core.stimuli import resize_images

        if int(self.top_voxels) < 1:
            raise ValueError(f"field 'top_voxels': expected >= 1, got {self.top_voxels}")
        images = np.asarray(images, dtype=np.float32)
        pix = resize_images(images if images.ndim == 4 else images[..., None], int(self.size), 1)
        pix = pix.reshape(len(pix), -1).astype(np.float64)
        X = np.asarray(X, dtype=np.float64)
        k = min(int(self.top_voxels), X.shape[1])
        group = np.sort(np.argsort(encoding_scores(pix, X, cv=5))[::-1][:k])
        self.encoder_ = RidgeEncodingModel().fit(pix, X[:, group])
        acts = pix @ self.encoder_.ridge_.coef_.mean(0) + float(self.encoder_.ridge_.intercept_.mean())
        self.voxels_, self.mean_, self.sd_ = group.tolist(), float(acts.mean()), float(acts.std()) or 1.0
        self.n_features_in_ = X.shape[1]
        return self

    def activation(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The differentiable group activation: images (B, C, H, W) in [0, 1] → (B,), in s.d. of the training
        images' (0 at their mean)."""
        check_is_fitted(self, "encoder_")
        raw = self.encoder_.activation(np.arange(len(self.voxels_)), pixel_features(int(self.size)))
        return lambda images: (raw(images) - self.mean_) / self.sd_



@dataclasses.dataclass
class TRFResult:
    """A temporal response function fitted on epochs and its cross-validated prediction scores.

    Attributes
    ----------
    coefs : ndarray, shape (n_channels, n_features, n_delays)
        The TRF of every channel and stimulus feature (MNE's ``coef_``), fitted on all the epochs.
    delays : ndarray, shape (n_delays,)
        Lags in seconds (a positive lag: the response follows the stimulus).
    scores : ndarray, shape (n_folds, n_channels)
        Correlation of the predicted and the recorded signal on each fold's held-out epochs.
    channels, features : list of str
    model : mne.decoding.ReceptiveField
        The model fitted on all the epochs (``predict`` on new stimuli).
    """

    coefs: np.ndarray
    delays: np.ndarray
    scores: np.ndarray
    channels: list
    features: list
    model: Any

    def plot(self, feature: int = 0, *, channels: Sequence[str] | None = None, ax: Any = None,
             path: Any = None) -> Any:
        """The TRF of one stimulus feature over lags, one line per channel (default: the 5 best predicted)."""
        import matplotlib.pyplot as plt

        if not 0 <= feature < len(self.features):
            raise ValueError(f"field 'feature': expected an index below {len(self.features)}, got {feature}")
        if channels is None:
            best = np.argsort(self.scores.mean(axis=0))[::-1][:5]
            channels = [self.channels[k] for k in best]
        unknown = [c for c in channels if c not in self.channels]
        if unknown:
            raise ValueError(f"field 'channels': expected channels of the epochs, got unknown {unknown}")
        fig, ax = (plt.subplots(figsize=(5.5, 3.0)) if ax is None else (ax.figure, ax))
        for c in channels:
            k = self.channels.index(c)
            ax.plot(self.delays, self.coefs[k, feature], label=f"{c} (r = {self.scores[:, k].mean():.2f})")
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xlabel="lag (s)", ylabel="TRF weight", title=f"temporal response function: {self.features[feature]}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        if path is not None:                      # saved and closed, as neurodecode.evaluation's figures
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig


def temporal_response_function(epochs: Any, stimulus: Any, *, tmin: float, tmax: float,
                               estimator: float | Any = 1.0, cv: int = 5, seed: int = 0,
                               feature_names: Sequence[str] | None = None) -> TRFResult:
    """Fit a temporal response function (continuous stimulus → each channel, over lags ``tmin``..``tmax``) with
    MNE's :class:`mne.decoding.ReceptiveField`, and score it on held-out epochs.

    Parameters
    ----------
    epochs : EpochSet
        The recorded signals ``(n_epochs, n_channels, n_times)``.
    stimulus : array-like, shape (n_epochs, n_features, n_times) or (n_epochs, n_times)
        The stimulus feature(s) during each epoch, sampled like the epochs (e.g. a speech envelope).
    tmin, tmax : float
        The lags in seconds (MNE's ``tmin``/``tmax``; positive: the response follows the stimulus).
    estimator : float or scikit-learn regressor
        A ridge penalty (MNE's ``ReceptiveField(estimator=alpha)``) or an estimator such as
        ``mne.decoding.TimeDelayingRidge``.
    cv : int
        Folds over epochs (shuffled with ``seed``).
    feature_names : sequence of str, optional

    Returns
    -------
    TRFResult
        The TRF ``(n_channels, n_features, n_delays)`` fitted on all epochs and the per-fold correlations.
    """
    from mne.decoding import ReceptiveField
    from mne.utils import use_log_level
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    from neurodecode.core.epochs import EpochSet

    if not isinstance(epochs, EpochSet):
        raise TypeError(f"field 'epochs': expected an EpochSet, got {type(epochs).__name__}")
    S = np.asarray(stimulus, dtype=np.float64)
    if S.ndim == 2:
        S = S[:, None]
    if S.ndim != 3 or S.shape[0] != epochs.n_epochs or S.shape[2] != epochs.n_times:
        raise ValueError(f"field 'stimulus': expected (n_epochs, n_features, n_times) = ({epochs.n_epochs}, ..., "
                         f"{epochs.n_times}) sampled like the epochs, got shape {S.shape}")
    if not np.isfinite(S).all():
        raise ValueError(f"field 'stimulus': expected finite values, got {int((~np.isfinite(S)).sum())} NaN/Inf")
    if not tmax > tmin:
        raise ValueError(f"field 'tmax': expected tmax > tmin = {tmin}, got {tmax}")
    names = list(feature_names) if feature_names is not None else [f"feature{k}" for k in range(S.shape[1])]
    if len(names) != S.shape[1]:
        raise ValueError(f"field 'feature_names': expected {S.shape[1]} names, got {len(names)}")
    if not isinstance(cv, int) or not 2 <= cv <= epochs.n_epochs:
        raise ValueError(f"field 'cv': expected an integer from 2 to n_epochs ({epochs.n_epochs}), got {cv!r}")
    X = S.transpose(2, 0, 1)                                 # MNE's (n_times, n_epochs, n_features)
    Y = epochs.data.astype(np.float64).transpose(2, 0, 1)    # (n_times, n_epochs, n_channels)
    rf = ReceptiveField(tmin, tmax, epochs.sfreq, feature_names=names, estimator=estimator, scoring="corrcoef")
    scores = []
    with use_log_level("error"):                            # MNE's per-fit lines and progress bars
        for tr, te in KFold(cv, shuffle=True, random_state=seed).split(np.arange(epochs.n_epochs)):
            scores.append(clone(rf).fit(X[:, tr], Y[:, tr]).score(X[:, te], Y[:, te]))
        model = clone(rf).fit(X, Y)
    return TRFResult(np.asarray(model.coef_).reshape(epochs.n_channels, len(names), -1), np.asarray(model.delays_)
                     / epochs.sfreq, np.asarray(scores), list(epochs.channels.names), names, model)
