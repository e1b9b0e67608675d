"""A transformer brain encoder: image tokens → voxel responses, routed through one query per brain region.

As in "transformer brain encoders" (Adeli et al. 2023): each region of the brain has a learned query that attends
over the image's tokens (patches of pixels, or the token features of any image embedder), and every voxel reads its
response linearly from its region's output. The attention maps say where in the image each region looks.

``TransformerEncoder`` is the scikit-learn-style wrapper (``fit(tokens, responses)``, ``predict``); the model is
:class:`RegionQueryEncoder`. :func:`image_patches` turns images into patch tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

__all__ = ["RegionQueryEncoder", "TransformerEncoder", "image_patches"]


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


class RegionQueryEncoder(nn.Module):
    """Region queries cross-attend over image tokens; voxels read out their region's embedding.

    Parameters
    ----------
    n_tokens, token_dim : int
        Image tokens per image and their size.
    regions : LongTensor (n_voxels,)
        The region (0..n_regions-1) of each voxel.
    embed_dim, num_heads, num_layers : int
    dropout : float
    """

    def __init__(self, n_tokens: int, token_dim: int, regions: torch.Tensor, embed_dim: int = 64, num_heads: int = 4,
                 num_layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        n_regions = int(regions.max()) + 1
        self.register_buffer("regions", regions.long())
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


class TransformerEncoder(RegressorMixin, BaseEstimator):
    """Fit a :class:`RegionQueryEncoder` to voxel responses (MSE on z-scored voxels, AdamW, full batches, seeded).

    Parameters
    ----------
    n_regions : int
        Regions = k-means clusters of the voxels' training responses (correlated voxels share a query), unless
        ``regions`` is given to ``fit`` (e.g. from an atlas).
    embed_dim, num_heads, num_layers, dropout : model size
    epochs, lr, weight_decay : optimisation
    seed : int
    device : str, optional
    """

    def __init__(self, n_regions: int = 16, embed_dim: int = 64, num_heads: int = 4, num_layers: int = 1,
                 dropout: float = 0.1, epochs: int = 300, lr: float = 3e-3, weight_decay: float = 0.05, seed: int = 0,
                 device: str | None = None) -> None:
        self.n_regions = n_regions
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device

    def _tokens(self, X: Any) -> torch.Tensor:
        T = np.asarray(X, dtype=np.float32)
        if T.ndim != 3 or not np.isfinite(T).all():
            raise ValueError(f"field 'tokens': expected finite tokens (n_images, n_tokens, token_dim), got shape "
                             f"{T.shape}" + ("" if T.ndim != 3 else " with NaN/Inf"))
        return torch.as_tensor((T - self.t_mean_) / self.t_scale_, device=self.device or "cpu")

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

    def fit(self, X: Any, Y: Any, regions: Any = None) -> TransformerEncoder:
        """``X``: tokens ``(n_images, n_tokens, token_dim)``; ``Y``: responses ``(n_images, n_voxels)``."""
        T = np.asarray(X, dtype=np.float32)
        Y = np.asarray(Y, dtype=np.float32)
        if T.ndim != 3 or Y.ndim != 2 or len(T) != len(Y):
            raise ValueError(f"field 'X'/'Y': expected tokens (n, n_tokens, token_dim) and responses (n, n_voxels), "
                             f"got shapes {T.shape} and {Y.shape}")
        self.t_mean_, self.t_scale_ = T.mean((0, 1)), T.std((0, 1)) + 1e-6
        self.y_mean_, self.y_scale_ = Y.mean(0), Y.std(0) + 1e-6
        self.regions_ = self._regions((Y - self.y_mean_) / self.y_scale_, regions)
        torch.manual_seed(self.seed)
        dev = self.device or "cpu"
        self.model_ = RegionQueryEncoder(T.shape[1], T.shape[2], torch.as_tensor(self.regions_), self.embed_dim,
                                         self.num_heads, self.num_layers, self.dropout).to(dev)
        x, y = self._tokens(T), torch.as_tensor((Y - self.y_mean_) / self.y_scale_, device=dev)
        opt = torch.optim.AdamW(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.epochs))
        self.model_.train()
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(self.model_(x), y)
            loss.backward()
            opt.step()
            sched.step()
        self.train_loss_ = float(loss.detach())
        self.model_.eval()
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted responses ``(n_images, n_voxels)`` in the units of ``Y``."""
        check_is_fitted(self, "model_")
        with torch.no_grad():
            z = self.model_(self._tokens(X)).cpu().numpy()
        return z * self.y_scale_ + self.y_mean_
