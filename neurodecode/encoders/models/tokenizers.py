"""Turning recordings into tokens, defined in seconds and in space, so one model reads any rate and any montage.

* :func:`input_spec` — the checked input contract: a :class:`~neurodecode.Channels` becomes a :class:`SignalSpec`
  (positions, type indices, region indices, sampling rate) or a loud error naming the channels whose type the model
  does not know or whose position is missing (unless a type mapping / learned "no position" is configured).
* :func:`resample_fft` — band-limited (anti-aliased) resampling by Fourier truncation, the same as
  ``scipy.signal.resample``, differentiable and batched in torch. Models resample their input to their own rate.
* :class:`PatchEmbedding` — per-channel temporal patches of ``patch_seconds`` → ``embed_dim``.
* :class:`ChannelEmbedding` — from 3D positions (random Fourier features) and channel types, so that a model
  pretrained on one montage runs on another.
* :class:`SpatialAttention` — the MEG decoder's spatial attention (Défossez et al. 2023): ``n_outputs`` virtual
  channels, each a softmax-weighted sum of the input channels with weights computed from their positions.
* :class:`RegionFusion` — Du-IN's region tokens for sEEG/ECoG: the contacts of one region fused into one token
  (attention pooling over any number of contacts).
* :func:`time_embedding` — sinusoidal embedding of patch times in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurodecode.core.epochs import CHANNEL_TYPES, Channels

__all__ = ["ChannelEmbedding", "PatchEmbedding", "RegionFusion", "SignalSpec", "SpatialAttention", "check_batch",
           "input_spec",
           "patchify", "resample_fft", "time_embedding"]

HEAD_RADIUS = 0.1  # metres: positions are divided by it before the Fourier features


@dataclass
class SignalSpec:
    """Channel information of a batch, as tensors.

    Attributes
    ----------
    positions : tensor (n_channels, 3)
        Metres; NaN rows where unknown (allowed only with ``missing_positions="learned"``).
    types : tensor of int (n_channels,)
        Indices into :data:`neurodecode.core.epochs.CHANNEL_TYPES` (the type embeddings have one row per global
        type, so a magnetometer is the same row in every model); the model's ``channel_types`` say which it accepts.
    regions : tensor of int (n_channels,) or None
        Region index per channel (for region tokens); -1 where none.
    sfreq : float
        Sampling rate of the data (Hz).
    region_names : tuple of str
    names : tuple of str
        The channel names (models whose channel embedding is a table by name, e.g. LaBraM's, read them).
    """

    positions: torch.Tensor
    types: torch.Tensor
    sfreq: float
    regions: torch.Tensor | None = None
    region_names: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def n_channels(self) -> int:
        return int(self.types.shape[0])

    def to(self, device: torch.device | str) -> SignalSpec:
        return SignalSpec(self.positions.to(device), self.types.to(device), self.sfreq,
                          None if self.regions is None else self.regions.to(device), self.region_names, self.names)


def input_spec(channels: Channels, sfreq: float, channel_types: Sequence[str] = CHANNEL_TYPES, *,
               type_map: Mapping[str, str] | None = None, missing_positions: str = "error",
               where: str = "input") -> SignalSpec:
    """Check a recording's channels against a model's input contract and return its :class:`SignalSpec`.

    Parameters
    ----------
    channels : Channels
    sfreq : float
    channel_types : sequence of str
        The types the model knows (its type embedding has one row per type).
    type_map : mapping, optional
        Reads channels of one type as another (e.g. ``{"ecog": "seeg"}``).
    missing_positions : {"error", "learned"}
        Channels without positions: refuse, or give them the model's learned "no position" embedding.
    where : str
        Names the input in error messages (e.g. the file).
    """
    type_map = dict(type_map or {})
    types = [type_map.get(t, t) for t in channels.types]
    unknown = sorted({t for t in types if t not in channel_types})
    if unknown:
        bad = [n for n, t in zip(channels.names, types, strict=True) if t in unknown][:5]
        raise ValueError(f"{where}: field 'channels.types': expected types the model knows {tuple(channel_types)}, "
                         f"got {unknown} (channels {bad}); map them with type_map={{'{unknown[0]}': ...}}")
    pos = np.array(channels.pos, dtype=np.float64)
    missing = ~np.isfinite(pos).all(1)
    if missing.any() and missing_positions != "learned":
        names = [n for n, m in zip(channels.names, missing, strict=True) if m]
        raise ValueError(f"{where}: field 'channels.pos': expected 3D positions for every channel, got none for "
                         f"{len(names)} channel(s) {names[:5]}; set a montage, or configure "
                         "missing_positions='learned'")
    if not sfreq > 0:
        raise ValueError(f"{where}: field 'sfreq': expected a positive sampling rate, got {sfreq}")
    regions, names = None, ()
    if channels.regions is not None:
        labels = [str(r) if r is not None and str(r) not in ("", "nan", "None") else "" for r in channels.regions]
        names = tuple(dict.fromkeys(r for r in labels if r))
        regions = torch.tensor([names.index(r) if r else -1 for r in labels], dtype=torch.long)
    pos[missing] = np.nan
    return SignalSpec(torch.as_tensor(pos, dtype=torch.float32),
                      torch.tensor([CHANNEL_TYPES.index(t) for t in types], dtype=torch.long),
                      float(sfreq), regions, names, tuple(str(n) for n in channels.names))


def check_batch(x: torch.Tensor, spec: SignalSpec) -> None:
    """A batch ``x`` must be (batch, the spec's channels, n_times): an error naming the field otherwise."""
    if x.ndim != 3 or x.shape[1] != spec.n_channels:
        raise ValueError(f"field 'x': expected (batch, {spec.n_channels} channels of the spec, n_times), got "
                         f"{tuple(x.shape)}")


def resample_fft(x: torch.Tensor, sfreq_in: float, sfreq_out: float) -> torch.Tensor:
    """Resample the last axis from ``sfreq_in`` to ``sfreq_out`` by Fourier truncation / zero-padding.

    Frequencies above the new Nyquist are removed (no aliasing); equal to ``scipy.signal.resample(x, n_out, axis=-1)``
    with ``n_out = round(n_times * sfreq_out / sfreq_in)``. The signal is treated as periodic, as there.
    """
    if sfreq_in == sfreq_out:
        return x
    n = x.shape[-1]
    n_out = int(round(n * sfreq_out / sfreq_in))
    if n_out < 1:
        raise ValueError(f"field 'x': {n} samples at {sfreq_in} Hz give no sample at {sfreq_out} Hz")
    spec = torch.fft.rfft(x, dim=-1)
    m = min(n, n_out)
    spec = spec[..., :m // 2 + 1].clone()
    if m % 2 == 0:  # the unpaired bin at m // 2, as scipy.signal.resample
        spec[..., m // 2] *= 2 if n_out < n else 0.5
    return torch.fft.irfft(spec, n=n_out, dim=-1) * (n_out / n)


def patchify(x: torch.Tensor, sfreq_in: float, sfreq: float, patch_len: int) -> torch.Tensor:
    """Resample ``x (B, C, T)`` to ``sfreq`` and cut it into patches (B, C, n_patches, patch_len)."""
    if x.ndim != 3:
        raise ValueError(f"field 'x': expected (batch, n_channels, n_times), got {tuple(x.shape)}")
    x = resample_fft(x, sfreq_in, sfreq)
    n_patches = x.shape[-1] // patch_len
    if n_patches < 1:
        raise ValueError(f"field 'x': expected at least one patch of {patch_len / sfreq} s, got "
                         f"{x.shape[-1] / sfreq:.3f} s")
    return x[..., :n_patches * patch_len].unflatten(-1, (n_patches, patch_len))


def time_embedding(times: torch.Tensor, dim: int, max_period: float = 100.0) -> torch.Tensor:
    """Sinusoidal embedding (..., dim) of times in seconds (periods from 1/10 s to ``max_period`` s)."""
    half = dim // 2
    periods = torch.logspace(math.log10(0.1), math.log10(max_period), half, device=times.device)
    angles = 2 * math.pi * times[..., None] / periods
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return nn.functional.pad(emb, (0, dim - 2 * half))


class PatchEmbedding(nn.Module):
    """Cut each channel into patches of ``patch_seconds`` at the model's rate and embed them.

    Shapes: ``forward(x (B, C, T) at sfreq) -> tokens (B, C, P, embed_dim), patches (B, C, P, patch_len)``.
    Input at another rate is resampled (anti-aliased, :func:`resample_fft`); trailing samples that do not fill a
    patch are not used.
    """

    def __init__(self, sfreq: float, patch_seconds: float, embed_dim: int) -> None:
        super().__init__()
        self.sfreq, self.patch_seconds = float(sfreq), float(patch_seconds)
        self.patch_len = int(round(sfreq * patch_seconds))
        if self.patch_len < 2:
            raise ValueError(f"field 'patch_seconds': expected at least 2 samples per patch at {sfreq} Hz, got "
                             f"{patch_seconds} s")
        self.proj = nn.Sequential(nn.Linear(self.patch_len, embed_dim), nn.LayerNorm(embed_dim))

    def patches(self, x: torch.Tensor, sfreq: float) -> torch.Tensor:
        return patchify(x, sfreq, self.sfreq, self.patch_len)

    def forward(self, x: torch.Tensor, sfreq: float) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.patches(x, sfreq)
        return self.proj(p), p


class _Fourier(nn.Module):
    """Random Fourier features of 3D positions (fixed, seeded), NaN rows → zeros (flagged separately)."""

    def __init__(self, n_features: int, scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", torch.randn(3, n_features // 2, generator=g) * scale * 2 * math.pi)

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        z = torch.nan_to_num(pos / HEAD_RADIUS) @ self.freqs
        return torch.cat([z.sin(), z.cos()], dim=-1)


class ChannelEmbedding(nn.Module):
    """Embedding of each channel from its 3D position and its type.

    Shapes: ``forward(spec) -> (n_channels, embed_dim)``.
    """

    def __init__(self, embed_dim: int, n_types: int = len(CHANNEL_TYPES), n_fourier: int = 64) -> None:
        super().__init__()
        self.fourier = _Fourier(n_fourier)
        self.mlp = nn.Sequential(nn.Linear(n_fourier, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))
        self.types = nn.Embedding(n_types, embed_dim)
        self.no_position = nn.Parameter(torch.zeros(embed_dim))

    def forward(self, spec: SignalSpec) -> torch.Tensor:
        missing = ~torch.isfinite(spec.positions).all(-1)
        emb = self.mlp(self.fourier(spec.positions))
        emb = torch.where(missing[:, None], self.no_position.expand_as(emb), emb)
        return emb + self.types(spec.types)


class SpatialAttention(nn.Module):
    """Spatial attention over sensor positions (Défossez et al. 2023): any montage → ``n_outputs`` channels.

    Output channel j is ``Σ_i softmax_i(a_j(pos_i)) x_i``, where ``a_j`` is a learned function of position (Fourier
    features → linear); ``dropout_radius`` drops the sensors within a random ball during training (as the paper).

    Shapes: ``forward(x (B, C, T), spec) -> (B, n_outputs, T)``.
    """

    def __init__(self, n_outputs: int, n_fourier: int = 64, dropout_radius: float = 0.0) -> None:
        super().__init__()
        self.fourier = _Fourier(n_fourier, seed=1)
        self.logits = nn.Linear(n_fourier, n_outputs)
        self.type_bias = nn.Embedding(len(CHANNEL_TYPES), n_outputs)
        self.dropout_radius = dropout_radius

    def forward(self, x: torch.Tensor, spec: SignalSpec) -> torch.Tensor:
        if torch.isnan(spec.positions).any():
            raise ValueError("field 'channels.pos': spatial attention needs a position for every channel")
        if x.shape[1] != spec.n_channels:
            raise ValueError(f"field 'x': expected {spec.n_channels} channels as in the spec, got {x.shape[1]}")
        a = self.logits(self.fourier(spec.positions)) + self.type_bias(spec.types)  # (C, n_outputs)
        if self.training and self.dropout_radius > 0:
            centre = spec.positions[torch.randint(spec.n_channels, (1,))]
            dropped = (spec.positions - centre).norm(dim=-1) < self.dropout_radius
            a = a.masked_fill(dropped[:, None], float("-inf"))
        w = a.softmax(dim=0)  # over input channels
        return torch.einsum("bct,co->bot", x, w)


class RegionFusion(nn.Module):
    """Du-IN's region tokens: fuse the tokens of the contacts of each region (attention pooling, any count).

    Shapes: ``forward(tokens (B, C, P, D), channel_emb (C, D), regions (C,) ints) -> (B, R, P, D)`` with R the
    number of regions (contacts with region -1 are left out).
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(embed_dim, 1)
        self.out = nn.Linear(embed_dim, embed_dim)

    def forward(self, tokens: torch.Tensor, channel_emb: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        n_regions = int(regions.max()) + 1 if regions.numel() and int(regions.max()) >= 0 else 0
        if n_regions == 0:
            raise ValueError("field 'channels.regions': region tokens need region labels (assign_regions)")
        member = nn.functional.one_hot(regions.clamp(min=0), n_regions).to(tokens.dtype)  # (C, R)
        member = member * (regions >= 0)[:, None]
        s = self.score(tokens + channel_emb[:, None]).squeeze(-1)  # (B, C, P)
        s = s[..., None].masked_fill(member[None, :, None] == 0, float("-inf"))  # (B, C, P, R)
        w = torch.nan_to_num(s.softmax(dim=1))  # over the contacts of each region
        return self.out(torch.einsum("bcpr,bcpd->brpd", w, tokens))
