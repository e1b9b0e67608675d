"""CBraMod (Wang et al., ICLR 2025): the criss-cross brain foundation model, as a feature encoder.

Each EEG channel is cut into 1 s patches at 200 Hz. A patch's embedding is the sum of a temporal convolution of it
and a linear map of its amplitude spectrum; an asymmetric conditional positional encoding (a depthwise convolution
over the channel × patch grid) adds where it is, so any montage and any number of patches is accepted (channel
*order* is part of the position: keep a fixed order). Each criss-cross layer splits the features in two halves:
one attends across channels at each patch (spatial), the other across patches of each channel (temporal).

Module and parameter names are those of the published ``models/cbramod.py`` (``patch_embedding.*``,
``self_attn_s`` / ``self_attn_t`` ...) except that its ``encoder.layers.N`` are ``layers.N`` here, so the released
``pretrained_weights.pth`` loads by :meth:`CBraMod.from_published` (that prefix renamed, the reconstruction head
``proj_out`` dropped). Input in volts is scaled to
CBraMod's training unit, 0.1 mV (µV / 100), by ``input_scale``.

Shapes: ``tokens(x (B, C, T), spec) -> (B, C, n_patches, d_model)``; ``forward -> (B, d_model)`` (their mean).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from neurodecode.core.registry import ConfigMixin

from neurodecode.encoders.models.tokenizers import SignalSpec, check_batch, patchify

__all__ = ["CBraMod"]


class PatchEmbedding(nn.Module):
    """Temporal convolution + spectral projection + asymmetric conditional positional encoding (published layout)."""

    def __init__(self, patch_size: int, conv_channels: int, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.positional_encoding = nn.Sequential(nn.Conv2d(d_model, d_model, kernel_size=(19, 7), padding=(9, 3),
                                                           groups=d_model))
        self.mask_encoding = nn.Parameter(torch.zeros(patch_size), requires_grad=False)
        c = conv_channels
        self.proj_in = nn.Sequential(
            nn.Conv2d(1, c, kernel_size=(1, 49), stride=(1, 25), padding=(0, 24)), nn.GroupNorm(5, c), nn.GELU(),
            nn.Conv2d(c, c, kernel_size=(1, 3), padding=(0, 1)), nn.GroupNorm(5, c), nn.GELU(),
            nn.Conv2d(c, c, kernel_size=(1, 3), padding=(0, 1)), nn.GroupNorm(5, c), nn.GELU())
        self.spectral_proj = nn.Sequential(nn.Linear(patch_size // 2 + 1, d_model), nn.Dropout(0.1))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        B, C, P, L = patches.shape
        emb = self.proj_in(patches.reshape(B, 1, C * P, L))                       # (B, conv, C·P, steps)
        emb = emb.permute(0, 2, 1, 3).reshape(B, C, P, self.d_model)              # conv channels, then time
        spectrum = torch.fft.rfft(patches, dim=-1, norm="forward").abs()
        emb = emb + self.spectral_proj(spectrum)
        return emb + self.positional_encoding(emb.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class CrissCrossLayer(nn.Module):
    """Pre-norm layer: spatial attention on half the features, temporal on the other half, then a GELU MLP."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        half = d_model // 2
        self.self_attn_s = nn.MultiheadAttention(half, nhead // 2, dropout=dropout, batch_first=True)
        self.self_attn_t = nn.MultiheadAttention(half, nhead // 2, dropout=dropout, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d_model, dim_feedforward), nn.Linear(dim_feedforward, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        B, C, P, D = x.shape
        xs = x[..., :D // 2].transpose(1, 2).reshape(B * P, C, D // 2)            # across channels, per patch
        xt = x[..., D // 2:].reshape(B * C, P, D // 2)                             # across patches, per channel
        xs = self.self_attn_s(xs, xs, xs, need_weights=False)[0].reshape(B, P, C, D // 2).transpose(1, 2)
        xt = self.self_attn_t(xt, xt, xt, need_weights=False)[0].reshape(B, C, P, D // 2)
        return self.dropout1(torch.cat([xs, xt], dim=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._attend(self.norm1(x))
        return x + self.dropout2(self.linear2(self.dropout(nn.functional.gelu(self.linear1(self.norm2(x))))))


class CBraMod(ConfigMixin, nn.Module):
    """CBraMod's criss-cross transformer for EEG epochs of any montage (fixed channel order) and length.

    Parameters
    ----------
    patch_size : int
        Samples per patch at 200 Hz (published: 200).
    conv_channels : int
        Temporal-convolution channels (a multiple of 5); ``d_model = conv_channels · ceil(patch_size / 25)``
        (published: 25 → 200).
    n_layer, nhead, dim_feedforward : transformer size (published: 12, 8, 800).
    dropout : float
        Attention / MLP dropout (published: 0.1).
    input_scale : float
        Multiplies the input (volts → 0.1 mV: 1e4).
    sfreq : float
        The model's rate; inputs are resampled to it.
    """

    channel_types = ("eeg",)
    has_subject_layers = False

    def __init__(self, patch_size: int = 200, conv_channels: int = 25, n_layer: int = 12, nhead: int = 8,
                 dim_feedforward: int = 800, dropout: float = 0.1, input_scale: float = 1e4,
                 sfreq: float = 200.0) -> None:
        super().__init__()
        if conv_channels % 5:
            raise ValueError(f"field 'conv_channels': expected a multiple of 5 (GroupNorm(5, ·)), got {conv_channels}")
        self.embed_dim = conv_channels * ((patch_size - 1) // 25 + 1)
        if nhead % 2 or (self.embed_dim // 2) % (nhead // 2):
            raise ValueError(f"field 'nhead': expected an even number whose half divides d_model / 2 = "
                             f"{self.embed_dim // 2}, got {nhead}")
        self.patch_size, self.input_scale, self.sfreq = patch_size, float(input_scale), float(sfreq)
        self.patch_embedding = PatchEmbedding(patch_size, conv_channels, self.embed_dim)
        # published ``encoder.layers.N``; ``layers`` here, since neurodecode reads a model's ``encoder`` attribute
        # as the encoder of an autoencoder
        self.layers = nn.ModuleList(CrissCrossLayer(self.embed_dim, nhead, dim_feedforward, dropout)
                                    for _ in range(n_layer))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @classmethod
    def from_published(cls, checkpoint: str | os.PathLike, **config: Any) -> CBraMod:
        """The released CBraMod weights (``pretrained_weights.pth``, published sizes), read as tensors only."""
        from neurodecode.encoders.models.published import load_published

        model = cls(**config)
        load_published(model, checkpoint, drop=("proj_out.",), rename={"encoder.layers.": "layers."})
        model.published = str(checkpoint)        # provenance (not a constructor argument)
        return model

    def tokens(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded patch tokens (B, C, n_patches, d_model) of ``x (B, C, T)`` at ``spec.sfreq``."""
        check_batch(x, spec)
        h = self.patch_embedding(patchify(x * self.input_scale, spec.sfreq, self.sfreq, self.patch_size))
        for layer in self.layers:
            h = layer(h)
        return h

    def forward(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the patch tokens (B, d_model)."""
        return self.tokens(x, spec, subject).mean(dim=(1, 2))
