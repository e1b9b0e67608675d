"""The MEG/EEG brain module of Défossez et al. (2023) and Benchetrit et al. (2024), trained onto a target space.

Sensors of any montage → :class:`~neurodecode.encoders.models.tokenizers.SpatialAttention` (``n_spatial`` virtual
channels from the sensor positions) → a 1 × 1 convolution → per-subject linear layers
(:class:`~neurodecode.encoders.models.subjects.SubjectLayers`) → residual blocks of dilated convolutions (batch norm,
GELU; dilations cycling 1, 2, 4, 8, 16) each closed by a GLU convolution → a 1 × 1 convolution → temporal
aggregation (a learned affine map over the epoch's time points, as Benchetrit et al.) → an MLP onto the
``embed_dim``-d target. :func:`brain_module_loss` is their objective: ``clip_weight`` · CLIP (symmetric InfoNCE
against the batch's targets) + (1 − ``clip_weight``) · MSE.

Shapes: ``forward(x (B, n_channels, n_times), spec, subject (B,)) -> (B, embed_dim)``.
"""

from __future__ import annotations

import torch
from torch import nn

from neurodecode.core.epochs import CHANNEL_TYPES
from neurodecode.core.registry import ConfigMixin
from neurodecode.encoders.models.contrastive import info_nce
from neurodecode.encoders.models.subjects import SubjectLayers, subject_layer_index
from neurodecode.encoders.models.tokenizers import SignalSpec, SpatialAttention, resample_fft

__all__ = ["BrainModule", "brain_module_loss"]


class _DilatedBlock(nn.Module):
    """Two residual dilated convolutions (BN, GELU) and a GLU convolution; ``dilations`` of the two."""

    def __init__(self, n_in: int, hidden: int, dilations: tuple[int, int], dropout: float) -> None:
        super().__init__()
        self.inp = nn.Conv1d(n_in, hidden, 1) if n_in != hidden else nn.Identity()
        self.convs = nn.ModuleList(nn.Sequential(nn.Conv1d(hidden, hidden, 3, padding=d, dilation=d),
                                                 nn.BatchNorm1d(hidden), nn.GELU(), nn.Dropout(dropout))
                                   for d in dilations)
        self.glu = nn.Conv1d(hidden, 2 * hidden, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.inp(h)
        for conv in self.convs:
            h = h + conv(h)
        return nn.functional.glu(self.glu(h), dim=1)


class BrainModule(ConfigMixin, nn.Module):
    """Spatial attention → subject layers → dilated conv / GLU blocks → temporal aggregation → target embedding.

    Parameters
    ----------
    n_times : int
        Time points of an epoch at ``sfreq`` (the temporal aggregation is a map over them).
    embed_dim : int
        The target space's size.
    n_subjects : int
        Subject layers (0: none).
    n_spatial, hidden, depth, out_channels : int
        Virtual channels, block width, number of blocks, channels before the temporal aggregation.
    sfreq : float
        The model's rate; inputs are resampled to it.
    dropout : float
    channel_types : sequence of str
        The sensor types it accepts.
    subjects : sequence of str, optional
        Names of the subject layers, in order.
    """

    def __init__(self, n_times: int, embed_dim: int, n_subjects: int = 0, n_spatial: int = 64, hidden: int = 64,
                 depth: int = 3, out_channels: int = 128, sfreq: float = 120.0, dropout: float = 0.1,
                 channel_types: tuple[str, ...] | list[str] = ("meg-mag", "meg-grad", "eeg"),
                 subjects: list[str] | None = None) -> None:
        super().__init__()
        unknown = [t for t in channel_types if t not in CHANNEL_TYPES]
        if unknown:
            raise ValueError(f"field 'channel_types': expected types among {CHANNEL_TYPES}, got {unknown}")
        self.channel_types, self.sfreq, self.n_times = tuple(channel_types), float(sfreq), int(n_times)
        self.embed_dim = embed_dim
        self.spatial = SpatialAttention(n_spatial)
        self.merge = nn.Conv1d(n_spatial, n_spatial, 1)
        if n_subjects:
            self.subject_layers = SubjectLayers(n_subjects, n_spatial)
        self.blocks = nn.Sequential(*(_DilatedBlock(n_spatial if k == 0 else hidden, hidden,
                                                    (2 ** (2 * k % 5), 2 ** ((2 * k + 1) % 5)), dropout)
                                      for k in range(depth)))
        self.final = nn.Sequential(nn.Conv1d(hidden, 2 * hidden, 1), nn.GELU(), nn.Conv1d(2 * hidden, out_channels, 1))
        self.aggregate = nn.Linear(n_times, 1)
        self.project = nn.Sequential(nn.LayerNorm(out_channels), nn.GELU(), nn.Linear(out_channels, embed_dim))

    @property
    def has_subject_layers(self) -> bool:
        return hasattr(self, "subject_layers")

    def subject_index(self, names: list, where: str = "epochs") -> torch.Tensor:
        """Layer index of each epoch's subject (B,): an error naming subjects without a layer."""
        return subject_layer_index(names, self.config.get("subjects") or [], where, "brain module")

    def forward(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        x = resample_fft(x, spec.sfreq, self.sfreq)
        if x.shape[-1] != self.n_times:
            raise ValueError(f"field 'x': expected epochs of {self.n_times} samples at {self.sfreq:g} Hz, got "
                             f"{x.shape[-1]}")
        h = self.merge(self.spatial(x, spec))
        if self.has_subject_layers:
            if subject is None:
                raise ValueError("field 'subject': this brain module has subject layers; pass subject indices (B,)")
            h = self.subject_layers(h, subject)
        h = self.final(self.blocks(h))
        return self.project(self.aggregate(h)[..., 0])


def brain_module_loss(pred: torch.Tensor, target: torch.Tensor, clip_weight: float = 0.5,
                      temperature: float = 0.1) -> torch.Tensor:
    """``clip_weight`` · symmetric InfoNCE(pred, target) + (1 − ``clip_weight``) · mean squared error."""
    mse = nn.functional.mse_loss(pred, target)
    if clip_weight == 0 or len(pred) < 2:
        return mse
    return clip_weight * info_nce(pred, target, temperature) + (1 - clip_weight) * mse
