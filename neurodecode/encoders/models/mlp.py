"""Residual MLP backbone for vector inputs (single-trial fMRI voxels, flattened features), after MindEye's.

``x (B, in_features) → Linear → [LayerNorm, GELU, Dropout] → n_blocks × residual (Linear, LayerNorm, GELU, Dropout)
→ Linear → (B, out_features)``. LayerNorm (not BatchNorm) so that the output of one item never depends on the rest of
its batch — which keeps training identical across 1 or N processes.
"""

from __future__ import annotations

import torch
from torch import nn

from neurodecode.core.registry import ConfigMixin

__all__ = ["ResidualMLP"]


def _block(dim_in: int, dim_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim_out), nn.LayerNorm(dim_out), nn.GELU(), nn.Dropout(dropout))


class ResidualMLP(ConfigMixin, nn.Module):
    """Residual MLP.

    Parameters
    ----------
    in_features, out_features : int
    hidden : int
        Width of the hidden layers.
    n_blocks : int
        Residual blocks after the input layer (0: a one-hidden-layer MLP).
    dropout : float

    Shapes: ``forward(x (B, in_features)) -> (B, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 1024, n_blocks: int = 2,
                 dropout: float = 0.15) -> None:
        super().__init__()
        self.inp = _block(in_features, hidden, dropout)
        self.blocks = nn.ModuleList(_block(hidden, hidden, dropout) for _ in range(n_blocks))
        self.out = nn.Linear(hidden, out_features)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"field 'x': expected (batch, {self.in_features}), got {tuple(x.shape)}")
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)
